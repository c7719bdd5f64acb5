//! Typed requests and responses of the Trust Hub v1 and API 2010-04-01 operations the operator
//! uses.
//!
//! Modelled: CustomerProfile, TrustProduct (same shape, both `BU…`), their channel endpoint and
//! entity assignments, Evaluations (with typed, leniently parsed `results`), Policies, Accounts
//! and IncomingPhoneNumbers (a subset of fields: the ones the operator reads; serde ignores the
//! rest). Every response field is `Option` because the spec marks all of them nullable, and any
//! field of the wrong JSON type decodes as `None` instead of failing the whole answer. Status
//! enums keep unknown values in `Unknown(String)`.
//!
//! Not modelled: EndUsers, SupportingDocuments, CustomerProfile create/update (the operator only
//! reads profiles made in the Console), IncomingPhoneNumber configuration fields.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::credentials::SecretString;

/// Defines a string enum with an `Unknown(String)` fallback, wire names given explicitly.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value this client does not know yet; kept verbatim.
            Unknown(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Unknown(other) => other,
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $($wire => Self::$variant,)+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = String::deserialize(d)?;
                Ok(Self::from(value.as_str()))
            }
        }
    };
}

wire_enum!(
    /// Status of a CustomerProfile or TrustProduct (spec `*_enum_status`).
    BundleStatus {
        Draft => "draft",
        PendingReview => "pending-review",
        InReview => "in-review",
        TwilioRejected => "twilio-rejected",
        TwilioApproved => "twilio-approved",
    }
);

wire_enum!(
    /// Verdict of an Evaluation.
    EvaluationStatus {
        Compliant => "compliant",
        Noncompliant => "noncompliant",
    }
);

wire_enum!(
    /// Status of an Account (2010).
    AccountStatus {
        Active => "active",
        Suspended => "suspended",
        Closed => "closed",
    }
);

wire_enum!(
    /// Type of an Account (2010).
    AccountType {
        Trial => "Trial",
        Full => "Full",
    }
);

/// Deserializers that turn a value of the wrong JSON type into `None` / empty instead of an
/// error, so one odd field never makes the whole answer undecodable.
pub(crate) mod lenient {
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => Some(s),
            _ => None,
        })
    }

    pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Bool(b) => Some(b),
            Value::String(s) if s == "true" => Some(true),
            Value::String(s) if s == "false" => Some(false),
            _ => None,
        })
    }

    pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Number(n) => n.as_u64().and_then(|v| u32::try_from(v).ok()),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    }

    pub fn opt_datetime<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => chrono::DateTime::parse_from_rfc3339(&s)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc)),
            _ => None,
        })
    }

    /// Any value of an enum with an `Unknown` fallback; non-strings give `None`.
    pub fn opt_enum<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: for<'a> From<&'a str>,
    {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => Some(T::from(s.as_str())),
            _ => None,
        })
    }

    /// A list whose items are decoded one by one; items that are not objects are dropped,
    /// a non-list gives an empty list.
    ///
    /// Streamed, never through a `serde_json::Value`: an Evaluation of a 50,000-number product
    /// lists every passing number, and a `Value` of it took tens of MiB only to be dropped
    /// (fields the item type does not name are skipped without being kept).
    pub fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: DeserializeOwned,
    {
        d.deserialize_any(ListVisitor(std::marker::PhantomData))
    }

    struct ListVisitor<T>(std::marker::PhantomData<T>);

    impl<'de, T: DeserializeOwned> serde::de::Visitor<'de> for ListVisitor<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<Item<T>>()? {
                items.extend(item.0);
            }
            Ok(items)
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Vec<T>, A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(Vec::new())
        }

        fn visit_unit<E>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_none<E>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_bool<E>(self, _: bool) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_i64<E>(self, _: i64) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_u64<E>(self, _: u64) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_f64<E>(self, _: f64) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_str<E>(self, _: &str) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
    }

    /// One item of a lenient list: an object decoded as `T`, anything else dropped.
    struct Item<T>(Option<T>);

    impl<'de, T: DeserializeOwned> Deserialize<'de> for Item<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(ItemVisitor(std::marker::PhantomData))
        }
    }

    struct ItemVisitor<T>(std::marker::PhantomData<T>);

    impl<'de, T: DeserializeOwned> serde::de::Visitor<'de> for ItemVisitor<T> {
        type Value = Item<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list item")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Item<T>, A::Error> {
            // Every item type decodes its fields leniently, so an object always decodes.
            let item = T::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
            Ok(Item(Some(item)))
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Item<T>, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(Item(None))
        }

        fn visit_unit<E>(self) -> Result<Item<T>, E> {
            Ok(Item(None))
        }
        fn visit_none<E>(self) -> Result<Item<T>, E> {
            Ok(Item(None))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Item<T>, E> {
            Ok(Item(None))
        }
        fn visit_i64<E>(self, _: i64) -> Result<Item<T>, E> {
            Ok(Item(None))
        }
        fn visit_u64<E>(self, _: u64) -> Result<Item<T>, E> {
            Ok(Item(None))
        }
        fn visit_f64<E>(self, _: f64) -> Result<Item<T>, E> {
            Ok(Item(None))
        }
        fn visit_str<E>(self, _: &str) -> Result<Item<T>, E> {
            Ok(Item(None))
        }
    }

    /// An object decoded leniently; any other JSON value (or an object that does not decode)
    /// gives `None`.
    pub fn opt_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: DeserializeOwned,
    {
        Ok(match Value::deserialize(d)? {
            value @ Value::Object(_) => serde_json::from_value(value).ok(),
            _ => None,
        })
    }

    pub fn opt_list<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: DeserializeOwned,
    {
        Ok(match Value::deserialize(d)? {
            Value::Null => None,
            other => Some(list(other).map_err(serde::de::Error::custom)?),
        })
    }
}

/// A CustomerProfile or TrustProduct (they share the schema and the `BU` prefix; only
/// `policy_sid` or the collection tells them apart).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Bundle {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub sid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub account_sid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub policy_sid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub friendly_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_enum")]
    pub status: Option<BundleStatus>,
    #[serde(default, deserialize_with = "lenient::opt_datetime")]
    pub valid_until: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub status_callback: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_datetime")]
    pub date_created: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient::opt_datetime")]
    pub date_updated: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub url: Option<String>,
    /// Rejection reasons after review, e.g. `[{"code": 18601}]` (items untyped in the spec).
    #[serde(default, deserialize_with = "lenient::opt_list")]
    pub errors: Option<Vec<BundleError>>,
}

pub type CustomerProfile = Bundle;
pub type TrustProduct = Bundle;

/// One item of a bundle's `errors`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct BundleError {
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    pub code: Option<u32>,
}

/// A phone number (or other channel endpoint) assigned to a CustomerProfile or TrustProduct
/// (`RA…`).
///
/// Only the fields the operator reads are decoded (serde skips the others): a profile's whole
/// assignment list is read at 50,000 numbers, and the parent SIDs, account, type and URL the
/// spec also gives made each item about 600 bytes instead of about 150.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ChannelEndpointAssignment {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub sid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub channel_endpoint_sid: Option<String>,
    /// When Twilio made the assignment: how an object tells its own assignments after a
    /// restart (see [`crate::api::Ownership`]).
    #[serde(default, deserialize_with = "lenient::opt_datetime")]
    pub date_created: Option<DateTime<Utc>>,
}

impl ChannelEndpointAssignment {
    /// The assignment as a listing of the planner's, when it has both SIDs.
    pub fn dated(self) -> Option<crate::planner::provenance::Dated> {
        Some(crate::planner::provenance::Dated {
            assignment_sid: self.sid?.into(),
            number_sid: self.channel_endpoint_sid?.into(),
            created: self
                .date_created
                .and_then(|t| k8s_openapi::jiff::Timestamp::from_second(t.timestamp()).ok()),
        })
    }
}

/// An object (for SHAKEN/STIR: the Business Profile `BU…`) assigned to a TrustProduct (`BV…`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct EntityAssignment {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub sid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub trust_product_sid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub account_sid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub object_sid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub url: Option<String>,
}

/// A policy check of a TrustProduct (`EL…`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Evaluation {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub sid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub account_sid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub policy_sid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub trust_product_sid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_enum")]
    pub status: Option<EvaluationStatus>,
    /// One entry per policy requirement (items untyped in the spec; parsed leniently).
    #[serde(default, deserialize_with = "lenient::list")]
    pub results: Vec<EvaluationResult>,
    #[serde(default, deserialize_with = "lenient::opt_datetime")]
    pub date_created: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub url: Option<String>,
}

impl Evaluation {
    /// The requirements that did not pass.
    pub fn failed_requirements(&self) -> impl Iterator<Item = &EvaluationResult> {
        self.results.iter().filter(|r| r.passed == Some(false))
    }
}

/// The verdict on one requirement of a policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct EvaluationResult {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub requirement_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub requirement_friendly_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub object_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub passed: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub failure_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    pub error_code: Option<u32>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub invalid: Vec<EvaluationFieldResult>,
}

/// A field that failed a requirement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct EvaluationFieldResult {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub object_field: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub friendly_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub failure_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    pub error_code: Option<u32>,
}

/// A Trust Hub policy (`RN…`); `requirements` is untyped in the spec and kept as JSON.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Policy {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub sid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub requirements: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub url: Option<String>,
}

/// An Account or subaccount (2010). Dates are kept as Twilio's RFC 2822 strings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Account {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub sid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub friendly_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub owner_account_sid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_enum")]
    pub status: Option<AccountStatus>,
    #[serde(default, rename = "type", deserialize_with = "lenient::opt_enum")]
    pub account_type: Option<AccountType>,
    /// A subaccount's token as returned to its parent: a secret, redacted in `Debug`.
    #[serde(default)]
    pub auth_token: Option<SecretString>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub date_created: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub date_updated: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub uri: Option<String>,
}

/// An IncomingPhoneNumber (2010), the fields the operator reads. `sid` (`PN…`) is what
/// Trust Hub calls `ChannelEndpointSid`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct IncomingPhoneNumber {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub sid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub account_sid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub phone_number: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub friendly_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub origin: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub date_created: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub uri: Option<String>,
    /// What the number can do (`voice`, `sms`, …); `None` when Twilio sent none.
    #[serde(default, deserialize_with = "lenient::opt_object")]
    pub capabilities: Option<NumberCapabilities>,
}

impl IncomingPhoneNumber {
    /// `capabilities.voice == true`: the numbers SHAKEN/STIR signs calls for.
    pub fn is_voice_capable(&self) -> bool {
        self.capabilities.as_ref().and_then(|c| c.voice) == Some(true)
    }
}

/// An IncomingPhoneNumber's `capabilities` (spec `phone_number_capabilities`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct NumberCapabilities {
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub voice: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub sms: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub mms: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub fax: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Requests. Each knows its wire parameter names (PascalCase) explicitly.

/// Filters for listing CustomerProfiles or TrustProducts, pushed to the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleFilter {
    pub status: Option<BundleStatus>,
    pub friendly_name: Option<String>,
    pub policy_sid: Option<String>,
}

impl BundleFilter {
    pub(crate) fn params(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        push(&mut p, "Status", self.status.as_ref().map(|s| s.as_str()));
        push(&mut p, "FriendlyName", self.friendly_name.as_deref());
        push(&mut p, "PolicySid", self.policy_sid.as_deref());
        p
    }
}

/// `POST /v1/TrustProducts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTrustProduct {
    pub friendly_name: String,
    pub email: String,
    pub policy_sid: String,
    pub status_callback: Option<String>,
}

impl CreateTrustProduct {
    pub(crate) fn form(&self) -> Vec<(&'static str, String)> {
        let mut p = vec![
            ("FriendlyName", self.friendly_name.clone()),
            ("Email", self.email.clone()),
            ("PolicySid", self.policy_sid.clone()),
        ];
        push(&mut p, "StatusCallback", self.status_callback.as_deref());
        p
    }
}

/// `POST /v1/TrustProducts/{Sid}`; only the fields that are `Some` are sent.
/// (Twilio error 22204: a bundle's status and properties may not change in one request, so
/// submit with `status` + at most `status_callback`.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateTrustProduct {
    pub status: Option<BundleStatus>,
    pub status_callback: Option<String>,
    pub friendly_name: Option<String>,
    pub email: Option<String>,
}

impl UpdateTrustProduct {
    pub(crate) fn form(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        push(&mut p, "Status", self.status.as_ref().map(|s| s.as_str()));
        push(&mut p, "StatusCallback", self.status_callback.as_deref());
        push(&mut p, "FriendlyName", self.friendly_name.as_deref());
        push(&mut p, "Email", self.email.as_deref());
        p
    }
}

/// The channel endpoint type Twilio documents for phone numbers.
pub const PHONE_NUMBER_ENDPOINT: &str = "phone-number";

/// Filters for listing Accounts (2010), pushed to the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFilter {
    pub friendly_name: Option<String>,
    pub status: Option<AccountStatus>,
}

impl AccountFilter {
    pub(crate) fn params(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        push(&mut p, "FriendlyName", self.friendly_name.as_deref());
        push(&mut p, "Status", self.status.as_ref().map(|s| s.as_str()));
        p
    }
}

fn push(params: &mut Vec<(&'static str, String)>, name: &'static str, value: Option<&str>) {
    if let Some(v) = value {
        params.push((name, v.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_enums_keep_unknown_values() {
        let s: BundleStatus = serde_json::from_str(r#""twilio-approved""#).unwrap();
        assert_eq!(s, BundleStatus::TwilioApproved);
        let s: BundleStatus = serde_json::from_str(r#""provisionally-approved""#).unwrap();
        assert_eq!(s, BundleStatus::Unknown("provisionally-approved".into()));
        assert_eq!(s.as_str(), "provisionally-approved");
        assert_eq!(
            serde_json::to_string(&BundleStatus::PendingReview).unwrap(),
            r#""pending-review""#
        );
        assert_eq!(AccountType::from("Full"), AccountType::Full);
    }

    #[test]
    fn bundle_decodes_leniently() {
        let b: Bundle = serde_json::from_str(
            r#"{"sid": "BU0123456789abcdef0123456789abcdef", "status": "twilio-rejected",
                "valid_until": null, "date_created": "2019-07-30T22:29:24Z", "email": 42,
                "errors": [{"code": 18601}, {"code": "18606"}, "junk", {"other": 1}],
                "links": {"x": "y"}, "brand_new_field": true}"#,
        )
        .unwrap();
        assert_eq!(b.status, Some(BundleStatus::TwilioRejected));
        assert_eq!(b.email, None);
        assert!(b.date_created.is_some() && b.valid_until.is_none());
        let codes: Vec<_> = b.errors.unwrap().iter().map(|e| e.code).collect();
        assert_eq!(codes, vec![Some(18601), Some(18606), None]);
        let empty: Bundle = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, Bundle::default());
    }

    #[test]
    fn evaluation_results_are_typed() {
        let e: Evaluation = serde_json::from_str(
            r#"{"sid": "EL0123456789abcdef0123456789abcdef", "status": "noncompliant",
                "results": [
                  {"requirement_name": "business_info", "requirement_friendly_name": "Business",
                   "passed": false, "failure_reason": "A Business End-User is missing.",
                   "error_code": 22214, "valid": [],
                   "invalid": [{"object_field": "business_name", "friendly_name": "Business Name",
                                "failure_reason": "The Business Name is missing.", "error_code": 22215},
                               7]},
                  {"requirement_name": "customer_profile", "passed": true, "error_code": null},
                  "not an object"
                ]}"#,
        )
        .unwrap();
        assert_eq!(e.status, Some(EvaluationStatus::Noncompliant));
        assert_eq!(e.results.len(), 2);
        let failed: Vec<_> = e.failed_requirements().collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].error_code, Some(22214));
        assert_eq!(failed[0].invalid.len(), 1);
        assert_eq!(
            failed[0].invalid[0].object_field.as_deref(),
            Some("business_name")
        );
        assert_eq!(failed[0].invalid[0].error_code, Some(22215));
        let odd: Evaluation = serde_json::from_str(r#"{"results": {"no": "list"}}"#).unwrap();
        assert!(odd.results.is_empty());
    }

    #[test]
    fn account_token_is_redacted_in_debug() {
        let a: Account = serde_json::from_str(
            r#"{"sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "subtoken987", "type": "Full", "status": "active"}"#,
        )
        .unwrap();
        assert_eq!(
            a.auth_token.as_ref().map(|t| t.expose()),
            Some("subtoken987")
        );
        assert!(!format!("{a:?}").contains("subtoken987"));
        assert_eq!(a.account_type, Some(AccountType::Full));
    }

    #[test]
    fn voice_capability_is_read_leniently() {
        let voice: IncomingPhoneNumber = serde_json::from_str(
            r#"{"sid": "PN0123456789abcdef0123456789abcdef", "capabilities": {"voice": true, "sms": false, "mms": "x"}}"#,
        )
        .unwrap();
        assert!(voice.is_voice_capable());
        for body in [
            r#"{"capabilities": {"voice": false}}"#,
            r#"{"capabilities": null}"#,
            r#"{"capabilities": "voice"}"#,
            r#"{}"#,
        ] {
            let n: IncomingPhoneNumber = serde_json::from_str(body).unwrap();
            assert!(!n.is_voice_capable(), "{body}");
        }
    }

    #[test]
    fn requests_use_the_spec_parameter_names() {
        let create = CreateTrustProduct {
            friendly_name: "Acme SHAKEN".into(),
            email: "ops@acme.test".into(),
            policy_sid: "RN7a97559effdf62d00f4298208492a5ea".into(),
            status_callback: None,
        };
        let names: Vec<_> = create.form().iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["FriendlyName", "Email", "PolicySid"]);
        let update = UpdateTrustProduct {
            status: Some(BundleStatus::PendingReview),
            status_callback: Some("https://cb.test/x".into()),
            ..Default::default()
        };
        assert_eq!(
            update.form(),
            vec![
                ("Status", "pending-review".to_owned()),
                ("StatusCallback", "https://cb.test/x".to_owned())
            ]
        );
        let filter = BundleFilter {
            status: None,
            friendly_name: Some("a b+c".into()),
            policy_sid: Some("RN7a97559effdf62d00f4298208492a5ea".into()),
        };
        // The form/query encoder must turn '+' into %2B (E.164 numbers, names).
        let request = reqwest::Client::new()
            .post("http://127.0.0.1/v1/TrustProducts")
            .query(&[("PhoneNumber", "+15005550006")])
            .form(&filter.params())
            .build()
            .unwrap();
        assert_eq!(request.url().query(), Some("PhoneNumber=%2B15005550006"));
        let body = request.body().and_then(|b| b.as_bytes()).unwrap();
        assert_eq!(
            std::str::from_utf8(body).unwrap(),
            "FriendlyName=a+b%2Bc&PolicySid=RN7a97559effdf62d00f4298208492a5ea"
        );
        assert!(AccountFilter::default().params().is_empty());
    }
}
