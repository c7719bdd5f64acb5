//! Lists what a binding's `spec.discovery` selects from: the parent's subaccounts (one paged
//! Accounts listing, or one fetch per named subaccount), then every listed account's numbers
//! (one paged IncomingPhoneNumbers listing each, 1,000 numbers a page), the listings running
//! concurrently up to the account's in-flight limit. The decisions are the planner's
//! (`planner::discovery`); this module only reads Twilio and converts what it answers.

use futures::{StreamExt, TryStreamExt, stream};

use super::error::ReconcileError;
use crate::api::{NumberDiscovery, Sid};
use crate::planner::discovery::{
    AccountView, NumberView, REFUSED, Selection, Skipped, accounts_to_list, select,
};
use crate::twilio::{Account, AccountFilter, IncomingPhoneNumber, TrustHub, TwilioError};

/// The `PN…` SIDs and E.164 numbers a binding already holds, sorted so that a listed one is
/// found by binary search and shared, not copied (8 bytes each, where a hash set took about
/// 20).
#[derive(Default)]
pub(super) struct Known<'a>(Vec<&'a Sid>);

impl<'a> Known<'a> {
    pub(super) fn new(held: impl Iterator<Item = &'a Sid>) -> Self {
        let mut held: Vec<&Sid> = held.collect();
        held.sort_unstable();
        held.dedup();
        Self(held)
    }

    /// The held copy of `text`, else a new one.
    fn shared(&self, text: &str) -> Sid {
        match self.0.binary_search_by(|held| (***held).cmp(text)) {
            Ok(at) => Sid::clone(self.0[at]),
            Err(_) => text.into(),
        }
    }
}

/// What one discovery found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Discovered {
    /// The selected numbers and what each rule did.
    pub(super) selection: Selection,
    /// Accounts not listed and why: inactive, foreign or unknown subaccounts, and accounts
    /// whose number listing Twilio refused (403/404). In SID order.
    pub(super) skipped: Vec<Skipped>,
    /// Accounts whose numbers were listed.
    pub(super) accounts_listed: u32,
    /// Twilio operations performed; a paged listing counts once, whatever its pages.
    pub(super) calls: u32,
}

/// Lists the accounts and numbers `spec` selects from and applies the selection, with at most
/// `max_in_flight` (at least 1) Twilio operations at once. A `PN…` SID or E.164 number found
/// in `known` (those the binding already holds) is taken from there rather than copied: at
/// each interval the listing would otherwise make a second copy of every number's strings,
/// held beside the first until the binding's next write.
pub(super) async fn discover(
    twilio: &dyn TrustHub,
    spec: &NumberDiscovery,
    max_in_flight: usize,
    known: &Known<'_>,
) -> Result<Discovered, ReconcileError> {
    let in_flight = max_in_flight.max(1);
    let parent = twilio.account_sid().to_string();
    let (accounts, mut calls) = observe_accounts(twilio, spec, in_flight).await?;
    let plan = accounts_to_list(spec, &parent, accounts.as_deref());
    let names = spec.friendly_name_pattern.is_some();
    let listings = list_numbers(twilio, &plan.list, in_flight, known, names).await?;
    calls += count(plan.list.len());
    let mut skipped = plan.skipped;
    let mut listed: Vec<(String, Vec<NumberView>)> = Vec::with_capacity(listings.len());
    for (account, numbers) in listings {
        match numbers {
            Some(numbers) => listed.push((account, numbers)),
            None => skipped.push(Skipped {
                sid: account,
                status: REFUSED.to_string(),
            }),
        }
    }
    skipped.sort();
    let accounts_listed = count(listed.len());
    Ok(Discovered {
        selection: select(spec, listed),
        skipped,
        accounts_listed,
        calls,
    })
}

/// The accounts the planner checks subaccounts against, and the operations spent. With
/// `allSubaccounts`, the parent's whole account listing (every status: suspended and closed
/// ones are reported, not silently dropped). With named subaccounts, each fetched; one Twilio
/// does not know is left out (the planner reports it not found). `None` when the credentials
/// may not read the Accounts API (a standard API key): named subaccounts are then listed
/// unchecked, while `allSubaccounts` cannot work at all and fails.
async fn observe_accounts(
    twilio: &dyn TrustHub,
    spec: &NumberDiscovery,
    in_flight: usize,
) -> Result<(Option<Vec<AccountView>>, u32), ReconcileError> {
    if spec.all_subaccounts {
        let accounts = twilio
            .list_accounts(&AccountFilter::default())
            .await
            .map_err(ReconcileError::twilio("list the subaccounts"))?;
        return Ok((Some(accounts.iter().filter_map(account_view).collect()), 1));
    }
    // The futures are made before the stream (see `batch::run`): made inside its closure they
    // would make the reconcile future non-`Send` for the controller.
    let fetches: Vec<_> = spec
        .subaccounts
        .iter()
        .map(|sid| {
            let pending = twilio.fetch_account(sid);
            async move {
                match pending.await {
                    Ok(account) => Ok(Some(account)),
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => Err(e),
                }
            }
        })
        .collect();
    let fetched: Vec<Result<Option<Account>, TwilioError>> = stream::iter(fetches)
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let calls = count(spec.subaccounts.len());
    let mut accounts = Vec::with_capacity(fetched.len());
    for result in fetched {
        match result {
            Ok(account) => accounts.extend(account.as_ref().and_then(account_view)),
            Err(e) if e.is_auth() => return Ok((None, calls)),
            Err(e) => return Err(ReconcileError::twilio("fetch a subaccount")(e)),
        }
    }
    Ok((Some(accounts), calls))
}

/// Each account's numbers, in the order given; `None` for an account whose listing Twilio
/// refused with 403 or 404 (closed between the account check and the listing, or not the
/// parent's), which is reported rather than failing the whole discovery. Any other error fails
/// it: a selection missing an account's numbers would unassign them under `Delete`.
async fn list_numbers(
    twilio: &dyn TrustHub,
    accounts: &[String],
    in_flight: usize,
    known: &Known<'_>,
    names: bool,
) -> Result<Vec<(String, Option<Vec<NumberView>>)>, ReconcileError> {
    let lists: Vec<_> = accounts
        .iter()
        .enumerate()
        .map(|(index, account)| {
            let pending = twilio.list_incoming_phone_numbers(account, None);
            async move {
                match pending.await {
                    Ok(numbers) => {
                        let views = number_views(&numbers, known, names);
                        Ok((index, account.clone(), Some(views)))
                    }
                    Err(e) if e.is_not_found() || e.http_status() == Some(403) => {
                        Ok((index, account.clone(), None))
                    }
                    Err(e) => Err(ReconcileError::twilio("list an account's phone numbers")(e)),
                }
            }
        })
        .collect();
    let mut listings: Vec<(usize, String, Option<Vec<NumberView>>)> = stream::iter(lists)
        .buffer_unordered(in_flight)
        .try_collect()
        .await?;
    // Completion order is arbitrary; the planner keeps the first listing of a number seen
    // twice, so restore the plan's order to keep that choice stable between runs.
    listings.sort_unstable_by_key(|(index, _, _)| *index);
    Ok(listings
        .into_iter()
        .map(|(_, account, numbers)| (account, numbers))
        .collect())
}

/// The planner's view of an account; one without a SID is dropped.
fn account_view(account: &Account) -> Option<AccountView> {
    let sid = account.sid.clone().filter(|s| !s.is_empty())?;
    Some(AccountView {
        sid,
        status: account.status.as_ref().map(|s| s.as_str().to_string()),
        owner_account_sid: account.owner_account_sid.clone(),
    })
}

/// The planner's view of numbers; one without a SID cannot be assigned and is dropped. The
/// friendly names are kept only when a pattern needs them (`names`).
fn number_views(
    numbers: &[IncomingPhoneNumber],
    known: &Known<'_>,
    names: bool,
) -> Vec<NumberView> {
    numbers
        .iter()
        .filter_map(|n| {
            let sid = n.sid.as_deref().filter(|s| !s.is_empty())?;
            Some(NumberView {
                sid: known.shared(sid),
                phone_number: n.phone_number.as_deref().map(|p| known.shared(p)),
                friendly_name: n.friendly_name.clone().filter(|_| names),
                voice: n.is_voice_capable(),
            })
        })
        .collect()
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;
