//! The pure part of preflight: [`Facts`] in, [`Report`] out (no I/O, no clock).
//!
//! Rules:
//! - The Primary Business Profile is the first profile on the Primary policy that is
//!   `twilio-approved` and whose `valid_until` (if any) is still ahead.
//! - The product to adopt is the first SHAKEN/STIR product attached (EntityAssignment) to that
//!   profile, approved ones first. Every other SHAKEN/STIR product is "another product": a
//!   number of ours on it cannot go on the product we use (a number can be on only one Trust
//!   Product of a policy).
//! - Numbers count when voice-capable; suspended subaccounts' numbers are counted but not
//!   planned, closed subaccounts have none.

use chrono::{DateTime, Duration, Utc};

use super::{
    Check, Facts, Finding, Outcome, PRIMARY_PROFILE_POLICY_SID, Plan, PlannedNumber, Problem,
    ProductFacts, ProductRow, ProfileRow, Report,
};
use crate::api::SHAKEN_STIR_POLICY_SID;
use crate::twilio::{Account, AccountStatus, BundleStatus, CustomerProfile};

/// An approved profile closer than this to its `valid_until` gets a warning.
pub const EXPIRY_WARNING: Duration = Duration::days(30);

pub(super) fn line(check: Check, outcome: Outcome, detail: impl Into<String>) -> Finding {
    Finding {
        check,
        outcome,
        problem: None,
        detail: detail.into(),
    }
}

pub(super) fn fail(check: Check, problem: Problem, detail: impl Into<String>) -> Finding {
    Finding {
        check,
        outcome: Outcome::Fail,
        problem: Some(problem),
        detail: detail.into(),
    }
}

/// Whether `profile` is an approved Primary profile that has not expired at `now`.
fn usable_primary(profile: &CustomerProfile, now: DateTime<Utc>) -> bool {
    profile.policy_sid.as_deref() == Some(PRIMARY_PROFILE_POLICY_SID)
        && profile.status == Some(BundleStatus::TwilioApproved)
        && profile.valid_until.is_none_or(|t| t > now)
}

/// The Primary Business Profile onboarding would use.
pub fn primary_profile(
    profiles: &[CustomerProfile],
    now: DateTime<Utc>,
) -> Option<&CustomerProfile> {
    profiles.iter().find(|p| usable_primary(p, now))
}

fn status_text(status: Option<&BundleStatus>) -> String {
    status.map_or_else(|| "unknown".to_owned(), |s| s.as_str().to_owned())
}

pub(super) fn name_of(account: &Account) -> String {
    account.friendly_name.clone().unwrap_or_default()
}

/// Evaluates every check in table order; see the module docs for the rules.
pub fn evaluate(facts: &Facts) -> Report {
    let mut findings = credentials(facts);
    let mut report = Report {
        account_sid: facts.account_sid.clone(),
        exit_code: 0,
        reason: None,
        findings: Vec::new(),
        profiles: profile_rows(facts),
        products: Vec::new(),
        coverage: Vec::new(),
        plan: None,
    };
    if facts.refused.is_none() {
        findings.extend(parent(facts));
    }
    let active =
        facts.parent.as_ref().and_then(|p| p.status.as_ref()) == Some(&AccountStatus::Active);
    if facts.refused.is_none() && active {
        findings.extend(subaccounts(facts));
        let primary = primary_profile(&facts.profiles, facts.now);
        findings.extend(profiles(facts, primary));
        findings.extend(policy(facts));
        let adopt = adoptable(facts, primary);
        let (product_lines, rows) = products(facts, primary, adopt);
        findings.extend(product_lines);
        report.products = rows;
        let (number_lines, coverage, planned) = super::coverage::numbers(facts, adopt);
        findings.extend(number_lines);
        report.coverage = coverage;
        report.plan = primary.map(|p| plan(p, adopt, planned));
    }
    skip_the_rest(&mut findings);
    report.findings = findings;
    if let Some(problem) = report.problem() {
        report.exit_code = problem.exit_code();
        report.reason = Some(problem.reason().to_owned());
    }
    report
}

/// Adds a `skip` line for every check after the last one that ran.
fn skip_the_rest(findings: &mut Vec<Finding>) {
    let last = findings.iter().map(|f| f.check).max();
    let why = findings
        .iter()
        .find_map(|f| f.problem)
        .map(|p| p.reason())
        .unwrap_or("an earlier check failed");
    for check in [
        Check::Credentials,
        Check::ParentAccount,
        Check::Subaccounts,
        Check::BusinessProfile,
        Check::Policy,
        Check::TrustProducts,
        Check::Numbers,
    ] {
        if last.is_some_and(|l| check > l) {
            findings.push(line(check, Outcome::Skipped, format!("not checked: {why}")));
        }
    }
}

fn credentials(facts: &Facts) -> Vec<Finding> {
    let how = match facts.auth {
        Some(super::AuthKind::ApiKey) => "API key",
        _ => "auth token",
    };
    let Some(refused) = &facts.refused else {
        return vec![line(
            Check::Credentials,
            Outcome::Ok,
            format!("{} accepted ({how})", facts.account_sid),
        )];
    };
    let code = refused
        .code
        .map(|c| format!(", code {c}"))
        .unwrap_or_default();
    let message = refused
        .message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    let hint = if refused.status == 403 {
        "these credentials may not read Accounts: use the auth token or a Main API key"
    } else {
        "check TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN (or TWILIO_API_KEY + TWILIO_API_SECRET)"
    };
    vec![fail(
        Check::Credentials,
        Problem::CredentialsRefused,
        format!(
            "{} ({how}) refused: HTTP {}{code}{message}; {hint}",
            facts.account_sid, refused.status
        ),
    )]
}

fn parent(facts: &Facts) -> Vec<Finding> {
    let Some(parent) = &facts.parent else {
        return Vec::new();
    };
    let status = parent
        .status
        .as_ref()
        .map_or("unknown", |s| s.as_str())
        .to_owned();
    let what = format!("{} \"{}\"", facts.account_sid, name_of(parent));
    if parent.status == Some(AccountStatus::Active) {
        vec![line(
            Check::ParentAccount,
            Outcome::Ok,
            format!("{what} is active"),
        )]
    } else {
        vec![fail(
            Check::ParentAccount,
            Problem::ParentNotActive,
            format!("{what} is {status}: Twilio serves Trust Hub only to active accounts"),
        )]
    }
}

fn subaccounts(facts: &Facts) -> Vec<Finding> {
    let total = facts.subaccounts.len();
    let mut lines = Vec::new();
    for account in &facts.subaccounts {
        let what = format!(
            "{} \"{}\"",
            account.sid.as_deref().unwrap_or("?"),
            name_of(account)
        );
        match account.status.as_ref() {
            Some(AccountStatus::Suspended) => lines.push(fail(
                Check::Subaccounts,
                Problem::SubaccountSuspended,
                format!("{what} is suspended: reactivate it, or onboard without its numbers"),
            )),
            Some(AccountStatus::Closed) => lines.push(line(
                Check::Subaccounts,
                Outcome::Warn,
                format!("{what} is closed: it has no numbers to onboard"),
            )),
            _ => {}
        }
    }
    if lines.is_empty() {
        let detail = match total {
            0 => "none: only the parent's numbers are onboarded".to_owned(),
            1 => "1 subaccount, active".to_owned(),
            n => format!("{n} subaccounts, all active"),
        };
        lines.push(line(Check::Subaccounts, Outcome::Ok, detail));
    }
    lines
}

fn profile_rows(facts: &Facts) -> Vec<ProfileRow> {
    facts
        .profiles
        .iter()
        .map(|p| ProfileRow {
            sid: p.sid.clone().unwrap_or_default(),
            friendly_name: p.friendly_name.clone().unwrap_or_default(),
            policy_sid: p.policy_sid.clone().unwrap_or_default(),
            primary: p.policy_sid.as_deref() == Some(PRIMARY_PROFILE_POLICY_SID),
            status: status_text(p.status.as_ref()),
            valid_until: p
                .valid_until
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        })
        .collect()
}

fn describe_profile(p: &CustomerProfile) -> String {
    let until = p
        .valid_until
        .map(|t| format!(", valid until {}", t.format("%Y-%m-%d")))
        .unwrap_or_default();
    format!(
        "{} \"{}\" {}{until}",
        p.sid.as_deref().unwrap_or("?"),
        p.friendly_name.as_deref().unwrap_or_default(),
        status_text(p.status.as_ref())
    )
}

fn profiles(facts: &Facts, primary: Option<&CustomerProfile>) -> Vec<Finding> {
    if let Some(p) = primary {
        let mut lines = vec![line(
            Check::BusinessProfile,
            Outcome::Ok,
            describe_profile(p),
        )];
        if let Some(until) = p.valid_until.filter(|t| *t - facts.now < EXPIRY_WARNING) {
            lines.push(line(
                Check::BusinessProfile,
                Outcome::Warn,
                format!(
                    "the profile's approval ends on {}: renew it in the Console",
                    until.format("%Y-%m-%d")
                ),
            ));
        }
        return lines;
    }
    let found: Vec<String> = facts
        .profiles
        .iter()
        .filter(|p| p.policy_sid.as_deref() == Some(PRIMARY_PROFILE_POLICY_SID))
        .map(|p| {
            let expired = p.status == Some(BundleStatus::TwilioApproved)
                && p.valid_until.is_some_and(|t| t <= facts.now);
            let mut d = describe_profile(p);
            if expired {
                d.push_str(" (expired)");
            }
            d
        })
        .collect();
    let detail = if found.is_empty() {
        "no Primary Business Profile: create and submit one in the Twilio Console".to_owned()
    } else {
        format!(
            "no approved Primary Business Profile (found: {}): wait for Twilio's review or fix it in the Console",
            found.join("; ")
        )
    };
    vec![fail(
        Check::BusinessProfile,
        Problem::NoApprovedProfile,
        detail,
    )]
}

fn policy(facts: &Facts) -> Vec<Finding> {
    match &facts.policy {
        Some(p) => vec![line(
            Check::Policy,
            Outcome::Ok,
            format!(
                "{SHAKEN_STIR_POLICY_SID} ({}) exists",
                p.friendly_name.as_deref().unwrap_or("SHAKEN/STIR")
            ),
        )],
        None => vec![fail(
            Check::Policy,
            Problem::PolicyMissing,
            format!(
                "{SHAKEN_STIR_POLICY_SID} not found (HTTP 404): this account cannot create SHAKEN/STIR Trust Products; ask Twilio support"
            ),
        )],
    }
}

/// The product attached to the chosen profile (approved ones first), if any.
fn adoptable<'a>(facts: &'a Facts, primary: Option<&CustomerProfile>) -> Option<&'a ProductFacts> {
    let profile = primary?.sid.as_deref()?;
    let attached = || {
        facts
            .products
            .iter()
            .filter(move |p| p.entities.iter().any(|e| e == profile))
    };
    attached()
        .find(|p| p.product.status == Some(BundleStatus::TwilioApproved))
        .or_else(|| attached().next())
}

fn product_row(p: &ProductFacts, adopt: bool) -> ProductRow {
    ProductRow {
        sid: p.product.sid.clone().unwrap_or_default(),
        friendly_name: p.product.friendly_name.clone().unwrap_or_default(),
        status: status_text(p.product.status.as_ref()),
        profiles: p
            .entities
            .iter()
            .filter(|e| e.starts_with("BU"))
            .cloned()
            .collect(),
        numbers: p.numbers.len(),
        adopt,
    }
}

fn products(
    facts: &Facts,
    primary: Option<&CustomerProfile>,
    adopt: Option<&ProductFacts>,
) -> (Vec<Finding>, Vec<ProductRow>) {
    if !facts.policy_checked || facts.policy.is_none() {
        let why = "not checked: the SHAKEN/STIR policy is missing";
        return (
            vec![line(Check::TrustProducts, Outcome::Skipped, why)],
            Vec::new(),
        );
    }
    let rows: Vec<ProductRow> = facts
        .products
        .iter()
        .map(|p| product_row(p, adopt.is_some_and(|a| std::ptr::eq(a, p))))
        .collect();
    let mut lines = Vec::new();
    for row in &rows {
        let profiles = if row.profiles.is_empty() {
            "no profile".to_owned()
        } else {
            format!("profile {}", row.profiles.join(", "))
        };
        let what = format!(
            "{} \"{}\" {}, {profiles}, {} numbers",
            row.sid, row.friendly_name, row.status, row.numbers
        );
        if row.adopt {
            lines.push(fail(
                Check::TrustProducts,
                Problem::ProductExists,
                format!(
                    "{what}: already exists for the Primary profile; adopt it with spec.trustProductSid: {} instead of creating a second one",
                    row.sid
                ),
            ));
        } else {
            let whose = if primary.is_some() {
                "not the one to use (another profile)"
            } else {
                "exists"
            };
            lines.push(line(
                Check::TrustProducts,
                Outcome::Warn,
                format!("{what}: {whose}"),
            ));
        }
    }
    if lines.is_empty() {
        lines.push(line(
            Check::TrustProducts,
            Outcome::Ok,
            "none yet: the operator will create one",
        ));
    }
    (lines, rows)
}

fn plan(
    profile: &CustomerProfile,
    adopt: Option<&ProductFacts>,
    numbers: Vec<PlannedNumber>,
) -> Plan {
    Plan {
        profile_sid: profile.sid.clone().unwrap_or_default(),
        profile_friendly_name: profile.friendly_name.clone().unwrap_or_default(),
        email: profile.email.clone().unwrap_or_default(),
        adopt: adopt.and_then(|a| {
            Some((
                a.product.sid.clone()?,
                a.product.friendly_name.clone().unwrap_or_default(),
            ))
        }),
        numbers,
    }
}
