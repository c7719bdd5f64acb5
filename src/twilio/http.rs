//! Transport: one shared `reqwest::Client`, Basic auth, the in-flight limit, retries and
//! pagination.
//!
//! Retry rules (why: a retried create is a duplicate Trust Product in a customer's account):
//! - GET and DELETE are retried on transient failures (429, 5xx, timeouts, connection errors)
//!   with capped exponential backoff and full jitter, honouring a capped `Retry-After`.
//!   A retried DELETE whose first try did succeed answers 404, which the caller reads as gone.
//! - POST (create/update) is retried only when Twilio provably did not process it: HTTP 429
//!   (Twilio documents throttled requests as not processed) or a connect error (nothing sent).
//!   A 5xx, a timeout or a connection lost after sending becomes `TwilioError::Ambiguous`.
//! - The in-flight permit is held only for one HTTP exchange (send + read body), never while
//!   sleeping between attempts, so a backing-off call does not block others.
//!
//! Pagination: Trust Hub's `meta.next_page_url` is absolute, 2010's `next_page_uri` is relative.
//! Twilio writes its own canonical host into these links even when the request went to a
//! regional edge, a proxy or a simulator. Following them verbatim would leave the configured
//! host and send the Basic credentials to a host we were not told to trust, so only the path and
//! query of a link are used, joined onto the configured origin (and the path must stay under the
//! API's version prefix).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use url::Url;

use super::credentials::{Credentials, Endpoints};
use super::error::{TransportKind, TwilioError, TwilioErrorBody, parse_retry_after};

/// Retry tuning. `max_attempts` counts the first try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// Backoff ceiling of the first retry; doubles per retry.
    pub base: Duration,
    /// Upper bound of the backoff ceiling.
    pub cap: Duration,
    /// Upper bound applied to a server's `Retry-After`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The jitter ceiling before retry number `retry` (1 = first retry): min(cap, base·2^(retry-1)).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// Delay before retry number `retry`. With `Retry-After` the server's wish (capped) wins;
    /// otherwise full jitter: `fraction` (uniform in [0,1)) of the ceiling.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, fraction: f64) -> Duration {
        match retry_after {
            Some(wait) => wait.min(self.max_retry_after),
            None => self.ceiling(retry).mul_f64(fraction.clamp(0.0, 1.0)),
        }
    }
}

/// Client-wide settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub endpoints: Endpoints,
    pub retry: RetryPolicy,
    /// Requests in flight at once across all clones of the client (well under Twilio's
    /// per-account concurrency limit).
    pub max_in_flight: usize,
    pub connect_timeout: Duration,
    /// Whole request, connect to last body byte.
    pub request_timeout: Duration,
    /// `PageSize` for lists (spec: 1…1000); large pages keep the request count low.
    pub page_size: u32,
    /// Appended to the `User-Agent` in parentheses (the operator puts its replica identity
    /// here), so that Twilio's request logs tell the replicas apart.
    pub user_agent_comment: Option<String>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            endpoints: Endpoints::default(),
            retry: RetryPolicy::default(),
            max_in_flight: 10,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            page_size: 1000,
            user_agent_comment: None,
        }
    }
}

/// How one HTTP attempt ended, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// Twilio answered with this status.
    Status(u16),
    /// No answer; the error class (`connect`, `timeout`, `transport`).
    Error(&'static str),
}

/// One HTTP attempt, as seen by a [`CallObserver`]. Holds no URL, body or credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallRecord {
    /// The spec's operationId, e.g. `CreateTrustProduct`.
    pub operation: &'static str,
    pub outcome: CallOutcome,
    pub duration: Duration,
    /// 1 for the first try.
    pub attempt: u32,
}

/// Receives every HTTP attempt (e.g. to feed Prometheus). Must be cheap and not block.
pub trait CallObserver: Send + Sync {
    fn observe(&self, call: &CallRecord);
}

/// Which API a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    TrustHub,
    V2010,
}

impl Api {
    fn prefix(self) -> &'static str {
        match self {
            Api::TrustHub => "/v1/",
            Api::V2010 => "/2010-04-01/",
        }
    }
}

/// One request to make (possibly several times).
pub(crate) struct Call<'a> {
    pub operation: &'static str,
    pub method: Method,
    pub url: Url,
    pub query: &'a [(&'static str, String)],
    pub form: Option<&'a [(&'static str, String)]>,
}

pub(crate) struct Transport {
    http: reqwest::Client,
    credentials: Credentials,
    config: ClientConfig,
    in_flight: Arc<Semaphore>,
    observer: Option<Arc<dyn CallObserver>>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("credentials", &self.credentials)
            .field("config", &self.config)
            .field("observer", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

/// What one attempt produced, before the retry decision.
/// `trusthub-operator/<version>`, with `(comment)` when given (control characters and
/// parentheses dropped: they cannot appear in a header value or would end the comment).
pub(crate) fn user_agent(comment: Option<&str>) -> String {
    let product = concat!("trusthub-operator/", env!("CARGO_PKG_VERSION"));
    let comment: String = comment
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '(' | ')') || *c == ' ')
        .collect();
    match comment.trim() {
        "" => product.to_string(),
        comment => format!("{product} ({comment})"),
    }
}

enum Attempt {
    Done(StatusCode, Vec<u8>),
    Failed {
        error: TwilioError,
        retry: bool,
        retry_after: Option<Duration>,
    },
}

impl Transport {
    pub fn new(credentials: Credentials, config: ClientConfig) -> Result<Self, TwilioError> {
        if config.max_in_flight == 0 || config.retry.max_attempts == 0 {
            return Err(TwilioError::InvalidArgument(
                "max_in_flight and retry.max_attempts must be at least 1".into(),
            ));
        }
        if !(1..=1000).contains(&config.page_size) {
            return Err(TwilioError::InvalidArgument(
                "page_size must be within 1..=1000".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(user_agent(config.user_agent_comment.as_deref()))
            // Twilio never redirects API calls; refusing keeps credentials on the configured host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| TwilioError::Setup(e.to_string()))?;
        Ok(Self {
            http,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            credentials,
            config,
            observer: None,
        })
    }

    pub fn set_observer(&mut self, observer: Arc<dyn CallObserver>) {
        self.observer = Some(observer);
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// `base` + `path` (path starts with the API's version prefix).
    pub fn url(&self, api: Api, path: &str) -> Result<Url, TwilioError> {
        let base = match api {
            Api::TrustHub => &self.config.endpoints.trust_hub,
            Api::V2010 => &self.config.endpoints.api,
        };
        base.join(path)
            .map_err(|e| TwilioError::InvalidArgument(format!("bad path {path:?}: {e}")))
    }

    /// Sends `call`, retrying as the module docs say; returns the success status and body.
    pub async fn send(&self, call: &Call<'_>) -> Result<(StatusCode, Vec<u8>), TwilioError> {
        let idempotent = call.method != Method::POST;
        let mut attempt = 1;
        loop {
            match self.attempt(call, attempt, idempotent).await {
                Attempt::Done(status, body) => return Ok((status, body)),
                Attempt::Failed {
                    error,
                    retry,
                    retry_after,
                } => {
                    if !retry || attempt >= self.config.retry.max_attempts {
                        return Err(error);
                    }
                    let delay =
                        self.config
                            .retry
                            .delay(attempt, retry_after, rand::random::<f64>());
                    tracing::debug!(
                        operation = call.operation,
                        attempt,
                        error_class = error.class(),
                        delay_ms = delay.as_millis() as u64,
                        "retrying Twilio call"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    /// One HTTP exchange under an in-flight permit.
    async fn attempt(&self, call: &Call<'_>, attempt: u32, idempotent: bool) -> Attempt {
        let started = Instant::now();
        let result = {
            // Never closed, so acquire cannot fail; map defensively instead of panicking.
            let _permit = match self.in_flight.acquire().await {
                Ok(p) => p,
                Err(e) => {
                    return Attempt::Failed {
                        error: TwilioError::Setup(e.to_string()),
                        retry: false,
                        retry_after: None,
                    };
                }
            };
            let (user, password) = self.credentials.basic_auth();
            let mut request = self
                .http
                .request(call.method.clone(), call.url.clone())
                .basic_auth(user, Some(password))
                .header(reqwest::header::ACCEPT, "application/json");
            if !call.query.is_empty() {
                request = request.query(call.query);
            }
            if let Some(form) = call.form {
                request = request.form(form);
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    response
                        .bytes()
                        .await
                        .map(|body| (status, retry_after, body.to_vec()))
                }
                Err(e) => Err(e),
            }
        };
        let outcome = match &result {
            Ok((status, _, _)) => CallOutcome::Status(status.as_u16()),
            Err(e) => CallOutcome::Error(transport_class(transport_kind(e))),
        };
        if let Some(observer) = &self.observer {
            observer.observe(&CallRecord {
                operation: call.operation,
                outcome,
                duration: started.elapsed(),
                attempt,
            });
        }
        classify(call.operation, idempotent, result)
    }

    /// GETs every page of a list, following next links on the configured origin, and keeps
    /// the items `keep` accepts (each page is decoded item by item).
    pub async fn list<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        api: Api,
        path: &str,
        filters: Vec<(&'static str, String)>,
        key: &'static str,
        keep: &(dyn Fn(&T) -> bool + Send + Sync),
    ) -> Result<Vec<T>, TwilioError> {
        let mut query = filters;
        query.push(("PageSize", self.config.page_size.to_string()));
        let mut url = self.url(api, path)?;
        let mut items = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            let (status, body) = self
                .send(&Call {
                    operation,
                    method: Method::GET,
                    url: url.clone(),
                    query: &query,
                    form: None,
                })
                .await?;
            let mut page: super::page::Page<T> = super::page::decode_where(&body, key, keep)
                .map_err(|e| TwilioError::Decode {
                    operation,
                    status: status.as_u16(),
                    detail: format!("list key {key:?}: {e}"),
                })?;
            items.append(&mut page.items);
            let Some(next) = page.next else {
                return Ok(items);
            };
            let next_url = self.next_page(api, &next)?;
            if !seen.insert(next_url.to_string()) {
                // A server repeating a link would loop forever; what we have is complete
                // as far as Twilio told us, so stop instead of failing the caller.
                tracing::warn!(operation, "Twilio repeated a next-page link; stopping");
                return Ok(items);
            }
            url = next_url;
            // The link already carries the filters, PageSize and PageToken.
            query = Vec::new();
        }
    }

    /// Rewrites a next-page link (absolute or relative) onto the configured origin.
    pub fn next_page(&self, api: Api, link: &str) -> Result<Url, TwilioError> {
        rebase(self.url(api, "/")?, api, link)
    }
}

pub(crate) fn rebase(origin: Url, api: Api, link: &str) -> Result<Url, TwilioError> {
    let invalid = || TwilioError::InvalidArgument(format!("unusable next-page link {link:?}"));
    // Relative links are resolved against the configured origin; absolute ones keep only
    // their path and query.
    let parsed = origin.join(link).map_err(|_| invalid())?;
    if !parsed.path().starts_with(api.prefix()) {
        return Err(invalid());
    }
    let mut url = origin;
    url.set_path(parsed.path());
    url.set_query(parsed.query());
    Ok(url)
}

pub(crate) fn decode<T: DeserializeOwned>(
    operation: &'static str,
    status: StatusCode,
    body: &[u8],
) -> Result<T, TwilioError> {
    serde_json::from_slice(body).map_err(|e| TwilioError::Decode {
        operation,
        status: status.as_u16(),
        detail: e.to_string(),
    })
}

fn transport_kind(e: &reqwest::Error) -> TransportKind {
    if e.is_connect() {
        TransportKind::Connect
    } else if e.is_timeout() {
        TransportKind::Timeout
    } else {
        TransportKind::Other
    }
}

fn transport_class(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::Connect => "connect",
        TransportKind::Timeout => "timeout",
        TransportKind::Other => "transport",
    }
}

/// The retry decision for one attempt's result (see the module docs).
fn classify(
    operation: &'static str,
    idempotent: bool,
    result: Result<(StatusCode, Option<Duration>, Vec<u8>), reqwest::Error>,
) -> Attempt {
    match result {
        Ok((status, _, body)) if status.is_success() => Attempt::Done(status, body),
        Ok((status, retry_after, body)) => {
            let code = status.as_u16();
            let body = Box::new(TwilioErrorBody::parse(&body));
            if code >= 500 && !idempotent {
                return Attempt::Failed {
                    error: TwilioError::Ambiguous {
                        operation,
                        status: Some(code),
                        body: Some(body),
                        reason: format!("HTTP {code}"),
                    },
                    retry: false,
                    retry_after: None,
                };
            }
            Attempt::Failed {
                retry: super::error::is_transient_status(code),
                error: TwilioError::Api {
                    operation,
                    status: code,
                    body,
                    retry_after,
                },
                retry_after,
            }
        }
        Err(e) => {
            let kind = transport_kind(&e);
            // `without_url` drops the query (phone numbers) from the message; the URL never
            // holds credentials anyway.
            let detail = error_chain(&e.without_url());
            if kind != TransportKind::Connect && !idempotent {
                return Attempt::Failed {
                    error: TwilioError::Ambiguous {
                        operation,
                        status: None,
                        body: None,
                        reason: format!("{}: {detail}", transport_class(kind)),
                    },
                    retry: false,
                    retry_after: None,
                };
            }
            Attempt::Failed {
                error: TwilioError::Transport {
                    operation,
                    kind,
                    detail,
                },
                retry: true,
                retry_after: None,
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_agent_carries_a_sanitised_comment() {
        let product = concat!("trusthub-operator/", env!("CARGO_PKG_VERSION"));
        assert_eq!(user_agent(None), product);
        assert_eq!(user_agent(Some("  ")), product);
        assert_eq!(user_agent(Some("op-a")), format!("{product} (op-a)"));
        assert_eq!(user_agent(Some("a)\n(b")), format!("{product} (ab)"));
    }

    #[test]
    fn backoff_is_capped_exponential_with_full_jitter() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(700),
            max_retry_after: Duration::from_secs(10),
        };
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(3), Duration::from_millis(400));
        assert_eq!(p.ceiling(4), Duration::from_millis(700));
        assert_eq!(p.ceiling(60), Duration::from_millis(700));
        assert_eq!(p.delay(3, None, 0.0), Duration::ZERO);
        assert_eq!(p.delay(3, None, 0.5), Duration::from_millis(200));
        assert_eq!(
            p.delay(2, Some(Duration::from_secs(3)), 0.9),
            Duration::from_secs(3)
        );
        assert_eq!(
            p.delay(2, Some(Duration::from_secs(99)), 0.9),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn next_links_stay_on_the_configured_origin() {
        let sim = Url::parse("http://127.0.0.1:4010").unwrap();
        let next = rebase(
            sim.clone(),
            Api::TrustHub,
            "https://trusthub.twilio.com/v1/TrustProducts?PolicySid=RNx&PageSize=50&Page=1&PageToken=PTabc",
        )
        .unwrap();
        assert_eq!(
            next.as_str(),
            "http://127.0.0.1:4010/v1/TrustProducts?PolicySid=RNx&PageSize=50&Page=1&PageToken=PTabc"
        );
        let next = rebase(
            sim.clone(),
            Api::V2010,
            "/2010-04-01/Accounts.json?PageSize=50&Page=1&PageToken=PAx",
        )
        .unwrap();
        assert_eq!(
            next.as_str(),
            "http://127.0.0.1:4010/2010-04-01/Accounts.json?PageSize=50&Page=1&PageToken=PAx"
        );
        // Links leaving the API's path space are refused.
        assert!(rebase(sim.clone(), Api::V2010, "https://evil.example/steal").is_err());
        assert!(rebase(sim, Api::TrustHub, "/2010-04-01/Accounts.json").is_err());
    }

    fn classify_status(status: u16, idempotent: bool) -> (bool, TwilioError) {
        let result = Ok((
            StatusCode::from_u16(status).unwrap(),
            Some(Duration::from_secs(2)),
            br#"{"code": 20500, "message": "m", "status": 500}"#.to_vec(),
        ));
        match classify("Op", idempotent, result) {
            Attempt::Failed { error, retry, .. } => (retry, error),
            Attempt::Done(..) => panic!("{status} is not a success"),
        }
    }

    #[test]
    fn retry_decisions() {
        // 429: never processed, so retried for every method, and Retry-After kept.
        for idempotent in [true, false] {
            let (retry, err) = classify_status(429, idempotent);
            assert!(retry);
            assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
        }
        let (retry, err) = classify_status(503, true);
        assert!(retry && !err.is_ambiguous());
        let (retry, err) = classify_status(503, false);
        assert!(!retry && err.is_ambiguous());
        assert_eq!(err.http_status(), Some(503));
        for status in [400, 401, 403, 404, 409] {
            for idempotent in [true, false] {
                let (retry, err) = classify_status(status, idempotent);
                assert!(!retry && !err.is_transient() && !err.is_ambiguous());
                assert_eq!(err.twilio_code(), Some(20500));
            }
        }
    }
}
