//! `trusthub-sim`: an in-memory simulator of Twilio Trust Hub v1 (`/v1/...`) and of the
//! accounts and incoming-numbers part of API 2010-04-01 (`/2010-04-01/...`), served on one
//! address, following the official OpenAPI documents (`shared/twilio-oai`).
//!
//! What is modelled:
//! - CustomerProfiles and TrustProducts with ChannelEndpointAssignments,
//!   EntityAssignments and Evaluations; Policies; Accounts; IncomingPhoneNumbers
//!   (see [`routes_trusthub`], [`routes_api2010`]).
//! - HTTP Basic auth with account SID + auth token or API key + secret; 401/20003
//!   otherwise. Trust Hub acts on the authenticated account.
//! - Twilio's rules and error codes ([`rules`], [`error`]), vetting with delays or admin
//!   decisions, signed status callbacks ([`vetting`]), faults ([`faults`]), counters
//!   ([`counters`]), admin API ([`admin`]).
//!
//! Seeds may also hold trust products, suspended or closed subaccounts and policies that are
//! absent (see [`seed`]).
//!
//! Not modelled: EndUsers, SupportingDocuments, Addresses (their SIDs are accepted in
//! EntityAssignments on trust), the other 2010 resources, XML responses, regions/edges,
//! HTTPS (serve behind a TLS proxy if needed).

pub mod admin;
mod app;
pub mod counters;
pub mod error;
pub mod evaluation;
pub mod faults;
pub mod model;
pub mod pagination;
pub mod routes_api2010;
pub mod routes_trusthub;
pub mod rules;
pub mod seed;
pub mod state;
pub mod table;
pub mod vetting;

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::middleware::from_fn_with_state;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

pub use admin::NewNumber;
use app::{App, AppInner, ConnHandle, DroppableListener, lock};
pub use app::{WriteEvent, WriteOrigin};
pub use counters::Counters;
pub use error::{ApiError, SimError, TwilioErrorBody};
pub use faults::{FaultKind, Faults, ScriptedFault};
pub use model::{
    Account, AccountStatus, Bundle, BundleKind, BundleStatus, ChannelAssignment, EntityAssignment,
    Evaluation, PRIMARY_PROFILE_POLICY, PhoneNumber, SECONDARY_PROFILE_POLICY, SHAKEN_STIR_POLICY,
};
pub use seed::{
    ApiKeyKind, Secret, Seed, SeedAccount, SeedApiKey, SeedNumber, SeedProfile, SeedScale,
    SeedTrustProduct,
};
pub use state::State;

/// How to run a simulator.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Default `127.0.0.1:0` (a free port).
    pub listen: SocketAddr,
    pub seed: Seed,
    /// pending-review → in-review after this delay; `None` = only through the admin API.
    pub review_delay: Option<Duration>,
    /// in-review → decided after this delay; `None` = only through the admin API.
    pub approve_delay: Option<Duration>,
    pub faults: Faults,
    /// Base of the `url`/`links`/`meta` URLs; default `http://<bound address>`.
    pub public_base_url: Option<String>,
    /// When set, `/_sim/` requires `Authorization: Bearer <token>`.
    pub admin_token: Option<Secret>,
    /// How long approvals last (`valid_until` of seeded and newly approved bundles); default
    /// 365 days. Short values let tests watch an approval expire.
    pub approval_validity: Option<Duration>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: Seed::default_seed(),
            review_delay: None,
            approve_delay: None,
            faults: Faults::none(),
            public_base_url: None,
            admin_token: None,
            approval_validity: None,
        }
    }
}

/// A running simulator. Dropping it without [`SimServer::shutdown`] leaves the server task
/// running until the runtime ends.
pub struct SimServer {
    app: App,
    addr: SocketAddr,
    server: JoinHandle<()>,
    worker: JoinHandle<()>,
}

impl SimServer {
    /// Bind, load the seed and start serving.
    pub async fn start(cfg: SimConfig) -> Result<SimServer, SimError> {
        cfg.seed.validate()?;
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let base_url = cfg
            .public_base_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("http://{addr}"));
        let approval_validity = cfg
            .approval_validity
            .and_then(|d| chrono::Duration::from_std(d).ok());
        let (writes, _) = broadcast::channel(1024);
        let (callbacks, callback_rx) = mpsc::unbounded_channel();
        let (shutdown, _) = watch::channel(false);
        let app: App = Arc::new(AppInner {
            state: Mutex::new(State::from_seed_with(&cfg.seed, approval_validity)),
            seed: cfg.seed.clone(),
            base_url,
            review_delay: cfg.review_delay,
            approve_delay: cfg.approve_delay,
            faults: Mutex::new(faults::FaultEngine::new(cfg.faults.clone())),
            counters: Mutex::new(Counters::default()),
            writes,
            callbacks,
            in_flight: AtomicUsize::new(0),
            admin_token: cfg.admin_token.clone(),
            approval_validity,
            shutdown,
        });
        let router = build_router(app.clone());
        let mut stop = app.shutdown.subscribe();
        let server = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<ConnHandle>();
            let result = axum::serve(DroppableListener(listener), service)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "server stopped with an error");
            }
        });
        let worker = tokio::spawn(vetting::callback_worker(app.clone(), callback_rx));
        vetting::resume_seeded(&app);
        tracing::info!(%addr, "trusthub-sim listening");
        Ok(SimServer {
            app,
            addr,
            server,
            worker,
        })
    }

    /// `http://127.0.0.1:PORT`: serves `/v1`, `/2010-04-01` and `/_sim`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base used in response URLs (`public_base_url` or [`SimServer::base_url`]).
    pub fn public_base_url(&self) -> String {
        self.app.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn seed(&self) -> &Seed {
        &self.app.seed
    }

    /// Move a pending-review profile or trust product to in-review now.
    pub fn start_review(&self, sid: &str) -> Result<Bundle, SimError> {
        vetting::start_review(&self.app, sid)
    }

    /// Approve a pending-review/in-review profile or trust product now.
    pub fn approve(&self, sid: &str) -> Result<Bundle, SimError> {
        vetting::decide(&self.app, sid, true, &[])
    }

    /// Reject a pending-review/in-review profile or trust product now with `errors` codes.
    pub fn reject(&self, sid: &str, codes: &[u32]) -> Result<Bundle, SimError> {
        vetting::decide(&self.app, sid, false, codes)
    }

    /// Set the `valid_until` of a profile or trust product (past: a lapsed approval; later: a
    /// renewal; `None`: no expiry).
    pub fn set_valid_until(
        &self,
        sid: &str,
        valid_until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Bundle, SimError> {
        vetting::set_valid_until(&self.app, sid, valid_until)
    }

    /// Set an account's (or subaccount's) `status`, e.g. to model a suspended subaccount.
    pub fn set_account_status(&self, sid: &str, status: AccountStatus) -> Result<(), SimError> {
        admin::account_status(&self.app, sid, status).map(|_| ())
    }

    /// Buy a number for `account_sid` (parent or subaccount): its API 2010 record. Fails
    /// with [`SimError::UnknownAccount`], [`SimError::NumberExists`] (that E.164 number is
    /// already in some account) or [`SimError::InvalidNumber`].
    pub fn buy_number(&self, account_sid: &str, spec: NewNumber) -> Result<PhoneNumber, SimError> {
        admin::buy_number(&self.app, account_sid, spec)
    }

    /// Release a number; its channel endpoint assignments (profiles and trust products) go
    /// with it. Fails with [`SimError::UnknownNumber`].
    pub fn release_number(&self, sid: &str) -> Result<(), SimError> {
        admin::release_number(&self.app, sid)
    }

    /// Create an active subaccount of the seed's parent account (with a random auth token).
    pub fn create_subaccount(&self, friendly_name: &str) -> Result<Account, SimError> {
        admin::create_subaccount(&self.app, Some(friendly_name))
    }

    /// Replace the fault settings (re-seeds the RNG).
    pub fn set_faults(&self, faults: Faults) {
        lock(&self.app.faults).set(faults);
    }

    /// Add a "fail the next N matching requests" rule.
    pub fn push_fault(&self, fault: ScriptedFault) {
        lock(&self.app.faults).push_scripted(fault);
    }

    pub fn counters(&self) -> Counters {
        self.app.counters().clone()
    }

    pub fn reset_counters(&self) {
        *self.app.counters() = Counters::default();
    }

    /// Every successful API create/update/delete, sent after the state change and before
    /// the response is written, and every admin change to numbers and subaccounts
    /// ([`WriteOrigin::Admin`]).
    pub fn subscribe_writes(&self) -> broadcast::Receiver<WriteEvent> {
        self.app.writes.subscribe()
    }

    /// A copy of the whole state.
    pub fn state(&self) -> State {
        self.app.state().clone()
    }

    pub fn trust_products(&self) -> Vec<Bundle> {
        self.bundles(BundleKind::TrustProduct)
    }

    pub fn customer_profiles(&self) -> Vec<Bundle> {
        self.bundles(BundleKind::CustomerProfile)
    }

    fn bundles(&self, kind: BundleKind) -> Vec<Bundle> {
        self.app
            .state()
            .bundles
            .iter()
            .filter(|b| b.kind == kind)
            .cloned()
            .collect()
    }

    /// All channel endpoint assignments (of profiles and trust products).
    pub fn channel_assignments(&self) -> Vec<ChannelAssignment> {
        self.app.state().channel_assignments().to_vec()
    }

    /// All entity assignments (of profiles and trust products).
    pub fn entity_assignments(&self) -> Vec<EntityAssignment> {
        self.app.state().entity_assignments.clone()
    }

    /// Stop accepting, finish in-flight requests, stop timers and the callback worker.
    pub async fn shutdown(self) {
        self.app.shutdown.send_replace(true);
        // A panicked server task has nothing left to clean up.
        let _ = self.server.await;
        self.worker.abort();
        let _ = self.worker.await;
    }
}

fn build_router(app: App) -> Router {
    let api = Router::new()
        .merge(routes_trusthub::router())
        .merge(routes_api2010::router())
        .route_layer(from_fn_with_state(app.clone(), app::gate));
    let admin = admin::router().route_layer(from_fn_with_state(app.clone(), app::admin_gate));
    api.merge(admin).fallback(fallback).with_state(app)
}

async fn fallback(
    axum::extract::State(app): axum::extract::State<App>,
    req: axum::extract::Request,
) -> ApiError {
    let method = req.method().as_str().to_string();
    if !req.uri().path().starts_with("/_sim") {
        app.counters()
            .record_request(&format!("{method} UNMATCHED"), None);
    }
    ApiError::not_found(req.uri().path())
}
