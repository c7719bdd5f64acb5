//! The generated CRDs on a real kube-apiserver: they become Established with their names
//! accepted, the examples are admitted (server-side apply and plain create), and every bad
//! manifest of `api_manifests` is refused with the same message by the real apiserver, by
//! kube-local and as the table expects. On `TRUSTHUB_KUBE_BACKEND=kube-local` the same requests
//! go to kube-local only (checked against the table); the comparison needs the real backend.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Client, Error};
use kube_local::{LocalApiServer, ServerOptions};
use serde_json::Value;
use trusthub_operator::api::{GROUP, VERSION};

use crate::api_manifests::{BadManifest, Kind, bad_manifests, examples, expected_causes};
use crate::cluster::{CRD_FILES, Cluster, install_crds};
use crate::support::root;

/// The namespaced dynamic API of `kind`: bad manifests do not deserialize into the Rust types.
pub(crate) fn dyn_api(client: &Client, ns: &str, kind: Kind) -> Api<DynamicObject> {
    let (name, plural) = match kind {
        Kind::Binding => ("BusinessProfileBinding", "businessprofilebindings"),
        Kind::TrustProduct => ("ShakenStirTrustProduct", "shakenstirtrustproducts"),
    };
    let gvk = GroupVersionKind::gvk(GROUP, VERSION, name);
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

fn object(mut value: Value, name: &str) -> DynamicObject {
    value["metadata"]["name"] = Value::String(name.to_string());
    serde_json::from_value(value).expect("a manifest parses as a DynamicObject")
}

fn condition_true(crd: &CustomResourceDefinition, type_: &str) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|all| all.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

#[tokio::test]
async fn crds_are_established_with_their_names_accepted() {
    let (cluster, client, _ns) = Cluster::start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for file in CRD_FILES {
        let text = std::fs::read_to_string(root().join(file)).expect("read CRD");
        let wanted: CustomResourceDefinition = serde_yaml::from_str(&text).expect("parse CRD");
        let name = wanted.metadata.name.clone().expect("CRD name");
        let served = crds.get(&name).await.expect("the CRD is stored");
        for condition in ["NamesAccepted", "Established"] {
            assert!(
                condition_true(&served, condition),
                "{name}: {condition} is not True: {:?}",
                served.status
            );
        }
        // Accepted names are what kubectl resolves `bpb`, `sstp` and `trusthub` through.
        let accepted = served
            .status
            .as_ref()
            .and_then(|s| s.accepted_names.clone())
            .expect("acceptedNames");
        assert_eq!(accepted, served.spec.names, "{name}: acceptedNames");
        assert_eq!(
            accepted.short_names, wanted.spec.names.short_names,
            "{name}"
        );
        assert_eq!(accepted.categories, wanted.spec.names.categories, "{name}");
        assert_eq!(accepted.plural, wanted.spec.names.plural, "{name}");
    }
    cluster.shutdown().await;
}

/// Whether every field of `sent` is in `stored` with the same value (defaults may add more).
fn contains(stored: &Value, sent: &Value) -> bool {
    match (stored, sent) {
        (Value::Object(s), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| s.get(k).is_some_and(|sv| contains(sv, v))),
        (s, w) => s == w,
    }
}

#[tokio::test]
async fn examples_are_admitted_by_apply_and_by_create() {
    let (cluster, client, ns) = Cluster::start().await;
    let secret: Secret = serde_yaml::from_str(
        &std::fs::read_to_string(root().join("examples/00-credentials-secret.yaml"))
            .expect("read the Secret example"),
    )
    .expect("parse the Secret example");
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("the Secret example is created");
    for (kind, file, example) in examples() {
        let api = dyn_api(&client, &ns, kind);
        let name = example["metadata"]["name"].as_str().expect("example name");
        let applied = api
            .patch(
                name,
                &PatchParams::apply("e2e-examples"),
                &Patch::Apply(&example),
            )
            .await
            .unwrap_or_else(|e| panic!("{file}: server-side apply refused: {e}"));
        let created_name = format!("{name}-created");
        let created = api
            .create(
                &PostParams::default(),
                &object(example.clone(), &created_name),
            )
            .await
            .unwrap_or_else(|e| panic!("{file}: create refused: {e}"));
        for (how, stored) in [("apply", applied), ("create", created)] {
            let stored = serde_json::to_value(&stored).expect("to JSON");
            assert!(
                contains(&stored["spec"], &example["spec"]),
                "{file} via {how}: the stored spec lost fields: {}",
                stored["spec"]
            );
        }
    }
    cluster.shutdown().await;
}

/// How a server answered one bad manifest: the Status message and its causes, each as
/// `field: message` (the form of the table's expected strings).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    Accepted,
    Refused {
        code: u16,
        reason: String,
        message: String,
        causes: Vec<String>,
        /// Each cause's reason (`FieldValueInvalid`, …), compared between servers.
        cause_reasons: Vec<String>,
    },
    /// Not an apiserver Status (transport error, undecodable body).
    Other(String),
}

impl Answer {
    fn of(result: Result<DynamicObject, Error>) -> Answer {
        match result {
            Ok(_) => Answer::Accepted,
            Err(Error::Api(status)) => Answer::Refused {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
                causes: status
                    .details
                    .iter()
                    .flat_map(|d| d.causes.iter())
                    .map(|c| match c.field.as_str() {
                        "" => c.message.clone(),
                        field => format!("{field}: {}", c.message),
                    })
                    .collect(),
                cause_reasons: status
                    .details
                    .iter()
                    .flat_map(|d| d.causes.iter())
                    .map(|c| c.reason.clone())
                    .collect(),
            },
            Err(other) => Answer::Other(other.to_string()),
        }
    }
}

/// Sends bad manifest number `index` as `kubectl` would: a create, or for a transition rule a
/// create of the stored object and then an update (PUT) to the new one.
pub(crate) async fn send(client: &Client, ns: &str, index: usize, case: &BadManifest) -> Answer {
    let (name, kind, edit, old_edit, _) = *case;
    let api = dyn_api(client, ns, kind);
    let mut new = kind.example();
    edit(&mut new);
    let Some(old_edit) = old_edit else {
        return Answer::of(
            api.create(
                &PostParams::default(),
                &object(new, &format!("bad-{index}")),
            )
            .await,
        );
    };
    let mut old = kind.example();
    old_edit(&mut old);
    let stored_name = format!("old-{index}");
    let stored = api
        .create(&PostParams::default(), &object(old, &stored_name))
        .await
        .unwrap_or_else(|e| panic!("{name}: the stored object is refused: {e}"));
    let mut new = object(new, &stored_name);
    new.metadata.resource_version = stored.metadata.resource_version;
    Answer::of(
        api.replace(&stored_name, &PostParams::default(), &new)
            .await,
    )
}

/// What is wrong with `answer` for the case whose table message is `want`.
fn against_table(server: &str, answer: &Answer, want: &str) -> Option<String> {
    let wanted = expected_causes(want);
    match answer {
        Answer::Refused {
            code: 422, causes, ..
        } if causes == &wanted => None,
        other => Some(format!(
            "{server}: want 422 with {wanted:?}\n        got {other:?}"
        )),
    }
}

#[tokio::test]
async fn bad_manifests_are_refused_alike_by_the_real_apiserver_and_kube_local() {
    let (cluster, client, ns) = Cluster::start().await;
    // With the real backend, kube-local answers the same requests beside it.
    let local = match cluster.is_real() {
        true => {
            let server = LocalApiServer::start(ServerOptions::default())
                .await
                .expect("kube-local starts");
            let client = server.client().await;
            install_crds(&client).await;
            Some((server, client))
        }
        false => {
            eprintln!("kube-local backend: checking kube-local against the table only");
            None
        }
    };
    let primary = if cluster.is_real() {
        "real"
    } else {
        "kube-local"
    };
    let cases = bad_manifests();
    assert!(cases.len() >= 20, "the table lost cases");
    let mut problems = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let (name, .., want) = *case;
        let mut found = Vec::new();
        let answer = send(&client, &ns, index, case).await;
        found.extend(against_table(primary, &answer, want));
        if let Some((_, local_client)) = &local {
            let local_answer = send(local_client, "default", index, case).await;
            found.extend(against_table("kube-local", &local_answer, want));
            if local_answer != answer {
                found.push(format!(
                    "real and kube-local differ:\n        real       {answer:?}\n        kube-local {local_answer:?}"
                ));
            }
        }
        if !found.is_empty() {
            problems.push(format!("{name}:\n    {}", found.join("\n    ")));
        }
    }
    if let Some((server, _)) = local {
        server.shutdown().await;
    }
    cluster.shutdown().await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
