//! The in-memory state: accounts, numbers, profiles, trust products, assignments,
//! evaluations. Kept in insertion order (lists come back oldest first, as with Twilio's
//! default ordering). Mutations that enforce Twilio's rules live in [`crate::rules`].

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::model::{
    Account, Bundle, BundleKind, ChannelAssignment, EntityAssignment, Evaluation, PhoneNumber,
    friendly_phone,
};
use crate::seed::{ApiKeyKind, Seed, SeedApiKey};

/// Who made a request (after Basic authentication).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The account whose Trust Hub the request acts on.
    pub account_sid: String,
    /// `Some` when authenticated with an API key.
    pub key_kind: Option<ApiKeyKind>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub accounts: Vec<Account>,
    pub api_keys: Vec<SeedApiKey>,
    pub numbers: Vec<PhoneNumber>,
    pub bundles: Vec<Bundle>,
    pub channel_assignments: Vec<ChannelAssignment>,
    pub entity_assignments: Vec<EntityAssignment>,
    pub evaluations: Vec<Evaluation>,
    /// How long an approval lasts (`valid_until` = approval + this); `None`: 365 days.
    #[serde(skip)]
    pub approval_validity: Option<chrono::Duration>,
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
            state.accounts.push(Account {
                sid: account.sid.clone(),
                auth_token: account.auth_token.clone(),
                friendly_name: account.friendly_name.clone(),
                parent_sid: (!is_parent).then(|| seed.parent.sid.clone()),
                date_created: now,
                status: account.status,
            });
            for number in &account.numbers {
                state.numbers.push(PhoneNumber {
                    sid: number.sid.clone(),
                    account_sid: account.sid.clone(),
                    phone_number: number.phone_number.clone(),
                    friendly_name: number
                        .friendly_name
                        .clone()
                        .unwrap_or_else(|| friendly_phone(&number.phone_number)),
                    date_created: now,
                });
            }
        }
        for profile in &seed.customer_profiles {
            let account_sid = profile
                .account_sid
                .clone()
                .unwrap_or_else(|| seed.parent.sid.clone());
            let approved = profile.status == crate::model::BundleStatus::TwilioApproved;
            state.bundles.push(Bundle {
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
                state.channel_assignments.push(ChannelAssignment {
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
            self.bundles.push(Bundle {
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
                self.channel_assignments.push(ChannelAssignment {
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
            let account = self.accounts.iter().find(|a| a.sid == username)?;
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
        self.accounts.iter().find(|a| a.sid == sid)
    }

    /// Whether `caller_account` may use the API 2010 resources of `target`: its own, or a
    /// subaccount's when the caller is that subaccount's parent.
    pub fn can_access_account(&self, caller_account: &str, target: &str) -> bool {
        self.account(target).is_some_and(|a| {
            a.sid == caller_account || a.parent_sid.as_deref() == Some(caller_account)
        })
    }

    /// A number owned by `account_sid` or by one of its subaccounts.
    pub fn family_number(&self, account_sid: &str, number_sid: &str) -> Option<&PhoneNumber> {
        self.numbers
            .iter()
            .find(|n| n.sid == number_sid && self.can_access_account(account_sid, &n.account_sid))
    }

    /// The bundle of this kind owned by `account_sid`, or 404 with the request path.
    pub fn bundle(
        &self,
        kind: BundleKind,
        account_sid: &str,
        sid: &str,
    ) -> Result<&Bundle, ApiError> {
        self.bundles
            .iter()
            .find(|b| b.kind == kind && b.sid == sid && b.account_sid == account_sid)
            .ok_or_else(|| ApiError::not_found(&format!("/v1/{}/{sid}", kind.collection())))
    }

    pub fn bundle_mut(
        &mut self,
        kind: BundleKind,
        account_sid: &str,
        sid: &str,
    ) -> Result<&mut Bundle, ApiError> {
        self.bundles
            .iter_mut()
            .find(|b| b.kind == kind && b.sid == sid && b.account_sid == account_sid)
            .ok_or_else(|| ApiError::not_found(&format!("/v1/{}/{sid}", kind.collection())))
    }

    /// Any bundle by SID (admin actions, vetting).
    pub fn bundle_any_mut(&mut self, sid: &str) -> Option<&mut Bundle> {
        self.bundles.iter_mut().find(|b| b.sid == sid)
    }

    pub fn channel_assignments_of(
        &self,
        bundle_sid: &str,
    ) -> impl Iterator<Item = &ChannelAssignment> {
        self.channel_assignments
            .iter()
            .filter(move |a| a.bundle_sid == bundle_sid)
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
                self.bundles
                    .iter()
                    .find(|b| b.kind == BundleKind::CustomerProfile && b.sid == e.object_sid)
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
