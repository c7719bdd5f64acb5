//! Two look-ups over the cached Trust Products that would otherwise scan them all: which
//! products refer to a binding (to wake them when it changes), and which product has a number
//! attached (a number belongs to one SHAKEN/STIR Trust Product). Scanning made both linear per
//! event, so quadratic over an onboarding (353 s of controller CPU at 10,000 products,
//! `docs/benchmarks.md`).
//!
//! The index is fed by the same watch events as the product cache, just before the cache sees
//! them, and holds only names: what it finds is read from the cache.

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;

use kube::ResourceExt;
use kube::runtime::watcher;

use crate::api::ShakenStirTrustProduct;

/// `(namespace, name)` of a cached Trust Product.
pub type ProductKey = (String, String);

/// What the index knows of one product.
#[derive(Clone, Debug, Default, PartialEq)]
struct Indexed {
    binding: Option<String>,
    attached: Vec<String>,
}

impl Indexed {
    fn of(product: &ShakenStirTrustProduct) -> Self {
        Indexed {
            binding: product
                .spec
                .business_profile_binding_ref
                .as_ref()
                .map(|r| r.name.clone()),
            attached: product
                .status
                .iter()
                .flat_map(|s| &s.phone_numbers)
                .filter(|n| n.assignment_sid.is_some())
                .map(|n| n.sid.clone())
                .collect(),
        }
    }
}

#[derive(Debug, Default)]
struct Maps {
    products: HashMap<ProductKey, Indexed>,
    by_binding: HashMap<(String, String), BTreeSet<String>>,
    by_number: HashMap<String, BTreeSet<ProductKey>>,
    /// Products listed so far by a re-list in progress (swapped in when it completes).
    relisted: Option<HashMap<ProductKey, Indexed>>,
}

impl Maps {
    fn insert(&mut self, key: ProductKey, entry: Indexed) {
        self.remove(&key);
        if let Some(binding) = &entry.binding {
            self.by_binding
                .entry((key.0.clone(), binding.clone()))
                .or_default()
                .insert(key.1.clone());
        }
        for number in &entry.attached {
            self.by_number
                .entry(number.clone())
                .or_default()
                .insert(key.clone());
        }
        self.products.insert(key, entry);
    }

    fn remove(&mut self, key: &ProductKey) {
        let Some(old) = self.products.remove(key) else {
            return;
        };
        if let Some(binding) = old.binding {
            let slot = (key.0.clone(), binding);
            if let Some(names) = self.by_binding.get_mut(&slot) {
                names.remove(&key.1);
                if names.is_empty() {
                    self.by_binding.remove(&slot);
                }
            }
        }
        for number in old.attached {
            if let Some(keys) = self.by_number.get_mut(&number) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_number.remove(&number);
                }
            }
        }
    }
}

/// Products by the binding they refer to and by the numbers they have attached.
#[derive(Debug, Default)]
pub struct ProductIndex(RwLock<Maps>);

fn key_of(product: &ShakenStirTrustProduct) -> ProductKey {
    (product.namespace().unwrap_or_default(), product.name_any())
}

impl ProductIndex {
    /// Applies one event of the product watch.
    pub fn apply(&self, event: &watcher::Event<ShakenStirTrustProduct>) {
        let mut maps = self.0.write().unwrap_or_else(|e| e.into_inner());
        match event {
            watcher::Event::Apply(product) => maps.insert(key_of(product), Indexed::of(product)),
            watcher::Event::Delete(product) => maps.remove(&key_of(product)),
            watcher::Event::Init => maps.relisted = Some(HashMap::new()),
            watcher::Event::InitApply(product) => {
                if let Some(relisted) = maps.relisted.as_mut() {
                    relisted.insert(key_of(product), Indexed::of(product));
                }
            }
            watcher::Event::InitDone => {
                let relisted = maps.relisted.take().unwrap_or_default();
                *maps = Maps::default();
                for (key, entry) in relisted {
                    maps.insert(key, entry);
                }
            }
        }
    }

    /// Names of the products in `namespace` that refer to binding `binding`.
    pub fn referring_to(&self, namespace: &str, binding: &str) -> Vec<String> {
        let maps = self.0.read().unwrap_or_else(|e| e.into_inner());
        maps.by_binding
            .get(&(namespace.to_string(), binding.to_string()))
            .map(|names| names.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The products that have `number` (`PN…`) attached.
    pub fn attaching(&self, number: &str) -> Vec<ProductKey> {
        let maps = self.0.read().unwrap_or_else(|e| e.into_inner());
        maps.by_number
            .get(number)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        BindingRef, ShakenStirTrustProductSpec, ShakenStirTrustProductStatus,
        TrustProductNumberStatus,
    };

    fn product(name: &str, binding: Option<&str>, attached: &[&str]) -> ShakenStirTrustProduct {
        let spec: ShakenStirTrustProductSpec = serde_json::from_value(serde_json::json!({
            "friendlyName": "x",
            "email": "ops@example.com",
            "credentials": {"secretName": "s"},
        }))
        .expect("spec");
        let mut p = ShakenStirTrustProduct::new(name, spec);
        p.metadata.namespace = Some("ns".into());
        p.spec.business_profile_binding_ref = binding.map(|b| BindingRef { name: b.into() });
        p.status = Some(ShakenStirTrustProductStatus {
            phone_numbers: attached
                .iter()
                .map(|pn| TrustProductNumberStatus {
                    sid: pn.to_string(),
                    assignment_sid: Some(format!("RA{pn}")),
                    ..Default::default()
                })
                .chain(std::iter::once(TrustProductNumberStatus {
                    sid: "PNpending".into(),
                    ..Default::default()
                }))
                .collect(),
            ..Default::default()
        });
        p
    }

    fn key(name: &str) -> ProductKey {
        ("ns".into(), name.into())
    }

    #[test]
    fn finds_products_by_binding_and_attached_number() {
        let index = ProductIndex::default();
        index.apply(&watcher::Event::Apply(product("a", Some("b1"), &["PN1"])));
        index.apply(&watcher::Event::Apply(product("c", Some("b1"), &["PN2"])));
        assert_eq!(index.referring_to("ns", "b1"), vec!["a", "c"]);
        assert!(index.referring_to("other", "b1").is_empty());
        assert_eq!(index.attaching("PN1"), vec![key("a")]);
        assert!(index.attaching("PNpending").is_empty(), "not attached yet");
    }

    #[test]
    fn an_update_moves_the_entries_and_a_delete_removes_them() {
        let index = ProductIndex::default();
        index.apply(&watcher::Event::Apply(product("a", Some("b1"), &["PN1"])));
        index.apply(&watcher::Event::Apply(product("a", Some("b2"), &["PN2"])));
        assert!(index.referring_to("ns", "b1").is_empty());
        assert_eq!(index.referring_to("ns", "b2"), vec!["a"]);
        assert!(index.attaching("PN1").is_empty());
        assert_eq!(index.attaching("PN2"), vec![key("a")]);
        index.apply(&watcher::Event::Delete(product("a", Some("b2"), &["PN2"])));
        assert!(index.referring_to("ns", "b2").is_empty());
        assert!(index.attaching("PN2").is_empty());
    }

    #[test]
    fn a_relist_replaces_everything_once_complete() {
        let index = ProductIndex::default();
        index.apply(&watcher::Event::Apply(product(
            "gone",
            Some("b1"),
            &["PN1"],
        )));
        index.apply(&watcher::Event::Init);
        index.apply(&watcher::Event::InitApply(product("kept", None, &["PN9"])));
        assert_eq!(
            index.attaching("PN1"),
            vec![key("gone")],
            "the old state stands until the relist completes"
        );
        index.apply(&watcher::Event::InitDone);
        assert!(index.attaching("PN1").is_empty());
        assert!(index.referring_to("ns", "b1").is_empty());
        assert_eq!(index.attaching("PN9"), vec![key("kept")]);
    }
}
