//! `call`, `discover` and `health` against a running sandbox (started here through
//! federation-testkit; its configuration is written to a temp file and given to the binary).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use federation_testkit::sandbox::{Sandbox, SandboxOptions};

fn config_file(sandbox: &Sandbox, name: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("federation-cli-{}-{name}.yaml", std::process::id()));
    std::fs::write(&path, sandbox.config_yaml()).expect("write sandbox config");
    path
}

/// Runs the binary off the runtime's threads (the sandbox keeps serving meanwhile).
async fn federation(config: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_federation"));
    command.arg("--config").arg(config).args(args);
    tokio::task::spawn_blocking(move || command.output().expect("the federation binary runs"))
        .await
        .expect("the command thread finishes")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_and_discover_against_a_running_sandbox() {
    let sandbox = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts");
    let config = config_file(&sandbox, "sandbox");

    // call: served by the preferred cluster, body is the instance's identity.
    let out = federation(&config, &["call", "user", "/api/v1/users/42", "-v"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).expect("identity JSON");
    assert_eq!(body["cluster"], "zervigo");
    assert_eq!(body["path"], "/api/v1/users/42");
    let verbose = String::from_utf8_lossy(&out.stderr);
    assert!(
        verbose.contains("from zervigo/user-service-"),
        "-v shows how: {verbose}"
    );

    // call --json with a JSON body, pinned to looma.
    let out = federation(
        &config,
        &[
            "--json",
            "call",
            "user",
            "/api/v1/users",
            "--data-json",
            r#"{"name":"ann"}"#,
            "--cluster",
            "looma",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    let doc = json(&out);
    assert_eq!(doc["status"], 200);
    assert_eq!(doc["served"]["cluster"], "looma");
    assert_eq!(doc["body"]["method"], "POST");
    assert_eq!(doc["served"]["attempts"].as_array().map(Vec::len), Some(1));

    // A 4xx answer is a response, but the command exits 1.
    for instance in sandbox.instances("zervigo", "job-service") {
        instance.set_behavior(federation_testkit::instance::Behavior::status(404));
    }
    let out = federation(&config, &["call", "job", "/missing"]).await;
    assert_eq!(out.status.code(), Some(1));

    // Unknown service: usage error, JSON error document.
    let out = federation(&config, &["--json", "call", "nope", "/"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json(&out)["error"]["exit_code"], 2);

    // discover: every instance of user in both clusters.
    let out = federation(&config, &["discover", "user"]).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "zervigo",
        "looma",
        "user-service-1",
        "looma-user-api-3",
        "passing",
    ] {
        assert!(text.contains(needle), "missing {needle}:\n{text}");
    }
    let out = federation(&config, &["--json", "discover"]).await;
    assert_eq!(out.status.code(), Some(0));
    let doc = json(&out);
    let services = doc["services"].as_array().expect("services list");
    let ai = services
        .iter()
        .find(|s| s["service"] == "ai")
        .expect("ai is listed");
    assert_eq!(ai["clusters"][0]["cluster"], "looma");
    assert_eq!(
        ai["clusters"][0]["available"], 3,
        "the model=v3 instance is filtered out"
    );

    // health: all up, then a service with every instance down exits 4.
    let out = federation(&config, &["health"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    sandbox.kill_all("zervigo", "basic-server").await;
    sandbox
        .wait_for_passing(
            "zervigo",
            "basic-server",
            0,
            std::time::Duration::from_secs(20),
        )
        .await
        .expect("Consul marks the killed instances critical");
    let out = federation(&config, &["--json", "health"]).await;
    assert_eq!(out.status.code(), Some(4));
    let doc = json(&out);
    let basic = doc["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["service"] == "basic"))
        .expect("basic is listed");
    assert_eq!(basic["status"], "down");
    assert_eq!(
        doc["config"]["generation"], 1,
        "the configuration generation is shown"
    );
    assert_eq!(doc["config"]["source"], "build");

    let _ = std::fs::remove_file(config);
    sandbox.shutdown().await;
}

#[test]
fn sandbox_command_writes_a_valid_config_and_stops_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let path = std::env::temp_dir().join(format!(
        "federation-cli-{}-written.yaml",
        std::process::id()
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_federation"))
        .args(["sandbox", "--write-config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the federation binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut printed = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("stdout is readable");
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("client configuration written") {
            break;
        }
    }
    assert!(
        printed.contains("user-service") && printed.contains("ai-service"),
        "{printed}"
    );

    let check = Command::new(env!("CARGO_BIN_EXE_federation"))
        .args(["config", "check"])
        .arg(&path)
        .output()
        .expect("config check runs");
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let status = child.wait().expect("the sandbox exits");
    assert_eq!(status.code(), Some(0), "Ctrl-C is a clean stop");
    let _ = std::fs::remove_file(path);
}
