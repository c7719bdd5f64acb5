//! Runs a real kube-apiserver and etcd until Ctrl-C, for poking at with kubectl:
//! `TRUSTHUB_CONTROLPLANE_BIN=$(bash scripts/build-controlplane.sh) cargo run -p testenv -- KUBECONFIG_PATH`

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "testenv.kubeconfig".to_string());
    let options = testenv::Options::from_env().unwrap_or_else(|e| {
        eprintln!("testenv: {e}");
        std::process::exit(2)
    });
    let cp = match testenv::ControlPlane::start(options).await {
        Ok(cp) => cp,
        Err(e) => {
            eprintln!("testenv: {e}");
            std::process::exit(1)
        }
    };
    if let Err(e) = cp.write_kubeconfig(std::path::Path::new(&path), cp.admin_token(), "default") {
        eprintln!("testenv: write {path}: {e}");
        std::process::exit(1)
    }
    println!("testenv: admin kubeconfig in {path}; Ctrl-C stops");
    let _ = tokio::signal::ctrl_c().await;
}
