//! Every client operation against the simulator, in the order of the SHAKEN/STIR walkthrough
//! (direct customer with subaccounts), checking what the simulator recorded.

use std::time::Duration;

use trusthub_operator::twilio::{
    AccountFilter, AccountStatus, BundleFilter, BundleStatus, ClientConfig, CreateTrustProduct,
    Credentials, Endpoints, EvaluationStatus, RetryPolicy, TrustHub, TwilioClient,
    UpdateTrustProduct,
};
use trusthub_sim::{ApiKeyKind, SHAKEN_STIR_POLICY, SimConfig, SimServer};

fn client(sim: &SimServer, credentials: Credentials, page_size: u32) -> TwilioClient {
    let config = ClientConfig {
        endpoints: Endpoints::single(&sim.base_url()).expect("sim base URL"),
        retry: RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(5),
            cap: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(2),
        },
        page_size,
        ..ClientConfig::default()
    };
    TwilioClient::new(credentials, config).expect("client")
}

pub fn parent_client(sim: &SimServer, page_size: u32) -> TwilioClient {
    let parent = &sim.seed().parent;
    let credentials =
        Credentials::auth_token(&parent.sid, parent.auth_token.expose()).expect("seed credentials");
    client(sim, credentials, page_size)
}

#[tokio::test]
async fn walkthrough_covers_every_operation() {
    let sim = SimServer::start(SimConfig::default()).await.expect("sim");
    let seed = sim.seed().clone();
    let c = parent_client(&sim, 1000);
    assert_eq!(c.account_sid(), seed.parent.sid);

    // Accounts: the parent itself and its subaccounts, filtered server-side.
    let parent = c
        .fetch_account(&seed.parent.sid)
        .await
        .expect("fetch parent");
    assert_eq!(parent.sid.as_deref(), Some(seed.parent.sid.as_str()));
    let all = c
        .list_accounts(&AccountFilter::default())
        .await
        .expect("accounts");
    for sub in &seed.subaccounts {
        assert!(
            all.iter()
                .any(|a| a.sid.as_deref() == Some(sub.sid.as_str()))
        );
    }
    let east = &seed.subaccounts[0];
    let found = c
        .list_accounts(&AccountFilter {
            friendly_name: Some(east.friendly_name.clone()),
            status: Some(AccountStatus::Active),
        })
        .await
        .expect("filtered accounts");
    assert_eq!(found.len(), 1);
    let sub = c.fetch_account(&east.sid).await.expect("fetch sub");
    assert_eq!(
        sub.auth_token.as_ref().map(|t| t.expose()),
        Some(east.auth_token.expose())
    );

    // Numbers of a subaccount, looked up by E.164 with parent credentials.
    let number = &east.numbers[0];
    let numbers = c
        .list_incoming_phone_numbers(&east.sid, Some(&number.phone_number))
        .await
        .expect("numbers");
    assert_eq!(numbers.len(), 1);
    assert_eq!(numbers[0].sid.as_deref(), Some(number.sid.as_str()));
    let all_numbers = c
        .list_incoming_phone_numbers(&east.sid, None)
        .await
        .expect("all numbers");
    assert_eq!(all_numbers.len(), east.numbers.len());
    let fetched = c
        .fetch_incoming_phone_number(&east.sid, &number.sid)
        .await
        .expect("number");
    assert_eq!(
        fetched.phone_number.as_deref(),
        Some(number.phone_number.as_str())
    );

    // The Console-made Primary Business Profile.
    let profile_sid = seed.customer_profiles[0].sid.clone();
    let profiles = c
        .list_customer_profiles(&BundleFilter {
            status: Some(BundleStatus::TwilioApproved),
            ..Default::default()
        })
        .await
        .expect("profiles");
    assert_eq!(profiles.len(), 1);
    let profile = c
        .fetch_customer_profile(&profile_sid)
        .await
        .expect("profile");
    assert_eq!(profile.status, Some(BundleStatus::TwilioApproved));

    // Step 2: the number onto the profile.
    let cp_ra = c
        .create_customer_profile_channel_endpoint_assignment(&profile_sid, &number.sid)
        .await
        .expect("assign number to profile");
    let listed = c
        .list_customer_profile_channel_endpoint_assignments(&profile_sid, Some(&number.sid))
        .await
        .expect("profile assignments");
    assert_eq!(listed, vec![cp_ra.clone()]);

    // Steps 3-5: Trust Product, entity assignment, number assignment.
    let shaken = BundleFilter {
        policy_sid: Some(SHAKEN_STIR_POLICY.into()),
        ..Default::default()
    };
    assert!(
        c.list_trust_products(&shaken)
            .await
            .expect("none yet")
            .is_empty()
    );
    let tp = c
        .create_trust_product(&CreateTrustProduct {
            friendly_name: "Acme SHAKEN/STIR".into(),
            email: "compliance@acme.example".into(),
            policy_sid: SHAKEN_STIR_POLICY.into(),
            status_callback: None,
        })
        .await
        .expect("create trust product");
    assert_eq!(tp.status, Some(BundleStatus::Draft));
    let tp_sid = tp.sid.clone().expect("sid");
    assert_eq!(c.list_trust_products(&shaken).await.expect("one").len(), 1);
    assert_eq!(
        c.fetch_trust_product(&tp_sid).await.expect("fetch tp").sid,
        tp.sid
    );

    let bv = c
        .create_trust_product_entity_assignment(&tp_sid, &profile_sid)
        .await
        .expect("link profile");
    assert_eq!(bv.object_sid.as_deref(), Some(profile_sid.as_str()));
    let entities = c
        .list_trust_product_entity_assignments(&tp_sid)
        .await
        .expect("entities");
    assert_eq!(entities, vec![bv.clone()]);

    let tp_ra = c
        .create_trust_product_channel_endpoint_assignment(&tp_sid, &number.sid)
        .await
        .expect("assign number to tp");
    let listed = c
        .list_trust_product_channel_endpoint_assignments(&tp_sid, Some(&number.sid))
        .await
        .expect("tp assignments");
    assert_eq!(listed, vec![tp_ra.clone()]);

    // Evaluate, then submit (step 6), then Twilio decides.
    let evaluation = c
        .create_trust_product_evaluation(&tp_sid, SHAKEN_STIR_POLICY)
        .await
        .expect("evaluation");
    assert_eq!(
        evaluation.status,
        Some(EvaluationStatus::Compliant),
        "{evaluation:?}"
    );
    assert_eq!(
        c.list_trust_product_evaluations(&tp_sid)
            .await
            .expect("evals")
            .len(),
        1
    );
    let policy = c.fetch_policy(SHAKEN_STIR_POLICY).await.expect("policy");
    assert_eq!(policy.sid.as_deref(), Some(SHAKEN_STIR_POLICY));

    let submitted = c
        .update_trust_product(
            &tp_sid,
            &UpdateTrustProduct {
                status: Some(BundleStatus::PendingReview),
                ..Default::default()
            },
        )
        .await
        .expect("submit");
    assert_eq!(submitted.status, Some(BundleStatus::PendingReview));
    sim.reject(&tp_sid, &[18601]).expect("reject");
    let rejected = c.fetch_trust_product(&tp_sid).await.expect("rejected");
    assert_eq!(rejected.status, Some(BundleStatus::TwilioRejected));
    let codes: Vec<_> = rejected
        .errors
        .unwrap_or_default()
        .iter()
        .map(|e| e.code)
        .collect();
    assert_eq!(codes, vec![Some(18601)]);

    // Each create went out exactly once.
    let counters = sim.counters();
    for op in [
        "CreateTrustProduct",
        "CreateTrustProductEntityAssignment",
        "CreateTrustProductChannelEndpointAssignment",
        "CreateCustomerProfileChannelEndpointAssignment",
        "CreateTrustProductEvaluation",
    ] {
        assert_eq!(counters.calls(op), 1, "{op}");
    }

    // Clean-up; a second delete reports not-found (the caller treats it as gone).
    let tp_ra_sid = tp_ra.sid.expect("ra");
    c.delete_trust_product_channel_endpoint_assignment(&tp_sid, &tp_ra_sid)
        .await
        .expect("unassign tp number");
    let again = c
        .delete_trust_product_channel_endpoint_assignment(&tp_sid, &tp_ra_sid)
        .await
        .unwrap_err();
    assert!(again.is_not_found() && !again.is_transient(), "{again}");
    c.delete_trust_product_entity_assignment(&tp_sid, &bv.sid.expect("bv"))
        .await
        .expect("unlink profile");
    c.delete_customer_profile_channel_endpoint_assignment(&profile_sid, &cp_ra.sid.expect("ra"))
        .await
        .expect("unassign profile number");
    c.delete_trust_product(&tp_sid).await.expect("delete tp");
    let gone = c.fetch_trust_product(&tp_sid).await.unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
    assert!(sim.trust_products().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn lists_follow_every_page_and_stay_on_the_configured_host() {
    // The simulator writes Twilio's canonical host into its next-page links, as Twilio does
    // behind an edge or proxy; the client must keep talking to the simulator.
    let sim = SimServer::start(SimConfig {
        public_base_url: Some("https://trusthub.twilio.com".into()),
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    let seed = sim.seed().clone();
    let c = parent_client(&sim, 1);
    let accounts = c
        .list_accounts(&AccountFilter::default())
        .await
        .expect("accounts");
    assert!(accounts.len() >= seed.subaccounts.len());
    let east = &seed.subaccounts[0];
    let numbers = c
        .list_incoming_phone_numbers(&east.sid, None)
        .await
        .expect("numbers");
    assert_eq!(numbers.len(), east.numbers.len());
    let profile = &seed.customer_profiles[0].sid;
    for n in &east.numbers {
        c.create_customer_profile_channel_endpoint_assignment(profile, &n.sid)
            .await
            .expect("assign");
    }
    let assignments = c
        .list_customer_profile_channel_endpoint_assignments(profile, None)
        .await
        .expect("assignments");
    assert_eq!(assignments.len(), east.numbers.len());
    let first = east.numbers[0].sid.clone();
    let among = c
        .list_customer_profile_channel_endpoint_assignments_among(
            profile,
            std::slice::from_ref(&first),
        )
        .await
        .expect("filtered assignments");
    assert_eq!(among.len(), 1, "only the named endpoint");
    assert_eq!(
        among[0].channel_endpoint_sid.as_deref(),
        Some(first.as_str())
    );
    assert!(
        c.list_customer_profile_channel_endpoint_assignments_among(profile, &[])
            .await
            .expect("empty")
            .is_empty()
    );
    let counters = sim.counters();
    // One request per page of size 1, plus the terminating page where the server has one.
    assert!(counters.calls("ListIncomingPhoneNumber") >= east.numbers.len() as u64);
    assert!(counters.calls("ListCustomerProfileChannelEndpointAssignment") >= 2);
    assert_eq!(counters.by_route.get("GET UNMATCHED"), None);
    sim.shutdown().await;
}

#[tokio::test]
async fn refused_credentials_are_auth_errors_without_secrets() {
    let sim = SimServer::start(SimConfig::default()).await.expect("sim");
    let seed = sim.seed().clone();
    let wrong =
        Credentials::auth_token(&seed.parent.sid, "wrongtoken0000000000000000000000").unwrap();
    let c = client(&sim, wrong, 1000);
    let err = c
        .fetch_customer_profile(&seed.customer_profiles[0].sid)
        .await
        .unwrap_err();
    assert!(err.is_auth() && !err.is_transient(), "{err}");
    assert!(!format!("{err:?}{err}").contains("wrongtoken"));
    assert_eq!(
        sim.counters().requests,
        1,
        "an auth failure must not be retried"
    );

    // A Standard API key cannot read /Accounts (Twilio documents this); Trust Hub works.
    let key = seed
        .api_keys
        .iter()
        .find(|k| k.kind == ApiKeyKind::Standard)
        .expect("the default seed has a standard key");
    let creds = Credentials::api_key(&key.account_sid, &key.sid, key.secret.expose()).unwrap();
    let c = client(&sim, creds, 1000);
    let err = c
        .list_accounts(&AccountFilter::default())
        .await
        .unwrap_err();
    assert!(err.is_auth(), "{err}");
    assert!(!format!("{err:?}{err}{c:?}").contains(key.secret.expose()));
    let profiles = c.list_customer_profiles(&BundleFilter::default()).await;
    assert_eq!(profiles.expect("trust hub with a standard key").len(), 1);
    sim.shutdown().await;
}
