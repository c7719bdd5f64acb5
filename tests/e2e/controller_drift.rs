//! Finding K9: a change made in the Console to an approved object's assignments (a number
//! unassigned from the profile, detached from the Trust Product) is seen at the next resync and
//! repaired, although the object's generation and Twilio status did not change.

use std::time::Duration;

use trusthub_operator::twilio::{ClientConfig, Credentials, Endpoints, TrustHub, TwilioClient};

use crate::support::*;

/// The Console: the parent account's own client, talking to the simulator.
fn console(env: &Env) -> TwilioClient {
    let config = ClientConfig {
        endpoints: Endpoints::single(&env.sim.base_url()).expect("sim URL"),
        ..ClientConfig::default()
    };
    TwilioClient::new(
        Credentials::auth_token(PARENT, PARENT_TOKEN).expect("credentials"),
        config,
    )
    .expect("client")
}

/// A controller resyncing approved objects every second.
fn start_fast_resync(env: &mut Env) {
    let mut config = env.controller_config();
    config.poll.approved_resync = Duration::from_secs(1);
    env.start_controller_with(config);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_unassigned_in_the_console_is_assigned_again() {
    let mut env = Env::start(false).await;
    start_fast_resync(&mut env);
    env.apply(example("examples/00-credentials-secret.yaml"))
        .await;
    env.apply(example("examples/10-business-profile-binding.yaml"))
        .await;
    let binding = env.wait_binding("acme-primary", "Ready", ready).await;
    let assignment_of = |b: &trusthub_operator::api::BusinessProfileBinding| {
        b.status
            .as_ref()?
            .phone_numbers
            .iter()
            .find(|n| n.sid.as_deref() == Some(WEST_1_SID))?
            .assignment_sid
            .clone()
    };
    let before = assignment_of(&binding).expect("WEST_1 assigned");

    console(&env)
        .delete_customer_profile_channel_endpoint_assignment(PROFILE, &before)
        .await
        .expect("unassign in the Console");

    let repaired = env
        .wait_binding("acme-primary", "assigned again", |b| {
            assignment_of(b).is_some_and(|ra| ra != before) && ready(b)
        })
        .await;
    let now = assignment_of(&repaired).expect("assigned");
    assert!(
        env.sim
            .channel_assignments()
            .iter()
            .any(|a| *a.sid == *now && a.channel_endpoint_sid == WEST_1_SID),
        "the new assignment exists in Trust Hub"
    );
    assert!(
        repaired
            .status
            .as_ref()
            .and_then(|s| s.assignments_listed_at.as_ref())
            .is_some(),
        "the listing is recorded"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_detached_in_the_console_is_attached_again() {
    let mut env = Env::start(false).await;
    start_fast_resync(&mut env);
    env.apply_examples().await;
    let product = env.wait_product("acme-shaken-stir", "Ready", ready).await;
    let status = product.status.clone().expect("status");
    let sid = status.trust_product_sid.clone().expect("product SID");
    let attachment_of = |p: &trusthub_operator::api::ShakenStirTrustProduct| {
        p.status
            .as_ref()?
            .phone_numbers
            .iter()
            .find(|n| &*n.sid == WEST_1_SID)?
            .assignment_sid
            .clone()
    };
    let before = attachment_of(&product).expect("WEST_1 attached");

    console(&env)
        .delete_trust_product_channel_endpoint_assignment(&sid, &before)
        .await
        .expect("detach in the Console");

    let repaired = env
        .wait_product("acme-shaken-stir", "attached again", |p| {
            attachment_of(p).is_some_and(|ra| ra != before) && ready(p)
        })
        .await;
    let now = attachment_of(&repaired).expect("attached");
    assert!(
        env.sim
            .channel_assignments()
            .iter()
            .any(|a| *a.sid == *now && a.bundle_sid == sid && a.channel_endpoint_sid == WEST_1_SID),
        "the new attachment exists in Trust Hub"
    );
    env.shutdown().await;
}
