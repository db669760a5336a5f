//! Every scenario of `tests/scenarios/` through the Rust SDK's public API against a fresh
//! testkit world. A failing scenario fails the test unless it is marked `known_failure`, in which
//! case it is reported (and a marked scenario that passes is reported too, so the mark is
//! removed). `FEDERATION_SCENARIO=<name>` runs one scenario.

use std::path::PathBuf;
use std::time::Instant;

use federation_conformance::run_rust;
use federation_conformance::schema::Scenario;

fn scenario_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_passes_through_the_rust_sdk() {
    let scenarios = Scenario::load_dir(&scenario_dir()).expect("scenario files parse");
    assert!(
        scenarios.len() >= 12,
        "at least 12 scenarios, found {}",
        scenarios.len()
    );
    let only = std::env::var("FEDERATION_SCENARIO").ok();
    let mut unexpected = Vec::new();
    let started = Instant::now();
    for scenario in &scenarios {
        if only.as_deref().is_some_and(|name| name != scenario.name) {
            continue;
        }
        let t = Instant::now();
        let report = match run_rust(scenario).await {
            Ok(report) => report,
            Err(e) => {
                unexpected.push(format!("{}: setup failed: {e}", scenario.name));
                continue;
            }
        };
        println!("{}  ({:.1} s)", report.render(), t.elapsed().as_secs_f64());
        if !report.passed() && report.known_failure.is_none() {
            unexpected.push(report.render());
        }
    }
    println!("all scenarios: {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        unexpected.is_empty(),
        "failing scenarios:\n{}",
        unexpected.join("\n")
    );
}

#[test]
fn scenario_names_match_their_files() {
    for entry in std::fs::read_dir(scenario_dir()).expect("scenario dir") {
        let path = entry.expect("dir entry").path();
        let scenario = Scenario::load(&path).expect("scenario parses");
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        assert_eq!(scenario.name, stem, "{}", path.display());
    }
}
