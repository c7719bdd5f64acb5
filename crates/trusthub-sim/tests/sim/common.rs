//! Shared helpers: start a simulator, make authenticated requests.

use trusthub_sim::{SimConfig, SimServer};

pub const PARENT: &str = "AC11111111111111111111111111111111";
pub const PARENT_TOKEN: &str = "parentauthtoken0000000000000000001";

pub async fn start() -> SimServer {
    SimServer::start(SimConfig::default())
        .await
        .expect("simulator starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().build().expect("client")
}
