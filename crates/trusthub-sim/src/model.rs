//! The simulated objects (what the state stores) and their JSON renderings.
//!
//! CustomerProfiles and TrustProducts share one record type, [`Bundle`], told apart by
//! [`BundleKind`] (on the wire both use the `BU` prefix). Assignments of either parent kind
//! are one record type each, with the parent's kind. JSON renderers produce every property
//! the spec schema lists, with `null` where the simulator has no value.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// SHAKEN/STIR Trust Product policy ("static value … same across all accounts").
pub const SHAKEN_STIR_POLICY: &str = "RN7a97559effdf62d00f4298208492a5ea";
/// Secondary Customer Profile (business) policy.
pub const SECONDARY_PROFILE_POLICY: &str = "RNdfbf3fae0e1107f8aded0e7cead80bf5";
/// Primary Customer Profile of type Business (read from the live Policies API by third parties).
pub const PRIMARY_PROFILE_POLICY: &str = "RN6433641899984f951173ef1738c3bdd0";
/// CNAM Trust Product policy.
pub const CNAM_POLICY: &str = "RNf3db3cd1fe25fcfd3c3ded065c8fea53";
/// Starter Customer Profile of type Business.
pub const STARTER_PROFILE_POLICY: &str = "RN806dd6cd175f314e1f96a9727ee271f4";

/// A new SID: prefix + 32 lowercase hex digits.
pub fn new_sid(prefix: &str) -> String {
    format!("{prefix}{:032x}", rand::random::<u128>())
}

/// `XX` + 32 hex, the shape of every SID in both specs.
pub fn valid_sid(sid: &str, prefix: &str) -> bool {
    sid.len() == 34 && sid.starts_with(prefix) && sid[2..].chars().all(|c| c.is_ascii_hexdigit())
}

/// Any two letters + 32 hex (the spec's pattern for `ObjectSid` and `ChannelEndpointSid`).
pub fn valid_any_sid(sid: &str) -> bool {
    sid.len() == 34
        && sid[..2].chars().all(|c| c.is_ascii_alphabetic())
        && sid[2..].chars().all(|c| c.is_ascii_hexdigit())
}

/// `+` and 2 to 15 digits (E.164 allows at most 15).
pub fn valid_e164(number: &str) -> bool {
    number
        .strip_prefix('+')
        .is_some_and(|d| (2..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()))
}

/// ISO 8601 as Trust Hub writes it: `2019-07-30T22:29:24Z`.
pub fn iso8601(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// RFC 2822 as API 2010 writes it: `Thu, 30 Jul 2015 20:00:00 +0000`.
pub fn rfc2822(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// `status` of CustomerProfiles and TrustProducts (spec enums, in spec order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BundleStatus {
    Draft,
    PendingReview,
    InReview,
    TwilioRejected,
    TwilioApproved,
}

impl BundleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BundleStatus::Draft => "draft",
            BundleStatus::PendingReview => "pending-review",
            BundleStatus::InReview => "in-review",
            BundleStatus::TwilioRejected => "twilio-rejected",
            BundleStatus::TwilioApproved => "twilio-approved",
        }
    }

    pub fn parse(s: &str) -> Option<BundleStatus> {
        [
            BundleStatus::Draft,
            BundleStatus::PendingReview,
            BundleStatus::InReview,
            BundleStatus::TwilioRejected,
            BundleStatus::TwilioApproved,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// States in which Twilio refuses edits (error 60711).
    pub fn is_locked(self) -> bool {
        matches!(
            self,
            BundleStatus::PendingReview | BundleStatus::InReview | BundleStatus::TwilioApproved
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BundleKind {
    CustomerProfile,
    TrustProduct,
}

impl BundleKind {
    /// Collection path segment under `/v1`.
    pub fn collection(self) -> &'static str {
        match self {
            BundleKind::CustomerProfile => "CustomerProfiles",
            BundleKind::TrustProduct => "TrustProducts",
        }
    }
    /// Prefix of the `links` keys and of the parent-SID JSON field.
    fn snake(self) -> &'static str {
        match self {
            BundleKind::CustomerProfile => "customer_profile",
            BundleKind::TrustProduct => "trust_product",
        }
    }
}

/// A CustomerProfile or TrustProduct.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    pub kind: BundleKind,
    pub sid: String,
    pub account_sid: String,
    pub policy_sid: String,
    pub friendly_name: String,
    pub email: String,
    pub status: BundleStatus,
    pub status_callback: Option<String>,
    pub valid_until: Option<DateTime<Utc>>,
    /// Rejection codes, rendered as `[{"code": n}]`; `None` renders `null`.
    pub errors: Option<Vec<u32>>,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
    /// Bumped on every submit so that stale vetting timers can tell they are stale.
    pub submission: u64,
}

impl Bundle {
    pub fn to_json(&self, base: &str) -> Value {
        let url = format!("{base}/v1/{}/{}", self.kind.collection(), self.sid);
        let plural = format!("{}s", self.kind.snake());
        json!({
            "sid": self.sid,
            "account_sid": self.account_sid,
            "policy_sid": self.policy_sid,
            "friendly_name": self.friendly_name,
            "status": self.status.as_str(),
            "valid_until": self.valid_until.map(iso8601),
            "email": self.email,
            "status_callback": self.status_callback,
            "date_created": iso8601(self.date_created),
            "date_updated": iso8601(self.date_updated),
            "url": url,
            "links": {
                format!("{plural}_entity_assignments"): format!("{url}/EntityAssignments"),
                format!("{plural}_evaluations"): format!("{url}/Evaluations"),
                format!("{plural}_channel_endpoint_assignment"): format!("{url}/ChannelEndpointAssignments"),
            },
            "errors": self.errors.as_ref().map(|codes| codes.iter().map(|c| json!({"code": c})).collect::<Vec<_>>()),
        })
    }
}

/// A ChannelEndpointAssignment (`RA…`) of a profile or trust product.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelAssignment {
    pub parent_kind: BundleKind,
    pub sid: String,
    pub bundle_sid: String,
    pub account_sid: String,
    pub channel_endpoint_type: String,
    pub channel_endpoint_sid: String,
    pub date_created: DateTime<Utc>,
}

impl ChannelAssignment {
    pub fn to_json(&self, base: &str) -> Value {
        let kind = self.parent_kind;
        json!({
            "sid": self.sid,
            format!("{}_sid", kind.snake()): self.bundle_sid,
            "account_sid": self.account_sid,
            "channel_endpoint_type": self.channel_endpoint_type,
            "channel_endpoint_sid": self.channel_endpoint_sid,
            "date_created": iso8601(self.date_created),
            "url": format!("{base}/v1/{}/{}/ChannelEndpointAssignments/{}", kind.collection(), self.bundle_sid, self.sid),
        })
    }
}

/// An EntityAssignment (`BV…`) of a profile or trust product.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntityAssignment {
    pub parent_kind: BundleKind,
    pub sid: String,
    pub bundle_sid: String,
    pub account_sid: String,
    pub object_sid: String,
    pub date_created: DateTime<Utc>,
}

impl EntityAssignment {
    pub fn to_json(&self, base: &str) -> Value {
        let kind = self.parent_kind;
        json!({
            "sid": self.sid,
            format!("{}_sid", kind.snake()): self.bundle_sid,
            "account_sid": self.account_sid,
            "object_sid": self.object_sid,
            "date_created": iso8601(self.date_created),
            "url": format!("{base}/v1/{}/{}/EntityAssignments/{}", kind.collection(), self.bundle_sid, self.sid),
        })
    }
}

/// An Evaluation (`EL…`): a stored verdict with per-requirement `results`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub parent_kind: BundleKind,
    pub sid: String,
    pub bundle_sid: String,
    pub account_sid: String,
    pub policy_sid: String,
    pub compliant: bool,
    pub results: Value,
    pub date_created: DateTime<Utc>,
}

impl Evaluation {
    pub fn to_json(&self, base: &str) -> Value {
        let kind = self.parent_kind;
        json!({
            "sid": self.sid,
            "account_sid": self.account_sid,
            "policy_sid": self.policy_sid,
            format!("{}_sid", kind.snake()): self.bundle_sid,
            "status": if self.compliant { "compliant" } else { "noncompliant" },
            "results": self.results,
            "date_created": iso8601(self.date_created),
            "url": format!("{base}/v1/{}/{}/Evaluations/{}", kind.collection(), self.bundle_sid, self.sid),
        })
    }
}

/// `status` of an account (API 2010 `account_enum_status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    #[default]
    Active,
    Suspended,
    Closed,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Suspended => "suspended",
            AccountStatus::Closed => "closed",
        }
    }
}

/// An account (parent or subaccount) of API 2010.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub sid: String,
    pub auth_token: crate::seed::Secret,
    pub friendly_name: String,
    /// `None` for the parent.
    pub parent_sid: Option<String>,
    pub date_created: DateTime<Utc>,
    /// `active` unless seeded or set through the admin API.
    #[serde(default)]
    pub status: AccountStatus,
}

impl Account {
    pub fn to_json(&self) -> Value {
        let uri = format!("/2010-04-01/Accounts/{}", self.sid);
        let date = rfc2822(self.date_created);
        let mut subresources = serde_json::Map::new();
        for (key, segment) in [
            ("addresses", "Addresses"),
            ("applications", "Applications"),
            ("balance", "Balance"),
            ("calls", "Calls"),
            ("conferences", "Conferences"),
            ("incoming_phone_numbers", "IncomingPhoneNumbers"),
            ("keys", "Keys"),
            ("messages", "Messages"),
            ("recordings", "Recordings"),
            ("sip", "SIP"),
            ("usage", "Usage"),
        ] {
            subresources.insert(key.into(), json!(format!("{uri}/{segment}.json")));
        }
        json!({
            "auth_token": self.auth_token.expose(),
            "date_created": date,
            "date_updated": date,
            "friendly_name": self.friendly_name,
            "owner_account_sid": self.parent_sid.as_deref().unwrap_or(&self.sid),
            "sid": self.sid,
            "status": self.status.as_str(),
            "subresource_uris": subresources,
            "type": "Full",
            "uri": format!("{uri}.json"),
        })
    }
}

/// An IncomingPhoneNumber (`PN…`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhoneNumber {
    pub sid: String,
    pub account_sid: String,
    pub phone_number: String,
    pub friendly_name: String,
    pub date_created: DateTime<Utc>,
    /// `capabilities.voice`; numbers without it cannot carry SHAKEN/STIR calls.
    #[serde(default = "yes")]
    pub voice: bool,
    /// `capabilities.sms` (and `mms`).
    #[serde(default = "yes")]
    pub sms: bool,
}

fn yes() -> bool {
    true
}

impl PhoneNumber {
    pub fn to_json(&self) -> Value {
        let date = rfc2822(self.date_created);
        json!({
            "account_sid": self.account_sid,
            "address_sid": null,
            "address_requirements": "none",
            "api_version": "2010-04-01",
            "beta": false,
            "capabilities": {"voice": self.voice, "sms": self.sms, "mms": self.sms, "fax": false},
            "date_created": date,
            "date_updated": date,
            "friendly_name": self.friendly_name,
            "identity_sid": null,
            "phone_number": self.phone_number,
            "origin": "twilio",
            "sid": self.sid,
            "sms_application_sid": null,
            "sms_fallback_method": "POST",
            "sms_fallback_url": null,
            "sms_method": "POST",
            "sms_url": null,
            "status_callback": null,
            "status_callback_method": "POST",
            "trunk_sid": null,
            "uri": format!("/2010-04-01/Accounts/{}/IncomingPhoneNumbers/{}.json", self.account_sid, self.sid),
            "voice_receive_mode": "voice",
            "voice_application_sid": null,
            "voice_caller_id_lookup": false,
            "voice_fallback_method": "POST",
            "voice_fallback_url": null,
            "voice_method": "POST",
            "voice_url": null,
            "emergency_status": "Inactive",
            "emergency_address_sid": null,
            "emergency_address_status": "unregistered",
            "bundle_sid": null,
            "status": "in-use",
            "type": "local",
        })
    }
}

/// `+15005550006` → `(500) 555-0006` for US numbers, the number itself otherwise.
pub fn friendly_phone(e164: &str) -> String {
    match e164.strip_prefix("+1") {
        Some(rest) if rest.len() == 10 && rest.chars().all(|c| c.is_ascii_digit()) => {
            format!("({}) {}-{}", &rest[..3], &rest[3..6], &rest[6..])
        }
        _ => e164.to_string(),
    }
}
