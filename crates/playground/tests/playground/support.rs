//! Running the `trusthub-playground` binary with free ports, short vetting delays and a
//! kubeconfig in a temporary directory, and reading its line-per-change output.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// How long any playground run in these tests may take.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "trusthub-playground-test-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The playground binary on free ports with vetting in well under a second, plus `extra` flags.
pub fn playground(dir: &TempDir, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trusthub-playground"));
    cmd.args(["--api-listen", "127.0.0.1:0", "--sim-listen", "127.0.0.1:0"])
        .args(["--review-delay", "300ms", "--approve-delay", "600ms"])
        .arg("--kubeconfig")
        .arg(dir.path().join("kubeconfig"))
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs `cmd` to the end; returns (success, stdout, stderr).
pub async fn run_to_end(mut cmd: Command) -> (bool, String, String) {
    let out = tokio::time::timeout(PATIENCE, cmd.output())
        .await
        .expect("the playground exits in time")
        .expect("the playground runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Reads stdout lines of a running playground until one contains `needle`; returns all lines
/// read so far.
pub async fn read_until(lines: &mut Lines<BufReader<ChildStdout>>, needle: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(PATIENCE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "the playground never printed {needle:?}; it printed:\n{}",
        seen.join("\n")
    );
    seen
}

pub fn stdout_lines(child: &mut Child) -> Lines<BufReader<ChildStdout>> {
    BufReader::new(child.stdout.take().expect("piped stdout")).lines()
}

/// `kubectl` from `TRUSTHUB_TOOLS_DIR` or `<workspace>/.tools/bin`; fails when missing.
pub fn kubectl() -> PathBuf {
    let dir = std::env::var_os("TRUSTHUB_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin"));
    let path = dir.join("kubectl");
    assert!(
        path.is_file(),
        "kubectl not found at {}: run `bash scripts/install-tools.sh` (or set TRUSTHUB_TOOLS_DIR)",
        path.display()
    );
    path
}

/// The status lines printed for `key` (e.g. `sstp/acme-shaken-stir`).
pub fn lines_of<'a>(lines: &'a [String], key: &str) -> Vec<&'a str> {
    let prefix = format!(" {key} ");
    lines
        .iter()
        .filter(|l| l.contains(&prefix))
        .map(String::as_str)
        .collect()
}

/// The value of `field=` in a status line.
pub fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
}
