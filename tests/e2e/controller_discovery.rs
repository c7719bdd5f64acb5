//! Issue J: a binding that selects its numbers with `spec.discovery` instead of listing them.
//! Every voice number of every subaccount is assigned and attached; a number bought later is
//! picked up at the next listing, a released one dropped; a suspended subaccount is skipped and
//! reported, its numbers left as they are.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use trusthub_operator::api::BusinessProfileBinding;
use trusthub_sim::{AccountStatus, NewNumber, Seed, SeedScale, SimConfig};

use crate::sim_numbers::{attached_to, product_sid, voice_numbers_of_subaccounts};
use crate::support::*;

/// Numbers the generated seed deals over its subaccounts; every 10th cannot carry voice.
const NUMBERS: usize = 120;
const SUBACCOUNTS: usize = 4;

fn discovering_binding(policy: &str, interval: &str) -> Value {
    json!({
        "apiVersion": "trusthub.stir.dev/v1alpha1", "kind": "BusinessProfileBinding",
        "metadata": {"name": "acme-discovered"},
        "spec": {
            "credentials": {"secretName": "twilio-credentials"},
            "businessProfile": {"sid": PROFILE},
            "discovery": {"allSubaccounts": true, "interval": interval},
            "deletionPolicy": policy
        }
    })
}

/// Starts the operator with a binding listing its selection every `interval`.
async fn start(interval: &str) -> Env {
    let seed = Seed::generate(SeedScale {
        subaccounts: SUBACCOUNTS,
        numbers: NUMBERS,
        non_voice_every: 10,
    });
    let mut env = Env::start_with(SimConfig {
        seed,
        review_delay: Some(std::time::Duration::from_millis(100)),
        approve_delay: Some(std::time::Duration::from_millis(300)),
        ..SimConfig::default()
    })
    .await;
    env.start_controller();
    env.apply(secret("twilio-credentials", PARENT_TOKEN)).await;
    env.apply(discovering_binding("Delete", interval)).await;
    env.apply(product(
        "acme-discovered",
        "acme-discovered",
        "Acme discovered",
        "Delete",
    ))
    .await;
    env
}

fn selected(b: &BusinessProfileBinding) -> Option<u32> {
    Some(b.status.as_ref()?.discovery.as_ref()?.selected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_assigns_every_voice_number_and_follows_buys_and_releases() {
    let env = start("10s").await;
    let voice = voice_numbers_of_subaccounts(&env);
    assert!(voice.len() > NUMBERS * 8 / 10, "the seed has voice numbers");
    let product = env
        .wait_product("acme-discovered", "Ready", |p| {
            ready(p)
                && p.status.as_ref().and_then(|s| s.numbers_summary.as_deref())
                    == Some(format!("{0}/{0}", voice.len()).as_str())
        })
        .await;
    let sid = product_sid(&product);
    assert_eq!(
        attached_to(&env, &sid),
        voice,
        "exactly the voice numbers are attached"
    );
    let binding = env
        .bindings()
        .get("acme-discovered")
        .await
        .expect("binding");
    let report = binding.status.as_ref().and_then(|s| s.discovery.clone());
    let report = report.expect("discovery report");
    assert_eq!(report.selected as usize, voice.len());
    assert!(report.accounts_listed as usize >= SUBACCOUNTS);
    assert!(
        report.numbers_seen as usize > voice.len(),
        "non-voice numbers seen, not selected"
    );
    assert_no_duplicates(&env.sim);

    // Between two listings: one number bought in a subaccount, one released.
    let account = trusthub_sim::seed::generated_subaccount_sid(0);
    let bought_at = std::time::Instant::now();
    let bought = env
        .sim
        .buy_number(&account, NewNumber::default())
        .expect("buy a number");
    let released = trusthub_sim::seed::generated_number_sid(1);
    assert!(voice.contains(&released));
    env.sim.release_number(&released).expect("release a number");
    let mut expected = voice.clone();
    expected.insert(bought.sid.clone());
    expected.remove(&released);
    env.wait_product("acme-discovered", "the bought number attached", |p| {
        p.status.as_ref().is_some_and(|s| {
            s.phone_numbers
                .iter()
                .any(|n| *n.sid == *bought.sid && n.assignment_sid.is_some())
                && !s.phone_numbers.iter().any(|n| *n.sid == *released)
        })
    })
    .await;
    let took = bought_at.elapsed();
    assert!(
        took < std::time::Duration::from_secs(10 + 5),
        "attached {took:?} after the buy: within one 10 s interval + 5 s"
    );
    assert_eq!(attached_to(&env, &sid), expected);
    let binding = env
        .wait_binding("acme-discovered", "the new selection recorded", |b| {
            selected(b) == Some(expected.len() as u32) && ready(b)
        })
        .await;
    assert!(
        binding.status.as_ref().is_some_and(|s| !s
            .phone_numbers
            .iter()
            .any(|n| n.sid.as_deref() == Some(&released))),
        "the released number is dropped from the binding"
    );
    assert_no_duplicates(&env.sim);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_subaccount_is_skipped_and_its_numbers_left_assigned() {
    // A long interval: only the annotation can bring the next listing within the test.
    let env = start("1h").await;
    let voice = voice_numbers_of_subaccounts(&env);
    let product = env
        .wait_product("acme-discovered", "Ready", |p| {
            ready(p)
                && p.status.as_ref().and_then(|s| s.numbers_summary.as_deref())
                    == Some(format!("{0}/{0}", voice.len()).as_str())
        })
        .await;
    let sid = product_sid(&product);
    let suspended = trusthub_sim::seed::generated_subaccount_sid(2);
    env.sim
        .set_account_status(&suspended, AccountStatus::Suspended)
        .expect("suspend");
    // Ask for a listing now rather than waiting for the interval.
    env.bindings()
        .patch(
            "acme-discovered",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({
                "metadata": {"annotations": {"trusthub.stir.dev/discover": "now"}}
            })),
        )
        .await
        .expect("annotate");
    let binding = env
        .wait_binding(
            "acme-discovered",
            "the suspended subaccount reported",
            |b| {
                b.status
                    .as_ref()
                    .and_then(|s| s.discovery.as_ref())
                    .is_some_and(|d| d.skipped_accounts.iter().any(|a| a.sid == suspended))
            },
        )
        .await;
    let report = binding.status.as_ref().and_then(|s| s.discovery.clone());
    let skipped = report.expect("report").skipped_accounts;
    let entry = skipped.iter().find(|a| a.sid == suspended).expect("listed");
    assert_eq!(entry.status, "suspended");
    // Under Delete, a suspension does not unassign or detach anything.
    assert_eq!(attached_to(&env, &sid), voice);
    let assigned: BTreeSet<String> = env
        .sim
        .channel_assignments()
        .iter()
        .filter(|a| a.bundle_sid == PROFILE)
        .map(|a| a.channel_endpoint_sid.clone())
        .collect();
    assert!(voice.is_subset(&assigned), "every number stays assigned");
    env.shutdown().await;
}

/// Issue J: listed numbers are not looked up one by one when many share a subaccount: one
/// listing of that subaccount resolves them all, and a number it does not hold is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_listed_numbers_of_one_subaccount_are_resolved_by_one_listing() {
    let seed = Seed::generate(SeedScale::numbers_per_subaccount(2, 30));
    let mut env = Env::start_with(SimConfig {
        seed,
        ..SimConfig::default()
    })
    .await;
    env.start_controller();
    let account = trusthub_sim::seed::generated_subaccount_sid(0);
    // Numbers are dealt round-robin: the even ones belong to subaccount 0.
    let mut numbers: Vec<Value> = (0..25)
        .map(|i| {
            json!({"phoneNumber": trusthub_sim::seed::generated_phone_number(2 * i), "subaccountSid": account})
        })
        .collect();
    numbers.push(json!({"phoneNumber": "+19995550100", "subaccountSid": account}));
    env.apply(secret("twilio-credentials", PARENT_TOKEN)).await;
    env.apply(binding(
        "many",
        "twilio-credentials",
        json!({"sid": PROFILE}),
        Value::Array(numbers),
        "Orphan",
    ))
    .await;
    let done = env
        .wait_binding("many", "every number resolved", |b| {
            b.status
                .as_ref()
                .and_then(|s| s.numbers.as_ref())
                .is_some_and(|n| n.done == 25 && n.unresolvable == 1)
        })
        .await;
    let status = done.status.expect("status");
    let missing = status
        .phone_numbers
        .iter()
        .find(|n| n.phone_number.as_deref() == Some("+19995550100"))
        .expect("the unknown number is listed");
    assert!(
        missing
            .message
            .as_deref()
            .is_some_and(|m| m.contains("not found")),
        "{missing:?}"
    );
    assert_eq!(
        env.sim.counters().calls("ListIncomingPhoneNumber"),
        1,
        "one listing of the subaccount, not 26 look-ups"
    );
    env.shutdown().await;
}
