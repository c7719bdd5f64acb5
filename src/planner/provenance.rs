//! Which listed assignments an object made, told from Twilio's listing and a few fields of its
//! status ([`Ownership`]) rather than from one record per number, which 50,000 numbers would
//! not fit in a status.
//!
//! The rule: an assignment of one of the object's numbers is the object's when Twilio dates it
//! from `since` on and it is not `adopted`. `since` is set a margin before the object's first
//! create; `adopted` lists what the operator found dated from `since` on without having made it.

use std::collections::{BTreeSet, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::{ADOPTED_MAX, OWNERSHIP_MARGIN_SECONDS, Ownership, Sid};

/// One assignment (or attachment) as a listing returned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dated {
    /// `RA…`.
    pub assignment_sid: Sid,
    /// `PN…`.
    pub number_sid: Sid,
    /// Twilio's `date_created`, when given.
    pub created: Option<Timestamp>,
}

/// The `RA…` SIDs of `listed` that are the object's by `ownership`. An assignment without a
/// date, or any not recorded as adopted while the adopted list overflowed, is not: left in
/// place rather than removed by mistake.
pub fn derived_owned(ownership: Option<&Ownership>, listed: &[Dated]) -> BTreeSet<Sid> {
    let Some((ownership, since)) =
        ownership.and_then(|o| Some((o, o.since.as_ref().map(|t| t.0)?)))
    else {
        return BTreeSet::new();
    };
    if ownership.adopted_omitted > 0 {
        return BTreeSet::new();
    }
    let adopted: HashSet<&str> = ownership.adopted.iter().map(String::as_str).collect();
    listed
        .iter()
        .filter(|a| a.created.is_some_and(|c| c >= since))
        .filter(|a| !adopted.contains(&*a.assignment_sid))
        .map(|a| a.assignment_sid.clone())
        .collect()
}

/// The assignments of `listed` that the object did not make (not in `owned`) dated from
/// `cutoff` on: those the rule must be told are not the object's.
pub fn adopted_since(listed: &[Dated], owned: &BTreeSet<Sid>, cutoff: Timestamp) -> Vec<String> {
    listed
        .iter()
        .filter(|a| a.created.is_none_or(|c| c >= cutoff))
        .filter(|a| !owned.contains(&a.assignment_sid))
        .map(|a| a.assignment_sid.to_string())
        .collect()
}

/// `since` for an object about to make its first create at `now`.
pub fn since_for_first_create(now: Timestamp) -> Timestamp {
    now - SignedDuration::from_secs(OWNERSHIP_MARGIN_SECONDS)
}

/// What one listing tells of ownership.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// The assignments dated from `since` (or the cutoff) on that the object did not make.
    pub adopted: Vec<String>,
    /// For an object that made assignments before it had a `since` (a status written by an
    /// operator version without it): the earliest of their dates, which becomes its `since`.
    pub since: Option<Timestamp>,
}

/// What `listed` tells, given the assignments known to be the object's (`owned`): the
/// recorded `since`, else the earliest date of an owned assignment, else the one the first
/// create would set now (a little earlier than the real one, so nothing is missed), is the
/// cutoff for the adopted ones.
pub fn seen(
    previous: Option<&Ownership>,
    listed: &[Dated],
    owned: &BTreeSet<Sid>,
    now: Timestamp,
) -> Seen {
    let recorded = previous.and_then(|o| o.since.as_ref().map(|t| t.0));
    let since = recorded.or_else(|| {
        listed
            .iter()
            .filter(|a| owned.contains(&a.assignment_sid))
            .filter_map(|a| a.created)
            .min()
    });
    let cutoff = since.unwrap_or_else(|| since_for_first_create(now));
    Seen {
        adopted: adopted_since(listed, owned, cutoff),
        since: since.filter(|_| recorded.is_none()),
    }
}

/// Whether the ownership must be worked out from a listing before the status can be abridged:
/// the object records assignments as its own but has no `since` yet (a status written by an
/// operator version without it).
pub fn needs_listing(previous: Option<&Ownership>, records_owned: bool) -> bool {
    records_owned && previous.and_then(|o| o.since.as_ref()).is_none()
}

/// The ownership to record: `since` as recorded, or as a listing implied it, or set now when a
/// create is about to be made; `adopted` from this reconcile's listing when it listed, else as
/// recorded.
pub fn recorded_ownership(
    previous: Option<&Ownership>,
    creating: bool,
    now: Timestamp,
    seen: Option<&Seen>,
) -> Option<Ownership> {
    let since = previous
        .and_then(|o| o.since.clone())
        .or_else(|| seen.and_then(|s| s.since).map(Time))
        .or_else(|| creating.then(|| Time(since_for_first_create(now))))?;
    let (adopted, omitted) = match seen.map(|s| &s.adopted) {
        Some(listed) => {
            let omitted = listed.len().saturating_sub(ADOPTED_MAX);
            (
                listed.iter().take(ADOPTED_MAX).cloned().collect(),
                u32::try_from(omitted).unwrap_or(u32::MAX),
            )
        }
        None => previous.map_or((Vec::new(), 0), |o| (o.adopted.clone(), o.adopted_omitted)),
    };
    Some(Ownership {
        since: Some(since),
        adopted,
        adopted_omitted: omitted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn dated(ra: &str, created: Option<i64>) -> Dated {
        Dated {
            assignment_sid: ra.into(),
            number_sid: format!("PN-{ra}").into(),
            created: created.map(at),
        }
    }

    fn ownership(since: Option<i64>, adopted: &[&str], omitted: u32) -> Ownership {
        Ownership {
            since: since.map(|s| Time(at(s))),
            adopted: adopted.iter().map(|s| s.to_string()).collect(),
            adopted_omitted: omitted,
        }
    }

    #[test]
    fn assignments_dated_from_since_and_not_adopted_are_the_objects() {
        let listed = [
            dated("RA-old", Some(-1)),
            dated("RA-at", Some(0)),
            dated("RA-late", Some(500)),
            dated("RA-hand", Some(600)),
            dated("RA-undated", None),
        ];
        // (ownership, owned)
        let table: &[(Option<Ownership>, &[&str])] = &[
            (None, &[]),
            // Nothing created yet: nothing is the object's, whatever the dates.
            (Some(ownership(None, &[], 0)), &[]),
            (
                Some(ownership(Some(0), &[], 0)),
                &["RA-at", "RA-hand", "RA-late"],
            ),
            (
                Some(ownership(Some(0), &["RA-hand"], 0)),
                &["RA-at", "RA-late"],
            ),
            (Some(ownership(Some(550), &[], 0)), &["RA-hand"]),
            // The adopted list overflowed: none can be told, none is claimed.
            (Some(ownership(Some(0), &["RA-hand"], 3)), &[]),
        ];
        for (o, want) in table {
            let got = derived_owned(o.as_ref(), &listed);
            let want: BTreeSet<Sid> = want.iter().map(|s| (*s).into()).collect();
            assert_eq!(got, want, "{o:?}");
        }
    }

    #[test]
    fn adopted_are_the_unowned_assignments_from_the_cutoff_on() {
        let listed = [
            dated("RA-old", Some(-10)),
            dated("RA-mine", Some(5)),
            dated("RA-hand", Some(6)),
            dated("RA-undated", None),
        ];
        let owned: BTreeSet<Sid> = [Sid::from("RA-mine")].into();
        assert_eq!(
            adopted_since(&listed, &owned, at(0)),
            ["RA-hand", "RA-undated"]
        );
        // The object's own rule then tells them apart again.
        let seen = Seen {
            adopted: adopted_since(&listed, &owned, at(0)),
            since: None,
        };
        let o = recorded_ownership(None, true, at(300), Some(&seen)).unwrap();
        assert_eq!(o.since, Some(Time(at(0))));
        assert_eq!(
            derived_owned(Some(&o), &listed),
            BTreeSet::from([Sid::from("RA-mine")])
        );
    }

    #[test]
    fn since_is_set_by_the_first_create_and_kept() {
        let now = at(1000);
        // (previous, creating, listed adopted, want since, want adopted, want omitted)
        type Row = (
            Option<Ownership>,
            bool,
            Option<Vec<String>>,
            Option<i64>,
            usize,
            u32,
        );
        let many: Vec<String> = (0..ADOPTED_MAX + 7).map(|i| format!("RA{i}")).collect();
        let table: Vec<Row> = vec![
            (None, false, None, None, 0, 0),
            (None, false, Some(vec!["RA1".into()]), None, 0, 0),
            (None, true, None, Some(700), 0, 0),
            (
                Some(ownership(Some(5), &["RA9"], 0)),
                true,
                None,
                Some(5),
                1,
                0,
            ),
            (
                Some(ownership(Some(5), &["RA9"], 0)),
                false,
                Some(vec![]),
                Some(5),
                0,
                0,
            ),
            (
                Some(ownership(Some(5), &[], 0)),
                false,
                Some(many),
                Some(5),
                ADOPTED_MAX,
                7,
            ),
        ];
        for (previous, creating, adopted, since, len, omitted) in table {
            let seen = adopted.map(|adopted| Seen {
                adopted,
                since: None,
            });
            let got = recorded_ownership(previous.as_ref(), creating, now, seen.as_ref());
            assert_eq!(
                got.as_ref().and_then(|o| o.since.clone()),
                since.map(|s| Time(at(s)))
            );
            assert_eq!(got.as_ref().map_or(0, |o| o.adopted.len()), len);
            assert_eq!(got.as_ref().map_or(0, |o| o.adopted_omitted), omitted);
        }
    }

    #[test]
    fn an_object_without_since_takes_the_earliest_date_of_what_it_made() {
        // Recorded as its own by a status from before `since`: RA-a (t = 10) and RA-b (t = 40).
        let listed = [
            dated("RA-old", Some(-50)),
            dated("RA-a", Some(10)),
            dated("RA-hand", Some(20)),
            dated("RA-b", Some(40)),
        ];
        let owned: BTreeSet<Sid> = [Sid::from("RA-a"), Sid::from("RA-b")].into();
        assert!(needs_listing(None, true));
        assert!(!needs_listing(None, false));
        assert!(!needs_listing(Some(&ownership(Some(0), &[], 0)), true));

        let seen = seen(None, &listed, &owned, at(1000));
        assert_eq!(seen.since, Some(at(10)));
        assert_eq!(seen.adopted, ["RA-hand"]);
        let o = recorded_ownership(None, false, at(1000), Some(&seen)).unwrap();
        assert_eq!(o.since, Some(Time(at(10))));
        // After a restart, the rule finds exactly the two again.
        assert_eq!(derived_owned(Some(&o), &listed), owned);

        // With `since` recorded, a listing changes only the adopted list.
        let o2 = recorded_ownership(Some(&o), true, at(2000), Some(&seen)).unwrap();
        assert_eq!(o2.since, Some(Time(at(10))));
    }
}
