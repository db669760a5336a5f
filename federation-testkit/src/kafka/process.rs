//! The broker's JVM process: spawn, signal, reap, and a watchdog against orphans.
//!
//! A test that panics must not leave a 400 MB JVM behind, and neither must a test binary that is
//! killed outright (Drop never runs then). Each broker is spawned with its output in a log file
//! next to its data; a tiny `sh` watchdog, also our child, kills the JVM by pid once this process
//! is gone. Every signal names one pid; nothing is killed by name.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::error::KafkaError;

/// JVM options: a bounded heap and the serial collector (one broker per test, two cores shared).
const JVM_OPTIONS: &[&str] = &["-Xms128m", "-XX:+UseSerialGC", "-Djava.awt.headless=true"];

/// The JVM and its watchdog.
#[derive(Debug)]
pub(crate) struct BrokerProcess {
    java: Child,
    watchdog: Option<Child>,
}

/// Everything needed to launch `java` with the broker's classpath.
#[derive(Clone, Debug)]
pub(crate) struct Launch {
    pub(crate) java: PathBuf,
    pub(crate) jars: PathBuf,
    pub(crate) heap_mb: u32,
}

impl Launch {
    /// `java <options> -cp '<jars>/*' <main> <args>`, output appended to `log`.
    fn command(&self, main: &str, args: &[&str], log: &Path) -> Result<Command, KafkaError> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| KafkaError::io(format!("opening {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| KafkaError::io("duplicating the log handle", e))?;
        let mut cmd = Command::new(&self.java);
        cmd.arg(format!("-Xmx{}m", self.heap_mb))
            .args(JVM_OPTIONS)
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.jars.join("log4j2.properties").display()
            ))
            .arg("-cp")
            .arg(format!("{}/*", self.jars.display()))
            .arg(main)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        Ok(cmd)
    }

    /// Format `properties`' log folder with `cluster_id` (blocking; ~2 s).
    pub(crate) fn format_storage(
        &self,
        properties: &Path,
        cluster_id: &str,
        log: &Path,
    ) -> Result<(), KafkaError> {
        let props = properties.display().to_string();
        let status = self
            .command(
                "kafka.tools.StorageTool",
                &[
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    &props,
                    "--ignore-formatted",
                ],
                log,
            )?
            .status()
            .map_err(|e| KafkaError::io("running kafka.tools.StorageTool", e))?;
        if status.success() {
            return Ok(());
        }
        Err(KafkaError::Format {
            status: status.to_string(),
            output: read_tail(log),
        })
    }

    /// Start `kafka.Kafka properties` and its watchdog.
    pub(crate) fn spawn_broker(
        &self,
        properties: &Path,
        log: &Path,
    ) -> Result<BrokerProcess, KafkaError> {
        let props = properties.display().to_string();
        let java = self
            .command("kafka.Kafka", &[&props], log)?
            .spawn()
            .map_err(|e| KafkaError::io(format!("starting {}", self.java.display()), e))?;
        let watchdog = spawn_watchdog(java.id());
        Ok(BrokerProcess { java, watchdog })
    }
}

/// `sh` polling this process; when it is gone, SIGKILL the JVM. Best effort: without `sh`, Drop
/// still kills the JVM.
fn spawn_watchdog(java_pid: u32) -> Option<Child> {
    let script = format!(
        "while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill -9 {java_pid} 2>/dev/null",
        parent = std::process::id()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

impl BrokerProcess {
    /// The JVM's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.java.id()
    }

    /// `Some(status)` once the JVM has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.java.try_wait().ok().flatten()
    }

    /// SIGTERM (a clean shutdown: the broker flushes and closes its log).
    pub(crate) fn terminate(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.java.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Wait up to `patience` for the JVM to exit; SIGKILL it after that. Always reaps it.
    pub(crate) async fn reap(mut self, patience: Duration) {
        let deadline = tokio::time::Instant::now() + patience;
        while self.exited().is_none() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill_now();
    }

    /// SIGKILL the JVM and the watchdog and reap both (blocking, but SIGKILL is immediate).
    pub(crate) fn kill_now(&mut self) {
        let _ = self.java.kill();
        let _ = self.java.wait();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// The last few KiB of a log file, for error messages.
pub(crate) fn read_tail(log: &Path) -> String {
    match std::fs::read(log) {
        Ok(bytes) => tail(&String::from_utf8_lossy(&bytes), 4_000),
        Err(e) => format!("(log {} unreadable: {e})", log.display()),
    }
}

/// The last `max` bytes of `text`, cut at a character boundary.
pub(crate) fn tail(text: &str, max: usize) -> String {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}
