//! Child processes of the control plane: each in its own process group, stopped with SIGTERM
//! and then SIGKILL, and killed by the kernel if the test binary itself dies.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, and tokio's worker
//! and blocking threads come and go; so every child is forked by one keeper thread that lives as
//! long as the process.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::Error;

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

fn keeper() -> &'static std::sync::Mutex<mpsc::Sender<SpawnRequest>> {
    static KEEPER: OnceLock<std::sync::Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("testenv-keeper".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
                // The senders live in a static, so this loop never ends while the process runs.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn the testenv keeper thread");
        std::sync::Mutex::new(tx)
    })
}

/// A running child process with its output in a log file.
#[derive(Debug)]
pub struct Process {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
}

impl Process {
    /// Starts `command` in a new process group with stdout and stderr appended to `log`.
    pub fn spawn(name: &'static str, mut command: Command, log: PathBuf) -> Result<Process, Error> {
        let out = std::fs::File::create(&log)
            .map_err(|e| Error::Io(format!("create {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| Error::Io(format!("dup {}", log.display()), e))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        // SAFETY: only async-signal-safe calls (setpgid, prctl) between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let (reply_tx, reply_rx) = mpsc::channel();
        keeper()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send((command, reply_tx))
            .map_err(|_| Error::Start(format!("{name}: the keeper thread is gone")))?;
        let child = reply_rx
            .recv()
            .map_err(|_| Error::Start(format!("{name}: the keeper thread is gone")))?
            .map_err(|e| Error::Io(format!("start {name}"), e))?;
        Ok(Process { name, child, log })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last `lines` lines of its log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Resident memory from /proc, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// SIGTERM to the process group, up to `grace` to exit, then SIGKILL; always reaped.
    pub fn stop(&mut self, grace: Duration) {
        if self.exited().is_some() {
            return;
        }
        let group = -(self.pid() as i32);
        // SAFETY: kill(2) on our own child's process group.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                // The group may still hold grandchildren; none of ours fork, but be sure.
                unsafe { libc::kill(group, libc::SIGKILL) };
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}
