//! Builders for the largest objects and statuses the operator produces (see
//! `real_object_size`). Messages are formatted and bounded as the controllers do it (the format
//! strings are repeated here from `src/controller`; the bounds are the operator's own
//! `planner::text`), from a Twilio error built with the client's own `TwilioError`, so its
//! `Display` is exactly what the operator records.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use trusthub_operator::api::{ADOPTED_MAX, Ownership};
use trusthub_operator::api::{
    AuthType, BindingRef, BusinessProfileBinding, BusinessProfileBindingSpec,
    BusinessProfileBindingStatus, BusinessProfileRef, CredentialsRef, DeletionPolicy,
    EvaluationStatus, FailedRequirement, NumberCounts, NumberOrSid, NumberState,
    PhoneNumberAssignmentStatus, PhoneNumberRef, ResolvedBusinessProfile, ShakenStirTrustProduct,
    ShakenStirTrustProductSpec, ShakenStirTrustProductStatus, TrustProductNumberStatus,
};
use trusthub_operator::controller::book::Abridge;
use trusthub_operator::planner::text::{self, CONDITION_MESSAGE_MAX, NUMBER_MESSAGE_MAX};
use trusthub_operator::twilio::{TwilioError, TwilioErrorBody};

/// The CRDs' `maxItems` for `spec.phoneNumbers`.
pub const NUMBERS: usize = 2000;
/// Numbers behind the largest statuses: the most a binding handles (listed and selected), every
/// one needing attention, Twilio's reason on the first `NUMBER_MESSAGES_MAX` only. The status
/// written is the abridged one the operator writes (`controller::book`).
pub const STATUS_NUMBERS: usize = trusthub_operator::api::MAX_BINDING_NUMBERS;
/// The most a status may take, from issue J: a quarter of etcd's limit, whatever the numbers.
pub const STATUS_LIMIT: usize = 256 * 1024;
/// A Trust Product's own `phoneNumbers` (with `businessProfileSid`) is capped lower in its CRD.
const PRODUCT_SPEC_NUMBERS: usize = 1000;
/// Every write of one batch is marked in flight at once.
const BATCH: usize = 500;
/// Problem numbers that carry Twilio's reason.
const REASONS: usize = trusthub_operator::planner::text::NUMBER_MESSAGES_MAX;
/// Twilio's error messages have no documented bound; the simulator's are under 100 bytes and
/// Twilio's documented ones under 200. This is the length used for every Twilio text: far
/// longer, to show that the operator's bounds, not Twilio's restraint, keep the status small.
pub const TWILIO_MESSAGE_LEN: usize = 16 * 1024;

fn sid(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:032x}")
}

/// E.164 at its longest: `+` and 15 digits.
fn e164(i: usize) -> String {
    format!("+1{:014}", 41_555_500_000usize + i)
}

/// A DNS subdomain of `len` bytes (labels of at most 63).
fn dns_name(len: usize) -> String {
    let mut out = String::new();
    while out.len() < len {
        if !out.is_empty() {
            out.push('.');
        }
        let label = (len - out.len()).min(63);
        out.push_str(&"a".repeat(label));
    }
    out
}

/// The longest timestamp text: nanoseconds.
fn time() -> Time {
    Time(
        "2026-12-31T23:59:59.999999999Z"
            .parse::<Timestamp>()
            .expect("timestamp"),
    )
}

fn twilio_text(len: usize) -> String {
    "Twilio refused the request for a reason that it explains at length here. "
        .chars()
        .cycle()
        .take(len)
        .collect()
}

fn twilio_error(operation: &'static str) -> TwilioError {
    TwilioError::Api {
        operation,
        status: 400,
        body: Box::new(TwilioErrorBody {
            code: Some(99_999),
            message: Some(twilio_text(TWILIO_MESSAGE_LEN)),
            more_info: Some("https://www.twilio.com/docs/errors/99999".into()),
            status: Some(400),
        }),
        retry_after: None,
    }
}

fn condition(type_: &str, status: &str, reason: &str, message: String) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: text::bounded(message, CONDITION_MESSAGE_MAX),
        observed_generation: Some(i64::MAX),
        last_transition_time: time(),
    }
}

fn credentials() -> CredentialsRef {
    let key = "K".repeat(253);
    CredentialsRef {
        secret_name: dns_name(253),
        auth_type: AuthType::AuthToken,
        account_sid_key: key.clone(),
        auth_token_key: key.clone(),
        api_key_key: key.clone(),
        api_secret_key: key,
    }
}

/// A binding of 1,000 numbers given by E.164 and subaccount (longer than by SID), and the
/// status of a sync where Twilio refused every assignment (`controller/binding.rs`).
pub fn largest_binding(ns: &str) -> (BusinessProfileBinding, BusinessProfileBindingStatus) {
    let spec = BusinessProfileBindingSpec {
        credentials: credentials(),
        business_profile: BusinessProfileRef {
            sid: None,
            friendly_name: Some("P".repeat(255)),
        },
        phone_numbers: (0..NUMBERS)
            .map(|i| PhoneNumberRef::by_number(e164(i), sid("AC", i)))
            .collect(),
        deletion_policy: DeletionPolicy::Delete,
        discovery: None,
    };
    let mut binding = BusinessProfileBinding::new(&dns_name(253), spec);
    binding.metadata.namespace = Some(ns.to_string());
    let refusal = text::bounded(
        format!(
            "Twilio refused the assignment: {}",
            twilio_error("CreateCustomerProfileChannelEndpointAssignment")
        ),
        NUMBER_MESSAGE_MAX,
    );
    let numbers: Vec<PhoneNumberAssignmentStatus> = (0..STATUS_NUMBERS)
        .map(|i| PhoneNumberAssignmentStatus {
            phone_number: Some(e164(i).into()),
            sid: Some(sid("PN", i).into()),
            subaccount_sid: Some(sid("AC", i).into()),
            assignment_sid: Some(sid("RA", i).into()),
            created_by_operator: true,
            state: if i % 2 == 0 {
                NumberState::Releasing
            } else {
                NumberState::Failed
            },
            message: (i < REASONS).then(|| refusal.clone()),
        })
        .collect();
    let problems: Vec<String> = (0..NUMBERS)
        .map(|i| format!("{}: {refusal}", e164(i)))
        .collect();
    let profile = sid("BU", 1);
    let mut status = BusinessProfileBindingStatus {
        observed_generation: Some(i64::MAX),
        conditions: vec![
            condition(
                "ProfileApproved",
                "False",
                "Rejected",
                format!("Business Profile {profile} was rejected by Twilio; fix it in the Console"),
            ),
            condition(
                "NumbersAssigned",
                "False",
                "NumbersUnresolvable",
                text::listed(&problems, "; "),
            ),
            condition(
                "Ready",
                "False",
                "NumbersUnresolvable",
                text::listed(&problems, "; "),
            ),
            condition("Synced", "True", "Synced", "in sync with Trust Hub".into()),
        ],
        business_profile: Some(ResolvedBusinessProfile {
            sid: profile,
            friendly_name: Some("P".repeat(255)),
            status: Some("twilio-rejected".into()),
            policy_sid: Some(sid("RN", 1)),
            valid_until: Some(time().0.to_string()),
        }),
        phone_numbers: numbers,
        numbers_summary: Some(format!("{STATUS_NUMBERS}/{STATUS_NUMBERS}")),
        numbers: Some(largest_counts()),
        coverage: Some(largest_counts().coverage()),
        // One batch is in flight at a time: its markers.
        assignments_pending: (0..BATCH).map(|i| sid("PN", i)).collect(),
        assignments_listed_at: Some(time()),
        last_sync_time: Some(time()),
        discovery: None,
        numbers_abridged: false,
        numbers_omitted: 0,
        numbers_digest: Some(format!("{:016x}", u64::MAX)),
        ownership: Some(largest_ownership()),
    };
    (binding, status.abridged())
}

/// Ownership with every adopted assignment it lists.
fn largest_ownership() -> Ownership {
    Ownership {
        since: Some(time()),
        adopted: (0..ADOPTED_MAX).map(|i| sid("RA", i)).collect(),
        adopted_omitted: u32::MAX,
    }
}

/// Counts with every field at its widest.
fn largest_counts() -> NumberCounts {
    NumberCounts {
        selected: u32::MAX,
        done: u32::MAX,
        refused: u32::MAX,
        unresolvable: u32::MAX,
        releasing: u32::MAX,
        covered: u32::MAX,
    }
}

fn trust_product_spec() -> ShakenStirTrustProductSpec {
    let callback = "https://hooks.example.com/";
    ShakenStirTrustProductSpec {
        credentials: credentials(),
        friendly_name: "F".repeat(64),
        // 254 bytes: a 64-byte local part and a 189-byte domain.
        email: format!("{}@{}.com", "e".repeat(64), dns_name(185)),
        status_callback: Some(format!("{callback}{}", "p".repeat(2048 - callback.len()))),
        business_profile_binding_ref: Some(BindingRef {
            name: dns_name(253),
        }),
        business_profile_sid: None,
        phone_numbers: Some(
            (0..PRODUCT_SPEC_NUMBERS)
                .map(|i| NumberOrSid(sid("PN", i)))
                .collect(),
        ),
        policy_sid: sid("RN", 7),
        submit: true,
        deletion_policy: DeletionPolicy::Delete,
        trust_product_sid: Some(sid("BU", 2)),
    }
}

/// One failed requirement per number, each with Twilio's reason, as many as the operator keeps
/// (`controller/trust_product`).
fn failed_requirements() -> Vec<FailedRequirement> {
    (0..NUMBERS.min(100))
        .map(|i| FailedRequirement {
            requirement: "phone_numbers".into(),
            field: Some(format!("phone_number_{i}")),
            reason: Some(text::bounded(
                twilio_text(TWILIO_MESSAGE_LEN),
                NUMBER_MESSAGE_MAX,
            )),
            error_code: Some(99_999),
        })
        .collect()
}

/// A product of 1,000 numbers whose every attachment Twilio refused, after a noncompliant
/// evaluation failing once per number, with every optional field set.
pub fn largest_trust_product(ns: &str) -> (ShakenStirTrustProduct, ShakenStirTrustProductStatus) {
    let spec = trust_product_spec();
    let mut product = ShakenStirTrustProduct::new(&dns_name(253), spec);
    product.metadata.namespace = Some(ns.to_string());
    let refusal = text::bounded(
        format!(
            "Twilio refused to attach it: {}",
            twilio_error("CreateTrustProductChannelEndpointAssignment")
        ),
        NUMBER_MESSAGE_MAX,
    );
    let refused: Vec<String> = (0..NUMBERS)
        .map(|i| format!("{}: {refusal}", sid("PN", i)))
        .collect();
    let failed = failed_requirements();
    let failures: Vec<String> = failed
        .iter()
        .map(|f| {
            let (field, reason) = (f.field.clone().unwrap_or_default(), f.reason.clone());
            format!(
                "{} ({field}): {} [99999]",
                f.requirement,
                reason.unwrap_or_default()
            )
        })
        .collect();
    let numbers: Vec<String> = (0..NUMBERS).map(|i| sid("PN", i)).collect();
    let synced = format!(
        "Twilio attach a phone number: {}",
        twilio_error("CreateTrustProductChannelEndpointAssignment")
    );
    let mut status = ShakenStirTrustProductStatus {
        observed_generation: Some(i64::MAX),
        conditions: vec![
            condition(
                "Ready",
                "False",
                "AttachmentRefused",
                text::listed(&refused, "; "),
            ),
            condition("Synced", "False", "TwilioError", synced),
            condition(
                "ProfileAttached",
                "True",
                "Attached",
                format!("attached to {}", sid("BU", 1)),
            ),
            condition(
                "NumbersAttached",
                "False",
                "AttachmentRefused",
                text::listed(&refused, "; "),
            ),
            condition(
                "Compliant",
                "False",
                "Noncompliant",
                format!("evaluation failed: {}", text::listed(&failures, "; ")),
            ),
            condition(
                "Submitted",
                "False",
                "NotSubmitted",
                "waiting for a compliant evaluation".into(),
            ),
            condition(
                "Approved",
                "False",
                "Rejected",
                "rejected by Twilio: errors 99999".into(),
            ),
        ],
        trust_product_sid: Some(sid("BU", 2)),
        trust_product_created: true,
        create_pending_since: Some(time()),
        twilio_status: Some("twilio-rejected".into()),
        valid_until: Some(time().0.to_string()),
        business_profile_sid: Some(sid("BU", 1)),
        entity_assignment_sid: Some(sid("BV", 1)),
        entity_assignment_created: true,
        // One batch is in flight at a time: its markers.
        attachments_pending: (0..BATCH).map(|i| sid("PN", i)).collect(),
        phone_numbers: (0..STATUS_NUMBERS)
            .map(|i| TrustProductNumberStatus {
                phone_number: Some(e164(i).into()),
                sid: sid("PN", i).into(),
                // Not attached: every number needs attention.
                assignment_sid: None,
                created_by_operator: true,
                message: (i < REASONS).then(|| refusal.clone()),
            })
            .collect(),
        numbers_summary: Some(format!("{STATUS_NUMBERS}/{STATUS_NUMBERS}")),
        numbers: Some(largest_counts()),
        coverage: Some(largest_counts().coverage()),
        assignments_listed_at: Some(time()),
        adoption: Some(format!(
            "Trust Product {} is the SHAKEN/STIR product attached to Business Profile {}",
            sid("BU", 2),
            sid("BU", 1)
        )),
        last_evaluation: Some(EvaluationStatus {
            sid: sid("EL", 1),
            // More than 256 bytes of numbers are recorded by count and digest
            // (`planner::trust_product::numbers_tag`).
            key: format!(
                "{}|{} numbers {:016x}|resubmit-g{}-a:#0123456789abcdef",
                sid("BU", 1),
                numbers.len(),
                u64::MAX,
                i64::MAX
            ),
            noncompliant_since: Some(time()),
            status: "noncompliant".into(),
            failed_requirements: failed,
            evaluated_at: Some(time()),
        }),
        errors: vec![99_999; 20],
        submitted_at: Some(time()),
        approved_at: Some(time()),
        last_resubmit: Some("r".repeat(253)),
        rejected_generation: Some(i64::MAX),
        last_sync_time: Some(time()),
        numbers_abridged: false,
        numbers_omitted: 0,
        ownership: Some(largest_ownership()),
    };
    (product, status.abridged())
}
