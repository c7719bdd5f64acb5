//! Request and object counters for tests and benchmarks (`GET /_sim/counters`).
//!
//! Requests are counted by route template *as written in the spec* (e.g.
//! `POST /v1/TrustProducts/{TrustProductSid}/ChannelEndpointAssignments`) and by the spec's
//! operationId (e.g. `CreateTrustProductChannelEndpointAssignment`). Every request that
//! reaches the API is counted, including those answered by an injected fault; requests that
//! match no route count under `UNMATCHED`. Admin requests are not counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// (method, spec path, operationId) of every operation the simulator serves.
pub const OPERATIONS: &[(&str, &str, &str)] = &[
    ("POST", "/v1/CustomerProfiles", "CreateCustomerProfile"),
    ("GET", "/v1/CustomerProfiles", "ListCustomerProfile"),
    ("GET", "/v1/CustomerProfiles/{Sid}", "FetchCustomerProfile"),
    (
        "POST",
        "/v1/CustomerProfiles/{Sid}",
        "UpdateCustomerProfile",
    ),
    (
        "DELETE",
        "/v1/CustomerProfiles/{Sid}",
        "DeleteCustomerProfile",
    ),
    (
        "POST",
        "/v1/CustomerProfiles/{CustomerProfileSid}/ChannelEndpointAssignments",
        "CreateCustomerProfileChannelEndpointAssignment",
    ),
    (
        "GET",
        "/v1/CustomerProfiles/{CustomerProfileSid}/ChannelEndpointAssignments",
        "ListCustomerProfileChannelEndpointAssignment",
    ),
    (
        "GET",
        "/v1/CustomerProfiles/{CustomerProfileSid}/ChannelEndpointAssignments/{Sid}",
        "FetchCustomerProfileChannelEndpointAssignment",
    ),
    (
        "DELETE",
        "/v1/CustomerProfiles/{CustomerProfileSid}/ChannelEndpointAssignments/{Sid}",
        "DeleteCustomerProfileChannelEndpointAssignment",
    ),
    (
        "POST",
        "/v1/CustomerProfiles/{CustomerProfileSid}/EntityAssignments",
        "CreateCustomerProfileEntityAssignment",
    ),
    (
        "GET",
        "/v1/CustomerProfiles/{CustomerProfileSid}/EntityAssignments",
        "ListCustomerProfileEntityAssignment",
    ),
    (
        "GET",
        "/v1/CustomerProfiles/{CustomerProfileSid}/EntityAssignments/{Sid}",
        "FetchCustomerProfileEntityAssignment",
    ),
    (
        "DELETE",
        "/v1/CustomerProfiles/{CustomerProfileSid}/EntityAssignments/{Sid}",
        "DeleteCustomerProfileEntityAssignment",
    ),
    (
        "POST",
        "/v1/CustomerProfiles/{CustomerProfileSid}/Evaluations",
        "CreateCustomerProfileEvaluation",
    ),
    (
        "GET",
        "/v1/CustomerProfiles/{CustomerProfileSid}/Evaluations",
        "ListCustomerProfileEvaluation",
    ),
    (
        "GET",
        "/v1/CustomerProfiles/{CustomerProfileSid}/Evaluations/{Sid}",
        "FetchCustomerProfileEvaluation",
    ),
    ("GET", "/v1/Policies", "ListPolicies"),
    ("GET", "/v1/Policies/{Sid}", "FetchPolicies"),
    ("POST", "/v1/TrustProducts", "CreateTrustProduct"),
    ("GET", "/v1/TrustProducts", "ListTrustProduct"),
    ("GET", "/v1/TrustProducts/{Sid}", "FetchTrustProduct"),
    ("POST", "/v1/TrustProducts/{Sid}", "UpdateTrustProduct"),
    ("DELETE", "/v1/TrustProducts/{Sid}", "DeleteTrustProduct"),
    (
        "POST",
        "/v1/TrustProducts/{TrustProductSid}/ChannelEndpointAssignments",
        "CreateTrustProductChannelEndpointAssignment",
    ),
    (
        "GET",
        "/v1/TrustProducts/{TrustProductSid}/ChannelEndpointAssignments",
        "ListTrustProductChannelEndpointAssignment",
    ),
    (
        "GET",
        "/v1/TrustProducts/{TrustProductSid}/ChannelEndpointAssignments/{Sid}",
        "FetchTrustProductChannelEndpointAssignment",
    ),
    (
        "DELETE",
        "/v1/TrustProducts/{TrustProductSid}/ChannelEndpointAssignments/{Sid}",
        "DeleteTrustProductChannelEndpointAssignment",
    ),
    (
        "POST",
        "/v1/TrustProducts/{TrustProductSid}/EntityAssignments",
        "CreateTrustProductEntityAssignment",
    ),
    (
        "GET",
        "/v1/TrustProducts/{TrustProductSid}/EntityAssignments",
        "ListTrustProductEntityAssignment",
    ),
    (
        "GET",
        "/v1/TrustProducts/{TrustProductSid}/EntityAssignments/{Sid}",
        "FetchTrustProductEntityAssignment",
    ),
    (
        "DELETE",
        "/v1/TrustProducts/{TrustProductSid}/EntityAssignments/{Sid}",
        "DeleteTrustProductEntityAssignment",
    ),
    (
        "POST",
        "/v1/TrustProducts/{TrustProductSid}/Evaluations",
        "CreateTrustProductEvaluation",
    ),
    (
        "GET",
        "/v1/TrustProducts/{TrustProductSid}/Evaluations",
        "ListTrustProductEvaluation",
    ),
    (
        "GET",
        "/v1/TrustProducts/{TrustProductSid}/Evaluations/{Sid}",
        "FetchTrustProductEvaluation",
    ),
    ("GET", "/2010-04-01/Accounts.json", "ListAccount"),
    ("GET", "/2010-04-01/Accounts/{Sid}.json", "FetchAccount"),
    (
        "GET",
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}.json",
        "FetchIncomingPhoneNumber",
    ),
    (
        "GET",
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json",
        "ListIncomingPhoneNumber",
    ),
];

/// The axum route for a spec path: the first capture becomes `{sid}`, the second `{item}`,
/// and `.json` after a capture is dropped (handlers strip it from the value) because a route
/// capture must span a whole segment.
pub fn axum_path(spec_path: &str) -> String {
    let mut out = String::new();
    let mut captures = 0;
    let mut rest = spec_path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push_str(if captures == 0 { "{sid}" } else { "{item}" });
        captures += 1;
        rest = &rest[start + len + 1..];
        if rest == ".json" {
            rest = "";
        }
    }
    out.push_str(rest);
    out
}

/// (METHOD, axum route) → (METHOD spec path, operationId)
/// (METHOD, axum route) → (`METHOD spec path`, operationId)
type RouteTable = HashMap<(String, String), (String, &'static str)>;

static BY_ROUTE: LazyLock<RouteTable> = LazyLock::new(|| {
    OPERATIONS
        .iter()
        .map(|(method, spec, op)| {
            (
                (method.to_string(), axum_path(spec)),
                (format!("{method} {spec}"), *op),
            )
        })
        .collect()
});

/// Look up the spec template and operationId of a matched axum route.
pub fn operation(method: &str, matched_route: &str) -> Option<(&'static str, &'static str)> {
    BY_ROUTE
        .get(&(method.to_string(), matched_route.to_string()))
        .map(|(template, op)| (template.as_str(), *op))
}

/// Snapshot of the counters; the JSON of `GET /_sim/counters`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// All API requests (not admin).
    pub requests: u64,
    /// `"POST /v1/TrustProducts"` → n
    pub by_route: BTreeMap<String, u64>,
    /// `"CreateTrustProduct"` → n
    pub by_operation: BTreeMap<String, u64>,
    /// Objects created through the API by type: `CustomerProfile`, `TrustProduct`,
    /// `CustomerProfileChannelEndpointAssignment`, `TrustProductEntityAssignment`, … (the
    /// operationId without `Create`).
    pub created: BTreeMap<String, u64>,
    /// Injected faults by kind: `429`, `500`, `503`, `drop`, `delay`, `concurrency_429`.
    pub faults: BTreeMap<String, u64>,
    /// Status callbacks delivered (2xx answer) and failed (error or non-2xx).
    pub callbacks_delivered: u64,
    pub callbacks_failed: u64,
    /// Requests served (not refused by the concurrency limit) and the time they were in flight,
    /// from arrival to response, summed in microseconds: their mean is the call latency, and
    /// their sum over a wall-clock span the mean number in flight.
    #[serde(default)]
    pub served: u64,
    #[serde(default)]
    pub served_micros: u64,
}

impl Counters {
    pub fn record_request(&mut self, route: &str, operation: Option<&str>) {
        self.requests += 1;
        *self.by_route.entry(route.to_string()).or_default() += 1;
        if let Some(op) = operation {
            *self.by_operation.entry(op.to_string()).or_default() += 1;
        }
    }

    pub fn record_created(&mut self, object_type: &str) {
        *self.created.entry(object_type.to_string()).or_default() += 1;
    }

    /// Records a request served in `elapsed`.
    pub fn record_served(&mut self, elapsed: Duration) {
        self.served += 1;
        self.served_micros = self
            .served_micros
            .saturating_add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn record_fault(&mut self, label: &str) {
        *self.faults.entry(label.to_string()).or_default() += 1;
    }

    /// Number of calls of one operationId.
    pub fn calls(&self, operation_id: &str) -> u64 {
        self.by_operation.get(operation_id).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_paths_map_to_axum_routes() {
        assert_eq!(
            axum_path("/v1/TrustProducts/{TrustProductSid}/ChannelEndpointAssignments/{Sid}"),
            "/v1/TrustProducts/{sid}/ChannelEndpointAssignments/{item}"
        );
        assert_eq!(
            axum_path("/2010-04-01/Accounts/{Sid}.json"),
            "/2010-04-01/Accounts/{sid}"
        );
        assert_eq!(
            axum_path("/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json"),
            "/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json"
        );
        assert_eq!(
            operation("POST", "/v1/TrustProducts"),
            Some(("POST /v1/TrustProducts", "CreateTrustProduct"))
        );
    }
}
