//! Benchmarks of trusthub-operator: how many Twilio calls it makes, how long onboarding takes,
//! how much memory and CPU the controller process uses, and what it does when nothing changes.
//!
//! Every run assembles its own environment ([`env`]): the Trust Hub simulator with a generated
//! seed ([`seed`]), the local Kubernetes API with the CRDs, and the real controller
//! ([`controller`]), as its own `trusthub-operator` process (memory and CPU from `/proc`) or in
//! this process (the regression test). [`scenario`] holds the measured runs, [`calls`] the call
//! accounting, [`report`] the table, [`scale`] the targets of one product with many numbers.
//!
//! Limits: times are wall-clock on a shared machine and vary between runs; the local API and
//! the simulator run in the benchmark's process and compete with the controller for CPU; CPU
//! and memory are only measured for a controller process (Linux `/proc`); reconciles are
//! counted through Twilio calls each makes once (see [`calls`]), not observed directly.

pub mod calls;
pub mod controller;
pub mod env;
pub mod report;
pub mod scale;
pub mod scenario;
pub mod seed;

use std::path::PathBuf;

/// Why a benchmark could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The environment could not be assembled.
    #[error("setup failed: {0}")]
    Setup(String),
    /// A call to the local Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A file or process operation failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// `/proc` could not be read as expected.
    #[error("reading /proc: {0}")]
    Proc(String),
    /// The operator binary is not where it was looked for.
    #[error(
        "no trusthub-operator binary at {0}; build it with `cargo build --release -p trusthub-operator --bin trusthub-operator` or pass --operator PATH"
    )]
    OperatorMissing(PathBuf),
    /// The controller process exited during a run.
    #[error("the controller exited: {0}")]
    ControllerExited(String),
    /// A run did not finish in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The report could not be written.
    #[error("writing the report: {0}")]
    Report(#[from] serde_json::Error),
}
