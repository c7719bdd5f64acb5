//! Expiry of an approval: the simulator approves for a few seconds only, and the operator shows
//! `ExpiringSoon` at once (the window is 30 days), wakes by itself when `valid_until` passes to
//! report `Ready=False` with reason `Expired`, and goes back to Ready when Twilio renews the
//! approval; each step raises an Event, and none of it writes to Twilio.

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::ListParams;
use trusthub_sim::SimConfig;

use crate::support::*;

/// How long the simulator's approvals last here.
const VALIDITY: Duration = Duration::from_secs(15);

fn expiry<K: HasConditions>(obj: &K) -> Option<(String, String)> {
    obj.condition("ExpiringSoon")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

fn is(status: &str, reason: &str) -> Option<(String, String)> {
    Some((status.to_string(), reason.to_string()))
}

/// `(type, reason)` of the Events about `name`.
async fn events_about(env: &Env, name: &str) -> Vec<(String, String)> {
    let api: Api<Event> = Api::namespaced(env.client.clone(), &env.ns);
    api.list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default()))
        .collect()
}

fn has(events: &[(String, String)], type_: &str, reason: &str) -> bool {
    events.iter().any(|(t, r)| t == type_ && r == reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_shows_expiring_soon_then_expired_then_renewed() {
    let mut env = Env::start_with(SimConfig {
        review_delay: Some(Duration::from_millis(100)),
        approve_delay: Some(Duration::from_millis(300)),
        approval_validity: Some(VALIDITY),
        ..SimConfig::default()
    })
    .await;
    env.start_controller();
    env.apply_examples().await;

    // Approved with a valid_until seconds away: inside the 30-day window from the start.
    let binding = env
        .wait_binding("acme-primary", "Ready and ExpiringSoon", |b| {
            ready(b) && expiry(b) == is("True", "ExpiringSoon")
        })
        .await;
    let message = &binding.condition("ExpiringSoon").unwrap().message;
    assert!(
        message.contains(PROFILE) && message.contains("expires at"),
        "{message}"
    );
    let product = env
        .wait_product("acme-shaken-stir", "Ready and ExpiringSoon", |p| {
            ready(p) && expiry(p) == is("True", "ExpiringSoon")
        })
        .await;
    let sid = product
        .status
        .as_ref()
        .unwrap()
        .trust_product_sid
        .clone()
        .unwrap();
    assert!(product.status.as_ref().unwrap().valid_until.is_some());
    let writes_when_approved = env.writes();

    // valid_until passes: nothing but the poll schedule wakes the operator.
    let product = env
        .wait_product("acme-shaken-stir", "Expired", |p| {
            ready_reason(p).as_deref() == Some("Expired")
        })
        .await;
    assert!(!ready(&product));
    assert_eq!(expiry(&product), is("True", "Expired"));
    let approved = product.condition("Approved").unwrap();
    assert_eq!(approved.status, "True", "Twilio still reports the approval");
    let binding = env
        .wait_binding("acme-primary", "Expired", |b| {
            ready_reason(b).as_deref() == Some("Expired")
        })
        .await;
    assert_eq!(expiry(&binding), is("True", "Expired"));

    // Twilio renews both approvals.
    let renewed = chrono::Utc::now() + chrono::Duration::days(200);
    env.sim
        .set_valid_until(&sid, Some(renewed))
        .expect("renew product");
    env.sim
        .set_valid_until(PROFILE, Some(renewed))
        .expect("renew profile");
    let product = env
        .wait_product("acme-shaken-stir", "Ready again", |p| {
            ready(p) && expiry(p) == is("False", "Valid")
        })
        .await;
    assert_eq!(ready_reason(&product).as_deref(), Some("Approved"));
    env.wait_binding("acme-primary", "Ready again", |b| {
        ready(b) && expiry(b) == is("False", "Valid")
    })
    .await;

    // An Event is published just after the status write the waits above saw: poll for it.
    let wanted = [
        ("Warning", "ExpiringSoon"),
        ("Warning", "Expired"),
        ("Normal", "ApprovalRenewed"),
    ];
    for name in ["acme-primary", "acme-shaken-stir"] {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let events = events_about(&env, name).await;
            let missing: Vec<_> = wanted
                .iter()
                .filter(|(type_, reason)| !has(&events, type_, reason))
                .collect();
            if missing.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name}: no {missing:?} Event in {events:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(
        env.writes(),
        writes_when_approved,
        "expiry and renewal are observed, never written"
    );
    assert_no_duplicates(&env.sim);
    env.shutdown().await;
}
