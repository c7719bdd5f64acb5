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
    AC_SID_PATTERN, BU_SID_PATTERN, CredentialsRef, DeletionPolicy, E164_PATTERN, NumberCounts,
    Ownership, PN_SID_PATTERN, Sid,
};
use super::shaken_stir_trust_product::NumberOrSid;

/// The most numbers one binding handles (listed and selected together). Its status does not grow
/// with them (above [`crate::api::FULL_NUMBER_LIST_MAX`] numbers it lists only those needing
/// attention); what bounds it is the operator's memory, about 1 KiB per number.
pub const MAX_BINDING_NUMBERS: usize = 100_000;

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
        name = "Covered",
        type_ = "string",
        description = "Numbers on an approved SHAKEN/STIR Trust Product / selected",
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
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.businessProfile == oldSelf.businessProfile").message("businessProfile is immutable: create a new BusinessProfileBinding to use another profile"),
    validation = Rule::new("(has(self.phoneNumbers) && size(self.phoneNumbers) > 0) || has(self.discovery)").message("set phoneNumbers, discovery, or both: a binding must list or select its numbers")
)]
pub struct BusinessProfileBindingSpec {
    /// The Secret with the parent account's Twilio credentials.
    pub credentials: CredentialsRef,
    /// The parent account's Primary Business Profile (created and vetted in the Twilio Console).
    pub business_profile: BusinessProfileRef,
    /// Phone numbers, from the parent account or its subaccounts, to assign to the profile.
    /// A number removed from this list is unassigned under `deletionPolicy: Delete` and left
    /// assigned (released from management) under `Orphan`. A number listed twice (or by SID and
    /// by E.164) is one number. Optional when `discovery` selects the numbers.
    ///
    /// At most 2,000 entries, a limit set by manifest size: client-side `kubectl apply` stores
    /// the whole manifest in the `kubectl.kubernetes.io/last-applied-configuration` annotation,
    /// all annotations of an object together may hold at most 256 KiB, and an entry takes about
    /// 80 bytes there. Select larger sets with `discovery`, which has no such limit.
    // Atomic, not `x-kubernetes-list-type: set`: a set of objects passes CRD validation but
    // server-side apply cannot build a typed value from it, so a real apiserver answers
    // `kubectl apply --server-side` with 500 ("associative list without keys has an element
    // that's a map type"). Nor a CEL uniqueness rule: `self.all(x, self.exists_one(y, y == x))`
    // is O(n²), and a real apiserver stops it at its per-call cost limit near 600 items. The
    // planner counts a repeated number once instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 0, max = 2000), extend("x-kubernetes-list-type" = "atomic"))]
    pub phone_numbers: Vec<PhoneNumberRef>,
    /// Numbers selected from the parent's subaccounts (and optionally the parent) instead of, or
    /// as well as, listed in `phoneNumbers`. The selection is listed again every `interval`, and
    /// at once when the annotation `trusthub.stir.dev/discover` takes a new value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<NumberDiscovery>,
    /// `Orphan` (default) leaves the Twilio assignments in place when this object is deleted or a
    /// number is removed; `Delete` removes the assignments this object made.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Which numbers to select: the accounts to list, then the rules a listed number must pass.
///
/// Cost: one paged IncomingPhoneNumbers listing per account (1,000 numbers a page), plus one
/// paged Accounts listing with `allSubaccounts` or one Account fetch per named subaccount, per
/// `interval`; never one look-up per number. Suspended or closed subaccounts are skipped and
/// reported in `status.discovery.skippedAccounts`.
///
/// To list again at once (a number was just bought), give the annotation
/// `trusthub.stir.dev/discover` any new value, e.g. the current time.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.subaccounts) && size(self.subaccounts) > 0) != (has(self.allSubaccounts) && self.allSubaccounts)").message("exactly one of discovery.subaccounts or discovery.allSubaccounts must be used"))]
pub struct NumberDiscovery {
    /// Subaccount SIDs (`AC…`) whose numbers are listed. A SID that is not a subaccount of the
    /// parent, or a subaccount that is not active, is skipped and reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 1000),
        inner(regex(pattern = AC_SID_PATTERN)),
        extend("x-kubernetes-list-type" = "set")
    )]
    pub subaccounts: Vec<String>,
    /// List every active subaccount of the parent (found with one paged Accounts listing), so a
    /// subaccount created later is included without editing this object.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_subaccounts: bool,
    /// Also list the parent account's own numbers.
    #[serde(default)]
    pub include_parent: bool,
    /// Select only numbers whose `capabilities.voice` is true (default): SHAKEN/STIR signs
    /// calls, so other numbers would only take up the profile's and product's assignments.
    #[serde(default = "default_true")]
    pub voice_only: bool,
    /// Select only numbers starting with this E.164 prefix, e.g. `+1415`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\+[0-9]{0,15}$"), length(max = 16))]
    pub phone_number_prefix: Option<String>,
    /// Select only numbers whose friendly name matches this pattern: `*` matches any run of
    /// characters, `?` any one character, everything else itself (case-sensitive). With
    /// `phoneNumberPrefix`, both must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub friendly_name_pattern: Option<String>,
    /// Numbers (E.164 or `PN…` SID) always selected, whatever the other rules say, as long as
    /// a listed account owns them; one that no listed account owns is reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), extend("x-kubernetes-list-type" = "set"))]
    pub include: Vec<NumberOrSid>,
    /// Numbers (E.164 or `PN…` SID) never selected; wins over `include`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), extend("x-kubernetes-list-type" = "set"))]
    pub exclude: Vec<NumberOrSid>,
    /// How often the selection is listed again, e.g. `10m` (default), `1h30m`; at least `10s`.
    /// A number bought in a listed account is selected within one interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^([0-9]+(ms|s|m|h))+$"), length(max = 32))]
    pub interval: Option<String>,
}

fn default_true() -> bool {
    true
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
    /// One entry per requested phone number, plus entries being released; above 500 numbers
    /// (`numbersAbridged`), only the numbers that need attention (being released, refused,
    /// unresolvable), at most 500, and the others are counted in `numbers`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phone_numbers: Vec<PhoneNumberAssignmentStatus>,
    /// Whether `phoneNumbers` lists only the numbers that need attention.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub numbers_abridged: bool,
    /// Numbers needing attention beyond those listed in an abridged `phoneNumbers`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub numbers_omitted: u32,
    /// A digest of the assigned numbers and their assignments: it changes whenever they do,
    /// which tells the Trust Products using this binding to look again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numbers_digest: Option<String>,
    /// Which of the profile's assignments of these numbers this object created (removed under
    /// `deletionPolicy: Delete`), however many numbers it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<Ownership>,
    /// "assigned/requested", e.g. `3/3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numbers_summary: Option<String>,
    /// How many numbers are in each state, and how many are covered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numbers: Option<NumberCounts>,
    /// `covered/selected`: numbers whose calls Twilio can sign with A-level attestation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<String>,
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
    /// The last listing of `spec.discovery`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryStatus>,
}

/// What the last discovery listing found. Counts only, plus a bounded list of skipped
/// accounts, so the status stays small however many numbers are selected.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryStatus {
    /// When the accounts were last listed; the next listing is due one `interval` later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed_at: Option<Time>,
    /// The value of the `trusthub.stir.dev/discover` annotation that listing answered; a
    /// different value asks for a new listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_annotation: Option<String>,
    /// Accounts whose numbers were listed.
    #[serde(default)]
    pub accounts_listed: u32,
    /// Numbers those accounts own.
    #[serde(default)]
    pub numbers_seen: u32,
    /// Numbers selected.
    #[serde(default)]
    pub selected: u32,
    /// Accounts not listed and why (the first 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub skipped_accounts: Vec<SkippedAccount>,
    /// Skipped accounts beyond those in `skippedAccounts`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped_accounts_omitted: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// An account discovery did not list.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedAccount {
    /// Account SID (`AC…`).
    pub sid: String,
    /// Why: Twilio's status (`suspended`, `closed`), or `not-found`, `not-a-subaccount`,
    /// `refused` (Twilio refused the listing).
    pub status: String,
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
    pub phone_number: Option<Sid>,
    /// IncomingPhoneNumber SID (`PN…`), once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Sid>,
    /// Owning (sub)account SID, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subaccount_sid: Option<Sid>,
    /// Channel endpoint assignment SID (`RA…`) on the profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_sid: Option<Sid>,
    /// Whether this object created the assignment (only those are removed under `Delete`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created_by_operator: bool,
    /// Pending, Resolved, Assigned, Unresolvable, Failed or Releasing.
    pub state: NumberState,
    /// Why the number is not assigned, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
