//! `federation config check`: exit 0 for a valid file; exit 3 with every problem and its field
//! path for an invalid one, in text and in JSON.

use std::path::PathBuf;
use std::process::{Command, Output};

const GOOD: &str = r#"
clusters:
  zervigo:
    consul: { address: "http://consul-zervigo:8500", datacenter: zervigo-dc, token_env: ZERVIGO_CONSUL_TOKEN }
    load_balancing: least_request
  looma:
    consul: { address: "http://consul-looma:8500", datacenter: looma-dc }
    load_balancing: round_robin
services:
  user:
    prefer: zervigo
    names: { zervigo: user-service, looma: looma-user-api }
  ai:
    prefer: looma
    names: { looma: ai-service }
    tags: ["model=v2"]
    cache: { ttl: 30s, methods: [GET, POST] }
defaults:
  timeout: { attempt: 1s, total: 3s }
  retry: { max_attempts: 3, budget: { percent: 20, min_per_second: 10, window: 10s } }
  breaker: { consecutive_failures: 5, open_for: 1s, max_open_for: 60s }
"#;

/// Four mistakes in different sections.
const BAD: &str = r#"
clusters:
  zervigo:
    consul: { address: "http://127.0.0.1:8500" }
    load_balancing: fastest
services:
  user:
    prefer: zervig
    names: { zervigo: user-service }
defaults:
  timeout: { attempt: 5x, total: 3s }
  colour: blue
"#;

const BAD_PATHS: [&str; 4] = [
    "clusters.zervigo.load_balancing",
    "services.user.prefer",
    "defaults.timeout.attempt",
    "defaults.colour",
];

fn write(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("federation-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, text).expect("write temp config");
    path
}

fn check(args: &[&str], file: &PathBuf) -> Output {
    Command::new(env!("CARGO_BIN_EXE_federation"))
        .args(["config", "check"])
        .arg(file)
        .args(args)
        .output()
        .expect("the federation binary runs")
}

#[test]
fn good_file_exits_0() {
    let file = write("good.yaml", GOOD);
    let out = check(&[], &file);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("ok") && text.contains("zervigo") && text.contains("ai"),
        "{text}"
    );
    let _ = std::fs::remove_file(file);
}

#[test]
fn bad_file_exits_3_and_prints_every_path() {
    let file = write("bad.yaml", BAD);
    let out = check(&[], &file);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    for path in BAD_PATHS {
        assert!(text.contains(path), "missing `{path}` in:\n{text}");
    }
    assert!(
        text.contains("zervig") && text.contains("5x"),
        "values are shown:\n{text}"
    );
    let _ = std::fs::remove_file(file);
}

#[test]
fn bad_file_json_lists_every_problem() {
    let file = write("bad.json.yaml", BAD);
    let out = check(&["--json"], &file);
    assert_eq!(out.status.code(), Some(3));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(doc["valid"], false);
    let paths: Vec<&str> = doc["problems"]
        .as_array()
        .expect("problems is a list")
        .iter()
        .filter_map(|p| p["path"].as_str())
        .collect();
    for path in BAD_PATHS {
        assert!(paths.contains(&path), "missing `{path}` in {paths:?}");
    }
    let _ = std::fs::remove_file(file);
}

#[test]
fn syntax_error_and_missing_file_exit_3() {
    let file = write("syntax.json", "{ \"clusters\": ");
    let out = check(&["--json"], &file);
    assert_eq!(out.status.code(), Some(3));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert!(
        doc["problems"][0]["line"].is_u64(),
        "syntax errors carry a line: {doc}"
    );
    let _ = std::fs::remove_file(file);

    let missing = std::env::temp_dir().join("federation-cli-definitely-missing.yaml");
    assert_eq!(check(&[], &missing).status.code(), Some(3));
}
