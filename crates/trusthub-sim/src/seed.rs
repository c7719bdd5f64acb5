//! The initial state of the simulator, loaded from YAML or JSON.
//!
//! A seed describes one parent account (with its auth token and phone numbers), its API keys,
//! its subaccounts (each with auth token and numbers) and the customer profiles that already
//! exist (normally the Primary Business Profile, which Twilio only lets you create in the
//! Console). The default seed (`default_seed.yaml`, compiled into the binary) is documented
//! inline in that file.
//!
//! Not modelled: trust products in the seed (create them over the API), EndUsers,
//! SupportingDocuments, Addresses.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::model::{BundleStatus, PRIMARY_PROFILE_POLICY, valid_sid};

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
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedAccount {
    pub sid: String,
    pub auth_token: Secret,
    pub friendly_name: String,
    #[serde(default)]
    pub numbers: Vec<SeedNumber>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedNumber {
    pub sid: String,
    /// E.164, e.g. `+15005550006`.
    pub phone_number: String,
    /// Defaults to the phone number formatted as `(500) 555-0006`.
    #[serde(default)]
    pub friendly_name: Option<String>,
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

    /// All accounts, parent first.
    pub fn accounts(&self) -> impl Iterator<Item = &SeedAccount> {
        std::iter::once(&self.parent).chain(self.subaccounts.iter())
    }

    /// Check SID shapes, uniqueness and references.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::SeedInvalid(m));
        let mut sids = HashSet::new();
        let mut numbers = HashSet::new();
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
                if !number.phone_number.starts_with('+') {
                    return bad(format!("{} is not E.164", number.phone_number));
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
}
