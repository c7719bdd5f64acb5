//! The largest objects the operator writes fit in etcd, and etcd's limit is real.
//!
//! A BusinessProfileBinding and a ShakenStirTrustProduct with the maximum 1,000 numbers, every
//! string at the longest the schema or the operator allows, and the status the operator writes
//! when Twilio refuses every number (each refusal appears in the number's entry and in two
//! condition messages) are built from the Rust types in `src/api` and written through the
//! status subresource. Twilio's error message is the one input without a bound: its length
//! here is [`TWILIO_MESSAGE_LEN`], and the test prints how long it may grow before the limit.
//! A status padded past etcd's request limit (1.5 MiB) but under the apiserver's (3 MiB) is
//! refused. See `object_size` for the builders.

use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Error};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use trusthub_operator::api::{BusinessProfileBinding, ShakenStirTrustProduct};

use crate::cluster::Cluster;
use crate::object_size::{self, NUMBERS, TWILIO_MESSAGE_LEN};

/// etcd's default `--max-request-bytes`.
const ETCD_LIMIT: usize = 1536 * 1024;
/// kube-apiserver's limit on a request body (`MaxRequestBodyBytes`).
const APISERVER_LIMIT: usize = 3 * 1024 * 1024;

fn json_len<T: Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).expect("serialize").len()
}

/// Creates `obj`, writes its status through the status subresource, and returns the size in
/// bytes of the object the apiserver answers with (what it stored, `managedFields` included).
async fn write<K>(api: &Api<K>, obj: &K, status: &serde_json::Value) -> Result<usize, Error>
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = obj.meta().name.clone().expect("a name");
    api.create(&PostParams::default(), obj).await?;
    let stored = api
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await?;
    Ok(json_len(&stored))
}

fn report(what: &str, operator_bytes: usize, stored_bytes: usize, per_message_byte: usize) {
    let margin = ETCD_LIMIT as i64 - stored_bytes as i64;
    eprintln!(
        "object size: {what}: {operator_bytes} bytes as the operator builds it, {stored_bytes} \
         bytes as stored; etcd limit {ETCD_LIMIT}, margin {margin} bytes ({:.1}% of the limit \
         used); each byte of Twilio's message counts {per_message_byte} times: it fits with \
         Twilio messages up to about {} bytes (here {TWILIO_MESSAGE_LEN})",
        100.0 * stored_bytes as f64 / ETCD_LIMIT as f64,
        TWILIO_MESSAGE_LEN as i64 + margin / per_message_byte as i64,
    );
}

/// Creates bindings with the first `n` numbers of `binding` until the real apiserver's CEL
/// cost limit lets one through; returns the largest accepted count (bisection).
async fn largest_accepted(
    api: &Api<BusinessProfileBinding>,
    binding: &BusinessProfileBinding,
) -> usize {
    let (mut accepted, mut refused) = (0, binding.spec.phone_numbers.len());
    while refused - accepted > 1 {
        let n = (accepted + refused) / 2;
        let mut smaller = binding.clone();
        smaller.metadata.name = Some(format!("bisect-{n}"));
        smaller.spec.phone_numbers.truncate(n);
        match api.create(&PostParams::default(), &smaller).await {
            Ok(_) => accepted = n,
            Err(_) => refused = n,
        }
    }
    accepted
}

/// The object is stored under etcd's limit, or (KNOWN ISSUE, printed) refused by etcd or by
/// the apiserver's etcd client because it is over it, or over it and stored by kube-local
/// (which has no etcd): any other answer fails.
fn check(
    cluster: &Cluster,
    what: &str,
    operator_bytes: usize,
    written: Result<usize, Error>,
    per_byte: usize,
) {
    match written {
        Ok(stored) => {
            report(what, operator_bytes, stored, per_byte);
            if stored >= ETCD_LIMIT && !cluster.is_real() {
                eprintln!("KNOWN ISSUE: {what}: kube-local stored it; a real etcd refuses it");
                return;
            }
            assert!(
                stored < ETCD_LIMIT,
                "{what}: {stored} bytes stored over the limit"
            );
        }
        Err(Error::Api(status))
            if status.message.contains("etcdserver: request is too large")
                || status
                    .message
                    .contains("trying to send message larger than max") =>
        {
            report(what, operator_bytes, operator_bytes, per_byte);
            eprintln!(
                "KNOWN ISSUE: {what}: the largest status the operator writes is refused: {} {}",
                status.code, status.message
            );
            assert!(
                operator_bytes > ETCD_LIMIT,
                "{what}: refused under the limit"
            );
        }
        Err(e) => panic!("{what} ({operator_bytes} bytes) refused: {e}"),
    }
}

#[tokio::test]
async fn the_largest_binding_status_fits_or_is_refused_as_over_the_limit() {
    let (cluster, client, ns) = Cluster::start().await;
    let (mut binding, status) = object_size::largest_binding(&ns);
    let status = serde_json::to_value(&status).expect("status to JSON");
    let api: Api<BusinessProfileBinding> = Api::namespaced(client.clone(), &ns);
    if let Err(e) = api.create(&PostParams::default(), &binding).await {
        // KNOWN ISSUE: the uniqueness rule on spec.phoneNumbers is O(n²); the real apiserver
        // stops it at its per-call CEL cost limit long before maxItems (crd-validation has no
        // cost budget, so kube-local accepts). Measure with the largest spec it accepts.
        assert!(
            e.to_string().contains("actual cost limit exceeded"),
            "a 1,000-number binding refused for another reason: {e}"
        );
        let n = largest_accepted(&api, &binding).await;
        eprintln!(
            "KNOWN ISSUE: a binding of {NUMBERS} numbers is refused by the CEL cost limit; the \
             largest accepted has {n} numbers (by E.164 and subaccount). Its status below still \
             lists {NUMBERS} numbers."
        );
        binding.spec.phone_numbers.truncate(n);
    }
    binding.metadata.name = Some("largest".into());
    let mut full = binding.clone();
    full.status = serde_json::from_value(status.clone()).ok();
    let operator_bytes = json_len(&full);
    let written = write(&api, &binding, &status).await;
    // Each refusal is in the number's entry and in two condition messages.
    check(
        &cluster,
        "BusinessProfileBinding",
        operator_bytes,
        written,
        3 * NUMBERS,
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn the_largest_trust_product_status_fits_or_is_refused_as_over_the_limit() {
    let (cluster, client, ns) = Cluster::start().await;
    let (product, status) = object_size::largest_trust_product(&ns);
    let status = serde_json::to_value(&status).expect("status to JSON");
    let mut full = product.clone();
    full.status = serde_json::from_value(status.clone()).ok();
    let operator_bytes = json_len(&full);
    let api: Api<ShakenStirTrustProduct> = Api::namespaced(client.clone(), &ns);
    let written = write(&api, &product, &status).await;
    // Refusals: the number's entry and two conditions; failed requirements: the entry and one.
    check(
        &cluster,
        "ShakenStirTrustProduct",
        operator_bytes,
        written,
        5 * NUMBERS,
    );
    cluster.shutdown().await;
}

/// Writes a one-number binding whose Synced message pads the status to `bytes`.
async fn padded(client: &Client, ns: &str, name: &str, bytes: usize) -> Result<usize, Error> {
    let (mut binding, _) = object_size::largest_binding(ns);
    binding.metadata.name = Some(name.to_string());
    binding.spec.phone_numbers.truncate(1);
    let status = json!({"conditions": [{
        "type": "Synced", "status": "False", "reason": "Padding",
        "message": "x".repeat(bytes),
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }]});
    write(&Api::namespaced(client.clone(), ns), &binding, &status).await
}

fn refusal(what: &str, answer: &Result<usize, Error>) -> Box<kube::core::Status> {
    eprintln!("{what}: {answer:?}");
    match answer {
        Err(Error::Api(status)) => status.clone(),
        other => panic!("{what} was not refused: {other:?}"),
    }
}

#[tokio::test]
async fn a_status_over_the_limits_is_refused() {
    let (cluster, client, ns) = Cluster::start().await;
    // Over 3 MiB the apiserver refuses the body before decoding it (kube-local too).
    let body = refusal(
        "a 3 MiB status",
        &padded(&client, &ns, "over-body", APISERVER_LIMIT + 1024).await,
    );
    assert_eq!(body.code, 413, "{body:?}");
    if !cluster.is_real() {
        let stored = padded(&client, &ns, "over-etcd", ETCD_LIMIT + 256 * 1024).await;
        eprintln!("kube-local has no etcd: a 1.75 MiB status is stored: {stored:?}");
        assert!(
            stored.is_ok(),
            "kube-local now limits objects: update this test"
        );
        cluster.shutdown().await;
        return;
    }
    // Between 1.5 and 2 MiB etcd itself refuses the write.
    let etcd = refusal(
        "a 1.75 MiB status",
        &padded(&client, &ns, "over-etcd", ETCD_LIMIT + 256 * 1024).await,
    );
    assert!(
        etcd.code == 500 && etcd.message.contains("etcdserver: request is too large"),
        "{etcd:?}"
    );
    // Between 2 and 3 MiB the apiserver's etcd client (gRPC, 2 MiB per message) refuses first.
    let grpc = refusal(
        "a 2.5 MiB status",
        &padded(&client, &ns, "over-grpc", 2 * 1024 * 1024 + 512 * 1024).await,
    );
    assert!(
        grpc.code == 500
            && grpc
                .message
                .contains("trying to send message larger than max"),
        "{grpc:?}"
    );
    cluster.shutdown().await;
}
