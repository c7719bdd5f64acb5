//! Issue J at scale: thousands of discovered numbers written in concurrent batches. The
//! operator is killed (SIGKILL) in the middle of a 2,000-number batch under `Delete` and
//! restarted, then both objects are deleted; a large batch runs through 30 % 429s and 10 %
//! 503s; one number Twilio refuses in the middle of a batch. Each must end with every number
//! assigned and attached exactly once, nothing the operator made left behind after deletion,
//! nothing pre-existing touched, and Events that summarise batches rather than list numbers one
//! Event each.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::ListParams;
use serde_json::{Value, json};
use trusthub_operator::api::{BusinessProfileBinding, ShakenStirTrustProduct};
use trusthub_sim::model::CNAM_POLICY;
use trusthub_sim::seed::generated_number_sid;
use trusthub_sim::{BundleStatus, Faults, Seed, SeedScale, SeedTrustProduct, SimConfig};

use crate::seeds::{OTHER_PROFILE, TWILIO_PRODUCT, other_profile, twilio_product};
use crate::sim_numbers::{on_bundle, product_sid, voice_numbers_of_subaccounts};
use crate::support::*;

pub(crate) const NAME: &str = "acme-scale";
pub(crate) const ASSIGN: &str = "CreateCustomerProfileChannelEndpointAssignment";
pub(crate) const ATTACH: &str = "CreateTrustProductChannelEndpointAssignment";
/// A CNAM Trust Product that exists before the operator runs, with numbers of its own.
const CNAM_PRODUCT: &str = "BUdddddddddddddddddddddddddddddddd";

/// A generated seed of `numbers` voice numbers dealt over `subaccounts` subaccounts.
pub(crate) fn scale_seed(subaccounts: usize, numbers: usize) -> Seed {
    Seed::generate(SeedScale {
        subaccounts,
        numbers,
        non_voice_every: 0,
    })
}

pub(crate) async fn start(seed: Seed, faults: Faults) -> Env {
    Env::start_with(SimConfig {
        seed,
        faults,
        review_delay: Some(Duration::from_millis(100)),
        approve_delay: Some(Duration::from_millis(300)),
        ..SimConfig::default()
    })
    .await
}

/// A binding selecting every voice number of every subaccount, and its product.
pub(crate) async fn apply_objects(env: &Env, policy: &str) {
    env.apply(secret("twilio-credentials", PARENT_TOKEN)).await;
    let binding: Value = json!({
        "apiVersion": "trusthub.stir.dev/v1alpha1", "kind": "BusinessProfileBinding",
        "metadata": {"name": NAME},
        "spec": {
            "credentials": {"secretName": "twilio-credentials"},
            "businessProfile": {"sid": PROFILE},
            "discovery": {"allSubaccounts": true, "interval": "1h"},
            "deletionPolicy": policy
        }
    });
    env.apply(binding).await;
    env.apply(product(NAME, NAME, "Acme at scale", policy))
        .await;
}

/// Every number of `want` is on bundle `sid` exactly once, and nothing else is.
fn assert_exactly_once(env: &Env, sid: &str, want: &BTreeSet<String>, what: &str) {
    let found = on_bundle(env, sid);
    let twice: Vec<_> = found.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{what}: numbers on {sid} twice: {twice:?}"
    );
    let got: BTreeSet<String> = found.into_keys().collect();
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} missing ({:?}…), {} unexpected ({:?}…) on {sid}",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(5).collect::<Vec<_>>()
    );
}

/// Waits until the binding has assigned and the product attached every number of `voice`,
/// then checks each is on the profile and the product exactly once, made by `assigned`
/// assignment creates and one attachment create per number. Returns the product.
pub(crate) async fn every_number_once(
    env: &Env,
    voice: &BTreeSet<String>,
    assigned: usize,
) -> ShakenStirTrustProduct {
    env.wait_binding(NAME, "Ready with every number", |b| {
        all_assigned(b, voice.len())
    })
    .await;
    let product = env
        .wait_product(NAME, "Ready with every number", |p| {
            all_attached(p, voice.len())
        })
        .await;
    let sid = product_sid(&product);
    assert_no_duplicates(&env.sim);
    assert_exactly_once(env, PROFILE, voice, "assigned to the profile");
    assert_exactly_once(env, &sid, voice, "attached to the product");
    let creates = |kind| created(env, kind) as usize;
    assert_eq!(
        creates("CustomerProfileChannelEndpointAssignment"),
        assigned,
        "assignment creates"
    );
    assert_eq!(
        creates("TrustProductChannelEndpointAssignment"),
        voice.len(),
        "one attachment create per number"
    );
    product
}

fn created(env: &Env, kind: &str) -> u64 {
    env.sim.counters().created.get(kind).copied().unwrap_or(0)
}

pub(crate) fn requests(env: &Env, operation: &str) -> u64 {
    env.sim
        .counters()
        .by_operation
        .get(operation)
        .copied()
        .unwrap_or(0)
}

fn all_assigned(b: &BusinessProfileBinding, total: usize) -> bool {
    ready(b)
        && b.status
            .as_ref()
            .and_then(|s| s.numbers.as_ref())
            .is_some_and(|c| c.selected as usize == total && c.done as usize == total)
}

fn all_attached(p: &ShakenStirTrustProduct, total: usize) -> bool {
    ready(p)
        && p.status.as_ref().and_then(|s| s.numbers_summary.as_deref())
            == Some(format!("{total}/{total}").as_str())
}

/// A status of more than 500 numbers lists only those needing attention, and stays within
/// 256 KiB.
fn assert_abridged_and_small<S: serde::Serialize>(status: Option<&S>, what: &str) {
    let json = serde_json::to_value(status.expect("status")).expect("status JSON");
    let bytes = json.to_string().len();
    assert_eq!(json["numbersAbridged"], true, "{what}: abridged");
    assert!(bytes <= 256 * 1024, "{what}: status of {bytes} bytes");
    eprintln!(
        "{what}: status of {bytes} bytes, {} numbers listed",
        json["phoneNumbers"].as_array().map_or(0, Vec::len)
    );
}

/// The namespace's Events with `reason`.
async fn events(env: &Env, reason: &str) -> Vec<Event> {
    Api::<Event>::namespaced(env.client.clone(), &env.ns)
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

/// A number-writing reason's Events summarise batches: at least one, and at most a handful per
/// batch of 500 numbers (restarts and retries split a batch), never one per number.
async fn assert_summary_events(env: &Env, reason: &str, numbers: usize) {
    let found = events(env, reason).await;
    let bound = 2 * numbers.div_ceil(500) + 6;
    assert!(
        !found.is_empty() && found.len() <= bound,
        "{} {reason} Events for {numbers} numbers (want 1..={bound}): {:?}",
        found.len(),
        found.iter().map(|e| e.note.clone()).collect::<Vec<_>>()
    );
    assert!(
        found
            .iter()
            .any(|e| e.note.as_deref().is_some_and(|n| n.contains("numbers"))),
        "{reason} Events summarise several numbers: {:?}",
        found.iter().map(|e| e.note.clone()).collect::<Vec<_>>()
    );
}

/// Kills `operator` (SIGKILL) once [`KILL_AT`] objects of `kind` were created, and checks that
/// it died mid-way through them (fewer than `total` made); shows how many creates the status
/// marked in flight (`pending` reads them).
async fn kill_mid_batch(
    env: &Env,
    writes: &mut tokio::sync::broadcast::Receiver<trusthub_sim::WriteEvent>,
    operator: &mut tokio::process::Child,
    kind: &str,
    total: usize,
    pending: impl AsyncFnOnce() -> usize,
) {
    while created(env, kind) < KILL_AT {
        match tokio::time::timeout(PATIENCE, writes.recv()).await {
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            other => panic!("no Twilio write while waiting for {KILL_AT} {kind}: {other:?}"),
        }
    }
    operator.start_kill().expect("SIGKILL");
    let _ = operator.wait().await;
    let made = created(env, kind);
    let pending = pending().await;
    assert!(
        (made as usize) < total,
        "killed mid-batch: {made} {kind} made of {total}"
    );
    eprintln!("killed after {made} {kind} of {total}, {pending} creates marked pending");
}

/// Where the SIGKILL test kills the operator: mid-way through the second batch of 500.
const KILL_AT: u64 = 700;

/// SIGKILL after ~700 of 2,000 assignment creates (mid-way through the second batch of 500),
/// restart, SIGKILL again after ~700 attachment creates, restart, Ready with every number
/// assigned and attached exactly once; then deletion under
/// `Delete` removes exactly what the operator made. Twilio held, before the operator ran, 20 of
/// the numbers on the profile and 10 of them on a CNAM Trust Product: those stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_batch_of_2000_under_delete_then_deleted_leaves_only_what_was_there() {
    const NUMBERS: usize = 2_000;
    let started = Instant::now();
    let mut seed = scale_seed(20, NUMBERS);
    let preassigned: Vec<String> = (0..NUMBERS)
        .step_by(100)
        .map(generated_number_sid)
        .collect();
    seed.customer_profiles[0]
        .phone_numbers
        .extend(preassigned.iter().cloned());
    seed.trust_products.push(SeedTrustProduct {
        sid: CNAM_PRODUCT.into(),
        account_sid: None,
        friendly_name: "Acme CNAM".into(),
        email: "compliance@acme.example".into(),
        policy_sid: CNAM_POLICY.into(),
        status: BundleStatus::TwilioApproved,
        business_profile: Some(PROFILE.into()),
        phone_numbers: preassigned.iter().step_by(2).cloned().collect(),
    });
    // A little latency so the kill lands while the batch is running.
    let env = start(
        seed,
        Faults {
            latency_ms: 3,
            ..Faults::none()
        },
    )
    .await;
    let voice = voice_numbers_of_subaccounts(&env);
    assert!(voice.len() >= NUMBERS, "the seed's voice numbers");
    let before_channels = env.sim.channel_assignments();
    let before_entities = env.sim.entity_assignments();
    assert_eq!(
        on_bundle(&env, CNAM_PRODUCT).len(),
        10,
        "the CNAM product's numbers"
    );

    let mut writes = env.sim.subscribe_writes();
    let mut operator = env
        .operator_command()
        .spawn()
        .expect("start trusthub-operator");
    apply_objects(&env, "Delete").await;
    let binding_pending = async || {
        let binding = env.bindings().get(NAME).await.expect("binding");
        binding.status.map_or(0, |s| s.assignments_pending.len())
    };
    let assignments = "CustomerProfileChannelEndpointAssignment";
    let to_assign = voice.len() - preassigned.len();
    kill_mid_batch(
        &env,
        &mut writes,
        &mut operator,
        assignments,
        to_assign,
        binding_pending,
    )
    .await;

    // Once more, in the middle of the attachments.
    let mut restarted = env
        .operator_command()
        .spawn()
        .expect("restart trusthub-operator");
    let product_pending = async || {
        let product = env.products().get(NAME).await.expect("product");
        product.status.map_or(0, |s| s.attachments_pending.len())
    };
    let attachments = "TrustProductChannelEndpointAssignment";
    kill_mid_batch(
        &env,
        &mut writes,
        &mut restarted,
        attachments,
        voice.len(),
        product_pending,
    )
    .await;
    eprintln!("killed twice by {:?}", started.elapsed());
    let mut restarted = env
        .operator_command()
        .spawn()
        .expect("restart trusthub-operator");
    let product = every_number_once(&env, &voice, voice.len() - preassigned.len()).await;
    eprintln!("Ready after the restart at {:?}", started.elapsed());
    assert_summary_events(&env, "NumbersAssigned", voice.len()).await;
    assert_summary_events(&env, "NumbersAttached", voice.len()).await;
    let binding = env.bindings().get(NAME).await.expect("binding");
    assert_abridged_and_small(binding.status.as_ref(), "binding");
    assert_abridged_and_small(product.status.as_ref(), "product");

    // Deleted while no operator runs: the next one starts without its record of the numbers,
    // from the abridged statuses, and must tell what it made from Twilio's listings alone.
    restarted.start_kill().expect("SIGKILL");
    let _ = restarted.wait().await;
    env.products()
        .delete(NAME, &Default::default())
        .await
        .expect("delete product");
    env.bindings()
        .delete(NAME, &Default::default())
        .await
        .expect("delete binding");
    let mut restarted = env
        .operator_command()
        .spawn()
        .expect("restart trusthub-operator");
    wait_gone(&env.products(), NAME).await;
    wait_gone(&env.bindings(), NAME).await;
    eprintln!("both deleted at {:?}", started.elapsed());
    let products: Vec<String> = env
        .sim
        .trust_products()
        .into_iter()
        .map(|p| p.sid)
        .collect();
    assert_eq!(
        products,
        vec![CNAM_PRODUCT.to_string()],
        "the product the operator made is deleted, the CNAM product is not"
    );
    let left = env.sim.channel_assignments();
    assert_eq!(
        left.len(),
        before_channels.len(),
        "only the assignments that existed before are left: {} of {} ({} on the profile)",
        left.len(),
        before_channels.len(),
        left.iter().filter(|a| a.bundle_sid == PROFILE).count()
    );
    assert_eq!(left, before_channels, "the pre-existing ones untouched");
    assert_eq!(env.sim.entity_assignments(), before_entities);
    restarted.start_kill().expect("stop");
    let _ = restarted.wait().await;
    env.shutdown().await;
}

/// 30 % 429 and 10 % 503 on every request during a 1,200-number batch: Ready with every
/// number assigned and attached exactly once, as many successful creates as numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_converges_through_429s_and_503s_exactly_once() {
    const NUMBERS: usize = 1_200;
    let started = Instant::now();
    let mut env = start(
        scale_seed(15, NUMBERS),
        Faults {
            rate_429: 0.3,
            rate_503: 0.1,
            rng_seed: 20261124,
            ..Faults::none()
        },
    )
    .await;
    let voice = voice_numbers_of_subaccounts(&env);
    env.start_controller();
    apply_objects(&env, "Orphan").await;
    every_number_once(&env, &voice, voice.len()).await;
    eprintln!("Ready at {:?}", started.elapsed());
    let faults = env.sim.counters().faults;
    assert!(
        faults.get("429").copied().unwrap_or(0) > 100
            && faults.get("503").copied().unwrap_or(0) > 30,
        "faults were injected throughout: {faults:?}"
    );
    assert_summary_events(&env, "NumbersAssigned", voice.len()).await;
    assert_summary_events(&env, "NumbersAttached", voice.len()).await;
    eprintln!(
        "requests: {} assignment and {} attachment creates for {} numbers; faults {faults:?}",
        requests(&env, ASSIGN),
        requests(&env, ATTACH),
        voice.len()
    );
    env.shutdown().await;
}

/// One number of a 1,000-number batch is already on a SHAKEN/STIR product outside the cluster
/// (Twilio answers 20409): every other number is attached, the refused one is listed in status
/// with Twilio's reason, `Ready` is False with the refusal, one summary Warning Event names it,
/// and the refused create is retried with a growing, capped wait (1 s growing to 5 s here),
/// neither on every pass nor only at the next resync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_twilio_refuses_mid_batch_is_reported_once_and_retried_with_backoff() {
    const NUMBERS: usize = 1_000;
    const WATCH: Duration = Duration::from_secs(20);
    let refused = generated_number_sid(500);
    let mut seed = scale_seed(10, NUMBERS);
    seed.customer_profiles.push(other_profile());
    seed.trust_products
        .push(twilio_product(OTHER_PROFILE, &[refused.as_str()]));
    let mut env = start(seed, Faults::none()).await;
    let voice = voice_numbers_of_subaccounts(&env);
    let mut config = env.controller_config();
    config.poll.review_initial = Duration::from_secs(1);
    config.poll.review_max = Duration::from_secs(5);
    config.poll.noncompliant_initial = Duration::from_secs(1);
    config.poll.noncompliant_max = Duration::from_secs(5);
    env.start_controller_with(config);
    apply_objects(&env, "Orphan").await;

    let product = env
        .wait_product(NAME, "every other number attached, one refused", |p| {
            p.condition("Ready")
                .is_some_and(|c| c.status == "False" && c.reason == "AttachmentRefused")
                && p.status
                    .as_ref()
                    .and_then(|s| s.numbers.as_ref())
                    .is_some_and(|c| c.done as usize == voice.len() - 1 && c.refused == 1)
        })
        .await;
    let first_refusal = Instant::now();
    let sid = product_sid(&product);
    let mut others = voice.clone();
    others.remove(&refused);
    assert_exactly_once(&env, &sid, &others, "the rest of the batch attached");
    let status = product.status.clone().expect("status");
    let entry = status
        .phone_numbers
        .iter()
        .find(|n| *n.sid == *refused)
        .expect("the refused number is listed");
    let message = entry.message.clone().unwrap_or_default();
    assert!(
        entry.assignment_sid.is_none() && message.contains(TWILIO_PRODUCT),
        "listed with Twilio's reason: {entry:?}"
    );
    let ready_message = product.condition("Ready").expect("Ready").message.clone();
    assert!(ready_message.contains(&refused), "{ready_message}");

    // Watch the refused create for a while: every attempt is a POST that creates nothing.
    let attempts =
        || requests(&env, ATTACH) - created(&env, "TrustProductChannelEndpointAssignment");
    let mut seen = vec![(Duration::ZERO, attempts())];
    while first_refusal.elapsed() < WATCH {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = attempts();
        if now != seen.last().expect("one").1 {
            seen.push((first_refusal.elapsed(), now));
        }
    }
    eprintln!("refused attempts over {WATCH:?} (time since first refusal, total): {seen:?}");
    let total = seen.last().expect("one").1;
    assert!(
        total <= 8,
        "the refused create backs off: {total} attempts within {WATCH:?}: {seen:?}"
    );
    let warnings = events(&env, "AttachmentRefused").await;
    assert!(
        warnings.len() == 1,
        "one summary Warning Event, not one per attempt or number: {:?}",
        warnings.iter().map(|e| e.note.clone()).collect::<Vec<_>>()
    );
    let warning = &warnings[0];
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert!(
        warning
            .note
            .as_deref()
            .is_some_and(|n| n.contains(&refused)),
        "names the number: {:?}",
        warning.note
    );
    assert_summary_events(&env, "NumbersAttached", voice.len()).await;
    let product = env.products().get(NAME).await.expect("product");
    assert_eq!(
        product
            .condition("Ready")
            .map(|c| c.reason.clone())
            .as_deref(),
        Some("AttachmentRefused"),
        "still refused"
    );
    eprintln!(
        "product {} at the end of the watch",
        product
            .status
            .as_ref()
            .and_then(|s| s.twilio_status.clone())
            .unwrap_or_default()
    );
    // Retried with a capped wait: never more than the cap (5 s, +10 % jitter, + a reconcile's
    // time) between two attempts, nor since the last one.
    let mut gaps: Vec<Duration> = seen.windows(2).map(|w| w[1].0 - w[0].0).collect();
    gaps.push(WATCH - seen.last().expect("one").0);
    let longest = gaps.iter().max().copied().unwrap_or_default();
    assert!(
        longest <= Duration::from_secs(7),
        "the refused create is retried at least every ~5 s (the cap): {longest:?} without a retry; \
         attempts (time since first refusal, total): {seen:?}"
    );

    assert_no_duplicates(&env.sim);
    env.shutdown().await;
}
