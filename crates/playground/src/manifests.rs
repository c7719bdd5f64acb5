//! Applying manifests to the local API the way `kubectl apply --server-side` would: one
//! server-side apply patch per document, for the kinds the playground knows (Secrets, the CRDs
//! and the two custom resources). Other kinds are refused with a message rather than guessed.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde::Deserialize;
use serde_json::Value;
use trusthub_operator::api::{BusinessProfileBinding, ShakenStirTrustProduct};

use crate::PlaygroundError;

/// Field manager of every apply the playground makes.
pub const FIELD_MANAGER: &str = "trusthub-playground";

/// The repository's `crds/` (generated from `trusthub_operator::api`; CI fails when they drift),
/// built into the binary.
pub const CRDS: [(&str, &str); 2] = [
    (
        "crds/businessprofilebindings.yaml",
        include_str!("../../../crds/businessprofilebindings.yaml"),
    ),
    (
        "crds/shakenstirtrustproducts.yaml",
        include_str!("../../../crds/shakenstirtrustproducts.yaml"),
    ),
];

/// The examples of the repository (`examples/`), built into the binary so the playground works
/// from any directory. They match the simulator's default seed.
pub const EXAMPLES: [(&str, &str); 3] = [
    (
        "examples/00-credentials-secret.yaml",
        include_str!("../../../examples/00-credentials-secret.yaml"),
    ),
    (
        "examples/10-business-profile-binding.yaml",
        include_str!("../../../examples/10-business-profile-binding.yaml"),
    ),
    (
        "examples/20-shaken-stir-trust-product.yaml",
        include_str!("../../../examples/20-shaken-stir-trust-product.yaml"),
    ),
];

/// The discovery examples (`examples/discovery/`) with the credentials Secret they use, built
/// into the binary: a binding that selects every voice number of every subaccount, and its
/// trust product. Applied instead of [`EXAMPLES`], never with them: both bindings would want
/// the same subaccount numbers.
pub const DISCOVERY_EXAMPLES: [(&str, &str); 3] = [
    EXAMPLES[0],
    (
        "examples/discovery/10-business-profile-binding.yaml",
        include_str!("../../../examples/discovery/10-business-profile-binding.yaml"),
    ),
    (
        "examples/discovery/20-shaken-stir-trust-product.yaml",
        include_str!("../../../examples/discovery/20-shaken-stir-trust-product.yaml"),
    ),
];

/// The `kind/name` keys ([`crate::Row::key`]) of the binding and trust product of a set of
/// examples ([`EXAMPLES`] or [`DISCOVERY_EXAMPLES`]), in file order.
pub fn example_keys(examples: &[(&str, &str)]) -> Vec<String> {
    examples
        .iter()
        .flat_map(|(origin, yaml)| parse_documents(origin, yaml).unwrap_or_default())
        .filter_map(|doc| {
            let short = match doc["kind"].as_str()? {
                "BusinessProfileBinding" => "bpb",
                "ShakenStirTrustProduct" => "sstp",
                _ => return None,
            };
            Some(format!("{short}/{}", doc["metadata"]["name"].as_str()?))
        })
        .collect()
}

/// `spec.discovery.interval` of the discovery example's binding, as written (e.g. `30s`).
pub fn discovery_interval() -> Option<String> {
    DISCOVERY_EXAMPLES
        .iter()
        .flat_map(|(origin, yaml)| parse_documents(origin, yaml).unwrap_or_default())
        .find_map(|doc| {
            doc["spec"]["discovery"]["interval"]
                .as_str()
                .map(String::from)
        })
}

/// The documents of a (possibly multi-document) YAML text; empty documents are skipped.
pub fn parse_documents(origin: &str, yaml: &str) -> Result<Vec<Value>, PlaygroundError> {
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let value = Value::deserialize(doc).map_err(|e| PlaygroundError::Manifest {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Which API a manifest belongs to, and whether it is namespaced.
fn resource_for(api_version: &str, kind: &str) -> Option<(ApiResource, bool)> {
    let target = (api_version, kind);
    [
        (ApiResource::erase::<Secret>(&()), true),
        (ApiResource::erase::<BusinessProfileBinding>(&()), true),
        (ApiResource::erase::<ShakenStirTrustProduct>(&()), true),
        (ApiResource::erase::<CustomResourceDefinition>(&()), false),
    ]
    .into_iter()
    .find(|(ar, _)| (ar.api_version.as_str(), ar.kind.as_str()) == target)
}

/// Server-side applies one manifest; namespaced objects without a namespace go to `namespace`.
/// Returns `kind/name` for messages.
pub async fn apply_value(
    client: &Client,
    namespace: &str,
    origin: &str,
    manifest: &Value,
) -> Result<String, PlaygroundError> {
    let bad = |message: String| PlaygroundError::Manifest {
        origin: origin.to_string(),
        message,
    };
    let api_version = manifest["apiVersion"]
        .as_str()
        .ok_or_else(|| bad("no apiVersion".into()))?;
    let kind = manifest["kind"]
        .as_str()
        .ok_or_else(|| bad("no kind".into()))?;
    let name = manifest["metadata"]["name"]
        .as_str()
        .ok_or_else(|| bad(format!("{kind} without metadata.name")))?;
    let (resource, namespaced) = resource_for(api_version, kind).ok_or_else(|| {
        bad(format!(
            "the playground applies Secrets, CRDs, BusinessProfileBindings and ShakenStirTrustProducts, not {api_version} {kind}"
        ))
    })?;
    let api: Api<DynamicObject> = if namespaced {
        let ns = manifest["metadata"]["namespace"]
            .as_str()
            .unwrap_or(namespace);
        Api::namespaced_with(client.clone(), ns, &resource)
    } else {
        Api::all_with(client.clone(), &resource)
    };
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(manifest),
    )
    .await
    .map_err(|source| PlaygroundError::Apply {
        object: format!("{kind}/{name}"),
        source: Box::new(source),
    })?;
    Ok(format!("{}/{name}", kind.to_lowercase()))
}

/// Applies every document of `yaml` in order.
pub async fn apply_yaml(
    client: &Client,
    namespace: &str,
    origin: &str,
    yaml: &str,
) -> Result<Vec<String>, PlaygroundError> {
    let mut applied = Vec::new();
    for doc in parse_documents(origin, yaml)? {
        applied.push(apply_value(client, namespace, origin, &doc).await?);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_examples_are_the_three_known_kinds() {
        let kinds: Vec<String> = EXAMPLES
            .iter()
            .flat_map(|(origin, yaml)| parse_documents(origin, yaml).expect("examples parse"))
            .map(|doc| {
                let (av, kind) = (
                    doc["apiVersion"].as_str().unwrap_or_default(),
                    doc["kind"].as_str().unwrap_or_default(),
                );
                assert!(resource_for(av, kind).is_some(), "unknown {av} {kind}");
                kind.to_string()
            })
            .collect();
        assert_eq!(
            kinds,
            ["Secret", "BusinessProfileBinding", "ShakenStirTrustProduct"]
        );
    }

    #[test]
    fn the_discovery_examples_select_instead_of_listing() {
        assert_eq!(
            example_keys(&EXAMPLES),
            ["bpb/acme-primary", "sstp/acme-shaken-stir"]
        );
        assert_eq!(
            example_keys(&DISCOVERY_EXAMPLES),
            ["bpb/acme-discovered", "sstp/acme-discovered-shaken-stir"]
        );
        let docs = parse_documents(DISCOVERY_EXAMPLES[1].0, DISCOVERY_EXAMPLES[1].1)
            .expect("the discovery binding parses");
        let spec = &docs[0]["spec"];
        assert!(spec.get("phoneNumbers").is_none(), "{spec}");
        assert_eq!(spec["discovery"]["allSubaccounts"], true);
        assert_eq!(spec["deletionPolicy"], "Orphan");
        assert_eq!(discovery_interval().as_deref(), Some("30s"));
        let product = parse_documents(DISCOVERY_EXAMPLES[2].0, DISCOVERY_EXAMPLES[2].1)
            .expect("the discovery product parses");
        assert_eq!(
            product[0]["spec"]["businessProfileBindingRef"]["name"],
            "acme-discovered"
        );
    }

    #[test]
    fn the_built_in_crds_are_the_ones_generated_from_the_types() {
        let generated = trusthub_operator::api::crds();
        for ((origin, yaml), (file, crd)) in CRDS.iter().zip(&generated) {
            assert!(origin.ends_with(file), "{origin} vs {file}");
            let docs = parse_documents(origin, yaml).expect("CRD parses");
            let built_in: CustomResourceDefinition =
                serde_json::from_value(docs[0].clone()).expect("a CRD");
            assert_eq!(
                &built_in, crd,
                "{origin} drifted: run `cargo run --bin crdgen`"
            );
        }
    }

    #[test]
    fn empty_documents_are_skipped_and_bad_yaml_is_an_error() {
        let docs = parse_documents("t", "---\na: 1\n---\n---\nb: 2\n").expect("parse");
        assert_eq!(docs.len(), 2);
        let err = parse_documents("broken.yaml", "a: [").expect_err("bad yaml");
        assert!(err.to_string().contains("broken.yaml"), "{err}");
    }
}
