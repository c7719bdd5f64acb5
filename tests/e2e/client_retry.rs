//! Retry, timeout, pagination and in-flight-limit behaviour against a scripted local server,
//! counting exactly what reached the wire.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use trusthub_operator::twilio::{
    AccountFilter, BundleFilter, CallOutcome, ClientConfig, CreateTrustProduct, Credentials,
    Endpoints, RetryPolicy, TransportKind, TrustHub, TwilioClient, TwilioError,
};

use crate::client_support::{
    ACCOUNT, Recorder, Reply, ScriptedServer, TOKEN, client_for, trust_product_json,
};

const BU: &str = "BU0123456789abcdef0123456789abcdef";
const RN: &str = "RN7a97559effdf62d00f4298208492a5ea";

fn throttled(retry_after: Option<&str>) -> Reply {
    let body = r#"{"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}"#;
    match retry_after {
        Some(v) => Reply::WithHeaders(429, vec![("retry-after", v.to_owned())], body.into()),
        None => Reply::Json(429, body.into()),
    }
}

fn unavailable() -> Reply {
    Reply::Json(
        503,
        r#"{"code": 20503, "message": "Service Unavailable", "status": 503}"#.into(),
    )
}

fn create_request() -> CreateTrustProduct {
    CreateTrustProduct {
        friendly_name: "acme shaken".into(),
        email: "ops@acme.test".into(),
        policy_sid: RN.into(),
        status_callback: None,
    }
}

/// Every error's Debug and Display must be free of the token.
fn assert_no_secret(err: &TwilioError) {
    for text in [format!("{err:?}"), err.to_string()] {
        assert!(!text.contains(TOKEN), "secret leaked: {text}");
    }
}

#[tokio::test]
async fn get_retries_429_honouring_retry_after() {
    let server = ScriptedServer::start(|_, n| match n {
        0 => throttled(Some("1")),
        _ => Reply::Json(200, trust_product_json(BU)),
    })
    .await;
    let client = client_for(&server.base_url, 4);
    let started = Instant::now();
    let tp = client
        .fetch_trust_product(BU)
        .await
        .expect("fetch after 429");
    assert_eq!(tp.sid.as_deref(), Some(BU));
    assert_eq!(server.count("GET"), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After not honoured"
    );
}

#[tokio::test]
async fn get_gives_up_after_max_attempts_on_429_without_retry_after() {
    let server = ScriptedServer::start(|_, _| throttled(None)).await;
    let client = client_for(&server.base_url, 3);
    let err = client.fetch_trust_product(BU).await.unwrap_err();
    assert_eq!(server.count("GET"), 3);
    assert!(err.is_transient() && !err.is_ambiguous());
    assert_eq!(
        (err.http_status(), err.twilio_code()),
        (Some(429), Some(20429))
    );
    assert_eq!(err.retry_after(), None);
    assert_no_secret(&err);
}

#[tokio::test]
async fn get_and_delete_retry_503_and_dropped_connections() {
    let server = ScriptedServer::start(|_, n| match n {
        0 => unavailable(),
        1 => Reply::Drop,
        2 => Reply::Json(200, trust_product_json(BU)),
        3 => unavailable(),
        _ => Reply::Json(204, String::new()),
    })
    .await;
    let client = client_for(&server.base_url, 4);
    client.fetch_trust_product(BU).await.expect("fetch");
    assert_eq!(server.count("GET"), 3);
    client.delete_trust_product(BU).await.expect("delete");
    assert_eq!(server.count("DELETE"), 2);
}

#[tokio::test]
async fn create_is_retried_on_429_only() {
    let server = ScriptedServer::start(|_, n| match n {
        0 => throttled(Some("0")),
        1 => throttled(None),
        _ => Reply::Json(201, trust_product_json(BU)),
    })
    .await;
    let client = client_for(&server.base_url, 4);
    let tp = client
        .create_trust_product(&create_request())
        .await
        .expect("create");
    assert_eq!(tp.sid.as_deref(), Some(BU));
    assert_eq!(server.count("POST"), 3);
    // Every attempt carried the exact spec form.
    for r in server.requests() {
        assert_eq!(
            r.body,
            format!("FriendlyName=acme+shaken&Email=ops%40acme.test&PolicySid={RN}")
        );
    }
}

#[tokio::test]
async fn create_answered_503_is_ambiguous_and_not_resent() {
    let server = ScriptedServer::start(|_, _| unavailable()).await;
    let client = client_for(&server.base_url, 4);
    let err = client
        .create_trust_product(&create_request())
        .await
        .unwrap_err();
    assert_eq!(
        server.count("POST"),
        1,
        "a create that may have happened was resent"
    );
    assert!(err.is_ambiguous() && err.is_transient());
    assert_eq!(
        (err.http_status(), err.twilio_code()),
        (Some(503), Some(20503))
    );
    assert_no_secret(&err);
}

/// A 2xx means Twilio made the object; an answer that does not decode cannot say it was
/// refused: the object may exist, so the caller must take the look-up path.
#[tokio::test]
async fn create_answered_2xx_with_an_undecodable_body_is_ambiguous() {
    let server = ScriptedServer::start(|_, _| Reply::Json(201, "<html>ok</html>".into())).await;
    let client = client_for(&server.base_url, 4);
    let err = client
        .create_customer_profile_channel_endpoint_assignment(
            BU,
            "PN00000000000000000000000000000001",
        )
        .await
        .unwrap_err();
    assert_eq!(server.count("POST"), 1, "not resent");
    assert!(err.is_ambiguous() && err.is_transient(), "{err}");
    assert_eq!(err.http_status(), Some(201));
    assert_no_secret(&err);
}

/// An answer naming no object is an error, never an object with an empty SID: for a create
/// it is ambiguous (the object may exist), for a fetch a malformed answer.
#[tokio::test]
async fn answers_without_a_sid_are_errors() {
    let server = ScriptedServer::start(|r, _| match r.method.as_str() {
        "POST" => Reply::Json(
            201,
            r#"{"account_sid": "AC00000000000000000000000000000000"}"#.into(),
        ),
        _ if r.target.contains("ChannelEndpointAssignments") => Reply::Json(
            200,
            r#"{"results": [{"channel_endpoint_sid": "PN00000000000000000000000000000001"}], "meta": {}}"#.into(),
        ),
        _ => Reply::Json(200, r#"{"sid": null, "friendly_name": "acme"}"#.into()),
    })
    .await;
    let client = client_for(&server.base_url, 4);
    let created = client
        .create_trust_product_entity_assignment(BU, "BU00000000000000000000000000000000")
        .await;
    assert!(
        matches!(&created, Err(e) if e.is_ambiguous()),
        "create: {created:?}"
    );
    let fetched = client.fetch_trust_product(BU).await;
    assert!(
        matches!(&fetched, Err(TwilioError::Decode { status: 200, .. })),
        "fetch: {fetched:?}"
    );
    let listed = client
        .list_customer_profile_channel_endpoint_assignments(BU, None)
        .await;
    assert!(
        matches!(&listed, Err(TwilioError::Decode { .. })),
        "list: {listed:?}"
    );
}

#[tokio::test]
async fn create_with_dropped_connection_is_ambiguous_and_not_resent() {
    let server = ScriptedServer::start(|_, _| Reply::Drop).await;
    let client = client_for(&server.base_url, 4);
    let err = client
        .create_trust_product_entity_assignment(BU, "BU00000000000000000000000000000000")
        .await
        .unwrap_err();
    assert_eq!(server.count("POST"), 1);
    assert!(err.is_ambiguous(), "{err}");
    assert_eq!(err.http_status(), None);
    assert_no_secret(&err);
}

#[tokio::test]
async fn create_timing_out_after_send_is_ambiguous_but_get_is_retried() {
    let server = ScriptedServer::start(|_, _| {
        Reply::After(
            Duration::from_millis(800),
            Box::new(Reply::Json(201, trust_product_json(BU))),
        )
    })
    .await;
    let config = ClientConfig {
        endpoints: Endpoints::single(&server.base_url).unwrap(),
        request_timeout: Duration::from_millis(200),
        retry: RetryPolicy {
            max_attempts: 2,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(1),
            max_retry_after: Duration::from_secs(1),
        },
        ..ClientConfig::default()
    };
    let client =
        TwilioClient::new(Credentials::auth_token(ACCOUNT, TOKEN).unwrap(), config).unwrap();
    let err = client
        .create_trust_product(&create_request())
        .await
        .unwrap_err();
    assert!(err.is_ambiguous(), "{err}");
    assert_eq!(server.count("POST"), 1);
    let err = client.fetch_trust_product(BU).await.unwrap_err();
    assert!(
        matches!(
            err,
            TwilioError::Transport {
                kind: TransportKind::Timeout,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(server.count("GET"), 2);
    assert_no_secret(&err);
}

#[tokio::test]
async fn connection_refused_is_retried_even_for_create() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let recorder = Arc::new(Recorder::default());
    let client = client_for(&format!("http://127.0.0.1:{port}"), 3).with_observer(recorder.clone());
    let err = client
        .create_trust_product(&create_request())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TwilioError::Transport {
                kind: TransportKind::Connect,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient() && !err.is_ambiguous());
    let calls = recorder.0.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "never-sent create should be retried");
    assert!(
        calls
            .iter()
            .all(|c| c.outcome == CallOutcome::Error("connect"))
    );
    assert_eq!(
        calls.iter().map(|c| c.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_no_secret(&err);
}

#[tokio::test]
async fn terminal_errors_are_not_retried() {
    let server = ScriptedServer::start(|r, _| match r.method.as_str() {
        "DELETE" => Reply::Json(
            404,
            r#"{"code": 20404, "message": "Not Found", "status": 404}"#.into(),
        ),
        _ => Reply::Json(
            401,
            r#"{"code": 20003, "message": "Authenticate", "status": 401}"#.into(),
        ),
    })
    .await;
    let client = client_for(&server.base_url, 4);
    let err = client.delete_trust_product(BU).await.unwrap_err();
    assert!(err.is_not_found() && !err.is_transient());
    assert_eq!(err.twilio_code(), Some(20404));
    let err = client.fetch_policy(RN).await.unwrap_err();
    assert!(err.is_auth() && !err.is_transient());
    assert_eq!(server.requests().len(), 2);
    assert_no_secret(&err);
    // Bad SIDs never reach the wire.
    let err = client
        .fetch_trust_product("BU../../Accounts")
        .await
        .unwrap_err();
    assert!(matches!(err, TwilioError::InvalidArgument(_)));
    assert_eq!(server.requests().len(), 2);
    assert!(!format!("{client:?}").contains(TOKEN));
}

#[tokio::test]
async fn pagination_follows_links_on_the_configured_host() {
    let server = ScriptedServer::start(|r, _| {
        let page = |items: serde_json::Value, next: serde_json::Value| {
            serde_json::json!({"results": items, "meta": {"key": "results", "next_page_url": next}})
                .to_string()
        };
        let path = r.target.split('?').next().unwrap_or_default();
        match (path, r.target.contains("PageToken=PT2")) {
            ("/v1/TrustProducts", false) => Reply::Json(200, page(
                serde_json::json!([{"sid": BU}]),
                // Twilio writes its canonical host; the client must stay on ours.
                serde_json::json!(format!("https://trusthub.twilio.com/v1/TrustProducts?PolicySid={RN}&PageSize=1000&Page=1&PageToken=PT2")),
            )),
            ("/v1/TrustProducts", true) => Reply::Json(200, page(
                serde_json::json!([{"sid": "BU11111111111111111111111111111111"}]),
                serde_json::Value::Null,
            )),
            ("/2010-04-01/Accounts.json", false) => Reply::Json(200, serde_json::json!({
                "accounts": [{"sid": ACCOUNT}],
                "next_page_uri": "/2010-04-01/Accounts.json?FriendlyName=acme&PageSize=1000&Page=1&PageToken=PT2"
            }).to_string()),
            ("/2010-04-01/Accounts.json", true) => Reply::Json(200, serde_json::json!({
                "accounts": [{"sid": "AC11111111111111111111111111111111"}], "next_page_uri": null
            }).to_string()),
            _ => Reply::Json(404, "{}".into()),
        }
    })
    .await;
    let client = client_for(&server.base_url, 1);
    let filter = BundleFilter {
        policy_sid: Some(RN.into()),
        ..Default::default()
    };
    let products = client.list_trust_products(&filter).await.expect("list");
    assert_eq!(products.len(), 2);
    let accounts = client
        .list_accounts(&AccountFilter {
            friendly_name: Some("acme".into()),
            status: None,
        })
        .await
        .expect("accounts");
    assert_eq!(accounts.len(), 2);
    let targets: Vec<_> = server.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        [
            format!("/v1/TrustProducts?PolicySid={RN}&PageSize=1000"),
            format!("/v1/TrustProducts?PolicySid={RN}&PageSize=1000&Page=1&PageToken=PT2"),
            "/2010-04-01/Accounts.json?FriendlyName=acme&PageSize=1000".to_owned(),
            "/2010-04-01/Accounts.json?FriendlyName=acme&PageSize=1000&Page=1&PageToken=PT2"
                .to_owned(),
        ]
    );
}

#[tokio::test]
async fn in_flight_limit_holds_under_200_concurrent_calls() {
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    let server = ScriptedServer::start(move |_, _| {
        counter.fetch_add(1, Ordering::SeqCst);
        Reply::After(
            Duration::from_millis(10),
            Box::new(Reply::Json(200, trust_product_json(BU))),
        )
    })
    .await;
    let config = ClientConfig {
        endpoints: Endpoints::single(&server.base_url).unwrap(),
        max_in_flight: 7,
        ..ClientConfig::default()
    };
    let client = Arc::new(
        TwilioClient::new(Credentials::auth_token(ACCOUNT, TOKEN).unwrap(), config).unwrap(),
    );
    let dyn_client: Arc<dyn TrustHub> = client;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let c = dyn_client.clone();
        tasks.spawn(async move { c.fetch_trust_product(BU).await });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task").expect("fetch");
    }
    assert_eq!(served.load(Ordering::SeqCst), 200);
    let max = server.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 7, "{max} requests were in flight at once, limit 7");
    assert!(
        max >= 2,
        "the calls did not run concurrently at all (max {max})"
    );
}
