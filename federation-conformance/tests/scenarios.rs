//! Every scenario of `tests/scenarios/` through the Rust SDK's public API against a fresh
//! testkit world. A failing scenario fails the test unless it is marked `known_failure`, in which
//! case it is reported (and a marked scenario that passes is reported too, so the mark is
//! removed). `FEDERATION_SCENARIO=<name>` runs one scenario; a name that matches no file fails
//! (a typo must not turn into a green run of nothing). The number of scenarios run is checked
//! against the number of files in the directory, so a loader that skipped one would be caught.

use std::path::PathBuf;
use std::time::Instant;

use federation_conformance::run_rust;
use federation_conformance::schema::Scenario;

fn scenario_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios")
}

/// Every file in the scenario directory (each must be a scenario: see the test below).
fn files_on_disk() -> usize {
    std::fs::read_dir(scenario_dir())
        .expect("scenario dir")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_file()))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_passes_through_the_rust_sdk() {
    let scenarios = Scenario::load_dir(&scenario_dir()).expect("scenario files parse");
    let on_disk = files_on_disk();
    assert_eq!(
        scenarios.len(),
        on_disk,
        "scenarios loaded vs files in {}",
        scenario_dir().display()
    );
    let only = std::env::var("FEDERATION_SCENARIO").ok();
    let mut unexpected = Vec::new();
    let mut ran = 0;
    let started = Instant::now();
    for scenario in &scenarios {
        if only.as_deref().is_some_and(|name| name != scenario.name) {
            continue;
        }
        ran += 1;
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
    let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
    match only.as_deref() {
        Some(name) => assert_eq!(
            ran, 1,
            "FEDERATION_SCENARIO={name} names no scenario; known: {names:?}"
        ),
        None => assert_eq!(ran, on_disk, "scenarios run vs files on disk"),
    }
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
