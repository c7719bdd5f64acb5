//! Fault injection: scripted and rate-based 429/500/503, dropped connections, latency,
//! the concurrency limit, seeded reproducibility, the admin API and the CLI flags.

use std::time::{Duration, Instant};

use trusthub_sim::{FaultKind, Faults, ScriptedFault, SimConfig};

use crate::common::*;

fn next(n: u32, method: Option<&str>, prefix: &str, action: FaultKind) -> ScriptedFault {
    ScriptedFault {
        method: method.map(str::to_string),
        path_prefix: prefix.into(),
        count: n,
        action,
    }
}

#[tokio::test]
async fn scripted_429_with_and_without_retry_after() {
    let sim = start().await;
    let api = Api::parent(&sim);
    sim.push_fault(next(
        1,
        Some("GET"),
        "/v1/TrustProducts",
        FaultKind::TooManyRequests {
            retry_after_secs: Some(2),
        },
    ));
    sim.push_fault(next(
        1,
        Some("GET"),
        "/v1/TrustProducts",
        FaultKind::TooManyRequests {
            retry_after_secs: None,
        },
    ));
    let r = api.get("/v1/TrustProducts").await;
    r.assert_error(429, 20429);
    assert_eq!(
        r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("2")
    );
    let r = api.get("/v1/TrustProducts").await;
    r.assert_error(429, 20429);
    assert!(r.headers.get("retry-after").is_none());
    assert_eq!(api.get("/v1/TrustProducts").await.status, 200);
    assert_eq!(sim.counters().faults.get("429"), Some(&2));
    sim.shutdown().await;
}

#[tokio::test]
async fn scripted_500_and_503_only_hit_matching_requests() {
    let sim = start().await;
    let api = Api::parent(&sim);
    sim.push_fault(next(
        2,
        Some("POST"),
        "/v1/TrustProducts",
        FaultKind::InternalError,
    ));
    sim.push_fault(next(1, None, "/2010-04-01/", FaultKind::ServiceUnavailable));
    // A GET does not match the POST rule.
    assert_eq!(api.get("/v1/TrustProducts").await.status, 200);
    let form = [
        ("FriendlyName", "x"),
        ("Email", "e@x"),
        ("PolicySid", SHAKEN),
    ];
    api.post("/v1/TrustProducts", &form)
        .await
        .assert_error(500, 20500);
    api.post("/v1/TrustProducts", &form)
        .await
        .assert_error(500, 20500);
    assert_eq!(api.post("/v1/TrustProducts", &form).await.status, 201);
    // Faulted writes did not happen.
    assert_eq!(sim.trust_products().len(), 1);
    api.get("/2010-04-01/Accounts.json")
        .await
        .assert_error(503, 20503);
    assert_eq!(api.get("/2010-04-01/Accounts.json").await.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn dropped_connections_close_without_a_response() {
    let sim = start().await;
    sim.push_fault(next(1, None, "/v1/", FaultKind::Drop));
    let http = reqwest::Client::new();
    let err = http
        .get(format!("{}/v1/TrustProducts", sim.base_url()))
        .basic_auth(PARENT, Some(PARENT_TOKEN))
        .send()
        .await
        .expect_err("the connection is dropped");
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    // Raw TCP view: zero response bytes, then EOF.
    sim.push_fault(next(1, None, "/v1/", FaultKind::Drop));
    let mut stream = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(
            b"GET /v1/TrustProducts HTTP/1.1
Host: x

",
        )
        .await
        .expect("write");
    let mut buf = Vec::new();
    let read = stream.read_to_end(&mut buf).await;
    assert!(
        buf.is_empty(),
        "got a response: {}",
        String::from_utf8_lossy(&buf)
    );
    let _ = read;
    assert_eq!(Api::parent(&sim).get("/v1/TrustProducts").await.status, 200);
    assert_eq!(sim.counters().faults.get("drop"), Some(&2));
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_is_added() {
    let sim = start().await;
    let api = Api::parent(&sim);
    sim.push_fault(next(1, None, "/v1/", FaultKind::Delay { ms: 300 }));
    let t = Instant::now();
    assert_eq!(api.get("/v1/TrustProducts").await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    sim.set_faults(Faults {
        latency_ms: 200,
        ..Faults::none()
    });
    let t = Instant::now();
    assert_eq!(api.get("/v1/Policies").await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
    // Both served requests were in flight at least as long as their delays.
    let counters = sim.counters();
    assert_eq!(counters.served, 2);
    assert!(
        counters.served_micros >= 500_000,
        "{}",
        counters.served_micros
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_concurrency_limit_get_429() {
    let sim = start_with(SimConfig {
        faults: Faults {
            max_in_flight: Some(2),
            latency_ms: 600,
            ..Faults::none()
        },
        ..SimConfig::default()
    })
    .await;
    let api = Api::parent(&sim);
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.get("/v1/TrustProducts").await })
        })
        .collect();
    let mut ok = 0;
    let mut limited = 0;
    for call in calls {
        let r = call.await.expect("task");
        match r.status {
            200 => ok += 1,
            429 => {
                r.assert_error(429, 20429);
                assert!(r.headers.get("retry-after").is_none());
                limited += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, limited), (2, 3));
    let r = api.get("/v1/Policies").await;
    assert_eq!(
        r.headers
            .get("twilio-concurrent-requests")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(sim.counters().faults.get("concurrency_429"), Some(&3));
    // Requests refused by the limit are not counted as served.
    assert_eq!(sim.counters().served, 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn rates_are_reproducible_with_a_seed_and_set_through_the_admin_api() {
    let sim = start().await;
    let api = Api::parent(&sim);
    let http = reqwest::Client::new();
    let pattern = |api: Api| async move {
        let mut out = Vec::new();
        for _ in 0..30 {
            out.push(api.get("/v1/Policies").await.status);
        }
        out
    };
    let faults =
        serde_json::json!({"rate_429": 0.3, "rate_500": 0.1, "rate_503": 0.1, "rng_seed": 42});
    let put = http
        .put(format!("{}/_sim/faults", sim.base_url()))
        .json(&faults)
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 204);
    let first = pattern(api.clone()).await;
    http.put(format!("{}/_sim/faults", sim.base_url()))
        .json(&faults)
        .send()
        .await
        .expect("put");
    let second = pattern(api.clone()).await;
    assert_eq!(first, second);
    assert!(first.contains(&429) && first.contains(&200), "{first:?}");
    assert!(first.iter().all(|s| [200, 429, 500, 503].contains(s)));
    let got: Faults = http
        .get(format!("{}/_sim/faults", sim.base_url()))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(got.rng_seed, 42);
    // All off again.
    let del = http
        .delete(format!("{}/_sim/faults", sim.base_url()))
        .send()
        .await
        .expect("delete");
    assert_eq!(del.status(), 204);
    assert_eq!(pattern(api).await, vec![200; 30]);
    // Scripted through the admin API.
    let rule = serde_json::json!({"method": "GET", "path_prefix": "/v1/Policies", "count": 1, "action": {"kind": "service_unavailable"}});
    let r = http
        .post(format!("{}/_sim/faults/scripted", sim.base_url()))
        .json(&rule)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 204);
    Api::parent(&sim)
        .get("/v1/Policies")
        .await
        .assert_error(503, 20503);
    sim.shutdown().await;
}

#[tokio::test]
async fn cli_flags_inject_faults_and_sigterm_stops_cleanly() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_trusthub-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--fault-429-rate",
            "1",
            "--retry-after",
            "3",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next_line().await.expect("read").expect("a line");
    let base = first
        .strip_prefix("trusthub-sim listening on ")
        .expect("listening line")
        .to_string();
    let mut printed = Vec::new();
    for _ in 0..6 {
        printed.push(lines.next_line().await.expect("read").unwrap_or_default());
    }
    assert!(
        printed
            .iter()
            .any(|l| l.contains(PARENT) && l.contains(PARENT_TOKEN)),
        "{printed:?}"
    );
    let r = Api::new(&base, PARENT, PARENT_TOKEN)
        .get("/v1/TrustProducts")
        .await;
    r.assert_error(429, 20429);
    assert_eq!(
        r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("3")
    );
    let pid = child.id().expect("pid");
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert!(status.success(), "{status:?}");
}
