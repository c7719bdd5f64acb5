//! A count of the resource requests served, by verb and resource as the fault injection names
//! them (`get secrets`, `list businessprofilebindings`, `patch shakenstirtrustproducts/status`,
//! …): what a client asks of the API server, for tests that pin how much a controller reads.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Requests served so far, by `"<verb> <resource>[/<subresource>]"`.
#[derive(Clone, Debug, Default)]
pub struct RequestLog(Arc<Mutex<BTreeMap<String, u64>>>);

impl RequestLog {
    /// Counts one request for `verb` on `resource` (`plural` or `plural/subresource`).
    pub(crate) fn record(&self, verb: &str, resource: &str) {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry(format!("{verb} {resource}")).or_insert(0) += 1;
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::RequestLog;

    #[test]
    fn requests_are_counted_by_verb_and_resource() {
        let log = RequestLog::default();
        log.record("get", "secrets");
        log.record("get", "secrets");
        log.record("patch", "things/status");
        let counts = log.snapshot();
        assert_eq!(counts.get("get secrets"), Some(&2));
        assert_eq!(counts.get("patch things/status"), Some(&1));
        assert_eq!(counts.len(), 2);
    }
}
