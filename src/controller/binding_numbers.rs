//! Which numbers a `BusinessProfileBinding` wants: those `spec.phoneNumbers` lists (resolved
//! to `PN…` SIDs, from status when known, else by a concurrent look-up each) and those
//! `spec.discovery` selects (listed again once an interval has passed or on demand, else taken
//! from the numbers the status recorded).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::{Context, ReconcileError};
use crate::api::{
    BusinessProfileBinding, BusinessProfileBindingStatus, DISCOVER_ANNOTATION, DiscoveryStatus,
    NumberState, PhoneNumberAssignmentStatus, PhoneNumberRef, Sid,
};
use crate::planner::binding::NumberTarget;
use crate::planner::discovery::{self as select, Skipped};
use crate::twilio::TrustHub;

use crate::api::MAX_BINDING_NUMBERS as MAX_NUMBERS;

/// The numbers a binding wants, and what discovery found when it listed.
pub(super) struct Wanted {
    /// Explicit numbers first, in spec order, then the selected ones, by `PN…` SID.
    pub targets: Vec<NumberTarget>,
    /// The discovery report to record (`None` without `spec.discovery`).
    pub discovery: Option<DiscoveryStatus>,
    /// Whether discovery listed in this reconcile and found another selection than the one
    /// recorded: the recorded assignments no longer tell what to release.
    pub selection_changed: bool,
    /// When discovery must list again, if configured.
    pub next_listing: Option<Duration>,
    /// What changed since the recorded selection, for the summary Event: (new, gone).
    pub changes: (usize, usize),
}

/// Resolves the explicit numbers and, when due, lists the selection.
pub(super) async fn wanted(
    obj: &BusinessProfileBinding,
    ctx: &Context,
    twilio: &dyn TrustHub,
    recorded: &BusinessProfileBindingStatus,
    now: Timestamp,
) -> Result<Wanted, ReconcileError> {
    let limit = ctx.config.twilio.max_in_flight;
    let mut targets = resolve_numbers(twilio, &obj.spec.phone_numbers, recorded, limit).await?;
    let Some(spec) = &obj.spec.discovery else {
        return Ok(Wanted {
            targets,
            discovery: None,
            selection_changed: false,
            next_listing: None,
            changes: (0, 0),
        });
    };
    let interval = select::interval(spec)
        .map_err(|e| ReconcileError::terminal("InvalidDiscovery", e.to_string()))?;
    let explicit: BTreeSet<Sid> = targets.iter().filter_map(resolved_sid).collect();
    let before = recorded_selection(recorded, &explicit);
    let previous = recorded.discovery.as_ref();
    let annotation = obj
        .annotations()
        .get(DISCOVER_ANNOTATION)
        .map(String::as_str);
    // An abridged status does not hold the selection: list it again.
    let due = recorded.observed_generation != obj.metadata.generation
        || recorded.numbers_abridged
        || select::listing_due(
            interval,
            previous.and_then(|d| d.listed_at.as_ref()).map(|t| t.0),
            now,
            annotation,
            previous.and_then(|d| d.last_annotation.as_deref()),
        );
    if !due {
        let waited = Duration::try_from(
            now.duration_since(
                previous
                    .and_then(|d| d.listed_at.as_ref())
                    .map_or(now, |t| t.0),
            ),
        )
        .unwrap_or(Duration::ZERO);
        append(&mut targets, before);
        return Ok(Wanted {
            targets,
            discovery: previous.cloned(),
            selection_changed: false,
            next_listing: Some(interval.saturating_sub(waited).max(Duration::from_secs(1))),
            changes: (0, 0),
        });
    }
    let known = super::discovery::Known::new(
        recorded
            .phone_numbers
            .iter()
            .flat_map(|n| [n.sid.as_ref(), n.phone_number.as_ref()])
            .flatten(),
    );
    let found = super::discovery::discover(twilio, spec, limit, &known).await?;
    drop(known);
    let report = select::report(
        &found.selection,
        &found.skipped,
        found.accounts_listed,
        now,
        annotation,
    );
    let selected = keep_suspended(found.selection.numbers, &found.skipped, &before);
    let was: BTreeSet<Sid> = before.iter().filter_map(resolved_sid).collect();
    let now_sids: BTreeSet<Sid> = selected.iter().filter_map(resolved_sid).collect();
    let changes = (
        now_sids.difference(&was).count(),
        was.difference(&now_sids).count(),
    );
    drop(before);
    let mut selected = selected;
    selected.retain(|t| t.number_sid().is_none_or(|sid| !explicit.contains(sid)));
    append(&mut targets, selected);
    if targets.len() > MAX_NUMBERS {
        return Err(ReconcileError::terminal(
            "TooManyNumbers",
            format!(
                "the binding wants {} numbers; this version handles at most {MAX_NUMBERS} per binding (the operator keeps about 1 KiB per number in memory): narrow spec.discovery or split the numbers over several bindings",
                targets.len()
            ),
        ));
    }
    Ok(Wanted {
        targets,
        discovery: Some(report),
        selection_changed: changes != (0, 0),
        next_listing: Some(interval),
        changes,
    })
}

/// Appends `more` to `targets`, taking `more`'s list as it is when `targets` is empty (the
/// usual case: discovery only): growing a second list of 50,000 entries by doubling held both,
/// and up to twice the size, at once.
fn append(targets: &mut Vec<NumberTarget>, mut more: Vec<NumberTarget>) {
    if targets.is_empty() {
        *targets = more;
    } else {
        targets.reserve_exact(more.len());
        targets.append(&mut more);
    }
}

fn resolved_sid(target: &NumberTarget) -> Option<Sid> {
    target.number_sid().cloned()
}

/// The numbers discovery selected last time, as the status recorded them: every wanted number
/// (not being released, not unresolvable) that the spec does not list explicitly.
fn recorded_selection(
    recorded: &BusinessProfileBindingStatus,
    explicit: &BTreeSet<Sid>,
) -> Vec<NumberTarget> {
    // Sized up front: 50,000 entries grown by doubling would take up to twice the room.
    let mut selection = Vec::with_capacity(recorded.phone_numbers.len());
    selection.extend(
        recorded
            .phone_numbers
            .iter()
            .filter(|n| !matches!(n.state, NumberState::Releasing | NumberState::Unresolvable))
            .filter_map(|n| {
                let sid = n.sid.clone()?;
                (!explicit.contains(&sid)).then(|| NumberTarget::Resolved {
                    number_sid: sid,
                    phone_number: n.phone_number.clone(),
                    subaccount_sid: n.subaccount_sid.clone(),
                })
            }),
    );
    selection
}

/// The selection, plus the numbers selected before from subaccounts now suspended: a
/// suspension is temporary, so their assignments are neither released nor counted as gone.
/// Numbers of closed subaccounts are gone with them.
fn keep_suspended(
    mut selected: Vec<NumberTarget>,
    skipped: &[Skipped],
    before: &[NumberTarget],
) -> Vec<NumberTarget> {
    let suspended: BTreeSet<&str> = skipped
        .iter()
        .filter(|s| s.status == "suspended")
        .map(|s| s.sid.as_str())
        .collect();
    if suspended.is_empty() {
        return selected;
    }
    let have: BTreeSet<Sid> = selected.iter().filter_map(resolved_sid).collect();
    selected.extend(
        before
            .iter()
            .filter(|t| match t {
                NumberTarget::Resolved {
                    number_sid,
                    subaccount_sid,
                    ..
                } => {
                    !have.contains(number_sid)
                        && subaccount_sid
                            .as_deref()
                            .is_some_and(|a| suspended.contains(a))
                }
                NumberTarget::Unresolvable { .. } => false,
            })
            .cloned(),
    );
    selected
}

async fn resolve_numbers(
    twilio: &dyn TrustHub,
    wanted: &[PhoneNumberRef],
    recorded: &BusinessProfileBindingStatus,
    limit: usize,
) -> Result<Vec<NumberTarget>, ReconcileError> {
    let by_sid: BTreeMap<&str, &PhoneNumberAssignmentStatus> = recorded
        .phone_numbers
        .iter()
        .filter_map(|n| Some((n.sid.as_deref()?, n)))
        .collect();
    let by_number: BTreeMap<(&str, &str), (&Sid, &PhoneNumberAssignmentStatus)> = recorded
        .phone_numbers
        .iter()
        .filter_map(|n| {
            let key = (n.phone_number.as_deref()?, n.subaccount_sid.as_deref()?);
            Some((key, (n.sid.as_ref()?, n)))
        })
        .collect();
    let mut targets: Vec<Option<NumberTarget>> = Vec::with_capacity(wanted.len());
    let mut lookups = Vec::new();
    for entry in wanted {
        if let Some(sid) = &entry.sid {
            let known = by_sid.get(sid.as_str());
            targets.push(Some(NumberTarget::Resolved {
                // The recorded copy when there is one: one copy of each SID.
                number_sid: known
                    .and_then(|n| n.sid.clone())
                    .unwrap_or_else(|| sid.as_str().into()),
                phone_number: known.and_then(|n| n.phone_number.clone()),
                subaccount_sid: known.and_then(|n| n.subaccount_sid.clone()),
            }));
            continue;
        }
        let (Some(number), Some(account)) = (&entry.phone_number, &entry.subaccount_sid) else {
            continue;
        };
        if let Some((sid, known)) = by_number.get(&(number.as_str(), account.as_str())) {
            targets.push(Some(NumberTarget::Resolved {
                number_sid: Sid::clone(sid),
                phone_number: known.phone_number.clone(),
                subaccount_sid: known.subaccount_sid.clone(),
            }));
            continue;
        }
        lookups.push((targets.len(), number, account));
        targets.push(None);
    }
    for (at, target) in look_up(twilio, lookups, limit).await? {
        targets[at] = Some(target);
    }
    Ok(targets.into_iter().flatten().collect())
}

/// From this many unresolved numbers of one account on, the account's numbers are listed once
/// (1,000 a page) instead of looked up one by one.
const LIST_ACCOUNT_FROM: usize = 20;

/// Resolves `(index, E.164, account)` entries concurrently (at most `limit` requests at once):
/// an account with many of them by one listing, the others by one filtered listing each.
async fn look_up<'a>(
    twilio: &dyn TrustHub,
    lookups: Vec<(usize, &'a String, &'a String)>,
    limit: usize,
) -> Result<Vec<(usize, NumberTarget)>, ReconcileError> {
    let mut by_account: BTreeMap<&str, Vec<(usize, &str)>> = BTreeMap::new();
    for (at, number, account) in lookups {
        by_account
            .entry(account.as_str())
            .or_default()
            .push((at, number.as_str()));
    }
    let mut pending = Vec::new();
    for (account, numbers) in by_account {
        if numbers.len() >= LIST_ACCOUNT_FROM {
            pending.push(futures::future::Either::Left(resolve_by_listing(
                twilio, account, numbers,
            )));
            continue;
        }
        for (at, number) in numbers {
            let one = look_up_number(twilio, number, account);
            pending.push(futures::future::Either::Right(async move {
                one.await.map(|t| vec![(at, t)])
            }));
        }
    }
    let found: Vec<Result<Vec<(usize, NumberTarget)>, crate::twilio::TwilioError>> =
        futures::stream::iter(pending)
            .buffer_unordered(limit.max(1))
            .collect()
            .await;
    let mut resolved = Vec::new();
    for result in found {
        resolved.extend(result.map_err(ReconcileError::twilio("look up phone numbers"))?);
    }
    Ok(resolved)
}

/// Resolves many numbers of one account from one listing of its numbers.
async fn resolve_by_listing(
    twilio: &dyn TrustHub,
    account: &str,
    numbers: Vec<(usize, &str)>,
) -> Result<Vec<(usize, NumberTarget)>, crate::twilio::TwilioError> {
    let account_sid = Sid::from(account);
    let unresolvable = |number: &str, message: String| NumberTarget::Unresolvable {
        shown: number.to_string(),
        subaccount_sid: Some(account_sid.clone()),
        message,
    };
    let listed = match twilio.list_incoming_phone_numbers(account, None).await {
        Ok(listed) => listed,
        Err(e) if e.is_transient() || e.is_ambiguous() => return Err(e),
        Err(e) => {
            let message = format!("account {account} cannot be searched: {e}");
            return Ok(numbers
                .into_iter()
                .map(|(at, n)| (at, unresolvable(n, message.clone())))
                .collect());
        }
    };
    let sids: BTreeMap<&str, &str> = listed
        .iter()
        .filter_map(|n| Some((n.phone_number.as_deref()?, n.sid.as_deref()?)))
        .collect();
    Ok(numbers
        .into_iter()
        .map(|(at, number)| {
            let target = match sids.get(number) {
                Some(sid) => NumberTarget::Resolved {
                    number_sid: (*sid).into(),
                    phone_number: Some(number.into()),
                    subaccount_sid: Some(account_sid.clone()),
                },
                None => unresolvable(
                    number,
                    format!("not found among the IncomingPhoneNumbers of account {account}"),
                ),
            };
            (at, target)
        })
        .collect())
}

/// Finds `number` among `account`'s IncomingPhoneNumbers. A transient failure is an error; any
/// other answer makes the number unresolvable, with why.
async fn look_up_number(
    twilio: &dyn TrustHub,
    number: &str,
    account: &str,
) -> Result<NumberTarget, crate::twilio::TwilioError> {
    let unresolvable = |message: String| NumberTarget::Unresolvable {
        shown: number.to_string(),
        subaccount_sid: Some(account.into()),
        message,
    };
    match twilio
        .list_incoming_phone_numbers(account, Some(number))
        .await
    {
        Ok(found) => Ok(
            match found
                .into_iter()
                .find(|n| n.phone_number.as_deref() == Some(number))
                .and_then(|n| n.sid)
            {
                Some(sid) => NumberTarget::Resolved {
                    number_sid: sid.into(),
                    phone_number: Some(number.into()),
                    subaccount_sid: Some(account.into()),
                },
                None => unresolvable(format!(
                    "not found among the IncomingPhoneNumbers of account {account}"
                )),
            },
        ),
        Err(e) if e.is_transient() || e.is_ambiguous() => Err(e),
        Err(e) => Ok(unresolvable(format!(
            "account {account} cannot be searched: {e}"
        ))),
    }
}
