//! Planner for a binding's `spec.discovery`: which accounts to list, which of the listed
//! numbers are selected, and when to list again. Pure: the controller lists accounts and
//! numbers (`controller/discovery.rs`), these functions decide.
//!
//! Every function is linear in what was listed (sets, not nested scans), because a discovery
//! may see 50,000 numbers in one reconcile.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::binding::NumberTarget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{DiscoveryStatus, NumberDiscovery, Sid, SkippedAccount};

/// `spec.discovery.interval` when unset.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);
/// The shortest interval accepted: each listing costs one request per listed account (more
/// for large accounts), so a shorter one would spend the account's rate limit on listings.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Twilio's status of an account whose numbers are listed.
pub const ACTIVE: &str = "active";
/// Skip reason: a named subaccount Twilio does not know (404).
pub const NOT_FOUND: &str = "not-found";
/// Skip reason: a named account that is not a subaccount of the parent.
pub const NOT_A_SUBACCOUNT: &str = "not-a-subaccount";
/// Skip reason: Twilio refused to list the account's numbers (403 or 404).
pub const REFUSED: &str = "refused";
/// Skip reason: Twilio did not say the account's status.
pub const UNKNOWN_STATUS: &str = "unknown";

/// A spec value the planner cannot use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// `interval` does not parse, or is shorter than [`MIN_INTERVAL`].
    #[error("discovery.interval {value:?}: {reason}")]
    Interval {
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// An account as listed or fetched (API 2010 Accounts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountView {
    /// `AC…`.
    pub sid: String,
    /// Twilio's status: `active`, `suspended`, `closed`; `None` when not reported.
    pub status: Option<String>,
    /// The account that owns it; a subaccount's owner is the parent.
    pub owner_account_sid: Option<String>,
}

/// A phone number as listed (API 2010 IncomingPhoneNumbers). Its SID and E.164 are the ones
/// the selection keeps, not copies of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NumberView {
    /// `PN…`.
    pub sid: Sid,
    /// E.164, when reported.
    pub phone_number: Option<Sid>,
    /// Friendly name, when reported.
    /// Friendly name, when reported and a `friendlyNamePattern` needs it.
    pub friendly_name: Option<String>,
    /// `capabilities.voice == true`.
    pub voice: bool,
}

/// An account discovery does not list, and why.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Skipped {
    /// `AC…`.
    pub sid: String,
    /// Twilio's status (`suspended`, `closed`), or [`NOT_FOUND`], [`NOT_A_SUBACCOUNT`],
    /// [`REFUSED`], [`UNKNOWN_STATUS`].
    pub status: String,
}

/// The accounts whose numbers to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountsPlan {
    /// Account SIDs to list, each once: the parent first when included, then the subaccounts
    /// in SID order.
    pub list: Vec<String>,
    /// Accounts not listed, in SID order.
    pub skipped: Vec<Skipped>,
}

/// Which accounts to list the numbers of. `subaccounts` is what the controller observed: with
/// `allSubaccounts`, the parent's account listing (which holds the parent itself too); with
/// named subaccounts, the accounts fetched (a name missing from it was not found). `None` means
/// the Accounts API could not be read (a standard API key cannot): named subaccounts are then
/// listed unchecked (a refused listing reports them), and `allSubaccounts` finds none.
pub fn accounts_to_list(
    spec: &NumberDiscovery,
    parent_sid: &str,
    subaccounts: Option<&[AccountView]>,
) -> AccountsPlan {
    let mut list = BTreeSet::new();
    let mut skipped = BTreeSet::new();
    let mut decide = |verdict: Result<String, Skipped>| match verdict {
        Ok(sid) => {
            list.insert(sid);
        }
        Err(skip) => {
            skipped.insert(skip);
        }
    };
    match (spec.all_subaccounts, subaccounts) {
        (true, Some(accounts)) => accounts
            .iter()
            // The listing holds the parent itself; only its subaccounts are candidates.
            .filter(|a| a.sid != parent_sid && a.owner_account_sid.as_deref() == Some(parent_sid))
            .for_each(|a| decide(check_subaccount(a, parent_sid))),
        (true, None) => {}
        (false, Some(accounts)) => {
            let found: HashMap<&str, &AccountView> =
                accounts.iter().map(|a| (a.sid.as_str(), a)).collect();
            for sid in &spec.subaccounts {
                decide(match found.get(sid.as_str()) {
                    Some(account) => check_subaccount(account, parent_sid),
                    None if sid == parent_sid => Err(skip(sid, NOT_A_SUBACCOUNT)),
                    None => Err(skip(sid, NOT_FOUND)),
                });
            }
        }
        (false, None) => {
            for sid in &spec.subaccounts {
                decide(if sid == parent_sid {
                    Err(skip(sid, NOT_A_SUBACCOUNT))
                } else {
                    Ok(sid.clone())
                });
            }
        }
    }
    let parent = spec.include_parent.then(|| parent_sid.to_string());
    AccountsPlan {
        list: parent.into_iter().chain(list).collect(),
        skipped: skipped.into_iter().collect(),
    }
}

/// A subaccount is listed when the parent owns it and Twilio says it is active.
fn check_subaccount(account: &AccountView, parent_sid: &str) -> Result<String, Skipped> {
    if account.sid == parent_sid || account.owner_account_sid.as_deref() != Some(parent_sid) {
        return Err(skip(&account.sid, NOT_A_SUBACCOUNT));
    }
    match account.status.as_deref() {
        Some(ACTIVE) => Ok(account.sid.clone()),
        Some(other) => Err(skip(&account.sid, other)),
        None => Err(skip(&account.sid, UNKNOWN_STATUS)),
    }
}

fn skip(sid: &str, status: &str) -> Skipped {
    Skipped {
        sid: sid.to_string(),
        status: status.to_string(),
    }
}

/// How many listed numbers each rule kept out. A number is counted under the first rule it
/// fails, in the order exclude, voice, prefix, friendly name; `include` bypasses the last three.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SelectionCounts {
    /// Distinct numbers listed (a number listed by two accounts counts once).
    pub seen: u32,
    /// Numbers selected.
    pub selected: u32,
    /// Kept out by `exclude`.
    pub excluded: u32,
    /// Kept out by `voiceOnly`.
    pub not_voice: u32,
    /// Kept out by `phoneNumberPrefix`.
    pub prefix_mismatch: u32,
    /// Kept out by `friendlyNamePattern`.
    pub name_mismatch: u32,
    /// Selected only because `include` names them.
    pub included: u32,
    /// Listings of a number already seen in an earlier account (a number moved between
    /// accounts while they were listed); the first listing wins.
    pub duplicates: u32,
}

/// The numbers discovery selects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Selected numbers, [`NumberTarget::Resolved`], sorted by `PN…` SID, each once.
    pub numbers: Vec<NumberTarget>,
    /// What each rule did.
    pub counts: SelectionCounts,
    /// `include` entries no listed account owns, in spec order.
    pub include_not_found: Vec<String>,
}

/// Applies the selection rules to the numbers listed per account (`(account SID, numbers)`).
/// Takes the listing, so each selected number's strings move into the selection and each
/// account's list is let go once read: 50,000 numbers are not held twice.
pub fn select(spec: &NumberDiscovery, listed: Vec<(String, Vec<NumberView>)>) -> Selection {
    let include: HashSet<&str> = spec.include.iter().map(|n| n.0.as_str()).collect();
    let exclude: HashSet<&str> = spec.exclude.iter().map(|n| n.0.as_str()).collect();
    let prefix = spec.phone_number_prefix.as_deref();
    let pattern: Option<Vec<char>> = spec
        .friendly_name_pattern
        .as_deref()
        .map(|p| p.chars().collect());
    let mut counts = SelectionCounts::default();
    let mut seen: HashSet<Sid> = HashSet::new();
    let mut found_includes: HashSet<&str> = HashSet::new();
    // Sized up front: 50,000 entries grown by doubling would take up to twice the room.
    let mut numbers = Vec::with_capacity(listed.iter().map(|(_, views)| views.len()).sum());
    for (account, views) in listed {
        // One copy of the account's SID, shared by each of its numbers.
        let account = Sid::from(account.as_str());
        for view in views {
            if !seen.insert(view.sid.clone()) {
                counts.duplicates += 1;
                continue;
            }
            counts.seen += 1;
            let keys = [Some(&*view.sid), view.phone_number.as_deref()];
            let named = |set: &HashSet<&str>| keys.iter().flatten().any(|k| set.contains(*k));
            let included = named(&include);
            if included {
                found_includes.extend(
                    keys.iter()
                        .flatten()
                        .filter_map(|k| include.get(*k).copied()),
                );
            }
            if named(&exclude) {
                counts.excluded += 1;
                continue;
            }
            let rule_out = if spec.voice_only && !view.voice {
                Some(&mut counts.not_voice)
            } else if prefix
                .is_some_and(|p| !view.phone_number.as_deref().unwrap_or("").starts_with(p))
            {
                Some(&mut counts.prefix_mismatch)
            } else if pattern
                .as_deref()
                .is_some_and(|p| !glob_match(p, view.friendly_name.as_deref().unwrap_or("")))
            {
                Some(&mut counts.name_mismatch)
            } else {
                None
            };
            match (rule_out, included) {
                (Some(count), false) => {
                    *count += 1;
                    continue;
                }
                (Some(_), true) => counts.included += 1,
                (None, _) => {}
            }
            numbers.push(NumberTarget::Resolved {
                number_sid: view.sid,
                phone_number: view.phone_number,
                subaccount_sid: Some(account.clone()),
            });
        }
    }
    numbers.sort_unstable_by(|a, b| target_sid(a).cmp(target_sid(b)));
    counts.selected = u32::try_from(numbers.len()).unwrap_or(u32::MAX);
    let include_not_found = spec
        .include
        .iter()
        .map(|n| n.0.as_str())
        .filter(|n| !found_includes.contains(n))
        .map(str::to_string)
        .collect();
    Selection {
        numbers,
        counts,
        include_not_found,
    }
}

fn target_sid(target: &NumberTarget) -> &str {
    match target {
        NumberTarget::Resolved { number_sid, .. } => number_sid,
        NumberTarget::Unresolvable { shown, .. } => shown,
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (also none) and
/// `?` exactly one. Greedy with one backtrack point, so O(len(text) × len(pattern)) at worst
/// and no recursion (the pattern is at most 64 characters).
pub fn glob_match(pattern: &[char], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// `spec.discovery.interval` as a duration: [`DEFAULT_INTERVAL`] when unset, refused when it
/// does not parse or is shorter than [`MIN_INTERVAL`].
pub fn interval(spec: &NumberDiscovery) -> Result<Duration, DiscoveryError> {
    let Some(value) = spec.interval.as_deref() else {
        return Ok(DEFAULT_INTERVAL);
    };
    let refuse = |reason: String| DiscoveryError::Interval {
        value: value.to_string(),
        reason,
    };
    let parsed = humantime::parse_duration(value).map_err(|e| refuse(e.to_string()))?;
    if parsed < MIN_INTERVAL {
        return Err(refuse(format!(
            "shorter than the minimum of {}",
            humantime::format_duration(MIN_INTERVAL)
        )));
    }
    Ok(parsed)
}

/// Whether the selection must be listed again: the `trusthub.stir.dev/discover` annotation
/// carries a value the last listing did not answer, or the interval has passed (with the same
/// 10 % allowance for the requeue's jitter as [`super::listing_due`]). Removing the annotation
/// asks for nothing.
pub fn listing_due(
    interval: Duration,
    listed_at: Option<Timestamp>,
    now: Timestamp,
    annotation: Option<&str>,
    last_annotation: Option<&str>,
) -> bool {
    let asked = annotation.is_some_and(|a| Some(a) != last_annotation);
    asked || super::listing_due(interval, listed_at, now)
}

/// How many skipped accounts `status.discovery.skippedAccounts` lists; the rest are counted.
pub const MAX_SKIPPED_SHOWN: usize = 20;

/// `status.discovery` after a listing at `listed_at` that answered `annotation`: counts, and
/// the first [`MAX_SKIPPED_SHOWN`] skipped accounts with the rest counted, so the status stays
/// small whatever the number of accounts.
pub fn report(
    selection: &Selection,
    skipped: &[Skipped],
    accounts_listed: u32,
    listed_at: Timestamp,
    annotation: Option<&str>,
) -> DiscoveryStatus {
    let shown = skipped.len().min(MAX_SKIPPED_SHOWN);
    DiscoveryStatus {
        listed_at: Some(Time(listed_at)),
        last_annotation: annotation.map(str::to_string),
        accounts_listed,
        numbers_seen: selection.counts.seen,
        selected: selection.counts.selected,
        skipped_accounts: skipped[..shown]
            .iter()
            .map(|s| SkippedAccount {
                sid: s.sid.clone(),
                status: s.status.clone(),
            })
            .collect(),
        skipped_accounts_omitted: u32::try_from(skipped.len() - shown).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;
