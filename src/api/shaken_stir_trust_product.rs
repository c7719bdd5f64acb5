//! `ShakenStirTrustProduct`: the seed's steps 3–6. A SHAKEN/STIR Trust Product in the parent
//! account, attached to the Primary Business Profile and to its numbers, submitted for vetting and
//! followed until Twilio approves it.

// Each `printcolumn(...)` repeats `type_ = ...` and `priority = ...`; that is the derive's syntax,
// not a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    BU_SID_PATTERN, CredentialsRef, DeletionPolicy, NumberCounts, Ownership, RN_SID_PATTERN,
    SHAKEN_STIR_POLICY_SID, Sid, is_zero,
};

/// A phone number in `spec.phoneNumbers`: a `PN…` SID, or an E.164 number of the binding.
pub const NUMBER_OR_SID_PATTERN: &str = r"^(PN[0-9a-f]{32}|\+[1-9][0-9]{1,14})$";

/// Desired state of one SHAKEN/STIR Trust Product.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "trusthub.stir.dev",
    version = "v1alpha1",
    kind = "ShakenStirTrustProduct",
    namespaced,
    status = "ShakenStirTrustProductStatus",
    shortname = "sstp",
    category = "trusthub",
    derive = "PartialEq",
    doc = "A Twilio Trust Hub SHAKEN/STIR Trust Product, attached to a Business Profile and its phone numbers and submitted for vetting (SHAKEN/STIR onboarding steps 3-6).",
    printcolumn(
        name = "Trust Product",
        type_ = "string",
        description = "Trust Product SID",
        json_path = ".status.trustProductSid"
    ),
    printcolumn(
        name = "Vetting",
        type_ = "string",
        description = "Twilio vetting status",
        json_path = ".status.twilioStatus"
    ),
    printcolumn(
        name = "Numbers",
        type_ = "string",
        description = "Numbers attached / requested",
        json_path = ".status.numbersSummary"
    ),
    printcolumn(
        name = "Covered",
        type_ = "string",
        description = "Numbers on this product while it is approved / selected",
        json_path = ".status.coverage"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Profile",
        type_ = "string",
        priority = 1,
        json_path = ".status.businessProfileSid"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.businessProfileBindingRef) != has(self.businessProfileSid)").message("exactly one of businessProfileBindingRef or businessProfileSid must be set"),
    validation = Rule::new("!has(self.businessProfileSid) || (has(self.phoneNumbers) && self.phoneNumbers.all(n, n.startsWith('PN')))").message("with businessProfileSid, phoneNumbers must list the PN SIDs to attach (E.164 numbers are resolved only through a binding)"),
    validation = Rule::new("has(self.trustProductSid) == has(oldSelf.trustProductSid) && (!has(self.trustProductSid) || self.trustProductSid == oldSelf.trustProductSid)").message("trustProductSid is immutable"),
    validation = Rule::new("self.policySid == oldSelf.policySid").message("policySid is immutable"),
    validation = Rule::new("has(self.businessProfileSid) == has(oldSelf.businessProfileSid) && (!has(self.businessProfileSid) || self.businessProfileSid == oldSelf.businessProfileSid) && has(self.businessProfileBindingRef) == has(oldSelf.businessProfileBindingRef) && (!has(self.businessProfileBindingRef) || self.businessProfileBindingRef == oldSelf.businessProfileBindingRef)").message("the business profile (businessProfileSid or businessProfileBindingRef) is immutable")
)]
pub struct ShakenStirTrustProductSpec {
    /// The Secret with the parent account's Twilio credentials.
    pub credentials: CredentialsRef,
    /// Friendly name of the Trust Product in Trust Hub. Also how an existing product is found
    /// (together with `policySid`) before one is created.
    #[schemars(length(min = 1, max = 64))]
    pub friendly_name: String,
    /// E-mail address Twilio writes to about the vetting.
    #[schemars(email, length(min = 3, max = 254))]
    pub email: String,
    /// Optional https URL Twilio calls when the vetting status changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 9, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://') && isURL(self)").message("statusCallback must be an absolute https:// URL"))]
    pub status_callback: Option<String>,
    /// Name of a BusinessProfileBinding in the same namespace that supplies the profile and the
    /// numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_profile_binding_ref: Option<BindingRef>,
    /// A Business Profile SID (`BU…`) to use directly, without a binding. The numbers in
    /// `phoneNumbers` must already be assigned to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = BU_SID_PATTERN))]
    pub business_profile_sid: Option<String>,
    /// Numbers to attach: a subset of the binding's numbers (E.164 or `PN…`; default all of
    /// them), or with `businessProfileSid` the `PN…` SIDs to attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1000), extend("x-kubernetes-list-type" = "set"))]
    pub phone_numbers: Option<Vec<NumberOrSid>>,
    /// Trust Hub policy of the product. The SHAKEN/STIR policy is the same for every account; do
    /// not change it.
    #[serde(default = "default_policy_sid")]
    #[schemars(regex(pattern = RN_SID_PATTERN))]
    pub policy_sid: String,
    /// Submit for vetting once compliant (default). `false` keeps the product in draft for review.
    #[serde(default = "default_true")]
    pub submit: bool,
    /// `Orphan` (default) leaves the Trust Product in Twilio when this object is deleted; `Delete`
    /// removes its number assignments, its profile assignment and the product.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Adopt this existing Trust Product (`BU…`) instead of creating one. Its policy must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = BU_SID_PATTERN))]
    pub trust_product_sid: Option<String>,
}

/// A `PN…` SID or an E.164 number.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(transparent)]
pub struct NumberOrSid(#[schemars(regex(pattern = NUMBER_OR_SID_PATTERN))] pub String);

/// Reference to a BusinessProfileBinding in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindingRef {
    /// Name of the BusinessProfileBinding.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

fn default_policy_sid() -> String {
    SHAKEN_STIR_POLICY_SID.into()
}
fn default_true() -> bool {
    true
}

/// Observed state, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShakenStirTrustProductStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Synced`, `ProfileAttached`, `NumbersAttached`, `Compliant`, `Submitted`,
    /// `Approved`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The Trust Product SID (`BU…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_product_sid: Option<String>,
    /// Whether this object created the Trust Product (an adopted one is never deleted).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trust_product_created: bool,
    /// Why this object uses a Trust Product it did not create, when it found it itself: e.g. the
    /// SHAKEN/STIR product Twilio adds to an approved Primary Customer Profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adoption: Option<String>,
    /// Set just before the Trust Product create call and cleared once its SID is recorded: after
    /// a crash the operator looks the product up by name instead of creating a second one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_pending_since: Option<Time>,
    /// Twilio vetting status: draft, pending-review, in-review, twilio-rejected, twilio-approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twilio_status: Option<String>,
    /// When Twilio's approval expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    /// The Business Profile the product is attached to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_profile_sid: Option<String>,
    /// Entity assignment SID (`BV…`) linking the product to the profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_assignment_sid: Option<String>,
    /// Whether this object created the entity assignment.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub entity_assignment_created: bool,
    /// Numbers attached to the product; above 500 numbers (`numbersAbridged`), only those not
    /// attached (refused, or waiting), at most 500, and the others are counted in `numbers`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phone_numbers: Vec<TrustProductNumberStatus>,
    /// Whether `phoneNumbers` lists only the numbers that need attention.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub numbers_abridged: bool,
    /// Numbers needing attention beyond those listed in an abridged `phoneNumbers`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub numbers_omitted: u32,
    /// Which of the product's number attachments this object created (removed under
    /// `deletionPolicy: Delete`), however many numbers it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<Ownership>,
    /// What an attachment create was sent for (a number's `PN…` SID, or the profile's `BU…`
    /// SID) whose outcome is not recorded yet. Set just before the (non-idempotent) create and
    /// cleared with its result: after a crash, timeout or 5xx, an attachment the next look-up
    /// finds for such a SID is recorded as created by the operator. Cleared when Twilio refuses
    /// the create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments_pending: Vec<String>,
    /// "attached/requested", e.g. `3/3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numbers_summary: Option<String>,
    /// How many numbers are in each state, and how many are covered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numbers: Option<NumberCounts>,
    /// `covered/selected`: numbers whose calls Twilio can sign with A-level attestation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<String>,
    /// When the operator last listed the assignments in Trust Hub. Between listings it trusts
    /// what it recorded; once a resync period has passed it lists them again, to see changes
    /// made in the Console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignments_listed_at: Option<Time>,
    /// The last Evaluation of the product against its policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluation: Option<EvaluationStatus>,
    /// Error codes Twilio attached to a rejection (e.g. 18601).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<i64>,
    /// When the operator submitted the product for vetting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<Time>,
    /// When the operator first saw the product approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<Time>,
    /// Value of the `trusthub.stir.dev/resubmit` annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_resubmit: Option<String>,
    /// Generation at which Twilio's rejection was recorded; a newer generation may resubmit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_generation: Option<i64>,
    /// When the operator last compared this object with Trust Hub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
}

/// One number attached to the product.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustProductNumberStatus {
    /// E.164 number, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<Sid>,
    /// IncomingPhoneNumber SID (`PN…`).
    pub sid: Sid,
    /// Channel endpoint assignment SID (`RA…`) on the Trust Product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_sid: Option<Sid>,
    /// Whether this object created the assignment.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created_by_operator: bool,
    /// Why the number is not attached, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Result of the last Evaluation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationStatus {
    /// Evaluation SID (`EL…`).
    pub sid: String,
    /// What the evaluation covered (profile, numbers, submission round); a change of any of
    /// them calls for a new evaluation before submitting.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// Since when the product has been noncompliant for this key (retries back off from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncompliant_since: Option<Time>,
    /// `compliant` or `noncompliant`.
    pub status: String,
    /// Each requirement that did not pass (the first 100; reasons cut at 512 bytes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_requirements: Vec<FailedRequirement>,
    /// When the evaluation ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated_at: Option<Time>,
}

/// One failed requirement of an Evaluation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedRequirement {
    /// Requirement name, e.g. `business_profile` or `phone_numbers`.
    pub requirement: String,
    /// Field that failed, when Twilio names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Twilio's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Twilio error code, e.g. 22214.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
}
