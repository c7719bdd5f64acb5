//! Table tests of the pure evaluation: one healthy account, then one change per case.

use chrono::{DateTime, Duration, Utc};

use super::evaluate::{evaluate, primary_profile};
use super::{
    AccountNumbers, AuthKind, Check, Facts, Outcome, PRIMARY_PROFILE_POLICY_SID, Problem,
    ProductFacts, Refusal,
};
use crate::api::SHAKEN_STIR_POLICY_SID;
use crate::twilio::{
    Account, AccountStatus, BundleStatus, CustomerProfile, IncomingPhoneNumber, NumberCapabilities,
    Policy, TrustProduct,
};

const PARENT: &str = "AC11111111111111111111111111111111";
const EAST: &str = "AC22222222222222222222222222222222";
const WEST: &str = "AC33333333333333333333333333333333";
const PROFILE: &str = "BUaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1";
const OTHER_PROFILE: &str = "BUbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2";
const PRODUCT: &str = "BUcccccccccccccccccccccccccccccccc";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-07T12:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn account(sid: &str, name: &str, status: AccountStatus) -> Account {
    Account {
        sid: Some(sid.into()),
        friendly_name: Some(name.into()),
        status: Some(status),
        ..Account::default()
    }
}

fn number(i: u32, account: &str, voice: bool) -> IncomingPhoneNumber {
    IncomingPhoneNumber {
        sid: Some(format!("PN{i:032}")),
        account_sid: Some(account.into()),
        phone_number: Some(format!("+1500555{i:04}")),
        capabilities: Some(NumberCapabilities {
            voice: Some(voice),
            ..NumberCapabilities::default()
        }),
        ..IncomingPhoneNumber::default()
    }
}

fn profile(sid: &str, policy: &str, status: BundleStatus) -> CustomerProfile {
    CustomerProfile {
        sid: Some(sid.into()),
        policy_sid: Some(policy.into()),
        friendly_name: Some("Acme Primary".into()),
        email: Some("ops@acme.example".into()),
        status: Some(status),
        valid_until: Some(now() + Duration::days(300)),
        ..CustomerProfile::default()
    }
}

fn product(profile: Option<&str>, numbers: &[u32]) -> ProductFacts {
    ProductFacts {
        product: TrustProduct {
            sid: Some(PRODUCT.into()),
            policy_sid: Some(SHAKEN_STIR_POLICY_SID.into()),
            friendly_name: Some("SHAKEN/STIR".into()),
            status: Some(BundleStatus::TwilioApproved),
            ..TrustProduct::default()
        },
        entities: profile.into_iter().map(str::to_owned).collect(),
        numbers: numbers.iter().map(|i| format!("PN{i:032}")).collect(),
    }
}

/// The healthy account: parent + East + West, an approved Primary profile, the policy, no
/// products, four voice numbers and one SMS-only number.
fn healthy() -> Facts {
    Facts {
        now: now(),
        account_sid: PARENT.into(),
        auth: Some(AuthKind::AuthToken),
        refused: None,
        parent: Some(account(PARENT, "Acme", AccountStatus::Active)),
        subaccounts: vec![
            account(EAST, "Acme East", AccountStatus::Active),
            account(WEST, "Acme West", AccountStatus::Active),
        ],
        profiles: vec![profile(
            PROFILE,
            PRIMARY_PROFILE_POLICY_SID,
            BundleStatus::TwilioApproved,
        )],
        policy: Some(Policy {
            sid: Some(SHAKEN_STIR_POLICY_SID.into()),
            friendly_name: Some("SHAKEN/STIR Trust Product".into()),
            ..Policy::default()
        }),
        policy_checked: true,
        products: Vec::new(),
        profile_numbers: vec![format!("PN{:032}", 1)],
        numbers: vec![
            AccountNumbers {
                account_sid: PARENT.into(),
                numbers: vec![number(1, PARENT, true)],
            },
            AccountNumbers {
                account_sid: EAST.into(),
                numbers: vec![
                    number(2, EAST, true),
                    number(3, EAST, true),
                    number(9, EAST, false),
                ],
            },
            AccountNumbers {
                account_sid: WEST.into(),
                numbers: vec![number(4, WEST, true)],
            },
        ],
    }
}

type Change = fn(&mut Facts);

/// (case, change to the healthy facts, exit code, a failing line must contain this)
const CASES: &[(&str, Change, i32, &str)] = &[
    ("healthy", |_| {}, 0, ""),
    (
        "wrong token",
        |f| {
            f.refused = Some(Refusal {
                status: 401,
                code: Some(20003),
                message: Some("Authenticate".into()),
            });
            f.parent = None;
        },
        3,
        "refused: HTTP 401, code 20003",
    ),
    (
        "standard API key",
        |f| {
            f.auth = Some(AuthKind::ApiKey);
            f.refused = Some(Refusal {
                status: 403,
                code: Some(20003),
                message: None,
            });
        },
        3,
        "Main API key",
    ),
    (
        "parent suspended",
        |f| f.parent = Some(account(PARENT, "Acme", AccountStatus::Suspended)),
        4,
        "is suspended: Twilio serves",
    ),
    (
        "suspended subaccount",
        |f| f.subaccounts[1].status = Some(AccountStatus::Suspended),
        5,
        "AC33333333333333333333333333333333 \"Acme West\" is suspended",
    ),
    (
        "closed subaccount only warns",
        |f| {
            f.subaccounts[1].status = Some(AccountStatus::Closed);
            f.numbers.pop();
        },
        0,
        "",
    ),
    (
        "profile in review",
        |f| f.profiles[0].status = Some(BundleStatus::InReview),
        6,
        "no approved Primary Business Profile (found: BUaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1 \"Acme Primary\" in-review",
    ),
    (
        "profile expired",
        |f| f.profiles[0].valid_until = Some(now() - Duration::days(1)),
        6,
        "(expired)",
    ),
    (
        "no profile at all",
        |f| f.profiles.clear(),
        6,
        "create and submit one",
    ),
    (
        "only a secondary profile",
        |f| f.profiles[0].policy_sid = Some("RNdfbf3fae0e1107f8aded0e7cead80bf5".into()),
        6,
        "no Primary Business Profile",
    ),
    (
        "policy missing",
        |f| f.policy = None,
        7,
        "not found (HTTP 404)",
    ),
    (
        "product made by Twilio",
        |f| f.products = vec![product(Some(PROFILE), &[])],
        8,
        "adopt it with spec.trustProductSid: BUcccccccccccccccccccccccccccccccc",
    ),
    (
        "numbers on another product",
        |f| f.products = vec![product(Some(OTHER_PROFILE), &[2, 3])],
        9,
        "2 numbers are on another SHAKEN/STIR product BUcccccccccccccccccccccccccccccccc: +15005550002 (Acme East), +15005550003 (Acme East)",
    ),
    (
        "numbers on a product without a profile",
        |f| f.products = vec![product(None, &[4])],
        9,
        "+15005550004 (Acme West)",
    ),
    (
        "no voice numbers",
        |f| {
            f.numbers
                .iter_mut()
                .for_each(|a| a.numbers.retain(|n| !n.is_voice_capable()))
        },
        10,
        "no voice-capable number",
    ),
    (
        "first failing check in table order wins",
        |f| {
            f.policy = None;
            f.subaccounts[0].status = Some(AccountStatus::Suspended);
            f.profiles[0].status = Some(BundleStatus::Draft);
        },
        5,
        "not found (HTTP 404)",
    ),
];

#[test]
fn each_case_gives_its_exit_code_and_line() {
    for (name, change, code, line) in CASES {
        let mut facts = healthy();
        change(&mut facts);
        let report = evaluate(&facts);
        let text: Vec<String> = report
            .findings
            .iter()
            .map(|f| format!("{} {} {}", f.check.label(), f.outcome.label(), f.detail))
            .collect();
        assert_eq!(report.exit_code, *code, "{name}: {text:#?}");
        let failing: Vec<&String> = text.iter().filter(|t| t.contains(" FAIL ")).collect();
        if *code == 0 {
            assert!(failing.is_empty(), "{name}: {failing:#?}");
            assert_eq!(report.reason, None);
        } else {
            assert!(
                failing.iter().any(|t| t.contains(line)),
                "{name}: no FAIL line with {line:?} in {text:#?}"
            );
            let problem = Problem::ALL.iter().find(|p| p.exit_code() == *code);
            assert_eq!(
                report.reason.as_deref(),
                problem.map(|p| p.reason()),
                "{name}"
            );
        }
        // Every check has at least one line, in table order.
        let checks: Vec<Check> = report.findings.iter().map(|f| f.check).collect();
        assert!(
            checks.windows(2).all(|w| w[0] <= w[1]),
            "{name}: {checks:?}"
        );
        assert_eq!(checks.first(), Some(&Check::Credentials), "{name}");
        assert_eq!(checks.last(), Some(&Check::Numbers), "{name}");
    }
}

#[test]
fn exit_codes_are_distinct_and_follow_table_order() {
    let codes: Vec<i32> = Problem::ALL.iter().map(|p| p.exit_code()).collect();
    assert_eq!(codes, (3..=10).collect::<Vec<_>>());
    let mut sorted = Problem::ALL.to_vec();
    sorted.sort();
    assert_eq!(sorted, Problem::ALL);
}

#[test]
fn healthy_coverage_and_plan() {
    let report = evaluate(&healthy());
    let rows: Vec<(&str, usize, usize, usize)> = report
        .coverage
        .iter()
        .map(|c| {
            (
                c.account_sid.as_str(),
                c.voice_numbers,
                c.on_profile,
                c.on_product,
            )
        })
        .collect();
    assert_eq!(rows, [(PARENT, 1, 1, 0), (EAST, 2, 0, 0), (WEST, 1, 0, 0)]);
    let plan = report.plan.expect("a plan with an approved profile");
    assert_eq!(plan.profile_sid, PROFILE);
    assert_eq!(plan.adopt, None);
    assert_eq!(plan.numbers.len(), 4);
    let summary = &report
        .findings
        .iter()
        .find(|f| f.check == Check::Numbers)
        .unwrap()
        .detail;
    assert_eq!(
        summary,
        "4 voice numbers in 3 accounts: 1 assigned to the profile, 0 on a SHAKEN/STIR product"
    );
}

#[test]
fn plans_leave_out_suspended_accounts_and_other_products_and_adopt() {
    let mut facts = healthy();
    facts.subaccounts[1].status = Some(AccountStatus::Suspended);
    let mut other = product(Some(OTHER_PROFILE), &[2]);
    other.product.sid = Some("BUdddddddddddddddddddddddddddddddd".into());
    facts.products = vec![other, product(Some(PROFILE), &[1])];
    let report = evaluate(&facts);
    let plan = report.plan.expect("plan");
    let sids: Vec<&str> = plan.numbers.iter().map(|n| n.sid.as_str()).collect();
    assert_eq!(sids, [format!("PN{:032}", 1), format!("PN{:032}", 3)]);
    assert_eq!(plan.adopt.map(|(sid, _)| sid), Some(PRODUCT.to_owned()));
    let adopt: Vec<bool> = report.products.iter().map(|p| p.adopt).collect();
    assert_eq!(adopt, [false, true]);
    assert_eq!(report.exit_code, 5);
}

#[test]
fn expiring_profile_warns_and_skipped_checks_say_why() {
    let mut facts = healthy();
    facts.profiles[0].valid_until = Some(now() + Duration::days(3));
    let report = evaluate(&facts);
    assert_eq!(report.exit_code, 0);
    assert!(report.findings.iter().any(|f| f.outcome == Outcome::Warn && f.detail.contains("approval ends on 2026-12-10")));
    assert!(primary_profile(&facts.profiles, now()).is_some());

    let mut refused = healthy();
    refused.refused = Some(Refusal {
        status: 401,
        code: None,
        message: None,
    });
    let report = evaluate(&refused);
    let skipped = report
        .findings
        .iter()
        .filter(|f| f.outcome == Outcome::Skipped)
        .count();
    assert_eq!(skipped, 6);
    assert!(report.plan.is_none() && report.coverage.is_empty());
}
