//! Evaluations and Policies.
//!
//! `results` follows the shape of the spec's examples: one entry per requirement with
//! `requirement_name`, `requirement_friendly_name`, `object_type`, `friendly_name`,
//! `passed`, `failure_reason`, `error_code`, `valid[]` and `invalid[]` (entries with
//! `object_field`, `friendly_name`, `failure_reason`, `error_code`, and `passed` in `valid`).
//!
//! Requirements checked (the real policy bodies are not public, so these and their error
//! codes are the **simulator's choice**, picked from Twilio's 222xx bundle-validation range):
//!
//! | bundle | requirement_name | fails when | error_code |
//! | --- | --- | --- | --- |
//! | trust product | `customer_profile` | no customer profile linked by EntityAssignment | 22216 |
//! | trust product | `customer_profile` | linked profile is not `twilio-approved` (`object_field: bundle_status`) | 22217 |
//! | trust product | `phone_numbers` | no ChannelEndpointAssignment | 22214 |
//! | trust product | `phone_numbers` | an assigned number is no longer on a linked profile (`object_field: channel_endpoint_sid`) | 22218 |
//! | secondary/starter profile | `end_user` | no `IT…` EntityAssignment | 22214 |
//! | secondary/starter profile | `supporting_document` | no `RD…` EntityAssignment | 22216 |
//! | secondary profile | `primary_customer_profile` | no `BU…` EntityAssignment ("Primary customer profile bundle is null") | 22216 |
//! | primary profile | `customer_profile` | never (it is made and vetted in the Console) | — |
//!
//! The evaluation does not change the bundle's status (as in the spec: it is a synchronous
//! check). Policies known to the simulator: see [`POLICIES`]; their `requirements` bodies are
//! illustrative (modelled on the spec examples).

use serde_json::{Value, json};

use crate::model::{
    Bundle, BundleKind, BundleStatus, CNAM_POLICY, PRIMARY_PROFILE_POLICY,
    SECONDARY_PROFILE_POLICY, SHAKEN_STIR_POLICY, STARTER_PROFILE_POLICY,
};
use crate::state::State;

/// Sole Proprietor TrustProduct policy (spec example).
pub const SOLE_PROPRIETOR_POLICY: &str = "RN670d5d2e282a6130ae063b234b6019c8";

/// (sid, friendly_name, kind of bundle it applies to)
pub const POLICIES: &[(&str, &str, BundleKind)] = &[
    (
        SHAKEN_STIR_POLICY,
        "SHAKEN/STIR Trust Product",
        BundleKind::TrustProduct,
    ),
    (CNAM_POLICY, "CNAM Trust Product", BundleKind::TrustProduct),
    (
        SOLE_PROPRIETOR_POLICY,
        "Sole Proprietor TrustProduct",
        BundleKind::TrustProduct,
    ),
    (
        PRIMARY_PROFILE_POLICY,
        "Primary Customer Profile of type Business",
        BundleKind::CustomerProfile,
    ),
    (
        SECONDARY_PROFILE_POLICY,
        "Secondary Customer Profile of type Business",
        BundleKind::CustomerProfile,
    ),
    (
        STARTER_PROFILE_POLICY,
        "Starter Customer Profile of type Business",
        BundleKind::CustomerProfile,
    ),
];

pub fn policy_applies_to(policy_sid: &str, kind: BundleKind) -> bool {
    POLICIES
        .iter()
        .any(|(sid, _, k)| *sid == policy_sid && *k == kind)
}

/// `GET /v1/Policies/{Sid}` body, or `None` for an unknown policy.
pub fn policy_json(sid: &str, base: &str) -> Option<Value> {
    let (sid, name, kind) = POLICIES.iter().find(|(s, _, _)| *s == sid)?;
    let requirements = match kind {
        BundleKind::TrustProduct => json!({
            "end_user": [],
            "supporting_document": [],
            "supporting_customer_profiles": [{
                "type": "customer_profile", "name": "Business Profile",
                "requirement_name": "customer_profile"
            }],
            "supporting_trust_products": [],
        }),
        BundleKind::CustomerProfile => json!({
            "end_user": [{
                "url": "/EndUserTypes/customer_profile_business_information",
                "fields": ["business_name", "business_identity", "business_type", "business_industry",
                           "business_registration_identifier", "business_registration_number",
                           "business_regions_of_operation", "website_url", "social_media_profile_urls"],
                "type": "customer_profile_business_information", "name": "Business Information",
                "requirement_name": "customer_profile_business_information"
            }],
            "supporting_document": [[{
                "description": "Customer Profile HQ Physical Address", "type": "document",
                "name": "Physical Business Address",
                "accepted_documents": [{"url": "/SupportingDocumentTypes/customer_profile_address",
                    "fields": ["address_sids"], "type": "customer_profile_address",
                    "name": "Physical Business Address"}],
                "requirement_name": "customer_profile_address"
            }]],
            "supporting_customer_profiles": [],
            "supporting_trust_products": [],
        }),
    };
    Some(json!({
        "sid": sid,
        "friendly_name": name,
        "requirements": requirements,
        "url": format!("{base}/v1/Policies/{sid}"),
    }))
}

/// The outcome of evaluating a bundle.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub compliant: bool,
    pub results: Value,
}

impl Verdict {
    /// The distinct error codes of the failed requirements (used for automatic rejection).
    pub fn error_codes(&self) -> Vec<u32> {
        let mut codes: Vec<u32> = self
            .results
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["invalid"].as_array().cloned().unwrap_or_default())
            .filter_map(|i| i["error_code"].as_u64().and_then(|c| u32::try_from(c).ok()))
            .collect();
        codes.dedup();
        codes
    }
}

struct Requirement {
    name: &'static str,
    friendly: &'static str,
    object_type: &'static str,
    valid: Vec<Value>,
    invalid: Vec<Value>,
}

impl Requirement {
    fn new(name: &'static str, friendly: &'static str, object_type: &'static str) -> Self {
        Requirement {
            name,
            friendly,
            object_type,
            valid: vec![],
            invalid: vec![],
        }
    }
    fn pass(&mut self, field: &str, friendly: &str) {
        self.valid.push(json!({
            "object_field": field, "friendly_name": friendly, "passed": true,
            "failure_reason": null, "error_code": null
        }));
    }
    fn fail(&mut self, field: &str, friendly: &str, reason: String, code: u32) {
        self.invalid.push(json!({
            "object_field": field, "friendly_name": friendly,
            "failure_reason": reason, "error_code": code
        }));
    }
    fn into_json(self) -> Value {
        let first = self.invalid.first().cloned();
        json!({
            "requirement_name": self.name,
            "requirement_friendly_name": self.friendly,
            "object_type": self.object_type,
            "friendly_name": self.friendly,
            "passed": self.invalid.is_empty(),
            "failure_reason": first.as_ref().map(|f| f["failure_reason"].clone()),
            "error_code": first.as_ref().map(|f| f["error_code"].clone()),
            "valid": self.valid,
            "invalid": self.invalid,
        })
    }
}

pub fn evaluate(state: &State, bundle: &Bundle) -> Verdict {
    let requirements = match bundle.kind {
        BundleKind::TrustProduct => trust_product_requirements(state, bundle),
        BundleKind::CustomerProfile => profile_requirements(state, bundle),
    };
    let compliant = requirements.iter().all(|r| r.invalid.is_empty());
    Verdict {
        compliant,
        results: Value::Array(
            requirements
                .into_iter()
                .map(Requirement::into_json)
                .collect(),
        ),
    }
}

fn trust_product_requirements(state: &State, tp: &Bundle) -> Vec<Requirement> {
    let profiles = state.linked_profiles(&tp.sid);
    let mut profile_req =
        Requirement::new("customer_profile", "Business Profile", "customer_profile");
    if profiles.is_empty() {
        profile_req.fail(
            "customer_profile_sid",
            "Business Profile",
            "A Business Profile is missing. Please assign one to the Trust Product with an EntityAssignment.".into(),
            22216,
        );
    }
    for profile in &profiles {
        if profile.status == BundleStatus::TwilioApproved {
            profile_req.pass("bundle_status", "Business Profile status");
        } else {
            profile_req.fail(
                "bundle_status",
                "Business Profile status",
                format!(
                    "The Business Profile {} is {}; it must be twilio-approved.",
                    profile.sid,
                    profile.status.as_str()
                ),
                22217,
            );
        }
    }
    let mut numbers_req = Requirement::new("phone_numbers", "Phone Numbers", "phone_number");
    let assigned: Vec<_> = state.channel_assignments_of(&tp.sid).collect();
    if assigned.is_empty() {
        numbers_req.fail(
            "channel_endpoint_sid",
            "Phone Number",
            "No phone numbers are assigned to the Trust Product.".into(),
            22214,
        );
    }
    for a in assigned {
        // By the (bundle, endpoint) index: a scan of the profile's assignments per number made
        // evaluating a 50,000-number product take minutes.
        let on_profile = profiles.iter().any(|p| {
            state
                .channel_assignment_for(&p.sid, &a.channel_endpoint_sid)
                .is_some()
        });
        if on_profile {
            numbers_req.pass("channel_endpoint_sid", "Phone Number");
        } else {
            numbers_req.fail(
                "channel_endpoint_sid",
                "Phone Number",
                format!(
                    "Phone Number {} is not assigned to the linked Business Profile.",
                    a.channel_endpoint_sid
                ),
                22218,
            );
        }
    }
    vec![profile_req, numbers_req]
}

fn profile_requirements(state: &State, profile: &Bundle) -> Vec<Requirement> {
    if profile.policy_sid == PRIMARY_PROFILE_POLICY {
        let mut r = Requirement::new(
            "customer_profile",
            "Customer Profile",
            "primary_customer_profile_type_business",
        );
        r.pass("bundle_status", "Bundle Status");
        return vec![r];
    }
    let objects: Vec<&str> = state
        .entity_assignments_of(&profile.sid)
        .map(|e| e.object_sid.as_str())
        .collect();
    let has = |prefix: &str| objects.iter().any(|o| o.starts_with(prefix));
    let mut end_user = Requirement::new(
        "end_user",
        "Business Information",
        "customer_profile_business_information",
    );
    if has("IT") {
        end_user.pass("end_user_sid", "Business Information");
    } else {
        end_user.fail(
            "end_user_sid",
            "Business Information",
            "A Business End-User is missing. Please add one to the Customer Profile.".into(),
            22214,
        );
    }
    let mut document = Requirement::new(
        "supporting_document",
        "Physical Business Address",
        "customer_profile_address",
    );
    if has("RD") {
        document.pass("address_sids", "Address sid(s)");
    } else {
        document.fail(
            "address_sids",
            "Address sid(s)",
            "A Physical Business Address is missing. Please add one to the Customer Profile."
                .into(),
            22216,
        );
    }
    let mut out = vec![end_user, document];
    if profile.policy_sid == SECONDARY_PROFILE_POLICY {
        let mut primary = Requirement::new(
            "primary_customer_profile",
            "Primary Customer Profile",
            "customer_profile",
        );
        if has("BU") {
            primary.pass("customer_profile_sid", "Primary Customer Profile");
        } else {
            primary.fail(
                "customer_profile_sid",
                "Primary Customer Profile",
                "Primary customer profile bundle is null".into(),
                22216,
            );
        }
        out.push(primary);
    }
    out
}
