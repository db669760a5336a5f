//! Where the broker's jars live, and fetching them once.
//!
//! A test that downloads 45 MB of jars on every run is slow and flaky; a test that needs a
//! hand-installed Kafka does not run on a fresh machine. The jars are fetched from Maven Central
//! by `scripts/kafka-jars.sh` (embedded here, so the sandbox binary carries the same recipe) into
//! a cache folder that CI keeps: `FEDERATION_KAFKA_JARS` if set, else the workspace's
//! `target/kafka-jars/<version>`, else `~/.cache/federation/kafka-jars/<version>`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use super::error::KafkaError;

/// The Kafka version the testkit runs (Maven artifact `org.apache.kafka:kafka_2.13`).
pub const KAFKA_VERSION: &str = "4.4.0";

/// The fetch recipe, one copy shared with `.ci/run`.
const FETCH_SCRIPT: &str = include_str!("../../../scripts/kafka-jars.sh");

/// One fetch at a time within this process (parallel tests would otherwise run Maven twice).
static FETCH_LOCK: Mutex<()> = Mutex::new(());

/// The cache folder for `version` (see the module docs for the order of choices).
pub fn jar_dir(version: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("FEDERATION_KAFKA_JARS") {
        return PathBuf::from(dir);
    }
    let workspace_target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    if workspace_target.is_dir() {
        return workspace_target.join("kafka-jars").join(version);
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".cache/federation/kafka-jars").join(version)
}

/// The jar folder for `version`, fetching it with Maven first if it is not complete.
pub(crate) fn ensure_jars(version: &str) -> Result<PathBuf, KafkaError> {
    let dir = jar_dir(version);
    if dir.join(".complete").is_file() {
        return Ok(dir);
    }
    let _one_fetch = FETCH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if dir.join(".complete").is_file() {
        return Ok(dir);
    }
    tracing::info!(dir = %dir.display(), "fetching the Kafka broker jars from Maven Central");
    let output = Command::new("bash")
        .arg("-c")
        .arg(FETCH_SCRIPT)
        .arg("kafka-jars.sh")
        .arg(&dir)
        .env("KAFKA_VERSION", version)
        .output()
        .map_err(|e| KafkaError::Jars {
            dir: dir.clone(),
            reason: format!("cannot run bash: {e}"),
        })?;
    if !output.status.success() || !dir.join(".complete").is_file() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(KafkaError::Jars {
            dir,
            reason: format!(
                "scripts/kafka-jars.sh exited with {}: {}",
                output.status,
                super::process::tail(&stderr, 2_000)
            ),
        });
    }
    Ok(dir)
}

/// The `java` to run: `$JAVA_HOME/bin/java` when set, else `java` on the `PATH`.
pub(crate) fn java_command() -> PathBuf {
    match std::env::var_os("JAVA_HOME") {
        Some(home) if Path::new(&home).join("bin/java").is_file() => {
            Path::new(&home).join("bin/java")
        }
        _ => PathBuf::from("java"),
    }
}

/// `Ok(())` when a Java runtime answers `java -version`; else why not, in words a person can
/// act on.
pub fn java_available() -> Result<(), String> {
    let java = java_command();
    match Command::new(&java).arg("-version").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`{} -version` exited with {}; install a Java 17+ runtime (e.g. apt-get install openjdk-17-jre-headless)",
            java.display(),
            out.status
        )),
        Err(e) => Err(format!(
            "no Java runtime ({}: {e}); install Java 17+ (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME",
            java.display()
        )),
    }
}

/// For tests that need a broker: `Some(message)` to print when they must skip because this
/// machine has no Java. Under CI (`CI` set) a missing Java is a setup error, so this panics
/// instead: CI must run these tests.
#[allow(
    clippy::panic,
    reason = "a CI machine without Java must fail loudly, not skip"
)]
pub fn skip_without_java() -> Option<String> {
    let reason = java_available().err()?;
    if std::env::var_os("CI").is_some() {
        panic!("CI must run the Kafka tests, but {reason}");
    }
    Some(format!(
        "skipping: this test needs a Kafka broker, and {reason}"
    ))
}
