//! `BusinessProfileBinding`: the seed's steps 1–2. It names the parent account's Primary Business
//! Profile (vetted in the Console) and the subaccount phone numbers that must be assigned to it.

// Each `printcolumn(...)` repeats `type_ = ...` and `priority = ...`; that is the derive's syntax,
// not a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    AC_SID_PATTERN, BU_SID_PATTERN, CredentialsRef, DeletionPolicy, E164_PATTERN, PN_SID_PATTERN,
};

/// Desired state: which Primary Business Profile, and which phone numbers must be assigned to it.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "trusthub.stir.dev",
    version = "v1alpha1",
    kind = "BusinessProfileBinding",
    namespaced,
    status = "BusinessProfileBindingStatus",
    shortname = "bpb",
    category = "trusthub",
    derive = "PartialEq",
    doc = "Binds subaccount phone numbers to the parent account's Primary Business Profile in Twilio Trust Hub (SHAKEN/STIR onboarding steps 1-2).",
    printcolumn(
        name = "Profile",
        type_ = "string",
        description = "Primary Business Profile SID",
        json_path = ".status.businessProfile.sid"
    ),
    printcolumn(
        name = "Profile Status",
        type_ = "string",
        description = "Twilio vetting status of the profile",
        json_path = ".status.businessProfile.status"
    ),
    printcolumn(
        name = "Numbers",
        type_ = "string",
        description = "Numbers assigned / requested",
        json_path = ".status.numbersSummary"
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
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.businessProfile == oldSelf.businessProfile").message("businessProfile is immutable: create a new BusinessProfileBinding to use another profile"))]
pub struct BusinessProfileBindingSpec {
    /// The Secret with the parent account's Twilio credentials.
    pub credentials: CredentialsRef,
    /// The parent account's Primary Business Profile (created and vetted in the Twilio Console).
    pub business_profile: BusinessProfileRef,
    /// Phone numbers, from the parent account or its subaccounts, to assign to the profile.
    /// A number removed from this list is unassigned under `deletionPolicy: Delete` and left
    /// assigned (released from management) under `Orphan`. A number listed twice (or by SID and
    /// by E.164) is one number.
    // Atomic, not `x-kubernetes-list-type: set`: a set of objects passes CRD validation but
    // server-side apply cannot build a typed value from it, so a real apiserver answers
    // `kubectl apply --server-side` with 500 ("associative list without keys has an element
    // that's a map type"). Nor a CEL uniqueness rule: `self.all(x, self.exists_one(y, y == x))`
    // is O(n²), and a real apiserver stops it at its per-call cost limit near 600 items. The
    // planner counts a repeated number once instead.
    #[schemars(length(min = 1, max = 1000), extend("x-kubernetes-list-type" = "atomic"))]
    pub phone_numbers: Vec<PhoneNumberRef>,
    /// `Orphan` (default) leaves the Twilio assignments in place when this object is deleted or a
    /// number is removed; `Delete` removes the assignments this object made.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// The profile, by SID or by its friendly name (looked up in the parent account's profiles).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.sid) != has(self.friendlyName)").message("exactly one of businessProfile.sid or businessProfile.friendlyName must be set"))]
pub struct BusinessProfileRef {
    /// Business Profile SID (`BU…`), from Console → Trust Hub → Customer Profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = BU_SID_PATTERN))]
    pub sid: Option<String>,
    /// Friendly name of the profile; exactly one profile of the account must carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub friendly_name: Option<String>,
}

/// One phone number: its `PN…` SID, or its E.164 number together with the subaccount that owns it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-map-type" = "atomic"))]
#[x_kube(
    validation = Rule::new("has(self.sid) != has(self.phoneNumber)").message("exactly one of sid or phoneNumber must be set"),
    validation = Rule::new("has(self.phoneNumber) == has(self.subaccountSid)").message("subaccountSid is required with phoneNumber, and only with phoneNumber")
)]
pub struct PhoneNumberRef {
    /// IncomingPhoneNumber SID (`PN…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = PN_SID_PATTERN), length(max = 34))]
    pub sid: Option<String>,
    /// The number in E.164 form, e.g. `+14155550100`; resolved through the subaccount's
    /// IncomingPhoneNumbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = E164_PATTERN), length(max = 16))]
    pub phone_number: Option<String>,
    /// The (sub)account SID (`AC…`) that owns `phoneNumber`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = AC_SID_PATTERN), length(max = 34))]
    pub subaccount_sid: Option<String>,
}

impl PhoneNumberRef {
    /// A number given by its SID.
    pub fn by_sid(sid: impl Into<String>) -> Self {
        Self {
            sid: Some(sid.into()),
            phone_number: None,
            subaccount_sid: None,
        }
    }

    /// A number given by E.164 and owning subaccount.
    pub fn by_number(phone_number: impl Into<String>, subaccount_sid: impl Into<String>) -> Self {
        Self {
            sid: None,
            phone_number: Some(phone_number.into()),
            subaccount_sid: Some(subaccount_sid.into()),
        }
    }

    /// How the number is shown in messages: the E.164 number when given, else the SID.
    pub fn display(&self) -> &str {
        self.phone_number
            .as_deref()
            .or(self.sid.as_deref())
            .unwrap_or("<empty>")
    }
}

/// Observed state, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BusinessProfileBindingStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Synced`, `ProfileApproved`, `NumbersAssigned`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The resolved Primary Business Profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_profile: Option<ResolvedBusinessProfile>,
    /// One entry per requested phone number, plus entries being released.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phone_numbers: Vec<PhoneNumberAssignmentStatus>,
    /// "assigned/requested", e.g. `3/3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numbers_summary: Option<String>,
    /// `PN…` SIDs whose assignment create was sent but whose outcome is not recorded yet. Set
    /// just before the (non-idempotent) create and cleared with its result: after a crash,
    /// timeout or 5xx, an assignment the next look-up finds for such a number is recorded as
    /// created by the operator (so `Delete` removes it). Cleared when Twilio refuses the create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assignments_pending: Vec<String>,
    /// When the operator last listed the assignments in Trust Hub. Between listings it trusts
    /// what it recorded; once a resync period has passed it lists them again, to see changes
    /// made in the Console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignments_listed_at: Option<Time>,
    /// When the operator last compared this object with Trust Hub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
}

/// The Primary Business Profile as Twilio reports it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedBusinessProfile {
    /// Profile SID (`BU…`).
    pub sid: String,
    /// Friendly name in Trust Hub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    /// Twilio vetting status: draft, pending-review, in-review, twilio-rejected, twilio-approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Policy SID of the profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_sid: Option<String>,
    /// When Twilio's approval expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
}

/// State of one number's assignment to the profile.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum NumberState {
    /// Not resolved yet.
    #[default]
    Pending,
    /// The PN SID is known; the assignment is not made yet.
    Resolved,
    /// Assigned (an `RA…` assignment exists).
    Assigned,
    /// The number could not be found in the given (sub)account; see `message`.
    Unresolvable,
    /// Twilio refused the assignment; see `message`.
    Failed,
    /// Removed from the spec; being unassigned (Delete) or released (Orphan).
    Releasing,
}

/// One phone number as resolved and assigned.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumberAssignmentStatus {
    /// E.164 number, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// IncomingPhoneNumber SID (`PN…`), once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Owning (sub)account SID, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subaccount_sid: Option<String>,
    /// Channel endpoint assignment SID (`RA…`) on the profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_sid: Option<String>,
    /// Whether this object created the assignment (only those are removed under `Delete`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created_by_operator: bool,
    /// Pending, Resolved, Assigned, Unresolvable, Failed or Releasing.
    pub state: NumberState,
    /// Why the number is not assigned, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
