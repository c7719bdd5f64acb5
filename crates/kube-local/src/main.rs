//! `kube-local`: runs the in-memory Kubernetes API server until Ctrl-C, optionally writing a
//! kubeconfig that points kubectl (or the operator) at it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use kube_local::{LocalApiServer, ServerOptions};

#[derive(Debug, Parser)]
#[command(about = "In-memory Kubernetes API server for tests and the playground")]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0", env = "KUBE_LOCAL_LISTEN")]
    listen: SocketAddr,
    /// Write a kubeconfig for the server to this path.
    #[arg(long, env = "KUBE_LOCAL_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Number of change events kept for watch resumption.
    #[arg(long, default_value_t = 10_000)]
    history: usize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let server = LocalApiServer::start(ServerOptions {
        listen: args.listen,
        history_limit: args.history,
    })
    .await?;
    if let Some(path) = &args.kubeconfig {
        server.write_kubeconfig(path)?;
        println!("kubeconfig written to {}", path.display());
    }
    println!("kube-local listening on {}", server.url());
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
