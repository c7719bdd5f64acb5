//! The largest objects the operator writes fit in etcd, and etcd's limit is real.
//!
//! A BusinessProfileBinding and a ShakenStirTrustProduct with the maximum 1,000 numbers, every
//! string at the longest the schema or the operator allows, and the status the operator writes
//! when Twilio refuses every number are built from the Rust types in `src/api` and written
//! through the status subresource. Twilio's error message is the one input without a bound:
//! here it is [`TWILIO_MESSAGE_LEN`] bytes, and the operator's own bounds (`planner::text`)
//! must keep the stored object under etcd's limit. A status padded past etcd's request limit
//! (1.5 MiB) but under the apiserver's (3 MiB) is refused, so the limit is real.
//! See `object_size` for the builders.

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

fn report(what: &str, operator_bytes: usize, stored_bytes: usize) {
    eprintln!(
        "object size: {what}: {operator_bytes} bytes as the operator builds it, {stored_bytes} \
         bytes as stored; etcd limit {ETCD_LIMIT}, margin {} bytes ({:.1}% of the limit used) \
         with Twilio messages of {TWILIO_MESSAGE_LEN} bytes",
        ETCD_LIMIT as i64 - stored_bytes as i64,
        100.0 * stored_bytes as f64 / ETCD_LIMIT as f64,
    );
}

/// The object is stored, and under etcd's limit (kube-local has no etcd: the size is checked
/// against the limit all the same).
fn check(what: &str, operator_bytes: usize, written: Result<usize, Error>) {
    let stored = written.unwrap_or_else(|e| panic!("{what} ({operator_bytes} bytes) refused: {e}"));
    report(what, operator_bytes, stored);
    assert!(
        stored < ETCD_LIMIT,
        "{what}: {stored} bytes stored over etcd's limit"
    );
}

#[tokio::test]
async fn the_largest_binding_and_its_status_are_stored() {
    let (cluster, client, ns) = Cluster::start().await;
    let (mut binding, status) = object_size::largest_binding(&ns);
    binding.metadata.name = Some("largest".into());
    let status = serde_json::to_value(&status).expect("status to JSON");
    let mut full = binding.clone();
    full.status = serde_json::from_value(status.clone()).ok();
    let operator_bytes = json_len(&full);
    // All 1,000 numbers, by E.164 and subaccount: no CEL rule's cost grows with the list (a
    // real apiserver stopped the old O(n²) uniqueness rule near 600 numbers).
    let api: Api<BusinessProfileBinding> = Api::namespaced(client.clone(), &ns);
    assert_eq!(binding.spec.phone_numbers.len(), NUMBERS);
    let status_bytes = serde_json::to_vec(&status).expect("status").len();
    eprintln!(
        "BusinessProfileBinding status of {} numbers: {status_bytes} bytes",
        object_size::STATUS_NUMBERS
    );
    assert!(
        status_bytes <= object_size::STATUS_LIMIT,
        "BusinessProfileBinding: status of {status_bytes} bytes over 256 KiB"
    );
    check(
        "BusinessProfileBinding",
        operator_bytes,
        write(&api, &binding, &status).await,
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn the_largest_trust_product_and_its_status_are_stored() {
    let (cluster, client, ns) = Cluster::start().await;
    let (product, status) = object_size::largest_trust_product(&ns);
    let status = serde_json::to_value(&status).expect("status to JSON");
    let mut full = product.clone();
    full.status = serde_json::from_value(status.clone()).ok();
    let operator_bytes = json_len(&full);
    let api: Api<ShakenStirTrustProduct> = Api::namespaced(client.clone(), &ns);
    let status_bytes = serde_json::to_vec(&status).expect("status").len();
    eprintln!(
        "ShakenStirTrustProduct status of {} numbers: {status_bytes} bytes",
        object_size::STATUS_NUMBERS
    );
    assert!(
        status_bytes <= object_size::STATUS_LIMIT,
        "ShakenStirTrustProduct: status of {status_bytes} bytes over 256 KiB"
    );
    check(
        "ShakenStirTrustProduct",
        operator_bytes,
        write(&api, &product, &status).await,
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
    // Between 1.5 and 2 MiB etcd itself refuses the write (kube-local answers alike).
    let etcd = refusal(
        "a 1.75 MiB status",
        &padded(&client, &ns, "over-etcd", ETCD_LIMIT + 256 * 1024).await,
    );
    assert!(
        etcd.code == 500 && etcd.message.contains("etcdserver: request is too large"),
        "{etcd:?}"
    );
    // Between 2 and 3 MiB the apiserver's etcd client (gRPC, 2 MiB per message) refuses first;
    // kube-local, which has no gRPC, gives etcd's answer: a 500 either way.
    let grpc = refusal(
        "a 2.5 MiB status",
        &padded(&client, &ns, "over-grpc", 2 * 1024 * 1024 + 512 * 1024).await,
    );
    let words = if cluster.is_real() {
        "trying to send message larger than max"
    } else {
        "etcdserver: request is too large"
    };
    assert!(grpc.code == 500 && grpc.message.contains(words), "{grpc:?}");
    cluster.shutdown().await;
}

/// events.k8s.io/v1 refuses a note over 1 KiB (`NoteLengthLimit`): why the operator bounds its
/// notes (`planner::text::EVENT_NOTE_MAX`) rather than listing every number.
#[tokio::test]
async fn an_event_note_over_one_kib_is_refused() {
    use k8s_openapi::api::events::v1::Event;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use kube::api::ObjectMeta;
    use trusthub_operator::planner::text::EVENT_NOTE_MAX;
    let (cluster, client, ns) = Cluster::start().await;
    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
    let event = |name: &str, note: String| Event {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        event_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
        reporting_controller: Some("trusthub.example.com/test".into()),
        reporting_instance: Some("test".into()),
        action: Some("Test".into()),
        reason: Some("Test".into()),
        type_: Some("Normal".into()),
        note: Some(note),
        regarding: Some(k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Namespace".into()),
            name: Some(ns.clone()),
            namespace: Some(ns.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    api.create(
        &PostParams::default(),
        &event("fits", "n".repeat(EVENT_NOTE_MAX)),
    )
    .await
    .expect("a note of exactly the limit is accepted");
    let over = api
        .create(
            &PostParams::default(),
            &event("over", "n".repeat(EVENT_NOTE_MAX + 1)),
        )
        .await;
    let refused = refusal("a 1 KiB + 1 note", &over.map(|_| 0));
    assert_eq!(refused.code, 422, "{refused:?}");
    assert!(refused.message.contains("at most 1024"), "{refused:?}");
    eprintln!("a 1 KiB + 1 note: {}", refused.message);
    cluster.shutdown().await;
}
