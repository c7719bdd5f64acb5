//! The numbers part of the evaluation: coverage per account, numbers already on another
//! SHAKEN/STIR product, and the numbers a plan would list. Pure, like [`super::evaluate`].

use std::collections::{BTreeMap, BTreeSet};

use super::evaluate::{fail, line, name_of};
use super::{Check, Coverage, Facts, Finding, Outcome, PlannedNumber, Problem, ProductFacts};
use crate::twilio::{Account, AccountStatus};

/// Lines, coverage rows and the numbers to plan.
pub(super) fn numbers(
    facts: &Facts,
    adopt: Option<&ProductFacts>,
) -> (Vec<Finding>, Vec<Coverage>, Vec<PlannedNumber>) {
    let on_profile: BTreeSet<&str> = facts.profile_numbers.iter().map(String::as_str).collect();
    let on_any: BTreeSet<&str> = facts
        .products
        .iter()
        .flat_map(|p| p.numbers.iter().map(String::as_str))
        .collect();
    let accounts = accounts_by_sid(facts);
    let (coverage, planned) = coverage(facts, &accounts, &on_profile, &on_any);
    let mut lines = Vec::new();
    let voice: usize = coverage.iter().map(|c| c.voice_numbers).sum();
    let with_numbers = coverage.iter().filter(|c| c.voice_numbers > 0).count();
    let assigned: usize = coverage.iter().map(|c| c.on_profile).sum();
    let covered: usize = coverage.iter().map(|c| c.on_product).sum();
    lines.push(line(
        Check::Numbers,
        Outcome::Ok,
        format!(
            "{voice} voice numbers in {with_numbers} accounts: {assigned} assigned to the profile, {covered} on a SHAKEN/STIR product"
        ),
    ));
    lines.extend(on_other_products(facts, adopt, &accounts));
    let planned = exclude_other_products(facts, adopt, planned);
    if voice == 0 || planned.is_empty() {
        lines.push(fail(
            Check::Numbers,
            Problem::NoVoiceNumbers,
            "no voice-capable number in an active account to onboard",
        ));
    }
    (lines, coverage, planned)
}

fn accounts_by_sid(facts: &Facts) -> BTreeMap<&str, &Account> {
    facts
        .parent
        .iter()
        .chain(facts.subaccounts.iter())
        .filter_map(|a| Some((a.sid.as_deref()?, a)))
        .collect()
}

fn coverage(
    facts: &Facts,
    accounts: &BTreeMap<&str, &Account>,
    on_profile: &BTreeSet<&str>,
    on_any: &BTreeSet<&str>,
) -> (Vec<Coverage>, Vec<PlannedNumber>) {
    let mut rows = Vec::new();
    let mut planned = Vec::new();
    for listed in &facts.numbers {
        let account = accounts.get(listed.account_sid.as_str());
        let status = account.and_then(|a| a.status.as_ref());
        let voice: Vec<_> = listed
            .numbers
            .iter()
            .filter(|n| n.is_voice_capable())
            .collect();
        let has = |set: &BTreeSet<&str>| {
            voice
                .iter()
                .filter(|n| n.sid.as_deref().is_some_and(|s| set.contains(s)))
                .count()
        };
        rows.push(Coverage {
            account_sid: listed.account_sid.clone(),
            friendly_name: account.map(|a| name_of(a)).unwrap_or_default(),
            status: status.map_or("unknown", |s| s.as_str()).to_owned(),
            voice_numbers: voice.len(),
            on_profile: has(on_profile),
            on_product: has(on_any),
        });
        if status == Some(&AccountStatus::Active) {
            planned.extend(voice.iter().filter_map(|n| {
                Some(PlannedNumber {
                    sid: n.sid.clone()?,
                    phone_number: n.phone_number.clone(),
                    account_sid: listed.account_sid.clone(),
                })
            }));
        }
    }
    for closed in facts
        .subaccounts
        .iter()
        .filter(|a| a.status == Some(AccountStatus::Closed))
    {
        rows.push(Coverage {
            account_sid: closed.sid.clone().unwrap_or_default(),
            friendly_name: name_of(closed),
            status: AccountStatus::Closed.as_str().to_owned(),
            voice_numbers: 0,
            on_profile: 0,
            on_product: 0,
        });
    }
    (rows, planned)
}

fn is_other(p: &ProductFacts, adopt: Option<&ProductFacts>) -> bool {
    !adopt.is_some_and(|a| std::ptr::eq(a, p))
}

/// One failing line per other product that holds numbers of these accounts.
fn on_other_products(
    facts: &Facts,
    adopt: Option<&ProductFacts>,
    accounts: &BTreeMap<&str, &Account>,
) -> Vec<Finding> {
    let ours: BTreeMap<&str, (&str, &str)> = facts
        .numbers
        .iter()
        .flat_map(|a| {
            a.numbers.iter().filter_map(|n| {
                Some((
                    n.sid.as_deref()?,
                    (
                        n.phone_number.as_deref().unwrap_or("?"),
                        a.account_sid.as_str(),
                    ),
                ))
            })
        })
        .collect();
    let mut lines = Vec::new();
    for product in facts.products.iter().filter(|p| is_other(p, adopt)) {
        let held: Vec<String> = product
            .numbers
            .iter()
            .filter_map(|sid| ours.get(sid.as_str()))
            .map(|(number, account)| {
                let name = accounts
                    .get(account)
                    .map(|a| name_of(a))
                    .unwrap_or_default();
                format!("{number} ({name})")
            })
            .collect();
        if held.is_empty() {
            continue;
        }
        lines.push(fail(
            Check::Numbers,
            Problem::NumbersOnAnotherProduct,
            format!(
                "{} numbers are on another SHAKEN/STIR product {}: {}; a number can be on only one, so they are left out (detach them there to onboard them)",
                held.len(),
                product.product.sid.as_deref().unwrap_or("?"),
                held.join(", ")
            ),
        ));
    }
    lines
}

fn exclude_other_products(
    facts: &Facts,
    adopt: Option<&ProductFacts>,
    planned: Vec<PlannedNumber>,
) -> Vec<PlannedNumber> {
    let elsewhere: BTreeSet<&str> = facts
        .products
        .iter()
        .filter(|p| is_other(p, adopt))
        .flat_map(|p| p.numbers.iter().map(String::as_str))
        .collect();
    planned
        .into_iter()
        .filter(|n| !elsewhere.contains(n.sid.as_str()))
        .collect()
}
