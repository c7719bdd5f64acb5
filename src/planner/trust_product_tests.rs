use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::api::{DeletionPolicy, Sid};
use crate::planner::{PollSchedule, Requeue};

const PROFILE: &str = "BU00000000000000000000000000000aaa";
const PN1: &str = "PN00000000000000000000000000000001";
const PN2: &str = "PN00000000000000000000000000000002";

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

/// Owned state behind a `TrustProductInputs`, edited per case.
#[derive(Clone)]
struct World {
    now: i64,
    generation: i64,
    submit: bool,
    deletion_policy: DeletionPolicy,
    desired: Vec<&'static str>,
    status: &'static str,
    product_name: &'static str,
    entity: bool,
    attached: Vec<(&'static str, &'static str)>,
    owned: Vec<&'static str>,
    memo: Option<(bool, bool, i64, Option<i64>)>, // (compliant, key matches, at, noncompliant since)
    rejected_generation: Option<i64>,
    resubmit: bool,
    annotation: Option<&'static str>,
    submitted_at: Option<i64>,
    valid_until: Option<i64>,
    errors: Vec<i64>,
    actions_max: usize,
}

fn draft() -> World {
    World {
        now: 1000,
        generation: 1,
        submit: true,
        deletion_policy: DeletionPolicy::Orphan,
        desired: vec![PN1, PN2],
        status: "draft",
        product_name: "Acme",
        entity: true,
        attached: vec![("RA1", PN1), ("RA2", PN2)],
        owned: vec!["RA1", "RA2"],
        memo: None,
        rejected_generation: None,
        resubmit: false,
        annotation: None,
        submitted_at: None,
        valid_until: None,
        errors: vec![],
        actions_max: usize::MAX,
    }
}

fn run(w: &World) -> TrustProductPlan {
    run_with_memo_key(w, None)
}

/// Like [`run`], with the memo recorded under `memo_key` when given.
fn run_with_memo_key(w: &World, memo_key: Option<&str>) -> TrustProductPlan {
    let desired: BTreeSet<Sid> = w.desired.iter().map(|s| (*s).into()).collect();
    let product = ProductView {
        sid: "BU00000000000000000000000000000ppp".into(),
        status: w.status.into(),
        friendly_name: Some(w.product_name.into()),
        email: Some("ops@acme.example".into()),
        status_callback: None,
        errors: w.errors.clone(),
        valid_until: w.valid_until.map(at),
    };
    let entity = if w.entity {
        vec![("BV1".to_string(), PROFILE.to_string())]
    } else {
        vec![]
    };
    let attachments: Vec<Attachment> = w
        .attached
        .iter()
        .map(|(ra, pn)| Attachment {
            assignment_sid: (*ra).into(),
            number_sid: (*pn).into(),
        })
        .collect();
    let owned: BTreeSet<Sid> = w.owned.iter().map(|s| (*s).into()).collect();
    let poll = PollSchedule::default();
    let mut inputs = TrustProductInputs {
        now: at(w.now),
        generation: w.generation,
        friendly_name: "Acme",
        email: "ops@acme.example",
        status_callback: None,
        submit: w.submit,
        deletion_policy: w.deletion_policy,
        profile_sid: PROFILE,
        desired_numbers: &desired,
        product: &product,
        entity_assignments: &entity,
        attachments: &attachments,
        owned_attachments: &owned,
        evaluation: None,
        rejected_generation: w.rejected_generation,
        resubmit_requested: w.resubmit,
        resubmit_annotation: w.annotation,
        submitted_at: w.submitted_at.map(at),
        poll: &poll,
        actions_max: w.actions_max,
    };
    let memo = w
        .memo
        .map(|(compliant, key_matches, when, since)| EvaluationMemo {
            compliant,
            key: if let Some(key) = memo_key {
                key.to_string()
            } else if key_matches {
                inputs.evaluation_key()
            } else {
                "stale".into()
            },
            at: at(when),
            noncompliant_since: since.map(at),
            failures: if compliant {
                vec![]
            } else {
                vec!["business_profile: no Business Profile attached (22214)".into()]
            },
        });
    inputs.evaluation = memo.as_ref();
    plan(&inputs)
}

fn condition<'a>(p: &'a TrustProductPlan, type_: &str) -> &'a crate::planner::ConditionSpec {
    p.conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition"))
}

type Check = fn(&TrustProductPlan);

#[test]
fn plans_the_next_write_for_every_state() {
    let cases: Vec<(&str, World, Option<TrustProductAction>, Check)> = vec![
        (
            "draft without the profile attaches it first",
            World {
                entity: false,
                attached: vec![],
                ..draft()
            },
            Some(TrustProductAction::AttachProfile {
                profile_sid: PROFILE.into(),
            }),
            |p| assert_eq!(condition(p, "ProfileAttached").reason, "Attaching"),
        ),
        (
            "draft with the profile attaches the first missing number",
            World {
                attached: vec![("RA1", PN1)],
                ..draft()
            },
            Some(TrustProductAction::AttachNumber {
                number_sid: PN2.into(),
            }),
            |p| assert!(condition(p, "NumbersAttached").message.contains(PN2)),
        ),
        (
            "an approved product still gets numbers added later",
            World {
                status: "twilio-approved",
                attached: vec![("RA1", PN1)],
                ..draft()
            },
            Some(TrustProductAction::AttachNumber {
                number_sid: PN2.into(),
            }),
            |p| assert_eq!(condition(p, "Ready").reason, "Attaching"),
        ),
        (
            "a product in review is not attached to the profile",
            World {
                status: "in-review",
                entity: false,
                submitted_at: Some(0),
                ..draft()
            },
            None,
            |p| assert_eq!(condition(p, "ProfileAttached").reason, "LockedByReview"),
        ),
        (
            "a renamed draft is updated",
            World {
                product_name: "Old name",
                ..draft()
            },
            Some(TrustProductAction::UpdateFields {
                friendly_name: Some("Acme".into()),
                email: None,
                status_callback: None,
            }),
            |_| {},
        ),
        (
            "a complete draft is evaluated",
            draft(),
            Some(TrustProductAction::Evaluate {
                key: format!("{PROFILE}|{PN1},{PN2}|first"),
            }),
            |p| assert_eq!(condition(p, "Compliant").status, "Unknown"),
        ),
        (
            "a compliant draft is submitted",
            World {
                memo: Some((true, true, 900, None)),
                ..draft()
            },
            Some(TrustProductAction::Submit),
            |p| assert_eq!(condition(p, "Compliant").status, "True"),
        ),
        (
            "an evaluation of other numbers does not count",
            World {
                memo: Some((true, false, 900, None)),
                ..draft()
            },
            Some(TrustProductAction::Evaluate {
                key: format!("{PROFILE}|{PN1},{PN2}|first"),
            }),
            |_| {},
        ),
        (
            "a noncompliant draft waits before evaluating again",
            World {
                memo: Some((false, true, 990, Some(990))),
                ..draft()
            },
            None,
            |p| {
                assert_eq!(condition(p, "Compliant").reason, "Noncompliant");
                assert!(condition(p, "Compliant").message.contains("22214"));
                assert_eq!(p.requeue, Requeue::After(Duration::from_secs(20)));
            },
        ),
        (
            "a noncompliant draft is evaluated again when due",
            World {
                memo: Some((false, true, 960, Some(960))),
                ..draft()
            },
            Some(TrustProductAction::Evaluate {
                key: format!("{PROFILE}|{PN1},{PN2}|first"),
            }),
            |_| {},
        ),
        (
            "noncompliant retries back off",
            World {
                now: 1200,
                memo: Some((false, true, 1000, Some(0))),
                ..draft()
            },
            None,
            |p| assert_eq!(p.requeue, Requeue::After(Duration::from_secs(800))),
        ),
        (
            "submit: false is evaluated but never submitted",
            World {
                submit: false,
                ..draft()
            },
            Some(TrustProductAction::Evaluate {
                key: format!("{PROFILE}|{PN1},{PN2}|first"),
            }),
            |p| assert_eq!(condition(p, "Submitted").reason, "HeldInDraft"),
        ),
        (
            "submit: false and compliant is Ready in draft",
            World {
                submit: false,
                memo: Some((true, true, 900, None)),
                ..draft()
            },
            None,
            |p| {
                assert_eq!(condition(p, "Ready").status, "True");
                assert_eq!(condition(p, "Ready").reason, "HeldInDraft");
            },
        ),
        (
            "pending review polls from the first interval",
            World {
                status: "pending-review",
                submitted_at: Some(1000),
                ..draft()
            },
            None,
            |p| {
                assert_eq!(p.requeue, Requeue::After(Duration::from_secs(60)));
                assert_eq!(condition(p, "Ready").reason, "PendingReview");
                assert_eq!(condition(p, "Submitted").status, "True");
            },
        ),
        (
            "in review polls less often as time goes by",
            World {
                status: "in-review",
                submitted_at: Some(520),
                ..draft()
            },
            None,
            |p| assert_eq!(p.requeue, Requeue::After(Duration::from_secs(480))),
        ),
        (
            "approved is Ready and resyncs on the long period",
            World {
                status: "twilio-approved",
                ..draft()
            },
            None,
            |p| {
                assert_eq!(condition(p, "Ready").status, "True");
                assert_eq!(condition(p, "Approved").status, "True");
                assert_eq!(p.requeue, Requeue::After(Duration::from_secs(12 * 3600)));
            },
        ),
        (
            "approved resyncs before the approval expires",
            World {
                status: "twilio-approved",
                valid_until: Some(1000 + 3 * 3600),
                ..draft()
            },
            None,
            |p| assert_eq!(p.requeue, Requeue::After(Duration::from_secs(2 * 3600))),
        ),
        (
            "an approval within the warning window is ExpiringSoon and still Ready",
            World {
                status: "twilio-approved",
                valid_until: Some(1000 + 10 * 86_400),
                ..draft()
            },
            None,
            |p| {
                let c = condition(p, "ExpiringSoon");
                assert_eq!((c.status, c.reason), ("True", "ExpiringSoon"));
                assert!(c.message.contains("(in 10 days)"), "{}", c.message);
                assert_eq!(condition(p, "Ready").reason, "Approved");
                assert_eq!(condition(p, "Ready").status, "True");
            },
        ),
        (
            "an approval past valid_until is Expired, not Ready, and polled for the renewal",
            World {
                status: "twilio-approved",
                valid_until: Some(999),
                ..draft()
            },
            None,
            |p| {
                let c = condition(p, "ExpiringSoon");
                assert_eq!((c.status, c.reason), ("True", "Expired"));
                let ready = condition(p, "Ready");
                assert_eq!((ready.status, ready.reason), ("False", "Expired"));
                assert!(ready.message.contains("waiting for Twilio"));
                assert_eq!(condition(p, "Approved").status, "True");
                assert_eq!(p.requeue, Requeue::After(Duration::from_secs(30 * 60)));
            },
        ),
        (
            "an approval far from expiry is Valid and wakes when the window opens",
            World {
                status: "twilio-approved",
                valid_until: Some(1000 + 30 * 86_400 + 7200),
                ..draft()
            },
            None,
            |p| {
                let c = condition(p, "ExpiringSoon");
                assert_eq!((c.status, c.reason), ("False", "Valid"));
                assert_eq!(condition(p, "Ready").status, "True");
                assert_eq!(p.requeue, Requeue::After(Duration::from_secs(7200)));
            },
        ),
        (
            "a rejected product with a past valid_until is Rejected, not Expired",
            World {
                status: "twilio-rejected",
                valid_until: Some(10),
                memo: Some((true, false, 10, None)),
                ..draft()
            },
            None,
            |p| {
                assert_eq!(condition(p, "ExpiringSoon").reason, "NotApproved");
                assert_eq!(condition(p, "Ready").reason, "Rejected");
            },
        ),
        (
            "a rejection is recorded and not resubmitted",
            World {
                status: "twilio-rejected",
                errors: vec![18601],
                memo: Some((true, false, 10, None)),
                ..draft()
            },
            None,
            |p| {
                assert!(p.record_rejection);
                assert_eq!(condition(p, "Ready").reason, "Rejected");
                assert!(condition(p, "Ready").message.contains("18601"));
                assert!(
                    condition(p, "Ready")
                        .message
                        .contains("trusthub.stir.dev/resubmit")
                );
                assert_eq!(p.requeue, Requeue::OnChange);
            },
        ),
        (
            "a rejected product is re-evaluated after a spec change",
            World {
                status: "twilio-rejected",
                generation: 2,
                rejected_generation: Some(1),
                memo: Some((true, false, 10, None)),
                ..draft()
            },
            Some(TrustProductAction::Evaluate {
                key: format!("{PROFILE}|{PN1},{PN2}|resubmit-g2"),
            }),
            |p| assert!(!p.record_rejection),
        ),
        (
            "a rejected product is resubmitted on the annotation once compliant",
            World {
                status: "twilio-rejected",
                rejected_generation: Some(1),
                resubmit: true,
                memo: Some((true, true, 10, None)),
                ..draft()
            },
            Some(TrustProductAction::Submit),
            |p| assert!(condition(p, "Ready").message.contains("resubmitting")),
        ),
        (
            "Delete detaches a number this object attached and no longer wants",
            World {
                deletion_policy: DeletionPolicy::Delete,
                desired: vec![PN1],
                ..draft()
            },
            Some(TrustProductAction::DetachNumber {
                assignment_sid: "RA2".into(),
                number_sid: PN2.into(),
            }),
            |_| {},
        ),
        (
            "Orphan leaves a number no longer wanted attached",
            World {
                desired: vec![PN1],
                memo: Some((true, true, 900, None)),
                ..draft()
            },
            Some(TrustProductAction::Submit),
            |_| {},
        ),
        (
            "Delete never detaches what another party attached",
            World {
                deletion_policy: DeletionPolicy::Delete,
                desired: vec![PN1],
                owned: vec!["RA1"],
                memo: Some((true, true, 900, None)),
                ..draft()
            },
            Some(TrustProductAction::Submit),
            |_| {},
        ),
        (
            "an unknown Twilio status is shown, not guessed",
            World {
                status: "provisionally-approved",
                ..draft()
            },
            None,
            |p| {
                assert_eq!(condition(p, "Ready").reason, "UnknownStatus");
                assert_eq!(p.requeue, Requeue::After(Duration::from_secs(1800)));
            },
        ),
    ];
    for (name, world, want, check) in cases {
        let plan = run(&world);
        assert_eq!(plan.actions.first().cloned(), want, "{name}");
        check(&plan);
    }
}

#[test]
fn identity_is_settled_before_any_create() {
    let one = vec!["BU1".to_string()];
    let two = vec!["BU1".to_string(), "BU2".to_string()];
    let cases: Vec<(&str, IdentityInputs<'_>, Identity)> = vec![
        (
            "recorded SID wins",
            IdentityInputs {
                recorded_sid: Some("BUr"),
                adopt_sid: Some("BUa"),
                found_by_name: &two,
            },
            Identity::Use("BUr".into()),
        ),
        (
            "adoption SID next",
            IdentityInputs {
                recorded_sid: None,
                adopt_sid: Some("BUa"),
                found_by_name: &[],
            },
            Identity::Use("BUa".into()),
        ),
        (
            "nothing found: create",
            IdentityInputs::default(),
            Identity::Create,
        ),
        (
            "one found by name: adopt it (e.g. after a crash)",
            IdentityInputs {
                found_by_name: &one,
                ..Default::default()
            },
            Identity::Use("BU1".into()),
        ),
        (
            "several found: refuse",
            IdentityInputs {
                found_by_name: &two,
                ..Default::default()
            },
            Identity::Ambiguous(two.clone()),
        ),
    ];
    for (name, inputs, want) in cases {
        assert_eq!(decide_identity(&inputs), want, "{name}");
    }
}

/// Finding K4: a second resubmit at the same generation (a new annotation value after a
/// second rejection) must evaluate again, not reuse the first resubmission's evaluation.
#[test]
fn a_second_resubmit_at_the_same_generation_evaluates_again() {
    let first_round = World {
        status: "twilio-rejected",
        rejected_generation: Some(1),
        resubmit: true,
        annotation: Some("first"),
        memo: Some((true, true, 10, None)),
        ..draft()
    };
    // The first resubmission evaluated (compliant) under its own key, then submitted.
    assert_eq!(
        run(&first_round).actions.first().cloned(),
        Some(TrustProductAction::Submit)
    );
    let first_key = {
        let desired: BTreeSet<Sid> = first_round.desired.iter().map(|s| (*s).into()).collect();
        let product = ProductView {
            status: "twilio-rejected".into(),
            ..Default::default()
        };
        let poll = PollSchedule::default();
        TrustProductInputs {
            now: at(0),
            generation: 1,
            friendly_name: "Acme",
            email: "ops@acme.example",
            status_callback: None,
            submit: true,
            deletion_policy: DeletionPolicy::Orphan,
            profile_sid: PROFILE,
            desired_numbers: &desired,
            product: &product,
            entity_assignments: &[],
            attachments: &[],
            owned_attachments: &BTreeSet::new(),
            evaluation: None,
            rejected_generation: Some(1),
            resubmit_requested: true,
            resubmit_annotation: Some("first"),
            submitted_at: None,
            poll: &poll,
            actions_max: usize::MAX,
        }
        .evaluation_key()
    };
    // Rejected again at the same generation; the user sets a new annotation value.
    let second_round = World {
        annotation: Some("second"),
        memo: None,
        ..first_round
    };
    let mut inputs_world = second_round.clone();
    inputs_world.memo = Some((true, false, 10, None));
    let planned = run_with_memo_key(&inputs_world, Some(&first_key));
    assert!(
        matches!(
            planned.actions.first(),
            Some(TrustProductAction::Evaluate { .. })
        ),
        "the second resubmission reused the first one's evaluation: {:?}",
        planned.actions
    );
}

/// Every missing number is planned at once (they are independent and run as one batch), and
/// every detach once nothing is missing; single steps stay one at a time.
#[test]
fn number_writes_are_planned_together() {
    let missing = World {
        attached: vec![],
        owned: vec![],
        ..draft()
    };
    assert_eq!(
        run(&missing).actions,
        vec![
            TrustProductAction::AttachNumber {
                number_sid: PN1.into()
            },
            TrustProductAction::AttachNumber {
                number_sid: PN2.into()
            },
        ]
    );
    let dropped = World {
        desired: vec![],
        deletion_policy: DeletionPolicy::Delete,
        ..draft()
    };
    assert_eq!(
        run(&dropped).actions,
        vec![
            TrustProductAction::DetachNumber {
                assignment_sid: "RA1".into(),
                number_sid: PN1.into()
            },
            TrustProductAction::DetachNumber {
                assignment_sid: "RA2".into(),
                number_sid: PN2.into()
            },
        ]
    );
    // Only as many as the controller can use (one batch beyond those it tried).
    let capped = |w: &World| {
        let mut w = w.clone();
        w.actions_max = 1;
        run(&w).actions
    };
    assert_eq!(
        capped(&missing),
        vec![TrustProductAction::AttachNumber {
            number_sid: PN1.into()
        }]
    );
    assert_eq!(
        capped(&dropped),
        vec![TrustProductAction::DetachNumber {
            assignment_sid: "RA1".into(),
            number_sid: PN1.into()
        }]
    );
    let no_profile = World {
        entity: false,
        attached: vec![],
        ..draft()
    };
    assert_eq!(
        run(&no_profile).actions,
        vec![TrustProductAction::AttachProfile {
            profile_sid: PROFILE.into()
        }],
        "the profile first, alone"
    );
}

/// The evaluation key (kept in status) stays small however many numbers the product has, and
/// still changes when one number changes.
#[test]
fn the_evaluation_key_of_many_numbers_is_small_and_distinct() {
    let many: BTreeSet<Sid> = (0..50_000).map(|i| format!("PN{i:032x}").into()).collect();
    let mut fewer = many.clone();
    fewer.pop_last();
    let (a, b) = (numbers_tag(&many), numbers_tag(&fewer));
    assert!(a.len() < 64 && b.len() < 64, "{a} / {b}");
    assert_ne!(a, b);
    let two: BTreeSet<Sid> = [Sid::from(PN1), Sid::from(PN2)].into();
    assert_eq!(
        numbers_tag(&two),
        format!("{PN1},{PN2}"),
        "short lists stay readable"
    );
}
