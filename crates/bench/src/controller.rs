//! Running the real controller against a [`BenchEnv`]: as its own `trusthub-operator` process
//! (the benchmark, so its memory and CPU can be read from `/proc`) or inside this process (the
//! regression test, which only counts Twilio calls).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use trusthub_operator::controller::{self, Context, ControllerConfig};
use trusthub_operator::planner::PollSchedule;
use trusthub_operator::twilio::{ClientConfig, Endpoints};

use crate::BenchError;
use crate::env::BenchEnv;

/// The operator settings a benchmark varies; each maps to a `trusthub-operator run` flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorSettings {
    /// `--max-in-flight`: Twilio requests in flight at once.
    pub max_in_flight: usize,
    /// `--concurrency`: reconciles at once per kind.
    pub concurrency: u16,
    /// `--review-poll-initial`.
    pub review_poll_initial: Duration,
    /// `--review-poll-max`.
    pub review_poll_max: Duration,
    /// `--approved-resync`.
    pub approved_resync: Duration,
}

impl Default for OperatorSettings {
    /// The operator's own defaults, except review polls (1 s … 10 s instead of 1 min … 30 min)
    /// so that simulated vetting finishes within a run.
    fn default() -> Self {
        Self {
            max_in_flight: 10,
            concurrency: 8,
            review_poll_initial: Duration::from_secs(1),
            review_poll_max: Duration::from_secs(10),
            approved_resync: Duration::from_secs(12 * 3600),
        }
    }
}

impl OperatorSettings {
    /// The operator's own defaults throughout (review polls 1 min … 30 min), with
    /// `approved_resync`.
    pub fn production(approved_resync: Duration) -> Self {
        let poll = PollSchedule::default();
        Self {
            review_poll_initial: poll.review_initial,
            review_poll_max: poll.review_max,
            approved_resync,
            ..Self::default()
        }
    }

    /// The command-line flags of `trusthub-operator run`.
    pub fn args(&self) -> Vec<String> {
        let d = |d: Duration| humantime::format_duration(d).to_string().replace(' ', "");
        vec![
            format!("--max-in-flight={}", self.max_in_flight),
            format!("--concurrency={}", self.concurrency),
            format!("--review-poll-initial={}", d(self.review_poll_initial)),
            format!("--review-poll-max={}", d(self.review_poll_max)),
            format!("--approved-resync={}", d(self.approved_resync)),
        ]
    }

    /// The same settings as an in-process [`ControllerConfig`] talking to `sim_url`.
    pub fn controller_config(&self, sim_url: &str) -> Result<ControllerConfig, BenchError> {
        Ok(ControllerConfig {
            twilio: ClientConfig {
                endpoints: Endpoints::single(sim_url)
                    .map_err(|e| BenchError::Setup(format!("simulator URL: {e}")))?,
                max_in_flight: self.max_in_flight,
                ..ClientConfig::default()
            },
            poll: PollSchedule {
                review_initial: self.review_poll_initial,
                review_max: self.review_poll_max,
                approved_resync: self.approved_resync,
                ..PollSchedule::default()
            },
            concurrency: self.concurrency,
            ..ControllerConfig::default()
        })
    }
}

/// Where the controller runs.
#[derive(Clone, Debug)]
pub enum Runner {
    /// `trusthub-operator run` at this path, as a child process.
    Process(PathBuf),
    /// `trusthub_operator::controller::run` on this process's runtime.
    InProcess,
}

/// Peak and current memory and CPU time of a process, from `/proc/<pid>/status` and `stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct ProcStats {
    /// `VmHWM`: peak resident set size, MiB.
    pub peak_rss_mib: f64,
    /// `VmRSS`: current resident set size, MiB.
    pub rss_mib: f64,
    /// `utime + stime`, seconds.
    pub cpu_seconds: f64,
}

/// Reads [`ProcStats`] of `pid`. CPU ticks are converted with USER_HZ = 100, which Linux uses
/// for `/proc` on every architecture regardless of the kernel's HZ.
pub fn proc_stats(pid: u32) -> Result<ProcStats, BenchError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; fields after its closing parenthesis start
    // with field 3 (state), so utime (14) and stime (15) are at offsets 11 and 12.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| BenchError::Proc(format!("unexpected /proc/{pid}/stat")))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64, BenchError> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| BenchError::Proc(format!("no field {} in /proc/{pid}/stat", i + 3)))
    };
    Ok(ProcStats {
        peak_rss_mib: kib("VmHWM:") / 1024.0,
        rss_mib: kib("VmRSS:") / 1024.0,
        cpu_seconds: (ticks(11)? + ticks(12)?) / 100.0,
    })
}

/// A controller running against an environment; stop it with [`RunningController::stop`].
pub enum RunningController {
    /// A child process.
    Process {
        /// The child, killed on drop.
        child: Box<tokio::process::Child>,
        /// Its PID.
        pid: u32,
        /// Its stderr (logs at `warn`).
        log: PathBuf,
    },
    /// A task of this process.
    InProcess {
        /// Resolving it shuts the controllers down.
        stop: oneshot::Sender<()>,
        /// The task running them.
        task: tokio::task::JoinHandle<()>,
    },
}

impl RunningController {
    /// Starts the controller for `env` with `settings`.
    pub async fn start(
        runner: &Runner,
        env: &BenchEnv,
        settings: &OperatorSettings,
    ) -> Result<RunningController, BenchError> {
        match runner {
            Runner::Process(binary) => start_process(binary, env, settings).await,
            Runner::InProcess => {
                let config = settings.controller_config(&env.sim.base_url())?;
                let ctx: Arc<Context> = Context::new(env.client.clone(), config, None);
                let (stop, rx) = oneshot::channel();
                let task = tokio::spawn(controller::run(ctx, async move {
                    let _ = rx.await;
                }));
                Ok(RunningController::InProcess { stop, task })
            }
        }
    }

    /// Memory and CPU of the controller process (`None` in process).
    pub fn stats(&self) -> Option<Result<ProcStats, BenchError>> {
        match self {
            RunningController::Process { pid, .. } => Some(proc_stats(*pid)),
            RunningController::InProcess { .. } => None,
        }
    }

    /// Fails when the controller process has exited (it never should during a run).
    pub fn check_alive(&mut self) -> Result<(), BenchError> {
        if let RunningController::Process { child, log, .. } = self
            && let Ok(Some(status)) = child.try_wait()
        {
            let tail = std::fs::read_to_string(&*log).unwrap_or_default();
            let tail: String = tail
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            return Err(BenchError::ControllerExited(format!(
                "{status}; log:\n{tail}"
            )));
        }
        Ok(())
    }

    /// Stops the controller (SIGKILL for a process: nothing is measured after this).
    pub async fn stop(self) {
        match self {
            RunningController::Process { mut child, .. } => {
                let _ = child.kill().await;
            }
            RunningController::InProcess { stop, task } => {
                let _ = stop.send(());
                let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
            }
        }
    }
}

async fn start_process(
    binary: &Path,
    env: &BenchEnv,
    settings: &OperatorSettings,
) -> Result<RunningController, BenchError> {
    if !binary.is_file() {
        return Err(BenchError::OperatorMissing(binary.to_path_buf()));
    }
    let log = env.dir().join("controller.log");
    let stderr = std::fs::File::create(&log)?;
    let mut cmd = tokio::process::Command::new(binary);
    cmd.arg("run")
        .args(settings.args())
        .env("KUBECONFIG", env.kubeconfig()?)
        .env("TRUSTHUB_TRUST_HUB_URL", env.sim.base_url())
        .env("TRUSTHUB_API_URL", env.sim.base_url())
        // Later operator versions serve metrics; keep them off shared ports.
        .env("TRUSTHUB_METRICS_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true);
    let child = cmd.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| BenchError::Proc("the controller exited at once".into()))?;
    let mut running = RunningController::Process {
        child: Box::new(child),
        pid,
        log,
    };
    // Let it list and start its watches before the clock starts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    running.check_alive()?;
    Ok(running)
}

/// The `trusthub-operator` binary next to the running executable (`cargo run --release -p
/// trusthub-bench` puts both in `<target>/release/`).
pub fn sibling_operator() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join("trusthub-operator"))
}
