use super::*;
use crate::api::{PhoneNumberAssignmentStatus, TrustProductNumberStatus};

fn binding_entry(i: usize, state: NumberState) -> PhoneNumberAssignmentStatus {
    PhoneNumberAssignmentStatus {
        phone_number: Some(format!("+1415555{i:04}")),
        sid: Some(format!("PN{i:032x}")),
        assignment_sid: (state == NumberState::Assigned).then(|| format!("RA{i:032x}")),
        created_by_operator: state == NumberState::Assigned,
        state,
        ..Default::default()
    }
}

fn binding_with(states: &[(NumberState, usize)]) -> BusinessProfileBindingStatus {
    let mut i = 0;
    let mut status = BusinessProfileBindingStatus::default();
    for (state, n) in states {
        for _ in 0..*n {
            status.phone_numbers.push(binding_entry(i, *state));
            i += 1;
        }
    }
    status
}

#[test]
fn a_small_status_is_stored_whole_and_a_large_one_keeps_only_the_problems() {
    use NumberState::*;
    // (numbers by state, entries stored, omitted, abridged)
    type Row<'a> = (&'a [(NumberState, usize)], usize, u32, bool);
    let table: &[Row<'_>] = &[
        (&[(Assigned, 3)], 3, 0, false),
        (
            &[(Assigned, FULL_NUMBER_LIST_MAX)],
            FULL_NUMBER_LIST_MAX,
            0,
            false,
        ),
        (&[(Assigned, FULL_NUMBER_LIST_MAX + 1)], 0, 0, true),
        (&[(Assigned, 50_000), (Failed, 2), (Pending, 9)], 2, 0, true),
        (
            &[(Assigned, 1000), (Unresolvable, 400), (Releasing, 300)],
            PROBLEM_NUMBERS_MAX,
            200,
            true,
        ),
    ];
    for (states, stored_len, omitted, abridged) in table {
        let mut full = binding_with(states);
        let before = full.clone();
        let stored = full.abridged();
        assert_eq!(full, before, "the full status is left as it was");
        assert_eq!(stored.phone_numbers.len(), *stored_len, "{states:?}");
        assert_eq!(stored.numbers_omitted, *omitted, "{states:?}");
        assert_eq!(stored.is_abridged(), *abridged, "{states:?}");
    }
}

#[test]
fn numbers_being_released_are_stored_before_other_problems() {
    use NumberState::*;
    let mut full = binding_with(&[(Assigned, 600), (Failed, 450), (Releasing, 100)]);
    let stored = full.abridged();
    assert!(
        stored.phone_numbers[..100]
            .iter()
            .all(|n| n.state == Releasing)
    );
    assert_eq!(stored.numbers_omitted, 50);
}

#[test]
fn a_product_stores_the_numbers_not_attached_refused_first() {
    let mut full = ShakenStirTrustProductStatus::default();
    for i in 0..2000 {
        full.phone_numbers.push(TrustProductNumberStatus {
            sid: format!("PN{i:032x}"),
            assignment_sid: (i >= 10).then(|| format!("RA{i:032x}")),
            message: (i < 3).then(|| "refused".to_string()),
            ..Default::default()
        });
    }
    let stored = full.abridged();
    assert!(stored.numbers_abridged);
    assert_eq!(stored.phone_numbers.len(), 10);
    assert!(
        stored.phone_numbers[..3]
            .iter()
            .all(|n| n.message.is_some())
    );
}

#[test]
fn the_full_status_is_recalled_only_while_the_api_holds_its_abridged_copy() {
    use NumberState::*;
    let book: Book<BusinessProfileBindingStatus> = Book::default();
    let mut full = binding_with(&[(Assigned, 2000)]);
    let stored = full.abridged();
    book.keep(Some("uid-1"), stored_hash(&stored), Arc::new(full.clone()));

    assert_eq!(*book.recall(Some("uid-1"), Some(&stored)), full);
    // Someone else wrote the status since, or another object: the API's copy.
    let mut edited = stored.clone();
    edited.numbers_summary = Some("edited".into());
    assert_eq!(*book.recall(Some("uid-1"), Some(&edited)), edited);
    assert_eq!(*book.recall(Some("uid-2"), Some(&stored)), stored);
    assert!(book.recall(Some("uid-2"), Some(&stored)).is_abridged());

    let books = Books::default();
    books
        .bindings
        .keep(Some("uid-1"), stored_hash(&stored), Arc::new(full.clone()));
    assert_eq!(*books.bindings.recall(Some("uid-1"), Some(&stored)), full);
    books.forget(Some("uid-1"));
    assert_eq!(*books.bindings.recall(Some("uid-1"), Some(&stored)), stored);
}

#[test]
fn another_objects_view_is_the_full_record_only_for_the_copy_it_was_written_as() {
    use NumberState::*;
    let book: Book<BusinessProfileBindingStatus> = Book::default();
    let mut before = binding_with(&[(Resolved, 3)]);
    let mut after = binding_with(&[(Assigned, 3)]);
    let stored_after = after.abridged();
    book.keep(
        Some("b"),
        stored_hash(&stored_after),
        Arc::new(after.clone()),
    );
    // The watch event of the write kept: the full record.
    assert_eq!(*book.recall(Some("b"), Some(&stored_after)), after);
    // An event of an earlier write: that write's own copy, not a newer record.
    let stored_before = before.abridged();
    assert_eq!(*book.recall(Some("b"), Some(&stored_before)), stored_before);
    // Nothing kept: the cached copy.
    assert_eq!(*book.recall(Some("c"), Some(&stored_after)), stored_after);
}
