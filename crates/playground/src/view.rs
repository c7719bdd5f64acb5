//! What the playground shows: one row per `BusinessProfileBinding` and `ShakenStirTrustProduct`
//! (name, SID, vetting status, numbers, Ready and its reason, and for a binding with
//! `spec.discovery` what its last listing found), as a table redrawn on a terminal or as one
//! line per change otherwise, fed by watches on both kinds so every status write is seen (even
//! a `draft` that lasts milliseconds).

use std::collections::BTreeMap;
use std::pin::Pin;

use futures::{Stream, StreamExt};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher::watcher as watch};
use kube::{Api, Client, ResourceExt};
use trusthub_operator::api::{
    BusinessProfileBinding, DiscoveryStatus, ShakenStirTrustProduct, find_condition,
    shaken_stir_trust_product,
};

/// One object as the playground shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// `bpb` or `sstp` (the kubectl short names).
    pub kind: &'static str,
    pub name: String,
    /// The Business Profile SID of a binding, the Trust Product SID of a trust product.
    pub sid: String,
    /// Twilio's vetting status of that profile or product.
    pub vetting: String,
    /// Numbers assigned (binding) or attached (trust product) / requested.
    pub numbers: String,
    /// Status of the `Ready` condition: True, False or Unknown (`-` before the first reconcile).
    pub ready: String,
    /// Reason of the `Ready` condition.
    pub reason: String,
    /// A binding's last discovery listing (`status.discovery`), when it has one.
    pub discovery: Option<Discovery>,
}

/// What a binding's last discovery listing found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovery {
    /// When the accounts were listed (RFC 3339), if recorded.
    pub listed_at: Option<String>,
    /// Accounts whose numbers were listed.
    pub accounts_listed: u32,
    /// Numbers those accounts own.
    pub numbers_seen: u32,
    /// Numbers selected.
    pub selected: u32,
    /// Accounts not listed, as (SID, why), the first ones the status records.
    pub skipped: Vec<(String, String)>,
    /// All accounts not listed, including those beyond `skipped`.
    pub skipped_total: u32,
}

impl Discovery {
    pub fn from_status(d: &DiscoveryStatus) -> Discovery {
        Discovery {
            listed_at: d.listed_at.as_ref().map(|t| t.0.to_string()),
            accounts_listed: d.accounts_listed,
            numbers_seen: d.numbers_seen,
            selected: d.selected,
            skipped: d
                .skipped_accounts
                .iter()
                .map(|a| (a.sid.clone(), a.status.clone()))
                .collect(),
            skipped_total: d.skipped_accounts.len() as u32 + d.skipped_accounts_omitted,
        }
    }

    /// `accounts:22,seen:503,selected:453,skipped:0`, one word for line output.
    pub fn compact(&self) -> String {
        format!(
            "accounts:{},seen:{},selected:{},skipped:{}",
            self.accounts_listed, self.numbers_seen, self.selected, self.skipped_total
        )
    }

    /// `listed 22 accounts (12:00:01): 503 numbers seen, 453 selected, 1 account skipped
    /// (AC…: suspended)`.
    pub fn describe(&self) -> String {
        let plural =
            |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut out = format!(
            "listed {}",
            plural(self.accounts_listed, "account", "accounts")
        );
        if let Some(at) = &self.listed_at {
            // `2026-01-02T12:00:01Z` → `12:00:01`: the date is today's.
            let time = at.get(11..19).unwrap_or(at);
            out.push_str(&format!(" at {time}"));
        }
        out.push_str(&format!(
            ": {} seen, {} selected, {} skipped",
            plural(self.numbers_seen, "number", "numbers"),
            self.selected,
            plural(self.skipped_total, "account", "accounts")
        ));
        if !self.skipped.is_empty() {
            let mut why: Vec<String> = self
                .skipped
                .iter()
                .take(3)
                .map(|(sid, status)| format!("{sid}: {status}"))
                .collect();
            if self.skipped_total as usize > why.len() {
                why.push(format!("{} more", self.skipped_total as usize - why.len()));
            }
            out.push_str(&format!(" ({})", why.join(", ")));
        }
        out
    }
}

const NONE: &str = "-";

fn or_dash(value: Option<&String>) -> String {
    value
        .filter(|v| !v.is_empty())
        .cloned()
        .unwrap_or_else(|| NONE.to_string())
}

fn ready_of(
    conditions: Option<&[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]>,
) -> (String, String) {
    match conditions.and_then(|c| find_condition(c, "Ready")) {
        Some(c) => (c.status.clone(), or_dash(Some(&c.reason))),
        None => (NONE.to_string(), NONE.to_string()),
    }
}

impl Row {
    pub fn from_binding(b: &BusinessProfileBinding) -> Row {
        let status = b.status.as_ref();
        let profile = status.and_then(|s| s.business_profile.as_ref());
        let (ready, reason) = ready_of(status.map(|s| s.conditions.as_slice()));
        Row {
            kind: "bpb",
            name: b.name_any(),
            sid: or_dash(profile.map(|p| &p.sid)),
            vetting: or_dash(profile.and_then(|p| p.status.as_ref())),
            numbers: or_dash(status.and_then(|s| s.numbers_summary.as_ref())),
            ready,
            reason,
            discovery: status
                .and_then(|s| s.discovery.as_ref())
                .map(Discovery::from_status),
        }
    }

    pub fn from_product(p: &ShakenStirTrustProduct) -> Row {
        let status: Option<&shaken_stir_trust_product::ShakenStirTrustProductStatus> =
            p.status.as_ref();
        let (ready, reason) = ready_of(status.map(|s| s.conditions.as_slice()));
        Row {
            kind: "sstp",
            name: p.name_any(),
            sid: or_dash(status.and_then(|s| s.trust_product_sid.as_ref())),
            vetting: or_dash(status.and_then(|s| s.twilio_status.as_ref())),
            numbers: or_dash(status.and_then(|s| s.numbers_summary.as_ref())),
            ready,
            reason,
            discovery: None,
        }
    }

    /// `kind/name`, the row's identity.
    pub fn key(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    pub fn is_ready(&self) -> bool {
        self.ready == "True"
    }

    fn cells(&self) -> [String; 6] {
        [
            self.key(),
            self.sid.clone(),
            self.vetting.clone(),
            self.numbers.clone(),
            self.ready.clone(),
            self.reason.clone(),
        ]
    }
}

const HEADERS: [&str; 6] = ["NAME", "SID", "VETTING", "NUMBERS", "READY", "REASON"];

/// The rows as an aligned table with a header, like `kubectl get`.
pub fn render_table(rows: &[Row]) -> String {
    let cells: Vec<[String; 6]> = rows.iter().map(Row::cells).collect();
    let mut widths = HEADERS.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |row: [&str; 6]| {
        let padded: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        padded.join("   ").trim_end().to_string()
    };
    let mut out = line(HEADERS);
    for row in &cells {
        out.push('\n');
        out.push_str(&line(row.each_ref().map(String::as_str)));
    }
    out
}

/// What the discovering bindings among `rows` found, one line each under a `Discovery:`
/// heading; empty when no binding uses discovery.
pub fn render_discovery(rows: &[Row]) -> String {
    let found: Vec<(String, &Discovery)> = rows
        .iter()
        .filter_map(|r| Some((r.key(), r.discovery.as_ref()?)))
        .collect();
    let width = found.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    if !found.is_empty() {
        out.push_str("Discovery:\n");
    }
    for (key, d) in found {
        out.push_str(&format!("  {key:<width$}  {}\n", d.describe()));
    }
    out
}

/// One row on one line, for logs and pipes: `sstp/acme-shaken-stir BU… in-review numbers=3/3
/// Ready=False (InReview)`, plus `discovery=accounts:…,seen:…,selected:…,skipped:…` for a
/// binding that selects its numbers.
pub fn render_line(row: &Row) -> String {
    let mut line = format!(
        "{} sid={} vetting={} numbers={} Ready={} reason={}",
        row.key(),
        row.sid,
        row.vetting,
        row.numbers,
        row.ready,
        row.reason
    );
    if let Some(d) = &row.discovery {
        line.push_str(&format!(" discovery={}", d.compact()));
    }
    line
}

/// Every object present, and all of them Ready.
pub fn all_ready(rows: &[Row]) -> bool {
    !rows.is_empty() && rows.iter().all(Row::is_ready)
}

/// The rows that are new or changed in `now` compared with `before`, and the keys gone.
pub fn changes<'a>(before: &[Row], now: &'a [Row]) -> (Vec<&'a Row>, Vec<String>) {
    let changed = now.iter().filter(|r| !before.contains(r)).collect();
    let gone = before
        .iter()
        .filter(|b| !now.iter().any(|n| n.key() == b.key()))
        .map(Row::key)
        .collect();
    (changed, gone)
}

enum Change {
    Binding(Box<Event<BusinessProfileBinding>>),
    Product(Box<Event<ShakenStirTrustProduct>>),
}

/// The rows of one kind, maintained from watch events.
#[derive(Default)]
struct KindRows {
    rows: BTreeMap<String, Row>,
    /// Objects listed since the last `Init`, swapped in at `InitDone`.
    relisting: Option<BTreeMap<String, Row>>,
    /// The first list is complete.
    listed: bool,
}

impl KindRows {
    fn apply<K>(&mut self, event: Event<K>, row: fn(&K) -> Row) {
        match event {
            Event::Apply(obj) => {
                let r = row(&obj);
                self.rows.insert(r.key(), r);
            }
            Event::Delete(obj) => {
                self.rows.remove(&row(&obj).key());
            }
            Event::Init => self.relisting = Some(BTreeMap::new()),
            Event::InitApply(obj) => {
                let r = row(&obj);
                self.relisting.get_or_insert_default().insert(r.key(), r);
            }
            Event::InitDone => {
                if let Some(rows) = self.relisting.take() {
                    self.rows = rows;
                }
                self.listed = true;
            }
        }
    }
}

/// A stream of snapshots of every binding and trust product in `namespace`: the first once both
/// kinds are listed, then one each time any row changes (status writes that change no column
/// are skipped). Watch errors are retried with backoff and do not end the stream. Wait for the
/// first snapshot before starting a controller to be sure to see every state from the start.
pub fn follow(client: Client, namespace: &str) -> Pin<Box<dyn Stream<Item = Vec<Row>> + Send>> {
    let bindings: Api<BusinessProfileBinding> = Api::namespaced(client.clone(), namespace);
    let products: Api<ShakenStirTrustProduct> = Api::namespaced(client, namespace);
    let binding_events = watch(bindings, watcher::Config::default())
        .default_backoff()
        .map(|e| e.map(|e| Change::Binding(Box::new(e))));
    let product_events = watch(products, watcher::Config::default())
        .default_backoff()
        .map(|e| e.map(|e| Change::Product(Box::new(e))));
    let mut bindings_seen = KindRows::default();
    let mut products_seen = KindRows::default();
    let mut last: Option<Vec<Row>> = None;
    futures::stream::select(binding_events, product_events)
        .filter_map(move |event| {
            let snapshot = match event {
                Err(e) => {
                    tracing::debug!(error = %e, "playground watch failed; retrying");
                    None
                }
                Ok(change) => {
                    match change {
                        Change::Binding(e) => bindings_seen.apply(*e, Row::from_binding),
                        Change::Product(e) => products_seen.apply(*e, Row::from_product),
                    }
                    if !(bindings_seen.listed && products_seen.listed) {
                        return futures::future::ready(None);
                    }
                    let rows: Vec<Row> = bindings_seen
                        .rows
                        .values()
                        .chain(products_seen.rows.values())
                        .cloned()
                        .collect();
                    (last.as_ref() != Some(&rows)).then(|| {
                        last = Some(rows.clone());
                        rows
                    })
                }
            };
            futures::future::ready(snapshot)
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &'static str, name: &str, vetting: &str, ready: &str) -> Row {
        Row {
            kind,
            name: name.into(),
            sid: "BU1".into(),
            vetting: vetting.into(),
            numbers: "3/3".into(),
            ready: ready.into(),
            reason: "InReview".into(),
            discovery: None,
        }
    }

    #[test]
    fn the_table_aligns_columns_under_the_headers() {
        let rows = [
            row("bpb", "acme-primary", "twilio-approved", "True"),
            row("sstp", "acme-shaken-stir", "in-review", "False"),
        ];
        let table = render_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        let col = lines[0].find("VETTING").expect("header");
        assert_eq!(&lines[1][col..col + 15], "twilio-approved");
        assert_eq!(&lines[2][col..col + 9], "in-review");
    }

    #[test]
    fn readiness_needs_objects_and_all_of_them_ready() {
        assert!(!all_ready(&[]));
        let a = row("bpb", "a", "twilio-approved", "True");
        let b = row("sstp", "b", "in-review", "False");
        assert!(!all_ready(&[a.clone(), b.clone()]));
        let b_ok = Row {
            ready: "True".into(),
            ..b.clone()
        };
        assert!(all_ready(&[a.clone(), b_ok.clone()]));
        let now = [b_ok.clone()];
        let (changed, gone) = changes(&[a.clone(), b], &now);
        assert_eq!(changed, vec![&b_ok]);
        assert_eq!(gone, vec!["bpb/a".to_string()]);
    }

    #[test]
    fn a_discovering_binding_shows_what_its_listing_found() {
        let b: BusinessProfileBinding = serde_json::from_value(serde_json::json!({
            "apiVersion": "trusthub.stir.dev/v1alpha1", "kind": "BusinessProfileBinding",
            "metadata": {"name": "d"},
            "spec": {"credentials": {"secretName": "s"},
                     "businessProfile": {"friendlyName": "P"},
                     "discovery": {"allSubaccounts": true}},
            "status": {"numbersSummary": "453/453", "discovery": {
                "listedAt": "2026-01-02T12:00:01Z", "accountsListed": 21, "numbersSeen": 503,
                "selected": 453,
                "skippedAccounts": [{"sid": "AC22222222222222222222222222222222", "status": "suspended"}]}}
        }))
        .expect("valid binding");
        let r = Row::from_binding(&b);
        assert_eq!(
            render_line(&r),
            "bpb/d sid=- vetting=- numbers=453/453 Ready=- reason=- discovery=accounts:21,seen:503,selected:453,skipped:1"
        );
        assert_eq!(
            render_discovery(std::slice::from_ref(&r)),
            "Discovery:\n  bpb/d  listed 21 accounts at 12:00:01: 503 numbers seen, 453 selected, 1 account skipped (AC22222222222222222222222222222222: suspended)\n"
        );
        let plain = row("bpb", "a", "twilio-approved", "True");
        assert_eq!(render_discovery(&[plain]), "");
    }

    #[test]
    fn an_object_without_status_shows_dashes() {
        let p: ShakenStirTrustProduct = serde_json::from_value(serde_json::json!({
            "apiVersion": "trusthub.stir.dev/v1alpha1", "kind": "ShakenStirTrustProduct",
            "metadata": {"name": "p"},
            "spec": {"credentials": {"secretName": "s"}, "friendlyName": "f",
                     "email": "a@b.example", "businessProfileBindingRef": {"name": "b"}}
        }))
        .expect("valid product");
        let r = Row::from_product(&p);
        assert_eq!(
            (r.sid.as_str(), r.vetting.as_str(), r.ready.as_str()),
            ("-", "-", "-")
        );
        assert!(render_line(&r).starts_with("sstp/p sid=- vetting=-"));
    }
}
