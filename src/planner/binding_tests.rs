use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::api::{DeletionPolicy, NumberState, Sid};
use crate::planner::{PollSchedule, Requeue, text};

const PN1: &str = "PN00000000000000000000000000000001";
const PN2: &str = "PN00000000000000000000000000000002";
const PN3: &str = "PN00000000000000000000000000000003";

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

#[derive(Clone)]
struct World {
    profile_status: &'static str,
    targets: Vec<NumberTarget>,
    assignments: Vec<(&'static str, &'static str)>,
    owned: Vec<&'static str>,
    released: Vec<Released>,
    policy: DeletionPolicy,
    unapproved_since: Option<i64>,
    failures: Vec<(&'static str, &'static str)>,
    failing_since: Option<i64>,
    valid_until: Option<i64>,
    actions_max: usize,
}

fn resolved(pn: &str) -> NumberTarget {
    NumberTarget::Resolved {
        number_sid: pn.into(),
        phone_number: Some(format!("+1415555{}", &pn[30..]).into()),
        subaccount_sid: None,
    }
}

/// An E.164 number that was not found, with a Twilio message of 4 KiB.
fn unresolvable(i: usize) -> NumberTarget {
    NumberTarget::Unresolvable {
        shown: format!("+1415555{i:04}"),
        subaccount_sid: Some("AC2".into()),
        message: format!("account AC2 cannot be searched: {}", "x".repeat(4096)),
    }
}

fn approved() -> World {
    World {
        profile_status: "twilio-approved",
        targets: vec![resolved(PN1), resolved(PN2)],
        assignments: vec![],
        owned: vec![],
        released: vec![],
        policy: DeletionPolicy::Orphan,
        unapproved_since: None,
        failures: vec![],
        failing_since: None,
        valid_until: None,
        actions_max: usize::MAX,
    }
}

fn run(w: &World) -> BindingPlan {
    let profile = ProfileView {
        sid: "BU00000000000000000000000000000aaa".into(),
        status: w.profile_status.into(),
        valid_until: w.valid_until.map(at),
    };
    let assignments: Vec<(Sid, Sid)> = w
        .assignments
        .iter()
        .map(|(a, b)| ((*a).into(), (*b).into()))
        .collect();
    let owned: BTreeSet<Sid> = w.owned.iter().map(|s| (*s).into()).collect();
    let failures: BTreeMap<Sid, String> = w
        .failures
        .iter()
        .map(|(a, b)| ((*a).into(), b.to_string()))
        .collect();
    let poll = PollSchedule::default();
    plan(&BindingInputs {
        now: at(600),
        profile: &profile,
        targets: &w.targets,
        assignments: &assignments,
        owned: &owned,
        released: &w.released,
        deletion_policy: w.policy,
        unapproved_since: w.unapproved_since.map(at),
        failures: &failures,
        failing_since: w.failing_since.map(at),
        poll: &poll,
        actions_max: w.actions_max,
    })
}

fn cond<'a>(p: &'a BindingPlan, t: &str) -> &'a crate::planner::ConditionSpec {
    p.conditions.iter().find(|c| c.type_ == t).unwrap()
}

type Check = fn(&BindingPlan);

#[test]
fn plans_every_binding_state() {
    let assign = |pn: &str| BindingAction::Assign {
        number_sid: pn.into(),
    };
    let cases: Vec<(&str, World, Vec<BindingAction>, Check)> = vec![
        (
            "an approved profile within the warning window is ExpiringSoon, still Ready",
            World {
                assignments: vec![("RA1", PN1), ("RA2", PN2)],
                valid_until: Some(600 + 3 * 86_400),
                ..approved()
            },
            vec![],
            |p| {
                let c = cond(p, "ExpiringSoon");
                assert_eq!((c.status, c.reason), ("True", "ExpiringSoon"));
                assert!(c.message.contains("Business Profile BU"), "{}", c.message);
                assert!(c.message.contains("(in 3 days)"), "{}", c.message);
                assert_eq!(
                    (cond(p, "Ready").status, cond(p, "Ready").reason),
                    ("True", "Ready")
                );
                assert_eq!(p.requeue, Requeue::After(Duration::from_secs(12 * 3600)));
            },
        ),
        (
            "an approved profile past valid_until is Expired and not Ready",
            World {
                assignments: vec![("RA1", PN1), ("RA2", PN2)],
                valid_until: Some(0),
                ..approved()
            },
            vec![],
            |p| {
                assert_eq!(cond(p, "ExpiringSoon").reason, "Expired");
                assert_eq!(
                    (cond(p, "Ready").status, cond(p, "Ready").reason),
                    ("False", "Expired")
                );
                assert_eq!(cond(p, "ProfileApproved").status, "True");
                assert_eq!(p.requeue, Requeue::After(Duration::from_secs(30 * 60)));
            },
        ),
        (
            "an approved profile wakes when its warning window opens",
            World {
                assignments: vec![("RA1", PN1), ("RA2", PN2)],
                valid_until: Some(600 + 30 * 86_400 + 600),
                ..approved()
            },
            vec![],
            |p| {
                assert_eq!(cond(p, "ExpiringSoon").reason, "Valid");
                assert_eq!(p.requeue, Requeue::After(Duration::from_secs(600)));
            },
        ),
        (
            "a profile not approved is not expiring",
            World {
                profile_status: "in-review",
                valid_until: Some(0),
                ..approved()
            },
            vec![assign(PN1), assign(PN2)],
            |p| assert_eq!(cond(p, "ExpiringSoon").reason, "NotApproved"),
        ),
        (
            "nothing assigned yet: assign every number",
            approved(),
            vec![assign(PN1), assign(PN2)],
            |p| {
                assert_eq!(p.summary, "0/2");
                assert_eq!(cond(p, "NumbersAssigned").reason, "Assigning");
                assert!(p.numbers.iter().all(|n| n.state == NumberState::Resolved));
            },
        ),
        (
            "only the missing number is assigned",
            World {
                assignments: vec![("RA1", PN1)],
                owned: vec!["RA1"],
                ..approved()
            },
            vec![assign(PN2)],
            |p| {
                assert_eq!(p.numbers[0].assignment_sid.as_deref(), Some("RA1"));
                assert!(p.numbers[0].created_by_operator);
                assert_eq!(p.summary, "1/2");
            },
        ),
        (
            "all assigned and approved: Ready, long resync",
            World {
                assignments: vec![("RA1", PN1), ("RA2", PN2)],
                ..approved()
            },
            vec![],
            |p| {
                assert_eq!(cond(p, "Ready").status, "True");
                assert_eq!(p.requeue, Requeue::After(Duration::from_secs(12 * 3600)));
                assert!(
                    !p.numbers[1].created_by_operator,
                    "assignments made by others are not ours"
                );
            },
        ),
        (
            "profile in review: numbers still assigned, polled with growing intervals",
            World {
                profile_status: "in-review",
                unapproved_since: Some(360),
                ..approved()
            },
            vec![assign(PN1), assign(PN2)],
            |p| {
                assert_eq!(cond(p, "ProfileApproved").reason, "NotApproved");
                assert_eq!(cond(p, "Ready").reason, "NotApproved");
                assert_eq!(p.requeue, Requeue::After(Duration::from_secs(240)));
            },
        ),
        (
            "profile rejected",
            World {
                profile_status: "twilio-rejected",
                assignments: vec![("RA1", PN1), ("RA2", PN2)],
                ..approved()
            },
            vec![],
            |p| assert_eq!(cond(p, "Ready").reason, "Rejected"),
        ),
        (
            "an unresolvable number is reported, the others assigned",
            World {
                targets: vec![
                    resolved(PN1),
                    NumberTarget::Unresolvable {
                        shown: "+14155550199".into(),
                        subaccount_sid: Some("AC2".into()),
                        message: "not found in subaccount AC2".into(),
                    },
                ],
                ..approved()
            },
            vec![assign(PN1)],
            |p| {
                assert_eq!(p.numbers[1].state, NumberState::Unresolvable);
                assert_eq!(p.numbers[1].phone_number.as_deref(), Some("+14155550199"));
                assert_eq!(cond(p, "NumbersAssigned").reason, "NumbersUnresolvable");
                assert!(
                    cond(p, "Ready")
                        .message
                        .contains("+14155550199: not found in subaccount AC2")
                );
                assert_eq!(p.requeue, Requeue::After(Duration::from_secs(60)));
            },
        ),
        (
            "a refused assignment is shown and retried",
            World {
                failures: vec![(PN2, "Twilio refused: 21710")],
                assignments: vec![("RA1", PN1)],
                ..approved()
            },
            vec![assign(PN2)],
            |p| {
                assert_eq!(p.numbers[1].state, NumberState::Failed);
                assert!(cond(p, "NumbersAssigned").message.contains("21710"));
            },
        ),
        (
            "a dropped number is unassigned under Delete when this object assigned it",
            World {
                policy: DeletionPolicy::Delete,
                assignments: vec![("RA1", PN1), ("RA2", PN2), ("RA3", PN3)],
                released: vec![Released {
                    number_sid: PN3.into(),
                    assignment_sid: Some("RA3".into()),
                    created_by_operator: true,
                }],
                ..approved()
            },
            vec![BindingAction::Unassign {
                assignment_sid: "RA3".into(),
                number_sid: PN3.into(),
            }],
            |p| assert_eq!(p.numbers[2].state, NumberState::Releasing),
        ),
        (
            "a dropped number is left assigned under Orphan",
            World {
                assignments: vec![("RA1", PN1), ("RA2", PN2), ("RA3", PN3)],
                released: vec![Released {
                    number_sid: PN3.into(),
                    assignment_sid: Some("RA3".into()),
                    created_by_operator: true,
                }],
                ..approved()
            },
            vec![],
            |p| assert_eq!(p.numbers.len(), 2),
        ),
        (
            "Delete leaves assignments it did not make",
            World {
                policy: DeletionPolicy::Delete,
                assignments: vec![("RA1", PN1), ("RA2", PN2), ("RA3", PN3)],
                released: vec![Released {
                    number_sid: PN3.into(),
                    assignment_sid: Some("RA3".into()),
                    created_by_operator: false,
                }],
                ..approved()
            },
            vec![],
            |_| {},
        ),
        (
            "an assignment already gone is not deleted again",
            World {
                policy: DeletionPolicy::Delete,
                assignments: vec![("RA1", PN1), ("RA2", PN2)],
                released: vec![Released {
                    number_sid: PN3.into(),
                    assignment_sid: Some("RA3".into()),
                    created_by_operator: true,
                }],
                ..approved()
            },
            vec![],
            |_| {},
        ),
        (
            // The CRD no longer refuses duplicates (a CEL uniqueness rule is O(n²) and a real
            // apiserver stops it at ~600 numbers): a number named twice, by SID or by E.164
            // resolving to the same SID, is one number.
            "a number listed twice is assigned, shown and counted once",
            World {
                targets: vec![
                    resolved(PN1),
                    resolved(PN2),
                    resolved(PN1),
                    unresolvable(7),
                    unresolvable(7),
                ],
                ..approved()
            },
            vec![assign(PN1), assign(PN2)],
            |p| {
                assert_eq!(p.numbers.len(), 3, "{:?}", p.numbers);
                assert_eq!(p.summary, "0/3");
            },
        ),
        (
            "a thousand long refusals: messages stay bounded, and only the first carry one",
            World {
                targets: (0..1000).map(unresolvable).collect(),
                ..approved()
            },
            vec![],
            |p| {
                let c = cond(p, "NumbersAssigned");
                assert!(
                    c.message.len() <= text::CONDITION_MESSAGE_MAX,
                    "{}",
                    c.message.len()
                );
                assert!(c.message.ends_with("… and 990 more"), "{}", c.message);
                let (with, without) = p.numbers.split_at(text::NUMBER_MESSAGES_MAX);
                assert!(with.iter().all(|n| {
                    n.message
                        .as_ref()
                        .is_some_and(|m| m.len() <= text::NUMBER_MESSAGE_MAX)
                }));
                assert!(without.iter().all(|n| n.message.is_none()));
                assert!(
                    without
                        .iter()
                        .all(|n| n.state == crate::api::NumberState::Unresolvable),
                    "the state still says what is wrong"
                );
            },
        ),
    ];
    for (name, world, want, check) in cases {
        let p = run(&world);
        assert_eq!(p.actions, want, "{name}");
        check(&p);
    }
}

/// Finding K10: a number Twilio keeps refusing is retried with growing, capped intervals
/// (from the time the problem was first reported), not every minute for ever.
#[test]
fn refused_numbers_are_retried_with_growing_capped_backoff() {
    // (failing since, expected wait); `run` plans at 600 s.
    let table = [
        (None, 60),
        (Some(600), 60),
        (Some(480), 120),
        (Some(0), 600),
        (Some(-100_000), 30 * 60),
    ];
    for (since, want) in table {
        let w = World {
            failures: vec![(PN2, "Twilio refused the assignment: 21649")],
            failing_since: since,
            assignments: vec![("RA1", PN1)],
            ..approved()
        };
        let p = run(&w);
        assert_eq!(
            p.actions,
            vec![BindingAction::Assign {
                number_sid: PN2.into()
            }]
        );
        assert_eq!(
            p.requeue,
            Requeue::After(Duration::from_secs(want)),
            "failing since {since:?}"
        );
    }
}

/// The counts add up the numbers by state, each number once however often it is listed.
/// The plan lists only as many writes as the controller can use (one batch beyond those it
/// tried), while the status and counts still cover every number.
#[test]
fn lists_at_most_actions_max_writes_but_reports_every_number() {
    let three = World {
        targets: vec![resolved(PN1), resolved(PN2), resolved(PN3)],
        actions_max: 2,
        ..approved()
    };
    let p = run(&three);
    assert_eq!(
        p.actions,
        vec![
            BindingAction::Assign {
                number_sid: PN1.into()
            },
            BindingAction::Assign {
                number_sid: PN2.into()
            },
        ]
    );
    assert_eq!(p.numbers.len(), 3);
    assert_eq!(p.summary, "0/3");
    assert_eq!(p.counts.selected, 3);
    let released = World {
        targets: vec![],
        assignments: vec![("RA1", PN1), ("RA2", PN2)],
        owned: vec!["RA1", "RA2"],
        released: [("RA1", PN1), ("RA2", PN2)]
            .iter()
            .map(|(ra, pn)| Released {
                number_sid: (*pn).into(),
                assignment_sid: Some((*ra).into()),
                created_by_operator: true,
            })
            .collect(),
        policy: DeletionPolicy::Delete,
        actions_max: 1,
        ..approved()
    };
    let p = run(&released);
    assert_eq!(p.actions.len(), 1, "{:?}", p.actions);
    assert_eq!(p.counts.releasing, 2, "both are still being released");
}

#[test]
fn counts_every_number_once_by_state() {
    const PN3: &str = "PN00000000000000000000000000000003";
    let world = World {
        targets: vec![
            resolved(PN1),
            resolved(PN1),
            resolved(PN2),
            resolved(PN3),
            unresolvable(7),
        ],
        assignments: vec![("RA1", PN1)],
        owned: vec!["RA1", "RA9"],
        failures: vec![(PN2, "Twilio refused the assignment")],
        released: vec![Released {
            number_sid: "PN00000000000000000000000000000009".into(),
            assignment_sid: Some("RA9".into()),
            created_by_operator: true,
        }],
        policy: DeletionPolicy::Delete,
        ..approved()
    };
    let mut w = world.clone();
    w.assignments
        .push(("RA9", "PN00000000000000000000000000000009"));
    let counts = run(&w).counts;
    assert_eq!(
        (
            counts.selected,
            counts.done,
            counts.refused,
            counts.unresolvable,
            counts.releasing,
            counts.covered
        ),
        (4, 1, 1, 1, 1, 0),
        "PN1 twice is one; PN3 waits to be assigned; covered is the controller's to count"
    );
}
