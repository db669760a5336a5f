//! `federation sync status` and `federation sync replay` against a real Kafka broker, with the
//! two clusters' sync runtimes running in this test process.

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use federation_core::config::Config;
use federation_sync::model::Operation;
use federation_sync::{Change, FederatedDataSync, MemoryTarget};
use federation_testkit::kafka::{KafkaBroker, skip_without_java};
use serde_json::{Value, json};

fn federation(config: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_federation"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run federation")
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn yaml(bootstrap: &str, prefix: &str) -> String {
    format!(
        r#"
clusters:
  zervigo: {{ static: {{ user-service: [{{ address: 127.0.0.1, port: 8081 }}] }} }}
  looma: {{ static: {{ looma-user-api: [{{ address: 127.0.0.1, port: 9001 }}] }} }}
sync:
  local_cluster: zervigo
  clusters:
    zervigo: {{ bootstrap_servers: "{bootstrap}" }}
    looma: {{ bootstrap_servers: "{bootstrap}" }}
  entities:
    user: {{}}
  topic_prefix: {prefix}
  partitions: 2
  handler: {{ max_attempts: 1, initial_backoff: 10ms, max_backoff: 10ms }}
"#
    )
}

#[test]
fn a_configuration_without_sync_exits_3_and_says_so() {
    let dir = std::env::temp_dir().join(format!("federation-sync-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("plain.yaml");
    std::fs::write(
        &path,
        "clusters:\n  local: { static: { user: [{ address: 127.0.0.1, port: 1 }] } }\n",
    )
    .expect("write config");
    let output = federation(&path, &["sync", "status", "user", "1"]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("the configuration has no `sync` section")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_replay_from_the_command_line() {
    if let Some(skip) = skip_without_java() {
        eprintln!("{skip}");
        return;
    }
    let broker = KafkaBroker::start().await.expect("broker");
    let dir = std::env::temp_dir().join(format!("federation-sync-cli-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("federation.yaml");
    std::fs::write(
        &path,
        yaml(
            &broker.bootstrap_servers(),
            &format!("cli{}", std::process::id()),
        ),
    )
    .expect("config");
    let config = Config::from_file(&path).expect("valid config");
    let zervigo = FederatedDataSync::builder(&config)
        .build()
        .await
        .expect("zervigo");
    let looma = FederatedDataSync::builder(&config)
        .local_cluster("looma")
        .build()
        .await
        .expect("looma");
    let store = MemoryTarget::new();
    let subscription = looma.subscribe(Arc::new(store.clone())).expect("subscribe");

    let ok = zervigo
        .publish(Change::new("user", "1", Operation::Create).data(json!({"name": "Ada"})))
        .await
        .expect("publish");
    let args = ["--json", "sync", "status", "user", "1", "--wait", "60s"];
    let output = tokio::task::spawn_blocking({
        let path = path.clone();
        move || federation(&path, &args)
    })
    .await
    .expect("status");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report = json_of(&output);
    assert_eq!(report["overall"], json!("completed"));
    assert_eq!(report["status"]["event_id"], json!(ok.stamp.event_id));
    assert_eq!(
        report["status"]["targets"]["looma"]["state"],
        json!("completed")
    );

    // A change looma's handler fails on (one attempt): dead-lettered, status failed (exit 1).
    store.fail_next_writes(1);
    let lost = zervigo
        .publish(Change::new("user", "2", Operation::Create).data(json!({"name": "Bob"})))
        .await
        .expect("publish");
    let output = tokio::task::spawn_blocking({
        let path = path.clone();
        move || federation(&path, &["sync", "status", "user", "2", "--wait", "60s"])
    })
    .await
    .expect("status");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("looma: failed: handler failed after 1 attempts"),
        "{text}"
    );

    // Replay looma's dead letters: the subscriber receives the change again and applies it.
    let output = tokio::task::spawn_blocking({
        let path = path.clone();
        move || federation(&path, &["--json", "sync", "replay", "--cluster", "looma"])
    })
    .await
    .expect("replay");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report = json_of(&output);
    assert_eq!(
        (report["replayed"].clone(), report["succeeded"].clone()),
        (json!(1), json!(1))
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while store.get("user", "2").is_none() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        store.get("user", "2").is_some(),
        "the replayed change {} was applied",
        lost.stamp.event_id
    );
    subscription.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Kills the sandbox by pid if the test fails before its clean stop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sandbox_with_sync_runs_a_broker_and_writes_the_sync_section() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    if let Some(skip) = skip_without_java() {
        eprintln!("{skip}");
        return;
    }
    let path =
        std::env::temp_dir().join(format!("federation-cli-{}-sync.yaml", std::process::id()));
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_federation"))
            .args(["sandbox", "--sync", "--write-config"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the federation binary starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout is piped");
    let mut printed = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("stdout is readable");
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("client configuration written") {
            break;
        }
    }
    let kafka = printed
        .lines()
        .find_map(|l| l.strip_prefix("kafka (sync, both clusters): "))
        .unwrap_or_else(|| panic!("no kafka line in {printed}"))
        .to_string();
    let config = Config::from_file(&path).expect("the written configuration is valid");
    let sync = config.sync.expect("a sync section");
    assert_eq!(sync.clusters.len(), 2);
    assert!(
        sync.clusters
            .iter()
            .all(|c| c.bootstrap_servers == vec![kafka.clone()])
    );
    assert!(
        std::net::TcpStream::connect(&kafka).is_ok(),
        "the broker listens on {kafka}"
    );

    let interrupted = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let status = child.0.wait().expect("the sandbox exits");
    assert_eq!(status.code(), Some(0), "Ctrl-C is a clean stop");
    assert!(
        std::net::TcpStream::connect(&kafka).is_err(),
        "the broker stopped with the sandbox"
    );
    let _ = std::fs::remove_file(path);
}
