//! The `hedge` policy section: read per service (partial overrides keep the defaults' other
//! hedge fields), switched on with `true` and off with `false`, and every bad value reported
//! with its field path, the value and what is allowed.

use std::time::Duration;

use federation_core::config::{Config, ConfigError, ConfigFormat, ConfigProblem, HedgePolicy};

fn document(defaults: &str, service: &str) -> String {
    format!(
        "clusters:\n  zervigo:\n    static: {{ user-service: [ {{ address: 127.0.0.1, port: 8081 }} ] }}\n\
         services:\n  user:\n    names: {{ zervigo: user-service }}\n{service}\
         defaults:\n  timeout: {{ attempt: 500ms, total: 2s }}\n{defaults}"
    )
}

fn parse(defaults: &str, service: &str) -> Result<Config, ConfigError> {
    Config::parse(&document(defaults, service), ConfigFormat::Yaml)
}

fn hedge_of(config: &Config) -> Option<&HedgePolicy> {
    config.policy_for(&config.services[0]).hedge.as_ref()
}

/// The problem at `path`, failing with the whole report when absent.
fn at<'a>(error: &'a ConfigError, path: &str) -> &'a ConfigProblem {
    error
        .problems()
        .iter()
        .find(|p| p.path() == path)
        .unwrap_or_else(|| panic!("no problem at `{path}` in:\n{error}"))
}

#[test]
fn hedging_is_off_unless_configured_and_true_takes_the_defaults() {
    let off = parse("", "").expect("valid");
    assert_eq!(hedge_of(&off), None);
    let on = parse("  hedge: true\n", "").expect("valid");
    assert_eq!(hedge_of(&on), Some(&HedgePolicy::default()));
    let service_off = parse("  hedge: true\n", "    hedge: false\n").expect("valid");
    assert_eq!(hedge_of(&service_off), None);
}

#[test]
fn a_service_override_keeps_the_other_hedge_fields() {
    let defaults = "  hedge: { delay: 40ms, max_extra: 2, cross_cluster: true }\n";
    let config = parse(defaults, "    hedge: { percentile: p99.5 }\n").expect("valid");
    let hedge = hedge_of(&config).expect("on");
    assert_eq!(hedge.delay, Duration::from_millis(40));
    assert_eq!(hedge.percentile, Some(99.5));
    assert_eq!(hedge.max_extra, 2);
    assert!(hedge.cross_cluster);
    let number = parse("  hedge: { percentile: 90 }\n", "").expect("valid");
    assert_eq!(hedge_of(&number).expect("on").percentile, Some(90.0));
}

#[test]
fn bad_hedge_values_are_reported_with_path_value_and_what_is_allowed() {
    let service = "    hedge: { delay: 0ms, percentile: p100, max_extra: 9, cross: true }\n";
    let error = parse("", service).expect_err("invalid");
    let report = error.to_string();
    let delay = at(&error, "services.user.hedge.delay");
    assert_eq!(delay.value(), Some("0s"), "{report}");
    assert!(delay.message().contains("greater than 0s"), "{report}");
    let percentile = at(&error, "services.user.hedge.percentile");
    assert_eq!(percentile.value(), Some("p100"), "{report}");
    assert!(percentile.message().contains("p95"), "{report}");
    let extra = at(&error, "services.user.hedge.max_extra");
    assert_eq!(extra.value(), Some("9"), "{report}");
    assert!(extra.message().contains("1 to 4"), "{report}");
    let unknown = at(&error, "services.user.hedge.cross");
    assert!(unknown.message().contains("cross_cluster"), "{report}");

    // A delay the attempt timeout never lets pass.
    let error = parse("  hedge: { delay: 500ms }\n", "").expect_err("invalid");
    let late = at(&error, "defaults.hedge.delay");
    assert!(
        late.message().contains("timeout.attempt (500ms)"),
        "{error}"
    );
    // A percentile that is not one.
    let error = parse("  hedge: { percentile: fast }\n", "").expect_err("invalid");
    at(&error, "defaults.hedge.percentile");
    let error = parse("  hedge: 50ms\n", "").expect_err("invalid");
    let whole = at(&error, "defaults.hedge");
    assert!(whole.message().contains("a map, true or false"), "{error}");
}
