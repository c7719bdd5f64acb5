//! The kube-runtime controllers that wire the Twilio client and the planners together: one for
//! `BusinessProfileBinding`, one for `ShakenStirTrustProduct`, in one process.
//!
//! Each reconcile observes Trust Hub, asks the planner for the writes still needed, records the
//! create-pending markers of the next batch in `.status`, performs the batch (number writes
//! concurrently, bounded by the account's in-flight limit; other steps one at a time), records
//! its outcome with the next batch's markers in one status write and one summary Event, and asks
//! again until nothing is left; then it writes the conditions and requeues as the planner says.
//! Errors are typed: transient ones back off per object (honouring Retry-After), terminal ones
//! become a condition and a Warning Event.

mod backoff;
mod batch;
mod binding;
mod binding_cleanup;
mod binding_numbers;
mod binding_ownership;
pub mod book;
mod coverage;
mod credentials;
mod discovery;
mod drift;
mod error;
pub mod events;
mod secrets;
mod status;
mod trust_product;
mod watches;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use rand::Rng;

pub use credentials::{CredentialsCache, CredentialsError, credentials_from_secret};
pub use error::{ErrorClass, ReconcileError};
pub use secrets::SecretAccess;
use watches::{
    api_for, binding_of, binding_outcome_hash, changed_after_first, changed_only,
    product_coverage_hash, products_using, shared_watch, trigger_hash, trim_for_cache,
    trim_secret_meta, using_secret,
};

use crate::api::{BusinessProfileBinding, ShakenStirTrustProduct};
use crate::planner::{PollSchedule, Requeue, text};
use crate::twilio::{CallObserver, ClientConfig};

/// How the controllers run; every field comes from a command-line flag or its env var.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Namespace to watch; `None` watches all.
    pub namespace: Option<String>,
    /// Twilio client settings (base URLs, retries, in-flight limit, timeouts).
    pub twilio: ClientConfig,
    /// Polling intervals.
    pub poll: PollSchedule,
    /// Reconciles running at once, per kind.
    pub concurrency: u16,
    /// First retry after a transient error.
    pub error_backoff_initial: Duration,
    /// Longest wait between retries after transient errors.
    pub error_backoff_max: Duration,
    /// Requeue after a terminal error (a spec or Secret change re-triggers sooner).
    pub terminal_recheck: Duration,
    /// Name written as the Events' reporting controller.
    pub reporter: String,
    /// The operator's own status-callback URL (`--webhook-public-url`): set as a Trust
    /// Product's `StatusCallback` when its spec names none.
    pub status_callback_url: Option<String>,
    /// How Secrets are read and their changes seen (`get` by name, or a metadata watch).
    pub secrets: SecretAccess,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            namespace: None,
            twilio: ClientConfig::default(),
            poll: PollSchedule::default(),
            concurrency: 8,
            error_backoff_initial: Duration::from_secs(2),
            error_backoff_max: Duration::from_secs(300),
            terminal_recheck: Duration::from_secs(600),
            reporter: "trusthub-operator".into(),
            status_callback_url: None,
            secrets: SecretAccess::default(),
        }
    }
}

/// State shared by every reconcile.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Settings.
    pub config: ControllerConfig,
    /// Twilio clients, one per Secret version.
    pub credentials: CredentialsCache,
    /// Publishes Events about the objects.
    pub events: events::EventPublisher,
    /// Consecutive transient failures per object, for the backoff.
    failures: backoff::Backoffs,
    /// The Trust Product informer cache (set when the controllers start), to see which numbers
    /// other objects already attached.
    pub products: OnceLock<Store<ShakenStirTrustProduct>>,
    /// The binding informer cache (set when the controllers start), for the status gauges.
    pub bindings: OnceLock<Store<BusinessProfileBinding>>,
    /// Sees every finished reconcile (metrics).
    reconcile_observer: Option<Arc<dyn ReconcileObserver>>,
    /// When each (namespace/secret/policy) was last found in Trust Hub: the policy is checked
    /// before a create to fail with a clear `PolicyNotFound`, and policies change rarely, so one
    /// fetch per [`POLICY_RECHECK`] serves every product of that account.
    policies_seen: Mutex<HashMap<String, Instant>>,
    /// The full status of each object as this process last wrote it (the API holds it
    /// abridged above a few hundred numbers).
    pub books: book::Books,
    /// The account's SHAKEN/STIR products, listed before creates, one listing at a time.
    pub product_listings: trust_product::listings::ProductListings,
}

/// How often an object waiting for this process to rebuild another object's record looks again.
const RECALL_RECHECK: Duration = Duration::from_secs(2);

/// How soon a reconcile whose status write was refused as superseded runs again.
const SUPERSEDED_RECHECK: Duration = Duration::from_millis(500);

/// How long a policy found in Trust Hub is taken to still exist without asking again.
pub const POLICY_RECHECK: Duration = Duration::from_secs(15 * 60);

/// Receives every finished reconcile (e.g. to feed Prometheus). Must be cheap and not block.
pub trait ReconcileObserver: Send + Sync {
    /// `kind` is the custom resource's kind; `failure` the condition reason of the error the
    /// reconcile ended with (retried or recorded as a terminal condition), `None` on success.
    fn reconciled(&self, kind: &'static str, duration: Duration, failure: Option<&'static str>);
}

/// Extra inputs of [`run_with`] beyond the watches.
#[derive(Default)]
pub struct RunOptions {
    /// Requests to reconcile a Trust Product now (e.g. from a verified status callback).
    /// Objects not in the informer cache are ignored by the controller.
    pub product_triggers: Option<BoxStream<'static, ObjectRef<ShakenStirTrustProduct>>>,
    /// Called once both informer caches hold their initial list (readiness).
    pub on_synced: Option<Box<dyn FnOnce() + Send>>,
}

impl Context {
    /// A context for `client` with `config`; `observer` sees every Twilio call (metrics).
    pub fn new(
        client: Client,
        config: ControllerConfig,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> Arc<Self> {
        Self::with_observers(client, config, observer, None)
    }

    /// Like [`Context::new`], with `reconciles` seeing every finished reconcile.
    pub fn with_observers(
        client: Client,
        config: ControllerConfig,
        calls: Option<Arc<dyn CallObserver>>,
        reconciles: Option<Arc<dyn ReconcileObserver>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            events: events::EventPublisher::new(
                client.clone(),
                config.reporter.clone(),
                std::env::var("POD_NAME").ok(),
            ),
            credentials: CredentialsCache::new(client.clone(), config.twilio.clone(), calls),
            client,
            config,
            failures: backoff::Backoffs::default(),
            products: OnceLock::new(),
            bindings: OnceLock::new(),
            reconcile_observer: reconciles,
            policies_seen: Mutex::new(HashMap::new()),
            books: book::Books::default(),
            product_listings: Default::default(),
        })
    }

    /// Whether the policy under `key` was found in Trust Hub within [`POLICY_RECHECK`].
    pub fn policy_recently_seen(&self, key: &str) -> bool {
        self.policies_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .is_some_and(|at| at.elapsed() < POLICY_RECHECK)
    }

    /// Records that the policy under `key` was just found in Trust Hub.
    pub fn note_policy_seen(&self, key: String) {
        let mut seen = self.policies_seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, at| at.elapsed() < POLICY_RECHECK);
        seen.insert(key, Instant::now());
    }

    /// The `StatusCallback` a Trust Product should carry: its spec's, else the operator's own.
    pub fn status_callback_for<'a>(&'a self, spec_callback: Option<&'a str>) -> Option<&'a str> {
        spec_callback.or(self.config.status_callback_url.as_deref())
    }

    fn observe_reconcile(
        &self,
        kind: &'static str,
        started: Instant,
        result: &Result<Action, ReconcileError>,
    ) {
        if let Some(observer) = &self.reconcile_observer {
            let failure = match result {
                Err(ReconcileError::Recorded { failure: false, .. }) | Ok(_) => None,
                Err(e) => Some(e.reason()),
            };
            observer.reconciled(kind, started.elapsed(), failure);
        }
    }

    fn backoff_for(&self, key: &str, retry_after: Option<Duration>) -> Duration {
        self.failures.next(
            key,
            retry_after,
            self.config.error_backoff_initial,
            self.config.error_backoff_max,
            Instant::now(),
        )
    }

    fn reset_backoff(&self, key: &str) {
        self.failures.reset(key);
    }

    /// A requeue decided by a planner, with ±10 % jitter.
    pub fn requeue(&self, requeue: Requeue) -> Action {
        let wait = match requeue {
            Requeue::After(d) => d,
            Requeue::OnChange => self.config.poll.approved_resync,
        };
        Action::requeue(wait.mul_f64(rand::rng().random_range(0.9..=1.1)))
    }
}

/// Twilio's `DateTime` as the planner's `Timestamp` (whole seconds, as Twilio gives them).
fn to_jiff(t: Option<chrono::DateTime<chrono::Utc>>) -> Option<k8s_openapi::jiff::Timestamp> {
    t.and_then(|t| k8s_openapi::jiff::Timestamp::from_second(t.timestamp()).ok())
}

fn object_key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

/// Runs `apply` or, once the object is being deleted, `cleanup` under the operator's finalizer
/// (kube-runtime's helper adds it before the first apply and removes it once cleanup returns
/// `Ok`), resets the object's error backoff after a successful pass, and reports the reconcile
/// of `kind` to the reconcile observer (metrics).
async fn reconcile_finalized<K>(
    kind: &'static str,
    obj: Arc<K>,
    ctx: Arc<Context>,
    apply: impl AsyncFnOnce(&Api<K>, &K, &Context) -> Result<Action, ReconcileError>,
    cleanup: impl AsyncFnOnce(&K, &Context) -> Result<Action, ReconcileError>,
) -> Result<Action, ReconcileError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + book::BookedObject
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    use kube::runtime::finalizer::{Error as FinalizerError, Event as FinalizerEvent, finalizer};
    let started = Instant::now();
    async move {
        let ns = obj.namespace().unwrap_or_default();
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
        let key = object_key(obj.as_ref());
        let result: Result<Action, ReconcileError> = async {
            let obj = ctx.books.caught_up(obj);
            let uid = obj.meta().uid.clone();
            let deleting = obj.meta().deletion_timestamp.is_some();
            let result = finalizer(&api, crate::api::FINALIZER, obj, |event| async {
                match event {
                    FinalizerEvent::Apply(obj) => apply(&api, &obj, &ctx).await,
                    FinalizerEvent::Cleanup(obj) => cleanup(&obj, &ctx).await,
                }
            })
            .await;
            match result {
                Ok(action) => {
                    ctx.reset_backoff(&key);
                    if deleting {
                        ctx.books.forget(uid.as_deref());
                    }
                    Ok(action)
                }
                Err(FinalizerError::ApplyFailed(e) | FinalizerError::CleanupFailed(e)) => Err(e),
                Err(other) => Err(ReconcileError::Finalizer(other.to_string())),
            }
        }
        .await;
        ctx.observe_reconcile(kind, started, &result);
        result
    }
    .await
}

/// A Twilio delete's result, with "not found" counted as done: the object is gone either way,
/// whether this delete or an earlier one (or someone in the Console) removed it.
fn deleted(
    result: Result<(), crate::twilio::TwilioError>,
) -> Result<(), crate::twilio::TwilioError> {
    match result {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

/// Ends a cleanup with an Event: Normal `CleanedUp` with `cleaned` when nothing is `left`,
/// else Warning `CleanupIncomplete`, `refused` followed by what is left.
async fn report_cleanup<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    left: &[String],
    cleaned: String,
    refused: &str,
) {
    use kube::runtime::events::EventType;
    if left.is_empty() {
        status::event(ctx, obj, EventType::Normal, "CleanedUp", "Delete", cleaned).await;
    } else {
        let note = format!("{refused}: {}", text::listed(left, "; "));
        status::event(
            ctx,
            obj,
            EventType::Warning,
            "CleanupIncomplete",
            "Delete",
            note,
        )
        .await;
    }
}

/// The Twilio client a cleanup needs, or `None` once a Warning Event has listed what is left
/// behind because the credentials are gone: a deletion never waits for credentials that may
/// never come back.
async fn cleanup_client<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    credentials: &crate::api::CredentialsRef,
    left_behind: &[String],
) -> Result<Option<Arc<dyn crate::twilio::TrustHub>>, ReconcileError> {
    let ns = obj.meta().namespace.clone().unwrap_or_default();
    match ctx.credentials.client_for(&ns, credentials).await {
        Ok(twilio) => Ok(Some(twilio)),
        Err(e @ (ReconcileError::Credentials(_) | ReconcileError::Terminal { .. })) => {
            let note = format!(
                "cannot clean up ({e}); left in Trust Hub: {}",
                text::listed(left_behind, ", ")
            );
            status::event(
                ctx,
                obj,
                kube::runtime::events::EventType::Warning,
                "CleanupSkipped",
                "Delete",
                note,
            )
            .await;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn error_policy<K: Resource<DynamicType = ()>>(
    obj: Arc<K>,
    err: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    if let ReconcileError::Recorded { .. } = err {
        // Already a condition (and an Event): look again on the slow recheck, not with the
        // backoff of transient errors, which it resets.
        ctx.reset_backoff(&object_key(obj.as_ref()));
        return Action::requeue(ctx.config.terminal_recheck);
    }
    if let ReconcileError::Superseded = err {
        // Someone else changed the object: its watch event brings the newer copy, usually
        // before this requeue; no backoff, as nothing failed.
        return Action::requeue(SUPERSEDED_RECHECK);
    }
    if let ReconcileError::Recalling { .. } = err {
        // Waiting for another reconcile of this process (a binding rebuilding its record after
        // a restart), which may take a minute at 50,000 numbers and raises no watch event this
        // object reacts to: look again soon, at the cost of one cache read, without a backoff
        // that would grow past the moment it is done.
        return Action::requeue(RECALL_RECHECK);
    }
    let wait = ctx.backoff_for(&object_key(obj.as_ref()), err.retry_after());
    tracing::warn!(object = %object_key(obj.as_ref()), error = %err, retry_in = ?wait, "reconcile failed");
    Action::requeue(wait)
}

/// Runs both controllers until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    run_with(ctx, shutdown, RunOptions::default()).await
}

/// The Secrets' metadata, shared like the bindings: one source (a watch, or a periodic check of
/// the Secrets named, per `--secret-access`), one cache, and a subscriber per controller to wake
/// the objects using a changed Secret. `None` if the cache cannot be subscribed to.
#[allow(clippy::type_complexity)]
fn secret_source(
    ctx: &Arc<Context>,
    bindings: &Store<BusinessProfileBinding>,
    products: &Store<ShakenStirTrustProduct>,
) -> Option<(
    [reflector::ReflectHandle<secrets::SecretMeta>; 2],
    impl std::future::Future<Output = ()> + Send + use<>,
)> {
    let named = {
        let (bindings, products) = (bindings.clone(), products.clone());
        move || secrets::named_secrets(&bindings, &products)
    };
    let known = {
        let ctx = ctx.clone();
        move |ns: &str, name: &str, version: &str| ctx.credentials.built_from(ns, name, version)
    };
    let config = &ctx.config;
    let events = secrets::secret_events(
        &ctx.client,
        &config.namespace,
        &config.secrets,
        named,
        known,
    );
    let (reader, handles, watch) = shared_watch(events, trim_secret_meta, |_| {})?;
    // Only a watch keeps the versions current enough to skip reading a Secret: a periodic check
    // would let a reconcile use a Secret deleted or rotated since, for up to a recheck. In `get`
    // mode each reconcile reads its Secret by name (one GET; the client is reused while the
    // resourceVersion is unchanged), and the check only wakes the resources of a changed one.
    if matches!(config.secrets, SecretAccess::Watch { .. }) {
        ctx.credentials.watch_versions(reader);
    }
    Some((handles, watch))
}

/// Tells the books what an informer cache of kind `K` holds now.
fn book_follows<K: book::BookedObject>(
    ctx: &Arc<Context>,
) -> impl Fn(&watcher::Event<K>) + Send + 'static {
    let ctx = ctx.clone();
    move |event| ctx.books.cached(event)
}

/// Resolves once both informer caches hold their initial list, then calls `on_synced`
/// (readiness).
async fn caches_synced(
    bindings: Store<BusinessProfileBinding>,
    products: Store<ShakenStirTrustProduct>,
    on_synced: Option<Box<dyn FnOnce() + Send>>,
) {
    let _ = bindings.wait_until_ready().await;
    let _ = products.wait_until_ready().await;
    if let Some(hook) = on_synced {
        hook();
    }
}

/// Runs both controllers until `shutdown` resolves, with extra triggers and a readiness hook.
pub async fn run_with(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    options: RunOptions,
) {
    let client = ctx.client.clone();
    let ns = ctx.config.namespace.clone();
    let bindings: Api<BusinessProfileBinding> = api_for(&client, &ns);
    let products: Api<ShakenStirTrustProduct> = api_for(&client, &ns);
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));
    let config = kube::runtime::controller::Config::default().concurrency(ctx.config.concurrency);

    // One watch of the bindings feeds one cache, and two subscribers: the binding controller
    // and the trust products' binding trigger. A subscriber sees an object only after the cache
    // holds it, so a product woken by its binding reads that binding's new status from the
    // cache, never an older copy (a second, separate watch could run ahead of the cache).
    let Some((binding_reader, [binding_changes, binding_outcome_changes], binding_watch)) =
        shared_watch(
            watcher(bindings, watcher::Config::default()).default_backoff(),
            trim_for_cache,
            book_follows(&ctx),
        )
    else {
        tracing::error!("the binding cache cannot be shared; controllers not started");
        return;
    };
    // The products likewise: the product controller, and the bindings' coverage trigger.
    let Some((product_reader, [product_changes, product_coverage_changes], product_watch)) =
        shared_watch(
            watcher(products, watcher::Config::default()).default_backoff(),
            trim_for_cache,
            book_follows(&ctx),
        )
    else {
        tracing::error!("the product cache cannot be shared; controllers not started");
        return;
    };
    let _ = ctx.products.set(product_reader.clone());
    let binding_stream = changed_only(binding_changes, trigger_hash);
    let _ = ctx.bindings.set(binding_reader.clone());
    let synced = caches_synced(
        binding_reader.clone(),
        product_reader.clone(),
        options.on_synced,
    );
    let Some(([secret_changes_for_bindings, secret_changes_for_products], secret_watch)) =
        secret_source(&ctx, &binding_reader, &product_reader)
    else {
        tracing::error!("the Secret cache cannot be shared; controllers not started");
        return;
    };
    let binding_store = binding_reader.clone();
    let bindings_run = Controller::for_shared_stream(binding_stream, binding_reader)
        .with_config(config.clone())
        .watches_shared_stream(secret_changes_for_bindings, move |secret| {
            using_secret(&binding_store, &secret, |b: &BusinessProfileBinding| {
                b.spec.credentials.secret_name.as_str()
            })
        })
        .reconcile_on(relayed(
            changed_after_first(product_coverage_changes, product_coverage_hash),
            binding_of,
        ))
        .graceful_shutdown_on(shutdown.clone())
        .run(binding::reconcile, error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));

    let product_stream = changed_only(product_changes, trigger_hash);
    let store_for_bindings = product_reader.clone();
    let binding_outcomes = changed_only(binding_outcome_changes, binding_outcome_hash);
    let store_for_secrets = product_reader.clone();
    let mut products_controller =
        Controller::for_shared_stream(product_stream, product_reader).with_config(config);
    if let Some(triggers) = options.product_triggers {
        products_controller = products_controller.reconcile_on(triggers);
    }
    let products_run = products_controller
        .watches_shared_stream(secret_changes_for_products, move |secret| {
            using_secret(&store_for_secrets, &secret, |p: &ShakenStirTrustProduct| {
                p.spec.credentials.secret_name.as_str()
            })
        })
        .watches_shared_stream(binding_outcomes, move |binding| {
            products_using(&store_for_bindings, &binding)
        })
        .graceful_shutdown_on(shutdown)
        .run(trust_product::reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()));

    let controllers = futures::future::join(bindings_run, products_run);
    let watches = [
        binding_watch.boxed(),
        product_watch.boxed(),
        secret_watch.boxed(),
    ];
    until_any_ends(controllers, watches, synced).await;
}

/// The objects `changes` wake, as `wake` maps them, relayed by a task of its own. A subscriber
/// of a shared cache holds up that cache's watch while it lags, and a controller polls its
/// triggers only between its reconciles' steps (planning 50,000 numbers is one step): the
/// products' coverage, read by the binding controller itself, slowed the products' own
/// onboarding of 50,000 numbers by a quarter (30.6 s against 25 s to Submitted). The binding
/// outcomes the product controller reads are left as they are: relayed too, they woke the
/// product at every batch of its binding's and made the onboarding slower still (32.4 s).
fn relayed<S, T, I>(
    changes: impl futures::Stream<Item = Arc<S>> + Send + 'static,
    wake: impl Fn(&S) -> I + Send + 'static,
) -> impl futures::Stream<Item = ObjectRef<T>> + Send + 'static
where
    S: Send + Sync + 'static,
    T: Resource<DynamicType = ()> + Send + Sync + 'static,
    I: IntoIterator<Item = ObjectRef<T>>,
{
    let (tx, wakes) = futures::channel::mpsc::unbounded();
    tokio::spawn(changes.for_each(move |obj| {
        for target in wake(&obj) {
            // Fails only once the controller is gone (shutdown): nothing left to wake.
            let _ = tx.unbounded_send(target);
        }
        futures::future::ready(())
    }));
    wakes
}

/// Drives the controllers and the watches feeding them until any of them ends (the watches end
/// only with an error past their backoff, the controllers at shutdown), with the readiness wait
/// alongside: if the controllers stop before the caches sync, readiness is never reported.
async fn until_any_ends(
    controllers: impl std::future::Future<Output = ((), ())>,
    watches: [futures::future::BoxFuture<'static, ()>; 3],
    synced: impl std::future::Future<Output = ()>,
) {
    let any_watch = futures::future::select_all(watches);
    tokio::pin!(controllers);
    tokio::pin!(any_watch);
    tokio::pin!(synced);
    let mut synced_done = false;
    loop {
        tokio::select! {
            _ = &mut controllers => return,
            _ = &mut any_watch => return,
            _ = &mut synced, if !synced_done => synced_done = true,
        }
    }
}
