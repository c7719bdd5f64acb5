//! What the simulator holds of numbers, as the discovery and scale tests check it: the voice
//! numbers of the subaccounts, and what is assigned to a bundle (a profile or a product).

use std::collections::{BTreeMap, BTreeSet};

use trusthub_operator::api::ShakenStirTrustProduct;

use crate::support::{Env, PARENT};

/// The voice numbers of every subaccount of the parent, as the simulator holds them.
pub fn voice_numbers_of_subaccounts(env: &Env) -> BTreeSet<String> {
    env.sim
        .state()
        .numbers()
        .iter()
        .filter(|n| n.voice && n.account_sid != PARENT)
        .map(|n| n.sid.clone())
        .collect()
}

/// The `PN…` SIDs on bundle `sid`, with how many times each is there.
pub fn on_bundle(env: &Env, sid: &str) -> BTreeMap<String, usize> {
    let mut found = BTreeMap::new();
    for a in env.sim.channel_assignments() {
        if a.bundle_sid == sid {
            *found.entry(a.channel_endpoint_sid).or_default() += 1;
        }
    }
    found
}

/// The numbers on bundle `sid` (a profile or a trust product) in Trust Hub.
pub fn attached_to(env: &Env, sid: &str) -> BTreeSet<String> {
    on_bundle(env, sid).into_keys().collect()
}

/// The Trust Product SID a product's status records.
pub fn product_sid(p: &ShakenStirTrustProduct) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.trust_product_sid.clone())
        .expect("product SID")
}
