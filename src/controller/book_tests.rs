use super::*;
use crate::api::{PhoneNumberAssignmentStatus, TrustProductNumberStatus};

fn binding_entry(i: usize, state: NumberState) -> PhoneNumberAssignmentStatus {
    PhoneNumberAssignmentStatus {
        phone_number: Some(format!("+1415555{i:04}").into()),
        sid: Some(format!("PN{i:032x}").into()),
        assignment_sid: (state == NumberState::Assigned).then(|| format!("RA{i:032x}").into()),
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
            sid: format!("PN{i:032x}").into(),
            assignment_sid: (i >= 10).then(|| format!("RA{i:032x}").into()),
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
    book.keep(Some("uid-1"), &stored, &Arc::new(full.clone()));

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
        .keep(Some("uid-1"), &stored, &Arc::new(full.clone()));
    assert_eq!(*books.bindings.recall(Some("uid-1"), Some(&stored)), full);
    books.forget(Some("uid-1"));
    assert_eq!(*books.bindings.recall(Some("uid-1"), Some(&stored)), stored);
}

/// A status stored whole is read as it is: no look-up, no copy. A kept record for the same
/// object is not consulted (its hash could only match an identical status).
#[test]
fn a_status_stored_whole_is_recalled_without_a_copy() {
    use NumberState::*;
    let book: Book<BusinessProfileBindingStatus> = Book::default();
    let mut small = binding_with(&[(Assigned, 3)]);
    let stored = small.abridged();
    assert!(!stored.is_abridged());
    let mut other = binding_with(&[(Assigned, 2000)]);
    let other_stored = other.abridged();
    book.keep(Some("uid-1"), &other_stored, &Arc::new(other));
    match book.recall_ref(Some("uid-1"), Some(&stored)) {
        Recalled::Stored(s) => assert!(std::ptr::eq(s, &stored)),
        _ => panic!("the stored status itself"),
    }
    assert!(matches!(
        book.recall_ref(Some("uid-1"), None),
        Recalled::Empty(_)
    ));
    // An abridged one is still looked up.
    let mut large = binding_with(&[(Assigned, 2000)]);
    let abridged = large.abridged();
    book.keep(Some("uid-2"), &abridged, &Arc::new(large.clone()));
    match book.recall_ref(Some("uid-2"), Some(&abridged)) {
        Recalled::Kept(full) => assert_eq!(*full, large),
        _ => panic!("the kept full record"),
    }
}

#[test]
fn another_objects_view_is_the_full_record_only_for_the_copy_it_was_written_as() {
    use NumberState::*;
    let book: Book<BusinessProfileBindingStatus> = Book::default();
    let mut before = binding_with(&[(Resolved, 2000)]);
    let mut after = binding_with(&[(Assigned, 1990), (Failed, 10)]);
    let stored_after = after.abridged();
    book.keep(Some("b"), &stored_after, &Arc::new(after.clone()));
    // The watch event of the write kept: the full record.
    assert_eq!(*book.recall(Some("b"), Some(&stored_after)), after);
    // An event of an earlier write: that write's own copy, not a newer record.
    let stored_before = before.abridged();
    assert_eq!(*book.recall(Some("b"), Some(&stored_before)), stored_before);
    // Nothing kept: the cached copy.
    assert_eq!(*book.recall(Some("c"), Some(&stored_after)), stored_after);
}

/// A binding object at `rv` with `status`.
fn binding_object(
    uid: &str,
    rv: &str,
    status: BusinessProfileBindingStatus,
) -> BusinessProfileBinding {
    let spec = serde_json::from_value(serde_json::json!({
        "credentials": {"secretName": "twilio"},
        "businessProfile": {"sid": format!("BU{:032x}", 1)},
    }))
    .expect("a valid spec");
    let mut obj = BusinessProfileBinding::new("b", spec);
    obj.metadata.uid = Some(uid.into());
    obj.metadata.resource_version = Some(rv.into());
    obj.status = Some(status);
    obj
}

fn summary(text: &str) -> BusinessProfileBindingStatus {
    BusinessProfileBindingStatus {
        numbers_summary: Some(text.into()),
        ..Default::default()
    }
}

#[test]
fn an_informer_copy_from_within_the_run_of_own_writes_is_caught_up_to_the_last() {
    let books = Books::default();
    let book = &books.bindings;
    let uid = Some("u");
    // A reconcile planned from "r1" and wrote three times; resourceVersions are opaque.
    for (base, written, text) in [
        ("r1", "x7", "one"),
        ("x7", "a2", "two"),
        ("a2", "q9", "three"),
    ] {
        let stored = summary(text);
        book.keep(uid, &stored, &Arc::new(stored.clone()));
        book.confirm(uid, base, written.into(), Arc::new(stored), || None);
    }
    // (copy's version, version planned from: None = the copy as it is)
    let table = [
        ("r1", Some("q9")),
        ("x7", Some("q9")),
        ("a2", Some("q9")),
        ("q9", None),
        // Not of the run: someone else wrote after it (a spec edit); the copy is the newest.
        ("z5", None),
    ];
    for (copy, planned) in table {
        let obj = Arc::new(binding_object("u", copy, summary("copy")));
        let caught = books.caught_up(obj.clone());
        match planned {
            Some(rv) => {
                assert_eq!(
                    caught.metadata.resource_version.as_deref(),
                    Some(rv),
                    "{copy}"
                );
                assert_eq!(caught.status, Some(summary("three")), "{copy}");
                assert_eq!(caught.spec, obj.spec, "{copy}");
            }
            None => assert!(Arc::ptr_eq(&caught, &obj), "{copy}"),
        }
    }
    // Another object, or one never written: as it is.
    let other = Arc::new(binding_object("v", "r1", summary("copy")));
    assert!(Arc::ptr_eq(&books.caught_up(other.clone()), &other));
}

#[test]
fn a_write_not_based_on_the_last_version_starts_a_new_run() {
    let book: Book<BusinessProfileBindingStatus> = Book::default();
    let uid = Some("u");
    book.confirm(uid, "r1", "r2".into(), Arc::new(summary("one")), || None);
    // A later reconcile planned from "s1" (someone else's write) and wrote "s2".
    book.confirm(uid, "s1", "s2".into(), Arc::new(summary("two")), || None);
    assert!(
        book.caught_up(uid, Some("r1")).is_none(),
        "the old run is gone"
    );
    assert!(book.caught_up(uid, Some("r2")).is_none());
    let at = book.caught_up(uid, Some("s1")).expect("the new run");
    assert_eq!(
        (at.resource_version.as_str(), &*at.stored),
        ("s2", &summary("two"))
    );
}

#[test]
fn a_run_keeps_its_last_versions_only() {
    let book: Book<BusinessProfileBindingStatus> = Book::default();
    let uid = Some("u");
    let versions: Vec<String> = (0..=LINEAGE_MAX + 10).map(|i| format!("v{i}")).collect();
    for pair in versions.windows(2) {
        book.confirm(
            uid,
            &pair[0],
            pair[1].clone(),
            Arc::new(summary("s")),
            || None,
        );
    }
    assert!(
        book.caught_up(uid, Some("v0")).is_none(),
        "dropped: planned as it is"
    );
    let kept = &versions[versions.len() - LINEAGE_MAX];
    assert!(book.caught_up(uid, Some(kept)).is_some());
}

/// The book holds a second copy of a status only where it must: the full record of an abridged
/// one, and a run of writes while the informer cache lags behind it. Each of 1,000 small
/// objects held one copy here for good before, beside the cache's.
#[test]
fn a_whole_status_is_held_only_until_the_cache_shows_its_last_write() {
    let book: Book<BusinessProfileBindingStatus> = Book::default();
    let uid = Some("u");
    let first = Arc::new(summary("one"));
    book.keep(uid, &first, &first);
    assert_eq!(book.len(), 0, "a whole status is its own record");
    let lagging = || Some("r1".to_string());
    book.confirm(uid, "r1", "r2".into(), first.clone(), lagging);
    book.confirm(uid, "r2", "r3".into(), Arc::new(summary("two")), lagging);
    let at = book
        .caught_up(uid, Some("r2"))
        .expect("the run bridges the lag");
    assert_eq!(at.resource_version, "r3");
    book.cached(uid, Some("r2"));
    assert_eq!(book.len(), 1, "the cache has not shown the last write yet");
    book.cached(uid, Some("r3"));
    assert_eq!(book.len(), 0, "the cache shows the last write");
    assert!(book.caught_up(uid, Some("r2")).is_none());

    // The cache already shows the write when it is confirmed: nothing to bridge.
    let caught = || Some("r4".to_string());
    book.confirm(uid, "r3", "r4".into(), Arc::new(summary("three")), caught);
    assert_eq!(book.len(), 0);

    // An abridged status keeps its full record after its run ends, until a whole one is
    // written.
    let mut large = binding_with(&[(NumberState::Assigned, 2000)]);
    let abridged = Arc::new(large.abridged());
    book.keep(uid, &abridged, &Arc::new(large.clone()));
    book.confirm(uid, "r4", "r5".into(), abridged.clone(), || None);
    book.cached(uid, Some("r5"));
    assert_eq!(book.len(), 1);
    assert_eq!(*book.recall(uid, Some(&abridged)), large);
    let small = Arc::new(summary("small again"));
    book.keep(uid, &small, &small);
    assert_eq!(book.len(), 0);
}

#[test]
fn the_cache_s_events_end_a_run_and_forget_a_deleted_object() {
    use kube::runtime::watcher::Event;
    let books = Books::default();
    for uid in ["u", "v"] {
        let stored = Arc::new(summary("x"));
        books
            .bindings
            .confirm(Some(uid), "r1", "r2".into(), stored, || None);
    }
    // An older copy changes nothing; the copy of the last write ends the run.
    books.cached(&Event::Apply(binding_object("u", "r1", summary("x"))));
    books.cached(&Event::InitApply(binding_object("v", "r2", summary("x"))));
    assert_eq!(books.bindings.len(), 2);
    books.cached(&Event::Apply(binding_object("u", "r2", summary("x"))));
    assert_eq!(books.bindings.len(), 1);
    books.cached(&Event::Delete(binding_object("v", "r1", summary("x"))));
    assert_eq!(books.bindings.len(), 0);
}
