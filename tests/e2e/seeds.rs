//! Simulator seeds shared by tests of Twilio acting outside the cluster: a second approved
//! profile (a reseller's Secondary profile) and a SHAKEN/STIR product that no object made.

use trusthub_sim::{
    BundleStatus, SECONDARY_PROFILE_POLICY, SHAKEN_STIR_POLICY, SeedProfile, SeedTrustProduct,
};

/// A second, approved Business Profile of the parent account.
pub const OTHER_PROFILE: &str = "BUbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2";
/// The SHAKEN/STIR Trust Product Twilio (or someone in the Console) made.
pub const TWILIO_PRODUCT: &str = "BUcccccccccccccccccccccccccccccccc";

/// [`OTHER_PROFILE`], approved, with no numbers of its own.
pub fn other_profile() -> SeedProfile {
    SeedProfile {
        sid: OTHER_PROFILE.into(),
        account_sid: None,
        friendly_name: "Acme reseller profile".into(),
        email: "reseller@acme.example".into(),
        policy_sid: SECONDARY_PROFILE_POLICY.into(),
        status: BundleStatus::TwilioApproved,
        phone_numbers: Vec::new(),
    }
}

/// [`TWILIO_PRODUCT`], approved, attached to `profile` and to `numbers`.
pub fn twilio_product(profile: &str, numbers: &[&str]) -> SeedTrustProduct {
    SeedTrustProduct {
        sid: TWILIO_PRODUCT.into(),
        account_sid: None,
        friendly_name: "SHAKEN/STIR (automatic)".into(),
        email: "compliance@acme.example".into(),
        policy_sid: SHAKEN_STIR_POLICY.into(),
        status: BundleStatus::TwilioApproved,
        business_profile: Some(profile.into()),
        phone_numbers: numbers.iter().map(|n| n.to_string()).collect(),
    }
}
