//! What the chart grants against what the operator used, from the real apiserver's audit log:
//! a grant the operator needed and lacked, and a grant it never used, are both failures.

use std::collections::BTreeSet;

use k8s_openapi::api::rbac::v1::PolicyRule;
use testenv::AuditEvent;

/// One verb on one resource, granted cluster-wide (`namespace: None`) or in one namespace,
/// optionally only for some object names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub namespace: Option<String>,
    pub group: String,
    /// `resource` or `resource/subresource`.
    pub resource: String,
    pub verb: String,
    pub names: Vec<String>,
}

/// One request the operator made, as the authorizer saw it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Use {
    pub namespace: Option<String>,
    pub group: String,
    pub resource: String,
    pub verb: String,
    pub name: Option<String>,
}

/// Flattens the rules of a ClusterRole (`namespace: None`) or Role into single grants.
pub fn grants(rules: &[PolicyRule], namespace: Option<&str>) -> Vec<Grant> {
    let mut out = Vec::new();
    for rule in rules {
        let groups = rule.api_groups.clone().unwrap_or_default();
        let resources = rule.resources.clone().unwrap_or_default();
        for group in &groups {
            for resource in &resources {
                for verb in &rule.verbs {
                    out.push(Grant {
                        namespace: namespace.map(str::to_string),
                        group: group.clone(),
                        resource: resource.clone(),
                        verb: verb.clone(),
                        names: rule.resource_names.clone().unwrap_or_default(),
                    });
                }
            }
        }
    }
    out
}

/// The requests `user` made that reached the authorizer with a resource (not `/version` etc.).
pub fn uses(events: &[AuditEvent], user: &str) -> BTreeSet<Use> {
    events
        .iter()
        .filter(|e| e.user.username == user)
        .filter_map(|e| {
            let (group, resource) = e.resource()?;
            // RBAC never matches resourceNames on create or on collection verbs.
            let name = match e.verb.as_str() {
                "create" | "list" | "watch" | "deletecollection" => None,
                _ => e.object_ref.as_ref().and_then(|o| o.name.clone()),
            };
            Some(Use {
                namespace: e.namespace().map(str::to_string),
                group,
                resource,
                verb: e.verb.clone(),
                name,
            })
        })
        .collect()
}

fn covers(grant: &Grant, used: &Use) -> bool {
    grant.group == used.group
        && grant.resource == used.resource
        && grant.verb == used.verb
        && (grant.namespace.is_none() || grant.namespace == used.namespace)
        && (grant.names.is_empty() || used.name.as_ref().is_some_and(|n| grant.names.contains(n)))
}

/// Uses no grant covers, and grants no use needed.
pub fn gaps(grants: &[Grant], used: &BTreeSet<Use>) -> (Vec<Use>, Vec<Grant>) {
    let missing = used
        .iter()
        .filter(|u| !grants.iter().any(|g| covers(g, u)))
        .cloned()
        .collect();
    let unused = grants
        .iter()
        .filter(|g| !used.iter().any(|u| covers(g, u)))
        .cloned()
        .collect();
    (missing, unused)
}

#[test]
fn gaps_reports_a_missing_grant_and_an_unused_one() {
    let grant = |ns: Option<&str>, resource: &str, verb: &str, names: &[&str]| Grant {
        namespace: ns.map(str::to_string),
        group: "coordination.k8s.io".into(),
        resource: resource.into(),
        verb: verb.into(),
        names: names.iter().map(|n| n.to_string()).collect(),
    };
    let used = |ns: &str, verb: &str, name: Option<&str>| Use {
        namespace: Some(ns.into()),
        group: "coordination.k8s.io".into(),
        resource: "leases".into(),
        verb: verb.into(),
        name: name.map(str::to_string),
    };
    let granted = vec![
        grant(Some("ops"), "leases", "get", &["op"]),
        grant(None, "leases", "list", &[]),
    ];
    let made: BTreeSet<Use> = [
        used("ops", "get", Some("op")),
        used("ops", "get", Some("x")),
    ]
    .into_iter()
    .collect();
    let (missing, unused) = gaps(&granted, &made);
    assert_eq!(
        missing,
        vec![used("ops", "get", Some("x"))],
        "resourceNames bind"
    );
    assert_eq!(unused, vec![grant(None, "leases", "list", &[])]);
    let elsewhere: BTreeSet<Use> = [used("other", "get", Some("op"))].into_iter().collect();
    assert_eq!(
        gaps(&granted, &elsewhere).0.len(),
        1,
        "a Role binds in its namespace only"
    );
}
