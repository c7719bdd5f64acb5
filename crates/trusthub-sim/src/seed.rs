//! The initial state of the simulator, loaded from YAML or JSON.
//!
//! A seed describes one parent account (with its auth token and phone numbers), its API keys,
//! its subaccounts (each with auth token and numbers) and the customer profiles that already
//! exist (normally the Primary Business Profile, which Twilio only lets you create in the
//! Console). The default seed (`default_seed.yaml`, compiled into the binary) is documented
//! inline in that file.
//!
//! A seed may also list trust products that already exist (e.g. one Twilio made by itself,
//! attached to the Primary profile), give an account the status `suspended` or `closed`, and
//! name policies the simulator should answer 404 for (`absent_policies`).
//!
//! Not modelled: EndUsers, SupportingDocuments, Addresses.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::model::{
    AccountStatus, BundleStatus, PRIMARY_PROFILE_POLICY, SHAKEN_STIR_POLICY, valid_sid,
};

/// The default seed, shipped with the binary.
pub const DEFAULT_SEED_YAML: &str = include_str!("default_seed.yaml");

/// A credential (auth token or API key secret). Its `Debug` output is redacted so that it
/// never ends up in logs or panic messages.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret value; only for building credentials, never for logging.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Seed {
    pub parent: SeedAccount,
    #[serde(default)]
    pub api_keys: Vec<SeedApiKey>,
    #[serde(default)]
    pub subaccounts: Vec<SeedAccount>,
    #[serde(default)]
    pub customer_profiles: Vec<SeedProfile>,
    /// SHAKEN/STIR (or other) trust products that exist before the test starts, e.g. one
    /// Twilio made by itself for an approved Primary profile.
    #[serde(default)]
    pub trust_products: Vec<SeedTrustProduct>,
    /// Policy SIDs this simulator does not serve (`GET /v1/Policies/{Sid}` answers 404 and
    /// the list leaves them out), to model a policy that is missing.
    #[serde(default)]
    pub absent_policies: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedAccount {
    pub sid: String,
    pub auth_token: Secret,
    pub friendly_name: String,
    #[serde(default)]
    pub numbers: Vec<SeedNumber>,
    /// `active` (default), `suspended` or `closed`.
    #[serde(default)]
    pub status: AccountStatus,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedNumber {
    pub sid: String,
    /// E.164, e.g. `+15005550006`.
    pub phone_number: String,
    /// Defaults to the phone number formatted as `(500) 555-0006`.
    #[serde(default)]
    pub friendly_name: Option<String>,
    /// `capabilities.voice` (default `true`); `false` seeds a number that cannot carry calls.
    #[serde(default = "yes")]
    pub voice: bool,
    /// `capabilities.sms` and `mms` (default `true`).
    #[serde(default = "yes")]
    pub sms: bool,
}

fn yes() -> bool {
    true
}

impl SeedNumber {
    /// A voice- and SMS-capable number with the default friendly name.
    pub fn new(sid: impl Into<String>, phone_number: impl Into<String>) -> SeedNumber {
        SeedNumber {
            sid: sid.into(),
            phone_number: phone_number.into(),
            friendly_name: None,
            voice: true,
            sms: true,
        }
    }
}

/// What [`Seed::generate`] adds: `subaccounts` subaccounts holding `numbers` numbers between
/// them, dealt round-robin (number `i` goes to subaccount `i % subaccounts`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeedScale {
    pub subaccounts: usize,
    /// Numbers in all generated subaccounts together.
    pub numbers: usize,
    /// When `n > 0`, every `n`-th number (`i % n == n - 1`) has no voice capability.
    pub non_voice_every: usize,
}

impl SeedScale {
    /// `numbers_per_subaccount × subaccounts` numbers, all voice-capable.
    pub fn numbers_per_subaccount(subaccounts: usize, numbers_per_subaccount: usize) -> SeedScale {
        SeedScale {
            subaccounts,
            numbers: subaccounts * numbers_per_subaccount,
            non_voice_every: 0,
        }
    }
}

/// SID of generated subaccount `s` (see [`Seed::generate`]).
pub fn generated_subaccount_sid(s: usize) -> String {
    format!("AC{:032x}", 0xd000_0000_u64 + s as u64)
}

/// Auth token of generated subaccount `s`.
pub fn generated_subaccount_token(s: usize) -> Secret {
    Secret::new(format!("generatedsubaccounttoken{s:010}"))
}

/// SID of generated number `i`.
pub fn generated_number_sid(i: usize) -> String {
    format!("PN{:032x}", 0xd000_0000_u64 + i as u64)
}

/// E.164 of generated number `i`: `+1666` and seven digits (up to 10,000,000 numbers).
pub fn generated_phone_number(i: usize) -> String {
    format!("+1666{i:07}")
}

/// Kind of API key, as in the Console: a `main` key has the power of the auth token, a
/// `standard` key can do everything except the `/Accounts` resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyKind {
    Main,
    #[default]
    Standard,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedApiKey {
    /// `SK…`
    pub sid: String,
    pub secret: Secret,
    /// The account the key belongs to (parent or a subaccount).
    pub account_sid: String,
    #[serde(default)]
    pub kind: ApiKeyKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedProfile {
    /// `BU…`
    pub sid: String,
    /// Owning account; defaults to the parent.
    #[serde(default)]
    pub account_sid: Option<String>,
    pub friendly_name: String,
    pub email: String,
    /// Defaults to the Primary Customer Profile policy.
    #[serde(default = "default_profile_policy")]
    pub policy_sid: String,
    pub status: BundleStatus,
    /// `PN…` SIDs already assigned to the profile (ChannelEndpointAssignments).
    #[serde(default)]
    pub phone_numbers: Vec<String>,
}

/// A trust product present from the start (owned by the parent unless `account_sid` says
/// otherwise), with its EntityAssignment to `business_profile` and its numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedTrustProduct {
    /// `BU…`
    pub sid: String,
    #[serde(default)]
    pub account_sid: Option<String>,
    pub friendly_name: String,
    pub email: String,
    /// Defaults to the SHAKEN/STIR policy.
    #[serde(default = "default_product_policy")]
    pub policy_sid: String,
    pub status: BundleStatus,
    /// The profile (`BU…`, one of `customer_profiles`) attached through an EntityAssignment.
    #[serde(default)]
    pub business_profile: Option<String>,
    /// `PN…` SIDs on the product (ChannelEndpointAssignments).
    #[serde(default)]
    pub phone_numbers: Vec<String>,
}

fn default_product_policy() -> String {
    SHAKEN_STIR_POLICY.to_string()
}

fn default_profile_policy() -> String {
    PRIMARY_PROFILE_POLICY.to_string()
}

impl Seed {
    /// The seed compiled into the binary (see `default_seed.yaml`).
    pub fn default_seed() -> Seed {
        // The file is part of the crate and checked by a unit test, so this cannot fail at run time.
        Seed::from_yaml(DEFAULT_SEED_YAML).expect("default_seed.yaml is valid")
    }

    /// Parse YAML (JSON is valid YAML, so this reads both) and validate.
    pub fn from_yaml(text: &str) -> Result<Seed, SimError> {
        let seed: Seed =
            serde_yaml::from_str(text).map_err(|e| SimError::SeedParse(e.to_string()))?;
        seed.validate()?;
        Ok(seed)
    }

    pub fn from_file(path: &Path) -> Result<Seed, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::SeedFile {
            path: path.to_path_buf(),
            source,
        })?;
        Seed::from_yaml(&text)
    }

    /// The default seed plus the generated subaccounts and numbers of `scale` (see
    /// [`Seed::add_generated`]).
    pub fn generate(scale: SeedScale) -> Seed {
        let mut seed = Seed::default_seed();
        seed.add_generated(scale);
        seed
    }

    /// Add `scale.subaccounts` subaccounts ([`generated_subaccount_sid`], friendly name
    /// `Generated subaccount {s}`) and `scale.numbers` numbers ([`generated_number_sid`],
    /// [`generated_phone_number`]) dealt round-robin over them. Deterministic; linear in the
    /// number of numbers. Generated SIDs and numbers do not collide with the default seed's.
    pub fn add_generated(&mut self, scale: SeedScale) {
        if scale.subaccounts == 0 {
            return;
        }
        let first = self.subaccounts.len();
        let per = scale.numbers.div_ceil(scale.subaccounts);
        self.subaccounts
            .extend((0..scale.subaccounts).map(|s| SeedAccount {
                sid: generated_subaccount_sid(s),
                auth_token: generated_subaccount_token(s),
                friendly_name: format!("Generated subaccount {s}"),
                numbers: Vec::with_capacity(per),
                status: AccountStatus::Active,
            }));
        for i in 0..scale.numbers {
            let voice = scale.non_voice_every == 0
                || i % scale.non_voice_every != scale.non_voice_every - 1;
            self.subaccounts[first + i % scale.subaccounts]
                .numbers
                .push(SeedNumber {
                    voice,
                    ..SeedNumber::new(generated_number_sid(i), generated_phone_number(i))
                });
        }
    }

    /// All accounts, parent first.
    pub fn accounts(&self) -> impl Iterator<Item = &SeedAccount> {
        std::iter::once(&self.parent).chain(self.subaccounts.iter())
    }

    /// Check SID shapes, uniqueness and references.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::SeedInvalid(m));
        let mut sids = HashSet::new();
        let mut numbers = HashSet::new();
        let mut e164 = HashSet::new();
        for account in self.accounts() {
            if !valid_sid(&account.sid, "AC") {
                return bad(format!("account SID {} is not AC + 32 hex", account.sid));
            }
            if account.auth_token.expose().is_empty() {
                return bad(format!("account {} has an empty auth_token", account.sid));
            }
            if !sids.insert(account.sid.clone()) {
                return bad(format!("duplicate SID {}", account.sid));
            }
            for number in &account.numbers {
                if !valid_sid(&number.sid, "PN") {
                    return bad(format!("number SID {} is not PN + 32 hex", number.sid));
                }
                if !crate::model::valid_e164(&number.phone_number) {
                    return bad(format!("{} is not E.164", number.phone_number));
                }
                if !e164.insert(number.phone_number.as_str()) {
                    return bad(format!("duplicate phone number {}", number.phone_number));
                }
                if !sids.insert(number.sid.clone()) {
                    return bad(format!("duplicate SID {}", number.sid));
                }
                numbers.insert(number.sid.clone());
            }
        }
        for key in &self.api_keys {
            if !valid_sid(&key.sid, "SK") {
                return bad(format!("API key SID {} is not SK + 32 hex", key.sid));
            }
            if !self.accounts().any(|a| a.sid == key.account_sid) {
                return bad(format!("API key {} names unknown account", key.sid));
            }
            if !sids.insert(key.sid.clone()) {
                return bad(format!("duplicate SID {}", key.sid));
            }
        }
        for profile in &self.customer_profiles {
            if !valid_sid(&profile.sid, "BU") || !valid_sid(&profile.policy_sid, "RN") {
                return bad(format!("profile {} has a malformed SID", profile.sid));
            }
            if let Some(owner) = &profile.account_sid
                && !self.accounts().any(|a| &a.sid == owner)
            {
                return bad(format!("profile {} names unknown account", profile.sid));
            }
            if !sids.insert(profile.sid.clone()) {
                return bad(format!("duplicate SID {}", profile.sid));
            }
            if let Some(pn) = profile.phone_numbers.iter().find(|n| !numbers.contains(*n)) {
                return bad(format!("profile {} lists unknown number {pn}", profile.sid));
            }
        }
        self.validate_trust_products(&mut sids, &numbers)
    }

    fn validate_trust_products(
        &self,
        sids: &mut HashSet<String>,
        numbers: &HashSet<String>,
    ) -> Result<(), SimError> {
        let bad = |msg: String| Err(SimError::SeedInvalid(msg));
        for product in &self.trust_products {
            if !valid_sid(&product.sid, "BU") || !valid_sid(&product.policy_sid, "RN") {
                return bad(format!("trust product {} has a malformed SID", product.sid));
            }
            if let Some(owner) = &product.account_sid
                && !self.accounts().any(|a| &a.sid == owner)
            {
                return bad(format!(
                    "trust product {} names unknown account",
                    product.sid
                ));
            }
            if !sids.insert(product.sid.clone()) {
                return bad(format!("duplicate SID {}", product.sid));
            }
            if let Some(profile) = &product.business_profile
                && !self.customer_profiles.iter().any(|p| &p.sid == profile)
            {
                return bad(format!(
                    "trust product {} names unknown profile",
                    product.sid
                ));
            }
            if let Some(pn) = product.phone_numbers.iter().find(|n| !numbers.contains(*n)) {
                return bad(format!(
                    "trust product {} lists unknown number {pn}",
                    product.sid
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_seed_is_valid_and_has_an_approved_primary_profile() {
        let seed = Seed::from_yaml(DEFAULT_SEED_YAML).unwrap();
        assert_eq!(seed.subaccounts.len(), 2);
        assert_eq!(
            seed.customer_profiles[0].status,
            BundleStatus::TwilioApproved
        );
        assert!(format!("{seed:?}").contains("Secret(***)"));
        assert!(!format!("{seed:?}").contains(seed.parent.auth_token.expose()));
    }

    #[test]
    fn json_seed_is_accepted_and_bad_references_are_refused() {
        let mut seed = Seed::default_seed();
        let json = serde_json::to_string(&seed).unwrap();
        assert_eq!(Seed::from_yaml(&json).unwrap(), seed);
        seed.customer_profiles[0]
            .phone_numbers
            .push("PN00000000000000000000000000000000".into());
        assert!(matches!(seed.validate(), Err(SimError::SeedInvalid(_))));
    }

    #[test]
    fn trust_products_statuses_and_absent_policies_are_seedable() {
        let mut seed = Seed::default_seed();
        seed.subaccounts[1].status = AccountStatus::Suspended;
        seed.absent_policies.push(SHAKEN_STIR_POLICY.into());
        seed.trust_products.push(SeedTrustProduct {
            sid: "BUcccccccccccccccccccccccccccccccc".into(),
            account_sid: None,
            friendly_name: "Made by Twilio".into(),
            email: "x@acme.example".into(),
            policy_sid: SHAKEN_STIR_POLICY.into(),
            status: BundleStatus::TwilioApproved,
            business_profile: Some(seed.customer_profiles[0].sid.clone()),
            phone_numbers: vec![seed.subaccounts[0].numbers[0].sid.clone()],
        });
        let yaml = serde_yaml::to_string(&seed).unwrap();
        assert!(yaml.contains("status: suspended"), "{yaml}");
        assert_eq!(Seed::from_yaml(&yaml).unwrap(), seed);
        let state = crate::State::from_seed(&seed);
        assert_eq!(state.accounts[2].status, AccountStatus::Suspended);
        assert_eq!(
            state
                .linked_profiles("BUcccccccccccccccccccccccccccccccc")
                .len(),
            1
        );
        seed.trust_products[0].business_profile = Some("BUdddddddddddddddddddddddddddddddd".into());
        assert!(matches!(seed.validate(), Err(SimError::SeedInvalid(_))));
    }
}
