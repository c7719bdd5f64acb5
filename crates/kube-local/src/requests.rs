//! A count of the requests served, by verb and resource (`get secrets`, `list
//! businessprofilebindings`, `patch shakenstirtrustproducts/status`, …): what a client asks of
//! the API server, for tests that pin how much a controller reads.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::http::Method;

/// Requests served so far, by `"<verb> <resource>[/<subresource>]"`.
#[derive(Clone, Debug, Default)]
pub struct RequestLog(Arc<Mutex<BTreeMap<String, u64>>>);

impl RequestLog {
    /// Counts one request (paths that name no resource, such as discovery, are not counted).
    pub(crate) fn record(&self, method: &Method, segs: &[&str], query: &HashMap<String, String>) {
        if let Some(key) = classify(method, segs, query) {
            let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
            *counts.entry(key).or_insert(0) += 1;
        }
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// `verb resource[/sub]` of a resource request, the way the API server's audit log names them.
fn classify(method: &Method, segs: &[&str], query: &HashMap<String, String>) -> Option<String> {
    let rest = match segs {
        ["api", "v1", rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return None,
    };
    let (plural, name, sub) = match rest {
        ["namespaces", _ns, plural, tail @ ..] => (*plural, tail.first(), tail.get(1)),
        [plural, tail @ ..] => (*plural, tail.first(), tail.get(1)),
        [] => return None,
    };
    let watching = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    let verb = match (method.as_str(), name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if watching => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => return None,
    };
    Some(match sub {
        Some(sub) => format!("{verb} {plural}/{sub}"),
        None => format!("{verb} {plural}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(method: Method, path: &str, query: &[(&str, &str)]) -> Option<String> {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let query = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        classify(&method, &segs, &query)
    }

    #[test]
    fn requests_are_named_by_verb_and_resource() {
        assert_eq!(
            key(Method::GET, "/api/v1/namespaces/ns/secrets/creds", &[]).as_deref(),
            Some("get secrets")
        );
        assert_eq!(
            key(Method::GET, "/api/v1/secrets", &[("watch", "true")]).as_deref(),
            Some("watch secrets")
        );
        assert_eq!(
            key(Method::GET, "/apis/g.io/v1/namespaces/ns/things", &[]).as_deref(),
            Some("list things")
        );
        assert_eq!(
            key(
                Method::PATCH,
                "/apis/g.io/v1/namespaces/ns/things/a/status",
                &[]
            )
            .as_deref(),
            Some("patch things/status")
        );
        assert_eq!(
            key(Method::GET, "/api/v1/namespaces/kube-system", &[]).as_deref(),
            Some("get namespaces")
        );
        assert_eq!(
            key(Method::DELETE, "/apis/g.io/v1/namespaces/ns/things", &[]).as_deref(),
            Some("deletecollection things")
        );
        assert_eq!(key(Method::GET, "/version", &[]), None);
        assert_eq!(key(Method::GET, "/apis", &[]), None);
    }
}
