//! The token never shows in `Debug` or `Display` of the credentials, the client or any error
//! kind the client produces; and a call backing off does not hold an in-flight permit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use trusthub_operator::twilio::{
    ClientConfig, CreateTrustProduct, Credentials, Endpoints, RetryPolicy, TrustHub, TwilioClient,
    TwilioError,
};

use crate::client_support::{
    ACCOUNT, Reply, ScriptedServer, TOKEN, client_for, trust_product_json,
};

const BU: &str = "BU0123456789abcdef0123456789abcdef";
const KEY: &str = "SK0123456789abcdef0123456789abcdef";
const KEY_SECRET: &str = "ApiKeySecretValue42";

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(TOKEN) && !text.contains(KEY_SECRET),
        "{what} leaks: {text}"
    );
}

fn one_shot(base: &str, credentials: Credentials) -> TwilioClient {
    let config = ClientConfig {
        endpoints: Endpoints::single(base).unwrap(),
        request_timeout: Duration::from_millis(300),
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        ..ClientConfig::default()
    };
    TwilioClient::new(credentials, config).unwrap()
}

#[tokio::test]
async fn no_secret_in_debug_of_credentials_client_and_every_error_kind() {
    let server = ScriptedServer::start(|_, n| match n {
        0 | 1 => Reply::Json(200, "not json".into()),
        2 => Reply::Json(
            400,
            r#"{"code": 20001, "message": "Unknown parameter"}"#.into(),
        ),
        3 => Reply::Json(500, r#"{"code": 20500, "message": "Internal"}"#.into()),
        _ => Reply::After(
            Duration::from_secs(2),
            Box::new(Reply::Json(200, "{}".into())),
        ),
    })
    .await;
    let token = Credentials::auth_token(ACCOUNT, TOKEN).unwrap();
    let key = Credentials::api_key(ACCOUNT, KEY, KEY_SECRET).unwrap();
    assert_clean("credentials", &format!("{token:?}{key:?}"));
    let with_token = one_shot(&server.base_url, token);
    let with_key = one_shot(&server.base_url, key);
    assert_clean("client", &format!("{with_token:?}{with_key:?}"));

    let create = CreateTrustProduct {
        friendly_name: "x".into(),
        email: "x@y.test".into(),
        policy_sid: "RN7a97559effdf62d00f4298208492a5ea".into(),
        status_callback: None,
    };
    let refused_port = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let refused = one_shot(
        &format!("http://127.0.0.1:{refused_port}"),
        Credentials::auth_token(ACCOUNT, TOKEN).unwrap(),
    );
    let errors: Vec<TwilioError> = vec![
        with_token.fetch_trust_product(BU).await.unwrap_err(), // decode
        with_key.fetch_trust_product(BU).await.unwrap_err(),   // decode
        with_token.fetch_trust_product(BU).await.unwrap_err(), // api 400
        with_token.create_trust_product(&create).await.unwrap_err(), // ambiguous 500
        with_token.fetch_trust_product(BU).await.unwrap_err(), // timeout
        refused.fetch_trust_product(BU).await.unwrap_err(),    // connect
        with_token.fetch_trust_product("BU/../x").await.unwrap_err(), // invalid argument
        Credentials::auth_token(ACCOUNT, format!("{TOKEN}!")).unwrap_err(),
        TwilioError::Setup("builder failed".into()),
    ];
    let classes: Vec<_> = errors.iter().map(|e| e.class()).collect();
    assert_eq!(
        classes,
        [
            "decode",
            "decode",
            "client_error",
            "ambiguous",
            "timeout",
            "connect",
            "invalid_argument",
            "invalid_argument",
            "setup"
        ]
    );
    for e in &errors {
        assert_clean(e.class(), &format!("{e:?} {e}"));
    }
}

#[tokio::test]
async fn a_call_backing_off_does_not_hold_its_permit() {
    // The first request is throttled for 1 s; with a single permit, a second call must still
    // go through while the first one sleeps.
    let server = ScriptedServer::start(|_, n| match n {
        0 => Reply::WithHeaders(429, vec![("retry-after", "1".into())], "{}".into()),
        _ => Reply::Json(200, trust_product_json(BU)),
    })
    .await;
    let config = ClientConfig {
        endpoints: Endpoints::single(&server.base_url).unwrap(),
        max_in_flight: 1,
        ..client_for(&server.base_url, 3).config().clone()
    };
    let client = Arc::new(
        TwilioClient::new(Credentials::auth_token(ACCOUNT, TOKEN).unwrap(), config).unwrap(),
    );
    let first = {
        let c = client.clone();
        tokio::spawn(async move { c.fetch_trust_product(BU).await })
    };
    while server.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    client.fetch_trust_product(BU).await.expect("second call");
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "the second call waited for the first one's backoff ({:?})",
        started.elapsed()
    );
    first
        .await
        .expect("task")
        .expect("first call after its retry");
    assert_eq!(server.requests().len(), 3);
}
