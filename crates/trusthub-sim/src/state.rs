//! The in-memory state: accounts, numbers, profiles, trust products, assignments,
//! evaluations. Kept in insertion order (lists come back oldest first, as with Twilio's
//! default ordering). Mutations that enforce Twilio's rules live in [`crate::rules`].
//!
//! Numbers and channel endpoint assignments (tens of thousands at scale) live in
//! [`Table`]s with indexes by account, bundle, (bundle, endpoint) and endpoint, so that a
//! request costs its page or a lookup, never a scan of every number or assignment. The
//! indexes are private and kept up to date by the mutators here; the smaller collections
//! (accounts, bundles) are plain `Vec`s with a SID → position hint checked on use.

use std::collections::HashMap;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::model::{
    Account, Bundle, BundleKind, ChannelAssignment, EntityAssignment, Evaluation, PhoneNumber,
    friendly_phone,
};
use crate::seed::{ApiKeyKind, Seed, SeedApiKey};
use crate::table::Table;

/// Who made a request (after Basic authentication).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The account whose Trust Hub the request acts on.
    pub account_sid: String,
    /// `Some` when authenticated with an API key.
    pub key_kind: Option<ApiKeyKind>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "StateData")]
pub struct State {
    pub accounts: Vec<Account>,
    pub api_keys: Vec<SeedApiKey>,
    numbers: Table<PhoneNumber>,
    pub bundles: Vec<Bundle>,
    channel_assignments: Table<ChannelAssignment>,
    pub entity_assignments: Vec<EntityAssignment>,
    pub evaluations: Vec<Evaluation>,
    /// How long an approval lasts (`valid_until` = approval + this); `None`: 365 days.
    #[serde(skip)]
    pub approval_validity: Option<chrono::Duration>,
    #[serde(skip)]
    index: Index,
}

/// The serialised form of [`State`] (what `GET /_sim/state` returns); indexes are rebuilt
/// when it is read back.
#[derive(Deserialize)]
struct StateData {
    accounts: Vec<Account>,
    api_keys: Vec<SeedApiKey>,
    numbers: Vec<PhoneNumber>,
    bundles: Vec<Bundle>,
    channel_assignments: Vec<ChannelAssignment>,
    entity_assignments: Vec<EntityAssignment>,
    evaluations: Vec<Evaluation>,
}

impl From<StateData> for State {
    fn from(data: StateData) -> State {
        let mut state = State {
            api_keys: data.api_keys,
            entity_assignments: data.entity_assignments,
            evaluations: data.evaluations,
            ..State::default()
        };
        data.accounts
            .into_iter()
            .for_each(|a| state.push_account(a));
        data.bundles.into_iter().for_each(|b| state.push_bundle(b));
        data.numbers
            .into_iter()
            .for_each(|n| state.insert_number(n));
        data.channel_assignments
            .into_iter()
            .for_each(|a| state.insert_channel(a));
        state
    }
}

/// Lookups derived from the collections (never serialised, equal whenever the data is).
#[derive(Clone, Default)]
struct Index {
    /// Account SID → position in `accounts` (accounts are never removed).
    accounts: HashMap<String, usize>,
    /// Bundle SID → position in `bundles` (rebuilt when a bundle is removed).
    bundles: HashMap<String, usize>,
    /// Account SID → its number SIDs, oldest first.
    numbers_by_account: HashMap<String, Vec<String>>,
    /// E.164 → number SID.
    number_by_e164: HashMap<String, String>,
    /// Bundle SID → its channel assignment SIDs, oldest first.
    channels_by_bundle: HashMap<String, Vec<String>>,
    /// (bundle SID, endpoint SID) → assignment SID.
    channel_by_pair: HashMap<(String, String), String>,
    /// Endpoint (number) SID → assignment SIDs (of any bundle).
    channels_by_endpoint: HashMap<String, Vec<String>>,
}

impl PartialEq for Index {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Index")
    }
}

/// Remove one `sid` from an index list (dropping the list when it empties).
fn unlist(map: &mut HashMap<String, Vec<String>>, key: &str, sid: &str) {
    if let Some(list) = map.get_mut(key) {
        if let Some(at) = list.iter().rposition(|s| s == sid) {
            list.remove(at);
        }
        if list.is_empty() {
            map.remove(key);
        }
    }
}

impl State {
    /// `valid_until` of an approval granted at `now`.
    pub fn approved_until(&self, now: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
        now + self
            .approval_validity
            .unwrap_or_else(|| chrono::Duration::days(365))
    }

    /// The seeded state, its approvals lasting `approval_validity` (`None`: 365 days).
    pub fn from_seed_with(seed: &Seed, approval_validity: Option<chrono::Duration>) -> State {
        let mut state = State::from_seed(seed);
        state.approval_validity = approval_validity;
        let now = Utc::now();
        let until = state.approved_until(now);
        for bundle in &mut state.bundles {
            if bundle.valid_until.is_some() {
                bundle.valid_until = Some(until);
            }
        }
        state
    }

    pub fn from_seed(seed: &Seed) -> State {
        let now = Utc::now();
        let mut state = State {
            api_keys: seed.api_keys.clone(),
            ..State::default()
        };
        for account in seed.accounts() {
            let is_parent = account.sid == seed.parent.sid;
            state.push_account(Account {
                sid: account.sid.clone(),
                auth_token: account.auth_token.clone(),
                friendly_name: account.friendly_name.clone(),
                parent_sid: (!is_parent).then(|| seed.parent.sid.clone()),
                date_created: now,
                status: account.status,
            });
            for number in &account.numbers {
                state.insert_number(PhoneNumber {
                    sid: number.sid.clone(),
                    account_sid: account.sid.clone(),
                    phone_number: number.phone_number.clone(),
                    friendly_name: number
                        .friendly_name
                        .clone()
                        .unwrap_or_else(|| friendly_phone(&number.phone_number)),
                    date_created: now,
                    voice: number.voice,
                    sms: number.sms,
                });
            }
        }
        for profile in &seed.customer_profiles {
            let account_sid = profile
                .account_sid
                .clone()
                .unwrap_or_else(|| seed.parent.sid.clone());
            let approved = profile.status == crate::model::BundleStatus::TwilioApproved;
            state.push_bundle(Bundle {
                kind: BundleKind::CustomerProfile,
                sid: profile.sid.clone(),
                account_sid: account_sid.clone(),
                policy_sid: profile.policy_sid.clone(),
                friendly_name: profile.friendly_name.clone(),
                email: profile.email.clone(),
                status: profile.status,
                status_callback: None,
                valid_until: approved.then(|| now + chrono::Duration::days(365)),
                errors: None,
                date_created: now,
                date_updated: now,
                submission: 0,
            });
            for number in &profile.phone_numbers {
                state.insert_channel(ChannelAssignment {
                    parent_kind: BundleKind::CustomerProfile,
                    sid: crate::model::new_sid("RA"),
                    bundle_sid: profile.sid.clone(),
                    account_sid: account_sid.clone(),
                    channel_endpoint_type: "phone-number".into(),
                    channel_endpoint_sid: number.clone(),
                    date_created: now,
                });
            }
        }
        state.seed_trust_products(seed, now);
        state
    }

    /// The seed's trust products, with their profile and number assignments.
    fn seed_trust_products(&mut self, seed: &Seed, now: chrono::DateTime<Utc>) {
        for product in &seed.trust_products {
            let account_sid = product
                .account_sid
                .clone()
                .unwrap_or_else(|| seed.parent.sid.clone());
            let approved = product.status == crate::model::BundleStatus::TwilioApproved;
            self.push_bundle(Bundle {
                kind: BundleKind::TrustProduct,
                sid: product.sid.clone(),
                account_sid: account_sid.clone(),
                policy_sid: product.policy_sid.clone(),
                friendly_name: product.friendly_name.clone(),
                email: product.email.clone(),
                status: product.status,
                status_callback: None,
                valid_until: approved.then(|| now + chrono::Duration::days(365)),
                errors: None,
                date_created: now,
                date_updated: now,
                submission: 0,
            });
            if let Some(profile) = &product.business_profile {
                self.entity_assignments.push(EntityAssignment {
                    parent_kind: BundleKind::TrustProduct,
                    sid: crate::model::new_sid("BV"),
                    bundle_sid: product.sid.clone(),
                    account_sid: account_sid.clone(),
                    object_sid: profile.clone(),
                    date_created: now,
                });
            }
            for number in &product.phone_numbers {
                self.insert_channel(ChannelAssignment {
                    parent_kind: BundleKind::TrustProduct,
                    sid: crate::model::new_sid("RA"),
                    bundle_sid: product.sid.clone(),
                    account_sid: account_sid.clone(),
                    channel_endpoint_type: "phone-number".into(),
                    channel_endpoint_sid: number.clone(),
                    date_created: now,
                });
            }
        }
    }

    /// Check Basic credentials: account SID + auth token, or API key SID + secret.
    pub fn authenticate(&self, username: &str, password: &str) -> Option<Caller> {
        if username.starts_with("AC") {
            let account = self.account(username)?;
            return constant_time_eq(account.auth_token.expose(), password).then(|| Caller {
                account_sid: account.sid.clone(),
                key_kind: None,
            });
        }
        let key = self.api_keys.iter().find(|k| k.sid == username)?;
        constant_time_eq(key.secret.expose(), password).then(|| Caller {
            account_sid: key.account_sid.clone(),
            key_kind: Some(key.kind),
        })
    }

    pub fn account(&self, sid: &str) -> Option<&Account> {
        match self.index.accounts.get(sid) {
            Some(&at) if self.accounts.get(at).is_some_and(|a| a.sid == sid) => {
                self.accounts.get(at)
            }
            // Not indexed (e.g. pushed onto the public `Vec` directly): look it up.
            _ => self.accounts.iter().find(|a| a.sid == sid),
        }
    }

    pub fn account_mut(&mut self, sid: &str) -> Option<&mut Account> {
        match self.index.accounts.get(sid) {
            Some(&at) if self.accounts.get(at).is_some_and(|a| a.sid == sid) => {
                self.accounts.get_mut(at)
            }
            _ => self.accounts.iter_mut().find(|a| a.sid == sid),
        }
    }

    /// Append an account (parent or subaccount).
    pub fn push_account(&mut self, account: Account) {
        self.index
            .accounts
            .insert(account.sid.clone(), self.accounts.len());
        self.accounts.push(account);
    }

    /// Whether `caller_account` may use the API 2010 resources of `target`: its own, or a
    /// subaccount's when the caller is that subaccount's parent.
    pub fn can_access_account(&self, caller_account: &str, target: &str) -> bool {
        self.account(target).is_some_and(|a| {
            a.sid == caller_account || a.parent_sid.as_deref() == Some(caller_account)
        })
    }

    /// All numbers, oldest first.
    pub fn numbers(&self) -> &Table<PhoneNumber> {
        &self.numbers
    }

    pub fn number(&self, sid: &str) -> Option<&PhoneNumber> {
        self.numbers.get(sid)
    }

    /// The number with this E.164 value, in any account.
    pub fn number_by_e164(&self, phone_number: &str) -> Option<&PhoneNumber> {
        self.index
            .number_by_e164
            .get(phone_number)
            .and_then(|sid| self.numbers.get(sid))
    }

    /// SIDs of an account's numbers, oldest first.
    pub fn number_sids_of(&self, account_sid: &str) -> &[String] {
        self.index
            .numbers_by_account
            .get(account_sid)
            .map_or(&[], Vec::as_slice)
    }

    /// An account's numbers, oldest first.
    pub fn numbers_of(&self, account_sid: &str) -> impl Iterator<Item = &PhoneNumber> {
        self.number_sids_of(account_sid)
            .iter()
            .filter_map(|sid| self.numbers.get(sid))
    }

    /// Add a number (its SID and E.164 value must be new; callers check).
    pub fn insert_number(&mut self, number: PhoneNumber) {
        self.index
            .numbers_by_account
            .entry(number.account_sid.clone())
            .or_default()
            .push(number.sid.clone());
        self.index
            .number_by_e164
            .insert(number.phone_number.clone(), number.sid.clone());
        self.numbers.push(number);
    }

    /// Remove a number and every channel endpoint assignment of it (profiles and trust
    /// products); returns the number and the assignments removed, or `None` if unknown.
    pub fn remove_number(&mut self, sid: &str) -> Option<(PhoneNumber, Vec<ChannelAssignment>)> {
        let number = self.numbers.remove(sid)?;
        unlist(&mut self.index.numbers_by_account, &number.account_sid, sid);
        if self
            .index
            .number_by_e164
            .get(&number.phone_number)
            .map(String::as_str)
            == Some(sid)
        {
            self.index.number_by_e164.remove(&number.phone_number);
        }
        let assignment_sids = self
            .index
            .channels_by_endpoint
            .get(sid)
            .cloned()
            .unwrap_or_default();
        let removed = assignment_sids
            .iter()
            .filter_map(|ra| self.remove_channel(ra))
            .collect();
        Some((number, removed))
    }

    /// A number owned by `account_sid` or by one of its subaccounts.
    pub fn family_number(&self, account_sid: &str, number_sid: &str) -> Option<&PhoneNumber> {
        self.numbers
            .get(number_sid)
            .filter(|n| self.can_access_account(account_sid, &n.account_sid))
    }

    fn bundle_position(&self, sid: &str) -> Option<usize> {
        match self.index.bundles.get(sid) {
            Some(&at) if self.bundles.get(at).is_some_and(|b| b.sid == sid) => Some(at),
            // Not indexed (pushed onto the public `Vec` directly): look it up.
            _ => self.bundles.iter().position(|b| b.sid == sid),
        }
    }

    /// Any bundle by SID.
    pub fn bundle_any(&self, sid: &str) -> Option<&Bundle> {
        self.bundle_position(sid).map(|at| &self.bundles[at])
    }

    /// The bundle of this kind owned by `account_sid`, or 404 with the request path.
    pub fn bundle(
        &self,
        kind: BundleKind,
        account_sid: &str,
        sid: &str,
    ) -> Result<&Bundle, ApiError> {
        self.bundle_any(sid)
            .filter(|b| b.kind == kind && b.account_sid == account_sid)
            .ok_or_else(|| ApiError::not_found(&format!("/v1/{}/{sid}", kind.collection())))
    }

    pub fn bundle_mut(
        &mut self,
        kind: BundleKind,
        account_sid: &str,
        sid: &str,
    ) -> Result<&mut Bundle, ApiError> {
        self.bundle_any_mut(sid)
            .filter(|b| b.kind == kind && b.account_sid == account_sid)
            .ok_or_else(|| ApiError::not_found(&format!("/v1/{}/{sid}", kind.collection())))
    }

    /// Any bundle by SID (admin actions, vetting).
    pub fn bundle_any_mut(&mut self, sid: &str) -> Option<&mut Bundle> {
        self.bundle_position(sid).map(|at| &mut self.bundles[at])
    }

    /// Append a profile or trust product.
    pub fn push_bundle(&mut self, bundle: Bundle) {
        self.index
            .bundles
            .insert(bundle.sid.clone(), self.bundles.len());
        self.bundles.push(bundle);
    }

    /// Remove a bundle with its channel and entity assignments and its evaluations.
    pub fn remove_bundle(&mut self, sid: &str) {
        self.bundles.retain(|b| b.sid != sid);
        self.index.bundles = self
            .bundles
            .iter()
            .enumerate()
            .map(|(at, b)| (b.sid.clone(), at))
            .collect();
        for ra in self.channel_sids_of(sid).to_vec() {
            self.remove_channel(&ra);
        }
        self.entity_assignments.retain(|a| a.bundle_sid != sid);
        self.evaluations.retain(|e| e.bundle_sid != sid);
    }

    /// All channel endpoint assignments (profiles and trust products), oldest first.
    pub fn channel_assignments(&self) -> &Table<ChannelAssignment> {
        &self.channel_assignments
    }

    pub fn channel_assignment(&self, sid: &str) -> Option<&ChannelAssignment> {
        self.channel_assignments.get(sid)
    }

    /// SIDs of a bundle's channel assignments, oldest first.
    pub fn channel_sids_of(&self, bundle_sid: &str) -> &[String] {
        self.index
            .channels_by_bundle
            .get(bundle_sid)
            .map_or(&[], Vec::as_slice)
    }

    pub fn channel_assignments_of(
        &self,
        bundle_sid: &str,
    ) -> impl Iterator<Item = &ChannelAssignment> {
        self.channel_sids_of(bundle_sid)
            .iter()
            .filter_map(|sid| self.channel_assignments.get(sid))
    }

    /// The assignment of `endpoint_sid` to `bundle_sid`, if any.
    pub fn channel_assignment_for(
        &self,
        bundle_sid: &str,
        endpoint_sid: &str,
    ) -> Option<&ChannelAssignment> {
        self.index
            .channel_by_pair
            .get(&(bundle_sid.to_string(), endpoint_sid.to_string()))
            .and_then(|sid| self.channel_assignments.get(sid))
    }

    /// Every assignment of a number (to any profile or trust product).
    pub fn channel_assignments_on(
        &self,
        endpoint_sid: &str,
    ) -> impl Iterator<Item = &ChannelAssignment> {
        self.index
            .channels_by_endpoint
            .get(endpoint_sid)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(|sid| self.channel_assignments.get(sid))
    }

    /// Add a channel assignment (its SID must be new).
    pub fn insert_channel(&mut self, assignment: ChannelAssignment) {
        let index = &mut self.index;
        index
            .channels_by_bundle
            .entry(assignment.bundle_sid.clone())
            .or_default()
            .push(assignment.sid.clone());
        index.channel_by_pair.insert(
            (
                assignment.bundle_sid.clone(),
                assignment.channel_endpoint_sid.clone(),
            ),
            assignment.sid.clone(),
        );
        index
            .channels_by_endpoint
            .entry(assignment.channel_endpoint_sid.clone())
            .or_default()
            .push(assignment.sid.clone());
        self.channel_assignments.push(assignment);
    }

    /// Remove a channel assignment by SID.
    pub fn remove_channel(&mut self, sid: &str) -> Option<ChannelAssignment> {
        let removed = self.channel_assignments.remove(sid)?;
        let index = &mut self.index;
        unlist(&mut index.channels_by_bundle, &removed.bundle_sid, sid);
        unlist(
            &mut index.channels_by_endpoint,
            &removed.channel_endpoint_sid,
            sid,
        );
        let pair = (
            removed.bundle_sid.clone(),
            removed.channel_endpoint_sid.clone(),
        );
        if index.channel_by_pair.get(&pair).map(String::as_str) == Some(sid) {
            index.channel_by_pair.remove(&pair);
        }
        Some(removed)
    }

    pub fn entity_assignments_of(
        &self,
        bundle_sid: &str,
    ) -> impl Iterator<Item = &EntityAssignment> {
        self.entity_assignments
            .iter()
            .filter(move |a| a.bundle_sid == bundle_sid)
    }

    /// Customer profiles linked to a trust product through its EntityAssignments.
    pub fn linked_profiles(&self, trust_product_sid: &str) -> Vec<&Bundle> {
        self.entity_assignments_of(trust_product_sid)
            .filter_map(|e| {
                self.bundle_any(&e.object_sid)
                    .filter(|b| b.kind == BundleKind::CustomerProfile)
            })
            .collect()
    }
}

/// Compare secrets without an early exit on the first differing byte.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
