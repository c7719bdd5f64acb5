//! Every example validates against the committed CRDs (OpenAPI schema with a JSON Schema
//! validator, and the CEL rules), and a table of bad manifests is refused, each with its own
//! readable message, the way an apiserver refuses them at admission.

use std::path::PathBuf;

use crd_validation::CrdSchema;
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_file(rel: &str) -> Value {
    let text =
        std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {rel}: {e}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Binding,
    TrustProduct,
}

impl Kind {
    fn crd(self) -> Value {
        yaml_file(match self {
            Kind::Binding => "crds/businessprofilebindings.yaml",
            Kind::TrustProduct => "crds/shakenstirtrustproducts.yaml",
        })
    }

    fn schema(self) -> CrdSchema {
        CrdSchema::from_crd(&self.crd(), "v1alpha1").expect("CRD compiles")
    }

    pub(crate) fn example(self) -> Value {
        yaml_file(match self {
            Kind::Binding => "examples/10-business-profile-binding.yaml",
            Kind::TrustProduct => "examples/20-shaken-stir-trust-product.yaml",
        })
    }
}

/// Every binding and trust product example, with its file: the explicit ones of `examples/`
/// and the discovery ones of `examples/discovery/` (applied separately, as they select the
/// same numbers).
pub(crate) const EXAMPLES: [(Kind, &str); 4] = [
    (Kind::Binding, "examples/10-business-profile-binding.yaml"),
    (
        Kind::TrustProduct,
        "examples/20-shaken-stir-trust-product.yaml",
    ),
    (
        Kind::Binding,
        "examples/discovery/10-business-profile-binding.yaml",
    ),
    (
        Kind::TrustProduct,
        "examples/discovery/20-shaken-stir-trust-product.yaml",
    ),
];

/// The examples as (kind, file, manifest).
pub(crate) fn examples() -> impl Iterator<Item = (Kind, &'static str, Value)> {
    EXAMPLES
        .into_iter()
        .map(|(kind, file)| (kind, file, yaml_file(file)))
}

/// Every YAML file under `examples/`, relative to the repository, sorted.
fn yaml_files_under(rel: &str) -> Vec<String> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let name = format!("{rel}/{}", entry.file_name().to_string_lossy());
        if entry.file_type().expect("file type").is_dir() {
            found.extend(yaml_files_under(&name));
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            found.push(name);
        }
    }
    found.sort();
    found
}

/// A new example file must be added to [`EXAMPLES`] (or be the Secret), so it is validated.
#[test]
fn every_example_file_is_checked() {
    let mut known: Vec<String> = EXAMPLES.iter().map(|(_, f)| f.to_string()).collect();
    known.push("examples/00-credentials-secret.yaml".into());
    known.sort();
    assert_eq!(yaml_files_under("examples"), known);
}

fn admit(kind: Kind, mut obj: Value, old: Option<&Value>) -> Result<Value, Vec<String>> {
    match kind.schema().admit(&mut obj, old) {
        Ok(()) => Ok(obj),
        Err(invalid) => Err(invalid.causes.into_iter().map(|c| c.message).collect()),
    }
}

/// The CRD's schema as plain JSON Schema (nullable → type union; Kubernetes extensions dropped),
/// for an independent check with the `jsonschema` crate.
fn as_json_schema(node: &Value) -> Value {
    match node {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                if k.starts_with("x-kubernetes-") || k == "nullable" {
                    continue;
                }
                let v = if k == "properties" {
                    Value::Object(
                        v.as_object()
                            .into_iter()
                            .flatten()
                            .map(|(n, s)| (n.clone(), as_json_schema(s)))
                            .collect(),
                    )
                } else if k == "items" || k == "additionalProperties" {
                    as_json_schema(v)
                } else {
                    v.clone()
                };
                out.insert(k.clone(), v);
            }
            if map.get("nullable") == Some(&Value::Bool(true))
                && let Some(Value::String(t)) = map.get("type")
            {
                out.insert("type".into(), json!([t, "null"]));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

#[test]
fn examples_pass_the_schema_and_the_cel_rules() {
    for (kind, file, example) in examples() {
        let admitted =
            admit(kind, example.clone(), None).unwrap_or_else(|e| panic!("{file} refused: {e:?}"));
        // Updating an object to itself must pass the transition rules too.
        admit(kind, example.clone(), Some(&admitted))
            .unwrap_or_else(|e| panic!("{file}: no-op update refused: {e:?}"));

        let crd = kind.crd();
        let schema = as_json_schema(&crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]);
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("JSON schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(&admitted)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{file} fails JSON Schema: {errors:?}");
    }
}

#[test]
fn defaults_are_applied_at_admission() {
    let mut tp = Kind::TrustProduct.example();
    let spec = tp["spec"].as_object_mut().unwrap();
    spec.remove("submit");
    spec.remove("deletionPolicy");
    let admitted = admit(Kind::TrustProduct, tp, None).unwrap();
    assert_eq!(
        admitted["spec"]["policySid"],
        "RN7a97559effdf62d00f4298208492a5ea"
    );
    assert_eq!(admitted["spec"]["submit"], true);
    assert_eq!(admitted["spec"]["deletionPolicy"], "Orphan");
    assert_eq!(
        admitted["spec"]["credentials"]["accountSidKey"],
        "TWILIO_ACCOUNT_SID"
    );
    assert_eq!(
        admitted["spec"]["credentials"]["authTokenKey"],
        "TWILIO_AUTH_TOKEN"
    );
    assert_eq!(admitted["spec"]["credentials"]["authType"], "AuthToken");
}

#[test]
fn the_secret_example_holds_the_default_keys() {
    let secret = yaml_file("examples/00-credentials-secret.yaml");
    assert_eq!(secret["kind"], "Secret");
    for key in ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"] {
        assert!(secret["stringData"][key].is_string(), "{key} present");
    }
}

/// Discovery is additive: a binding may select its numbers instead of, or as well as, listing
/// them, and the defaults are filled in at admission.
#[test]
fn bindings_with_discovery_are_admitted() {
    let edits: [(&str, Edit); 3] = [
        ("discovery only", |o| {
            o["spec"].as_object_mut().unwrap().remove("phoneNumbers");
            o["spec"]["discovery"] = json!({"allSubaccounts": true, "includeParent": true});
        }),
        ("discovery and listed numbers", |o| {
            o["spec"]["discovery"] = json!({
                "subaccounts": [AC],
                "phoneNumberPrefix": "+1415",
                "friendlyNamePattern": "sales-*",
                "include": [PN, "+14155550100"],
                "exclude": ["+14155550199"],
                "interval": "1h30m",
            });
        }),
        ("empty list with discovery", |o| {
            o["spec"]["phoneNumbers"] = json!([]);
            o["spec"]["discovery"] = json!({"subaccounts": [AC]});
        }),
    ];
    for (case, edit) in edits {
        let mut obj = Kind::Binding.example();
        edit(&mut obj);
        let admitted =
            admit(Kind::Binding, obj, None).unwrap_or_else(|e| panic!("{case}: refused: {e:?}"));
        assert_eq!(admitted["spec"]["discovery"]["voiceOnly"], true, "{case}");
        assert!(
            admitted["spec"]["discovery"]["includeParent"].is_boolean(),
            "{case}"
        );
    }
}

const BU: &str = "BU0123456789abcdef0123456789abcdef";
const PN: &str = "PN0123456789abcdef0123456789abcdef";
const AC: &str = "AC0123456789abcdef0123456789abcdef";

pub(crate) type Edit = fn(&mut Value);

/// One bad manifest: (case, kind, edit of the example for the new object, edit for the stored
/// object on update, the one message expected).
pub(crate) type BadManifest = (&'static str, Kind, Edit, Option<Edit>, &'static str);

/// Shared with `real_crds`, which sends the same requests to a real apiserver.
pub(crate) fn bad_manifests() -> Vec<BadManifest> {
    vec![
        (
            "profile sid with a wrong prefix",
            Kind::Binding,
            |o| o["spec"]["businessProfile"] = json!({"sid": "XX0123456789abcdef0123456789abcdef"}),
            None,
            "spec.businessProfile.sid: Invalid value: \"XX0123456789abcdef0123456789abcdef\": spec.businessProfile.sid in body should match '^BU[0-9a-f]{32}$'",
        ),
        (
            "profile by both sid and friendlyName",
            Kind::Binding,
            |o| o["spec"]["businessProfile"]["sid"] = json!(BU),
            None,
            "spec.businessProfile: Invalid value: exactly one of businessProfile.sid or businessProfile.friendlyName must be set",
        ),
        (
            "profile by neither sid nor friendlyName",
            Kind::Binding,
            |o| o["spec"]["businessProfile"] = json!({}),
            None,
            "spec.businessProfile: Invalid value: exactly one of businessProfile.sid or businessProfile.friendlyName must be set",
        ),
        (
            "neither phone numbers nor discovery",
            Kind::Binding,
            |o| {
                o["spec"].as_object_mut().unwrap().remove("phoneNumbers");
            },
            None,
            "spec: Invalid value: set phoneNumbers, discovery, or both: a binding must list or select its numbers",
        ),
        (
            "empty phone numbers and no discovery",
            Kind::Binding,
            |o| o["spec"]["phoneNumbers"] = json!([]),
            None,
            "spec: Invalid value: set phoneNumbers, discovery, or both: a binding must list or select its numbers",
        ),
        (
            "discovery from named subaccounts and all subaccounts",
            Kind::Binding,
            |o| o["spec"]["discovery"] = json!({"subaccounts": [AC], "allSubaccounts": true}),
            None,
            "spec.discovery: Invalid value: exactly one of discovery.subaccounts or discovery.allSubaccounts must be used",
        ),
        (
            "discovery from no subaccounts",
            Kind::Binding,
            |o| o["spec"]["discovery"] = json!({"includeParent": true}),
            None,
            "spec.discovery: Invalid value: exactly one of discovery.subaccounts or discovery.allSubaccounts must be used",
        ),
        (
            "discovery prefix that is not E.164",
            Kind::Binding,
            |o| {
                o["spec"]["discovery"] =
                    json!({"allSubaccounts": true, "phoneNumberPrefix": "1415"})
            },
            None,
            "spec.discovery.phoneNumberPrefix: Invalid value: \"1415\": spec.discovery.phoneNumberPrefix in body should match '^\\+[0-9]{0,15}$'",
        ),
        (
            "discovery interval that is not a duration",
            Kind::Binding,
            |o| o["spec"]["discovery"] = json!({"allSubaccounts": true, "interval": "ten minutes"}),
            None,
            "spec.discovery.interval: Invalid value: \"ten minutes\": spec.discovery.interval in body should match '^([0-9]+(ms|s|m|h))+$'",
        ),
        (
            "number with both sid and phoneNumber",
            Kind::Binding,
            |o| o["spec"]["phoneNumbers"][0]["sid"] = json!(PN),
            None,
            "spec.phoneNumbers[0]: Invalid value: exactly one of sid or phoneNumber must be set",
        ),
        (
            "phoneNumber without its subaccount",
            Kind::Binding,
            |o| {
                o["spec"]["phoneNumbers"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("subaccountSid");
            },
            None,
            "spec.phoneNumbers[0]: Invalid value: subaccountSid is required with phoneNumber, and only with phoneNumber",
        ),
        (
            "phone number not in E.164",
            Kind::Binding,
            |o| o["spec"]["phoneNumbers"][0]["phoneNumber"] = json!("(415) 555-0101"),
            None,
            "spec.phoneNumbers[0].phoneNumber: Invalid value: \"(415) 555-0101\": spec.phoneNumbers[0].phoneNumber in body should match '^\\+[1-9][0-9]{1,14}$'",
        ),
        (
            "subaccount sid with a wrong prefix",
            Kind::Binding,
            |o| {
                o["spec"]["phoneNumbers"][0]["subaccountSid"] =
                    json!("SK00000000000000000000000000000002")
            },
            None,
            "spec.phoneNumbers[0].subaccountSid: Invalid value: \"SK00000000000000000000000000000002\": spec.phoneNumbers[0].subaccountSid in body should match '^AC[0-9a-f]{32}$'",
        ),
        (
            "number sid too short",
            Kind::Binding,
            |o| o["spec"]["phoneNumbers"][2]["sid"] = json!("PN123"),
            None,
            "spec.phoneNumbers[2].sid: Invalid value: \"PN123\": spec.phoneNumbers[2].sid in body should match '^PN[0-9a-f]{32}$'",
        ),
        (
            "unknown deletion policy",
            Kind::Binding,
            |o| o["spec"]["deletionPolicy"] = json!("Keep"),
            None,
            "spec.deletionPolicy: Unsupported value: \"Keep\": supported values: \"Orphan\", \"Delete\"",
        ),
        (
            "missing credentials",
            Kind::Binding,
            |o| {
                o["spec"].as_object_mut().unwrap().remove("credentials");
            },
            None,
            "spec.credentials: Required value",
        ),
        (
            "secret name that is not a DNS name",
            Kind::Binding,
            |o| o["spec"]["credentials"]["secretName"] = json!("Twilio_Creds"),
            None,
            "spec.credentials.secretName: Invalid value: \"Twilio_Creds\": spec.credentials.secretName in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'",
        ),
        (
            "changed business profile",
            Kind::Binding,
            |o| o["spec"]["businessProfile"] = json!({"friendlyName": "Another Profile"}),
            Some(|_| {}),
            "spec: Invalid value: businessProfile is immutable: create a new BusinessProfileBinding to use another profile",
        ),
        (
            "bad e-mail",
            Kind::TrustProduct,
            |o| o["spec"]["email"] = json!("compliance at acme"),
            None,
            "spec.email: Invalid value: \"compliance at acme\": spec.email in body must be of type email: \"compliance at acme\"",
        ),
        (
            "missing e-mail",
            Kind::TrustProduct,
            |o| {
                o["spec"].as_object_mut().unwrap().remove("email");
            },
            None,
            "spec.email: Required value",
        ),
        (
            "http status callback",
            Kind::TrustProduct,
            |o| o["spec"]["statusCallback"] = json!("http://hooks.acme-telecom.example/trusthub"),
            None,
            "spec.statusCallback: Invalid value: \"http://hooks.acme-telecom.example/trusthub\": statusCallback must be an absolute https:// URL",
        ),
        (
            "both binding and profile sid",
            Kind::TrustProduct,
            |o| {
                o["spec"]["businessProfileSid"] = json!(BU);
                o["spec"]["phoneNumbers"] = json!([PN]);
            },
            None,
            "spec: Invalid value: exactly one of businessProfileBindingRef or businessProfileSid must be set",
        ),
        (
            "neither binding nor profile sid",
            Kind::TrustProduct,
            |o| {
                o["spec"]
                    .as_object_mut()
                    .unwrap()
                    .remove("businessProfileBindingRef");
            },
            None,
            "spec: Invalid value: exactly one of businessProfileBindingRef or businessProfileSid must be set",
        ),
        (
            "profile sid with E.164 numbers",
            Kind::TrustProduct,
            |o| {
                o["spec"]
                    .as_object_mut()
                    .unwrap()
                    .remove("businessProfileBindingRef");
                o["spec"]["businessProfileSid"] = json!(BU);
                o["spec"]["phoneNumbers"] = json!(["+15005550201"]);
            },
            None,
            "spec: Invalid value: with businessProfileSid, phoneNumbers must list the PN SIDs to attach (E.164 numbers are resolved only through a binding)",
        ),
        (
            "duplicate numbers in the subset",
            Kind::TrustProduct,
            |o| o["spec"]["phoneNumbers"] = json!(["+15005550201", "+15005550201"]),
            None,
            "spec.phoneNumbers[1]: Duplicate value: \"+15005550201\"",
        ),
        (
            "policy sid with a wrong prefix",
            Kind::TrustProduct,
            |o| o["spec"]["policySid"] = json!("BU7a97559effdf62d00f4298208492a5ea"),
            None,
            "spec.policySid: Invalid value: \"BU7a97559effdf62d00f4298208492a5ea\": spec.policySid in body should match '^RN[0-9a-f]{32}$'",
        ),
        (
            "friendly name over 64 characters",
            Kind::TrustProduct,
            |o| o["spec"]["friendlyName"] = json!("x".repeat(65)),
            None,
            "spec.friendlyName: Too long: may not be more than 64 bytes",
        ),
        (
            "submit that is not a boolean",
            Kind::TrustProduct,
            |o| o["spec"]["submit"] = json!("yes"),
            None,
            "spec.submit: Invalid value: \"string\": spec.submit in body must be of type boolean: \"string\"",
        ),
        (
            "unknown auth type",
            Kind::TrustProduct,
            |o| o["spec"]["credentials"]["authType"] = json!("OAuth"),
            None,
            "spec.credentials.authType: Unsupported value: \"OAuth\": supported values: \"AuthToken\", \"ApiKey\"",
        ),
        (
            "changed policy sid",
            Kind::TrustProduct,
            |o| o["spec"]["policySid"] = json!("RNf3db3cd1fe25fcfd3c3ded065c8fea53"),
            Some(|_| {}),
            "spec: Invalid value: policySid is immutable",
        ),
        (
            "trust product sid added after creation",
            Kind::TrustProduct,
            |o| o["spec"]["trustProductSid"] = json!(BU),
            Some(|_| {}),
            "spec: Invalid value: trustProductSid is immutable",
        ),
        (
            "changed trust product sid",
            Kind::TrustProduct,
            |o| o["spec"]["trustProductSid"] = json!("BUffffffffffffffffffffffffffffffff"),
            Some(|o| o["spec"]["trustProductSid"] = json!(BU)),
            "spec: Invalid value: trustProductSid is immutable",
        ),
        (
            "changed binding reference",
            Kind::TrustProduct,
            |o| o["spec"]["businessProfileBindingRef"]["name"] = json!("other-binding"),
            Some(|_| {}),
            "spec: Invalid value: the business profile (businessProfileSid or businessProfileBindingRef) is immutable",
        ),
    ]
}

/// The causes an apiserver gives for a table row: its message, and for a missing,
/// unsupported, too long, too many or mistyped value (errors that keep the CEL rules from
/// running, as kube-apiserver's `hasBlockingErr`) the cause saying the rules were not checked.
pub(crate) fn expected_causes(want: &str) -> Vec<String> {
    let blocking = [
        ": Required value",
        ": Unsupported value:",
        ": Too long:",
        ": Too many:",
        " must be of type ",
    ]
    .iter()
    .any(|b| want.contains(b));
    let mut causes = vec![want.to_string()];
    if blocking {
        causes.push(format!(
            "<nil>: Invalid value: null: {}",
            crd_validation::NOT_CHECKED
        ));
    }
    causes
}

#[test]
fn bad_manifests_are_refused_with_their_own_message() {
    let cases = bad_manifests();
    assert!(
        cases.len() >= 20,
        "the table covers at least 20 bad manifests"
    );
    let mut failures = Vec::new();
    for (case, kind, edit, old_edit, want) in cases {
        let mut new = kind.example();
        edit(&mut new);
        let old = old_edit.map(|old_edit| {
            let mut old = kind.example();
            old_edit(&mut old);
            admit(kind, old, None)
                .unwrap_or_else(|e| panic!("{case}: stored object refused: {e:?}"))
        });
        match admit(kind, new, old.as_ref()) {
            Ok(_) => failures.push(format!("{case}: accepted")),
            Err(got) if got == expected_causes(want) => {}
            Err(got) => failures.push(format!("{case}:\n   want {want}\n    got {got:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
