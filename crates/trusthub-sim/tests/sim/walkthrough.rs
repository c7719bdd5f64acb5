use crate::common::*;

#[tokio::test]
async fn fetches_the_seeded_primary_profile() {
    let sim = start().await;
    let resp = client()
        .get(format!("{}/v1/CustomerProfiles", sim.base_url()))
        .basic_auth(PARENT, Some(PARENT_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["results"][0]["status"], "twilio-approved");
    sim.shutdown().await;
}
