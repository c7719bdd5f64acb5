//! Types shared by both custom resources: the credentials reference, deletion policy,
//! SID and phone-number patterns, and condition helpers.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of both custom resources.
/// A Twilio SID (or an E.164 number) as the operator keeps it: shared, not copied.
///
/// One number's SIDs sit in a dozen places at once: the book's full record and the plan's next
/// one, the sets of what is wanted, owned and listed, and both kinds' records. As `String`s
/// each place held its own heap copy (24 bytes plus 48 of heap for a 34-character SID), so
/// 50,000 numbers cost about 3 KiB each. An `Arc<str>` is made once, where the SID is first
/// read, and each further place holds a 16-byte pointer to it; it reads and serialises as a
/// string, and the CRD schema is the same.
pub type Sid = std::sync::Arc<str>;

pub const GROUP: &str = "trusthub.stir.dev";
/// Served and stored version.
pub const VERSION: &str = "v1alpha1";
/// Policy SID of the SHAKEN/STIR Trust Product. Twilio documents it as a static value, "same across
/// all accounts" (see the seed's step 3: "Do not change the policy_sid").
pub const SHAKEN_STIR_POLICY_SID: &str = "RN7a97559effdf62d00f4298208492a5ea";
/// Finalizer both controllers put on their objects so Twilio cleanup can run before deletion.
pub const FINALIZER: &str = "trusthub.stir.dev/cleanup";
/// Annotation whose new value asks the operator to resubmit a rejected Trust Product.
pub const RESUBMIT_ANNOTATION: &str = "trusthub.stir.dev/resubmit";
/// Annotation whose new value asks the operator to list a binding's `spec.discovery` again at
/// once, instead of waiting for the next `interval` (e.g. right after buying numbers).
pub const DISCOVER_ANNOTATION: &str = "trusthub.stir.dev/discover";
/// Annotation a replica that is not leading sets (to the time received) on a Trust Product when
/// it accepted a verified status callback for it: the leader reconciles on its change.
pub const CALLBACK_ANNOTATION: &str = "trusthub.stir.dev/status-callback-received";

/// Business profile / trust product SID (`BU` + 32 lowercase hex digits).
pub const BU_SID_PATTERN: &str = "^BU[0-9a-f]{32}$";
/// Incoming phone number SID.
pub const PN_SID_PATTERN: &str = "^PN[0-9a-f]{32}$";
/// Account or subaccount SID.
pub const AC_SID_PATTERN: &str = "^AC[0-9a-f]{32}$";
/// Trust Hub policy SID.
pub const RN_SID_PATTERN: &str = "^RN[0-9a-f]{32}$";
/// E.164: a plus sign, a non-zero country code digit, up to 15 digits in all.
pub const E164_PATTERN: &str = r"^\+[1-9][0-9]{1,14}$";
/// A Secret data key (the apiserver's own rule for Secret keys).
pub const SECRET_KEY_PATTERN: &str = "^[-._a-zA-Z0-9]+$";
/// DNS-1123 subdomain, the rule for Secret and other object names.
pub const DNS_SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// How the operator authenticates to Twilio.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum AuthType {
    /// HTTP Basic with the account SID and its Auth Token. Required for the Accounts look-ups and
    /// for validating Twilio's signed status callbacks.
    #[default]
    AuthToken,
    /// HTTP Basic with an API key SID (`SK…`) and its secret; the account SID is still read from
    /// the Secret. Standard API keys cannot call the Accounts API.
    ApiKey,
}

/// Where the Twilio credentials live: a Secret in the custom resource's own namespace.
/// Credentials are never read from any other namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsRef {
    /// Name of the Secret, in the same namespace as this object, that holds the credentials.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub secret_name: String,
    /// `AuthToken` (default): account SID + Auth Token. `ApiKey`: API key SID + secret, plus the
    /// account SID.
    #[serde(default)]
    pub auth_type: AuthType,
    /// Secret key holding the account SID (`AC…`) of the parent account.
    #[serde(default = "default_account_sid_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = SECRET_KEY_PATTERN))]
    pub account_sid_key: String,
    /// Secret key holding the Auth Token (used when `authType` is `AuthToken`).
    #[serde(default = "default_auth_token_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = SECRET_KEY_PATTERN))]
    pub auth_token_key: String,
    /// Secret key holding the API key SID (`SK…`, used when `authType` is `ApiKey`).
    #[serde(default = "default_api_key_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = SECRET_KEY_PATTERN))]
    pub api_key_key: String,
    /// Secret key holding the API key secret (used when `authType` is `ApiKey`).
    #[serde(default = "default_api_secret_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = SECRET_KEY_PATTERN))]
    pub api_secret_key: String,
}

fn default_account_sid_key() -> String {
    "TWILIO_ACCOUNT_SID".into()
}
fn default_auth_token_key() -> String {
    "TWILIO_AUTH_TOKEN".into()
}
fn default_api_key_key() -> String {
    "TWILIO_API_KEY".into()
}
fn default_api_secret_key() -> String {
    "TWILIO_API_SECRET".into()
}

impl CredentialsRef {
    /// A reference to `secret_name` with every key name at its default.
    pub fn new(secret_name: impl Into<String>) -> Self {
        Self {
            secret_name: secret_name.into(),
            auth_type: AuthType::AuthToken,
            account_sid_key: default_account_sid_key(),
            auth_token_key: default_auth_token_key(),
            api_key_key: default_api_key_key(),
            api_secret_key: default_api_secret_key(),
        }
    }
}

/// What happens in Twilio when the custom resource is deleted (or an entry is removed from it).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Leave every Twilio object in place (default): deleting the custom resource only stops
    /// management. Approved SHAKEN/STIR setups keep signing calls.
    #[default]
    Orphan,
    /// Remove what this object created in Twilio, in reverse order of creation.
    Delete,
}

/// The `status` of a Trust Hub CustomerProfile or TrustProduct, as Twilio reports it. Kept as a
/// string in `.status` so a value Twilio adds later is shown rather than lost.
pub mod twilio_status {
    /// Created, not yet submitted.
    pub const DRAFT: &str = "draft";
    /// Submitted, waiting for Twilio to pick it up.
    pub const PENDING_REVIEW: &str = "pending-review";
    /// Being vetted.
    pub const IN_REVIEW: &str = "in-review";
    /// Rejected; see `errors`.
    pub const TWILIO_REJECTED: &str = "twilio-rejected";
    /// Approved.
    pub const TWILIO_APPROVED: &str = "twilio-approved";
}

/// Sets `condition` in `conditions`, keeping `lastTransitionTime` when the status did not flip
/// (Kubernetes API conventions: the transition time records the last status change only).
pub fn set_condition(conditions: &mut Vec<Condition>, mut condition: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            if existing.status == condition.status {
                condition.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = condition;
        }
        None => conditions.push(condition),
    }
}

/// The condition of `type_`, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of `type_` is present with status `True`.
pub fn condition_is_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn cond(status: &str, reason: &str, at: i64) -> Condition {
        Condition {
            type_: "Ready".into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: Time(Timestamp::from_second(at).unwrap()),
        }
    }

    #[test]
    fn transition_time_changes_only_when_status_flips() {
        let mut conditions = vec![cond("False", "Waiting", 100)];
        set_condition(&mut conditions, cond("False", "StillWaiting", 200));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].reason, "StillWaiting");
        assert_eq!(conditions[0].last_transition_time.0.as_second(), 100);
        set_condition(&mut conditions, cond("True", "Ready", 300));
        assert_eq!(conditions[0].last_transition_time.0.as_second(), 300);
        assert!(condition_is_true(&conditions, "Ready"));
        assert!(!condition_is_true(&conditions, "Synced"));
    }
}

/// How many of an object's numbers are in each state: what `kubectl get` summarises, in full.
/// Counts, not lists, so the status stays small however many numbers the object has.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NumberCounts {
    /// Numbers the object wants: listed in the spec or selected by discovery (binding), or
    /// taken from the binding (Trust Product).
    pub selected: u32,
    /// Assigned to the Business Profile (binding) or attached to the Trust Product (product).
    pub done: u32,
    /// Twilio refused the assignment or attachment (retried with growing waits).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refused: u32,
    /// Numbers the spec lists that Twilio does not know in the account given.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unresolvable: u32,
    /// Numbers no longer wanted whose assignment is being removed (`deletionPolicy: Delete`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub releasing: u32,
    /// Coverage: numbers on a `twilio-approved` SHAKEN/STIR Trust Product, whose calls Twilio
    /// can sign with A-level attestation. For a binding, as seen at its last sync in the Trust
    /// Products of this cluster that use it.
    pub covered: u32,
}

pub(super) fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl NumberCounts {
    /// `covered/selected`, the `Covered` column.
    pub fn coverage(&self) -> String {
        format!("{}/{}", self.covered, self.selected)
    }
}

/// Which of the assignments (or attachments) of an object's numbers the object created, kept
/// in a few fields however many numbers it has: the exact per-number record lives in the
/// operator's memory and, up to [`FULL_NUMBER_LIST_MAX`] numbers, in `phoneNumbers`.
///
/// An assignment of one of the object's numbers is the object's when Twilio's `date_created` is
/// not before `since` and its SID is not in `adopted`. `since` is set, a margin before the
/// object's first create, in the status write that marks that create pending, so every
/// assignment the object makes is dated after it; `adopted` lists the assignments dated after
/// `since` that the operator found and did not make (a number assigned in the Console meanwhile,
/// for instance). The rule is exact for everything the operator saw while it ran; an assignment
/// of one of the object's numbers made by someone else while no operator was running, after
/// `since`, counts as the object's.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ownership {
    /// Twilio's creation time from which the object's own assignments date (a margin,
    /// [`OWNERSHIP_MARGIN_SECONDS`], before its first create, against clock skew).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
    /// `RA…` assignments dated from `since` on that the object did not create (the first
    /// [`ADOPTED_MAX`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    pub adopted: Vec<String>,
    /// Such assignments beyond `adopted`: while non-zero, an assignment dated from `since` on
    /// that is not recorded otherwise is taken as not the object's (left in place, never
    /// removed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub adopted_omitted: u32,
}

/// Up to this many numbers, `status.phoneNumbers` lists each one with its assignment; above,
/// only the numbers that need attention (released, refused, unresolvable), at most
/// [`PROBLEM_NUMBERS_MAX`], and the rest are counted in `status.numbers`.
pub const FULL_NUMBER_LIST_MAX: usize = 500;
/// At most this many numbers are listed in an abridged `status.phoneNumbers`.
pub const PROBLEM_NUMBERS_MAX: usize = 500;
/// At most this many adopted assignments are listed in `status.ownership.adopted`.
pub const ADOPTED_MAX: usize = 1000;
/// How long before its first create an object's `ownership.since` is set: Twilio's clock may
/// be this far behind the operator's without an assignment the object made looking older.
pub const OWNERSHIP_MARGIN_SECONDS: i64 = 300;
