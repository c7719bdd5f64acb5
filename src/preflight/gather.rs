//! Reads the facts preflight evaluates, with GETs only.
//!
//! Cost: one fetch of the account, one paged listing each of subaccounts, profiles and SHAKEN/STIR
//! products (filtered by policy), two paged listings per product (entities, numbers), one of
//! the chosen profile's numbers, and one paged listing of IncomingPhoneNumbers per account
//! (`PageSize` 1000), never a look-up per number. The per-account and per-product listings run
//! `parallel` at a time; the client's in-flight limit applies on top.

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};

use super::evaluate::primary_profile;
use super::{AccountNumbers, AuthKind, Facts, ProductFacts, Progress, Refusal};
use crate::api::SHAKEN_STIR_POLICY_SID;
use crate::twilio::{
    AccountFilter, AccountStatus, BundleFilter, TrustHub, TrustProduct, TwilioError,
};

/// Reads everything [`super::evaluate`] needs. Stops early, with what it has, when the
/// credentials are refused or the parent account is not active.
pub async fn gather(
    client: &dyn TrustHub,
    auth: AuthKind,
    now: DateTime<Utc>,
    progress: &dyn Progress,
    parallel: usize,
) -> Result<Facts, TwilioError> {
    let parallel = parallel.max(1);
    let mut facts = Facts {
        now,
        account_sid: client.account_sid().to_owned(),
        auth: Some(auth),
        ..Facts::default()
    };
    progress.step("checking the credentials");
    match client.fetch_account(&facts.account_sid).await {
        Ok(account) => facts.parent = Some(account),
        Err(e) if matches!(e.http_status(), Some(401 | 403)) => {
            facts.refused = Some(refusal(&e));
            return Ok(facts);
        }
        Err(e) => return Err(e),
    }
    if facts.parent.as_ref().and_then(|p| p.status.as_ref()) != Some(&AccountStatus::Active) {
        return Ok(facts);
    }
    progress.step("listing subaccounts");
    facts.subaccounts = client
        .list_accounts(&AccountFilter::default())
        .await?
        .into_iter()
        .filter(|a| a.sid.as_deref() != Some(facts.account_sid.as_str()))
        .collect();
    progress.step("listing business profiles");
    facts.profiles = client
        .list_customer_profiles(&BundleFilter::default())
        .await?;
    progress.step("looking up the SHAKEN/STIR policy");
    facts.policy_checked = true;
    facts.policy = match client.fetch_policy(SHAKEN_STIR_POLICY_SID).await {
        Ok(policy) => Some(policy),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    if facts.policy.is_some() {
        facts.products = products(client, progress, parallel).await?;
    }
    if let Some(sid) = primary_profile(&facts.profiles, now).and_then(|p| p.sid.clone()) {
        progress.step("listing the profile's numbers");
        facts.profile_numbers = client
            .list_customer_profile_channel_endpoint_assignments(&sid, None)
            .await?
            .into_iter()
            .filter_map(|a| a.channel_endpoint_sid)
            .collect();
    }
    facts.numbers = numbers(client, &facts, progress, parallel).await?;
    Ok(facts)
}

fn refusal(e: &TwilioError) -> Refusal {
    let (code, message) = match e {
        TwilioError::Api { body, .. } => (body.code, body.message.clone()),
        _ => (None, None),
    };
    Refusal {
        status: e.http_status().unwrap_or_default(),
        code,
        message,
    }
}

/// Every SHAKEN/STIR product with its entity and number assignments.
async fn products(
    client: &dyn TrustHub,
    progress: &dyn Progress,
    parallel: usize,
) -> Result<Vec<ProductFacts>, TwilioError> {
    progress.step("listing SHAKEN/STIR trust products");
    let filter = BundleFilter {
        policy_sid: Some(SHAKEN_STIR_POLICY_SID.to_owned()),
        ..BundleFilter::default()
    };
    let found = client.list_trust_products(&filter).await?;
    let total = found.len();
    stream::iter(found.into_iter().enumerate())
        .map(|(i, product)| async move {
            progress.step(&format!("reading trust product {}/{total}", i + 1));
            product_facts(client, product).await
        })
        .buffered(parallel)
        .try_collect()
        .await
}

async fn product_facts(
    client: &dyn TrustHub,
    product: TrustProduct,
) -> Result<ProductFacts, TwilioError> {
    let Some(sid) = product.sid.clone() else {
        return Ok(ProductFacts {
            product,
            ..ProductFacts::default()
        });
    };
    let (entities, numbers) = tokio::try_join!(
        client.list_trust_product_entity_assignments(&sid),
        client.list_trust_product_channel_endpoint_assignments(&sid, None),
    )?;
    Ok(ProductFacts {
        product,
        entities: entities.into_iter().filter_map(|e| e.object_sid).collect(),
        numbers: numbers
            .into_iter()
            .filter_map(|a| a.channel_endpoint_sid)
            .collect(),
    })
}

/// The numbers of the parent and of every subaccount that is not closed (a closed account's
/// numbers are released).
async fn numbers(
    client: &dyn TrustHub,
    facts: &Facts,
    progress: &dyn Progress,
    parallel: usize,
) -> Result<Vec<AccountNumbers>, TwilioError> {
    let accounts: Vec<String> = std::iter::once(facts.account_sid.clone())
        .chain(
            facts
                .subaccounts
                .iter()
                .filter(|a| a.status.as_ref() != Some(&AccountStatus::Closed))
                .filter_map(|a| a.sid.clone()),
        )
        .collect();
    let total = accounts.len();
    stream::iter(accounts.into_iter().enumerate())
        .map(|(i, account_sid)| async move {
            progress.step(&format!(
                "listing numbers of account {}/{total} ({account_sid})",
                i + 1
            ));
            let numbers = client
                .list_incoming_phone_numbers(&account_sid, None)
                .await?;
            Ok(AccountNumbers {
                account_sid,
                numbers,
            })
        })
        .buffered(parallel)
        .try_collect()
        .await
}
