//! The Twilio client (reqwest, rustls with aws-lc-rs) and the Kubernetes client (kube) must
//! agree on one rustls crypto provider: with both `ring` and `aws-lc-rs` enabled, rustls
//! cannot pick a process default and `kube::Client` panics when it builds its TLS config.

#[tokio::test]
async fn kube_and_twilio_clients_build_in_one_process() {
    reqwest::Client::builder().build().expect("reqwest client");
    let url = "https://127.0.0.1:6443".parse().expect("url");
    let client = kube::Client::try_from(kube::Config::new(url));
    assert!(client.is_ok(), "{:?}", client.err());
}
