//! The Trust Hub status-callback receiver: `POST /twilio/status-callback` on `--webhook-addr`.
//!
//! A verified callback only asks the Trust Product controller to reconcile the product it
//! names now instead of at its next poll. Polling stays the source of truth: nothing of the
//! payload (its `Status`, `FailureReason`, …) is ever written anywhere.
//!
//! Every replica accepts callbacks, so the Service may route them to any pod. The leader
//! triggers the reconcile directly. A replica that is not running the controllers (a standby,
//! or a leader whose caches are not up yet) looks the product up through the API, verifies the
//! callback the same way, and records it on the object: it sets the annotation
//! [`CALLBACK_ANNOTATION`] to the time received, and the leader's watch reconciles the product
//! on that change (an annotation write needs only the `patch` the operator already has).
//!
//! A callback is accepted (204) only when all of this holds, else it is refused with 403 and
//! triggers nothing:
//! - it is a form POST with an `X-Twilio-Signature` header;
//! - it names (`TrustProductSid`, else `BundleSid`) a Trust Product recorded in the status of a
//!   `ShakenStirTrustProduct` in the informer cache;
//! - if it carries `AccountSid`, that is the account of the product's credentials Secret;
//! - the signature is base64(HMAC-SHA1(auth token, URL + the form parameters sorted by name,
//!   each as name+value)) as Twilio signs webhooks, with the auth token read from that product's
//!   credentials Secret, and the URL the product's status callback (its spec's, else
//!   `--webhook-public-url`), tried as configured, with and without the scheme's default port
//!   (as twilio-go's validator does);
//! - the same signature was not accepted within the replay window (an identical signed body
//!   replayed is refused; a genuine repeat of an unchanged status triggers nothing new anyway).
//!
//! The replay window is per replica: a replay sent to another replica triggers one more
//! reconcile, which is harmless. A replica that cannot reach the API to look the product up or
//! to record the callback answers 503. Limits: the auth token is the one in the Secret now;
//! callbacks signed with a token rotated away are refused (the next poll still sees the change).
//! Customer Profile callbacks are refused: the operator never registers one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use futures::channel::mpsc;
use hmac::{Hmac, Mac};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt};
use sha1::Sha1;
use url::Url;

use crate::api::{CALLBACK_ANNOTATION, ShakenStirTrustProduct};
use crate::controller::Context;
use crate::twilio::SecretString;

/// The path Twilio posts to.
pub const PATH: &str = "/twilio/status-callback";

/// How long an accepted signature is remembered to refuse replays.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(600);

/// Most signatures remembered (older ones are dropped first).
const REPLAY_CAPACITY: usize = 10_000;

/// Why a callback was refused; logged (no secret in any variant), never sent back in detail.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    /// No `X-Twilio-Signature` header.
    #[error("no X-Twilio-Signature header")]
    Unsigned,
    /// The body is not a form naming a Trust Product.
    #[error("the callback names no Trust Product")]
    NoProduct,
    /// No `ShakenStirTrustProduct` records this SID.
    #[error("Trust Product {0} is not managed here")]
    UnknownProduct(String),
    /// The product's Secret or its auth token is missing.
    #[error("no auth token to verify the callback for {0}")]
    NoToken(String),
    /// `AccountSid` is not the product's account.
    #[error("the callback's AccountSid is not the account of Trust Product {0}")]
    WrongAccount(String),
    /// The signature does not match.
    #[error("bad signature for Trust Product {0}")]
    BadSignature(String),
    /// This signed body was accepted before, within the replay window.
    #[error("replayed callback for Trust Product {0}")]
    Replay(String),
    /// The products could not be listed from the API (a replica without caches).
    #[error("cannot look the Trust Product up: {0}")]
    Unavailable(String),
}

/// Everything the receiver needs.
#[derive(Clone)]
pub struct WebhookState {
    ctx: Arc<Context>,
    triggers: mpsc::Sender<ObjectRef<ShakenStirTrustProduct>>,
    seen: Arc<Mutex<HashMap<String, Instant>>>,
}

impl WebhookState {
    /// A receiver that triggers reconciles through `triggers` (fed to the controller).
    pub fn new(
        ctx: Arc<Context>,
        triggers: mpsc::Sender<ObjectRef<ShakenStirTrustProduct>>,
    ) -> Self {
        Self {
            ctx,
            triggers,
            seen: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

/// The router of `POST /twilio/status-callback`.
pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route(PATH, post(receive))
        // Twilio's callbacks are a few hundred bytes.
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

/// Where the products are looked up: the leader's informer cache, or the API.
enum Products {
    Cache(Store<ShakenStirTrustProduct>),
    Api,
}

async fn receive(State(state): State<WebhookState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let products = match state.ctx.products.get() {
        Some(store) => Products::Cache(store.clone()),
        None => Products::Api,
    };
    let leading = matches!(products, Products::Cache(_));
    let product = match verify(&state, &products, &headers, &body).await {
        Ok(product) => product,
        Err(Refusal::Unavailable(e)) => {
            tracing::warn!(error = %e, "cannot verify a status callback now");
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        Err(refusal) => {
            tracing::warn!(reason = %refusal, "refused status callback");
            return StatusCode::FORBIDDEN;
        }
    };
    let object = ObjectRef::from_obj(product.as_ref());
    if leading {
        tracing::info!(object = %object, "verified status callback: reconciling now");
        let mut triggers = state.triggers.clone();
        if triggers.try_send(object).is_err() {
            // The queue is full or the controller stopped: the next poll covers it.
            tracing::warn!("status callback trigger queue full; the next poll will see it");
        }
        return StatusCode::NO_CONTENT;
    }
    match record(&state.ctx, &product).await {
        Ok(()) => {
            tracing::info!(object = %object, "verified status callback: recorded for the leader");
            StatusCode::NO_CONTENT
        }
        Err(e) => {
            tracing::warn!(object = %object, error = %e, "cannot record a verified status callback");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// Sets [`CALLBACK_ANNOTATION`] on `product` to now, which the leader's watch reconciles on.
async fn record(ctx: &Context, product: &ShakenStirTrustProduct) -> Result<(), kube::Error> {
    let ns = product.namespace().unwrap_or_default();
    let api: Api<ShakenStirTrustProduct> = Api::namespaced(ctx.client.clone(), &ns);
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = serde_json::json!({ "metadata": { "annotations": { CALLBACK_ANNOTATION: now } } });
    api.patch(
        &product.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map(|_| ())
}

/// The product whose status records `sid`.
async fn find_product(
    ctx: &Context,
    products: &Products,
    sid: &str,
) -> Result<Option<Arc<ShakenStirTrustProduct>>, Refusal> {
    let recorded = |p: &ShakenStirTrustProduct| {
        p.status
            .as_ref()
            .and_then(|s| s.trust_product_sid.as_deref())
            == Some(sid)
    };
    match products {
        Products::Cache(store) => Ok(store.state().into_iter().find(|p| recorded(p))),
        Products::Api => {
            let api: Api<ShakenStirTrustProduct> = match &ctx.config.namespace {
                Some(ns) => Api::namespaced(ctx.client.clone(), ns),
                None => Api::all(ctx.client.clone()),
            };
            let list = api
                .list(&Default::default())
                .await
                .map_err(|e| Refusal::Unavailable(e.to_string()))?;
            Ok(list.items.into_iter().find(|p| recorded(p)).map(Arc::new))
        }
    }
}

async fn verify(
    state: &WebhookState,
    products: &Products,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Arc<ShakenStirTrustProduct>, Refusal> {
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or(Refusal::Unsigned)?
        .to_string();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let sid = param("TrustProductSid")
        .or(param("BundleSid"))
        .filter(|s| crate::twilio::is_sid(s, "BU"))
        .ok_or(Refusal::NoProduct)?
        .to_string();
    let product = find_product(&state.ctx, products, &sid)
        .await?
        .ok_or_else(|| Refusal::UnknownProduct(sid.clone()))?;
    let url = state
        .ctx
        .status_callback_for(product.spec.status_callback.as_deref())
        .ok_or_else(|| Refusal::UnknownProduct(sid.clone()))?
        .to_string();
    let (account_sid, token) = credentials(&state.ctx, &product)
        .await
        .ok_or_else(|| Refusal::NoToken(sid.clone()))?;
    if param("AccountSid").is_some_and(|a| a != account_sid) {
        return Err(Refusal::WrongAccount(sid));
    }
    if !signature_matches(&token, &url, &params, &signature) {
        return Err(Refusal::BadSignature(sid));
    }
    remember(&state.seen, &signature, Instant::now()).map_err(|()| Refusal::Replay(sid))?;
    Ok(product)
}

/// The account SID and auth token of `product`'s credentials Secret.
async fn credentials(
    ctx: &Context,
    product: &ShakenStirTrustProduct,
) -> Option<(String, SecretString)> {
    let ns = product.namespace()?;
    let reference = &product.spec.credentials;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let secret = secrets.get_opt(&reference.secret_name).await.ok()??;
    let data = secret.data?;
    let value = |key: &str| {
        data.get(key)
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let account = value(&reference.account_sid_key)?;
    let token = SecretString::new(value(&reference.auth_token_key)?);
    Some((account, token))
}

/// Records `signature` as accepted at `now`; `Err` if it was accepted within the window.
fn remember(
    seen: &Mutex<HashMap<String, Instant>>,
    signature: &str,
    now: Instant,
) -> Result<(), ()> {
    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    seen.retain(|_, at| now.saturating_duration_since(*at) < REPLAY_WINDOW);
    if seen.contains_key(signature) {
        return Err(());
    }
    if seen.len() >= REPLAY_CAPACITY
        && let Some(oldest) = seen
            .iter()
            .min_by_key(|(_, at)| **at)
            .map(|(k, _)| k.clone())
    {
        seen.remove(&oldest);
    }
    seen.insert(signature.to_string(), now);
    Ok(())
}

/// Whether `signature` signs `params` posted to `url` (as configured, with or without the
/// default port) with `token`. Compared in constant time.
pub fn signature_matches(
    token: &SecretString,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    url_variants(url).iter().any(|candidate| {
        let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(token.expose().as_bytes()) else {
            return false;
        };
        mac.update(signed_data(candidate, params).as_bytes());
        mac.verify_slice(&expected).is_ok()
    })
}

/// The `X-Twilio-Signature` of `params` posted to `url`, signed with `token`.
pub fn sign(token: &SecretString, url: &str, params: &[(String, String)]) -> String {
    // HMAC takes keys of any length, so this cannot fail; an empty MAC would never verify.
    match Hmac::<Sha1>::new_from_slice(token.expose().as_bytes()) {
        Ok(mut mac) => {
            mac.update(signed_data(url, params).as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

fn signed_data(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_string();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    data
}

/// `url` as configured, with the scheme's default port, and without any port.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_string()];
    let Ok(parsed) = Url::parse(url) else {
        return variants;
    };
    let Some(host) = parsed.host_str() else {
        return variants;
    };
    let userinfo = match (parsed.username(), parsed.password()) {
        ("", None) => String::new(),
        (user, None) => format!("{user}@"),
        (user, Some(password)) => format!("{user}:{password}@"),
    };
    let rest = &parsed[url::Position::BeforePath..];
    let base = format!("{}://{userinfo}{host}", parsed.scheme());
    let with_port = parsed
        .port_or_known_default()
        .map(|port| format!("{base}:{port}{rest}"));
    for candidate in [with_port, Some(format!("{base}{rest}"))]
        .into_iter()
        .flatten()
    {
        if !variants.contains(&candidate) {
            variants.push(candidate);
        }
    }
    variants
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn matches_twilio_documented_example() {
        // Twilio's "Webhooks security" example, auth token 12345.
        let token = SecretString::new("12345");
        let p = params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert!(signature_matches(
            &token,
            url,
            &p,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert_eq!(sign(&token, url, &p), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(!signature_matches(
            &SecretString::new("54321"),
            url,
            &p,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!signature_matches(
            &token,
            url,
            &p[1..],
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!signature_matches(&token, url, &p, "not base64!"));
    }

    #[test]
    fn accepts_the_url_with_or_without_the_default_port() {
        let token = SecretString::new("tok");
        let p = params(&[("BundleSid", "BU1")]);
        let with_port = sign(&token, "https://op.example:443/twilio/status-callback", &p);
        let without = sign(&token, "https://op.example/twilio/status-callback", &p);
        for configured in [
            "https://op.example/twilio/status-callback",
            "https://op.example:443/twilio/status-callback",
        ] {
            assert!(signature_matches(&token, configured, &p, &with_port));
            assert!(signature_matches(&token, configured, &p, &without));
        }
        let other_port = sign(&token, "https://op.example:8443/twilio/status-callback", &p);
        assert!(!signature_matches(
            &token,
            "https://op.example/twilio/status-callback",
            &p,
            &other_port
        ));
    }

    #[test]
    fn refuses_a_replay_within_the_window_only() {
        let seen = Mutex::new(HashMap::new());
        let t0 = Instant::now();
        assert_eq!(remember(&seen, "sig", t0), Ok(()));
        assert_eq!(remember(&seen, "sig", t0 + Duration::from_secs(1)), Err(()));
        assert_eq!(
            remember(&seen, "other", t0 + Duration::from_secs(1)),
            Ok(())
        );
        assert_eq!(remember(&seen, "sig", t0 + REPLAY_WINDOW), Ok(()));
    }
}
