//! Durations and sizes as written in files, and the readable JSON form of a configuration.

use std::time::Duration;

use federation_core::config::units::{format_duration, parse_duration, parse_size};
use federation_core::config::{Config, ConfigFormat};

fn with_defaults(defaults: &str) -> Result<Config, federation_core::config::ConfigError> {
    let text = format!(
        "clusters: {{ local: {{ static: {{ svc: [ {{ address: 127.0.0.1, port: 8080 }} ] }} }} }}\n\
         defaults: {defaults}\n"
    );
    Config::parse(&text, ConfigFormat::Yaml)
}

#[test]
fn durations_with_units_and_compounds() {
    let cases = [
        ("250ms", Duration::from_millis(250)),
        ("1s", Duration::from_secs(1)),
        ("5m", Duration::from_secs(300)),
        ("1h", Duration::from_secs(3600)),
        ("1m30s", Duration::from_secs(90)),
        ("1.5s", Duration::from_millis(1500)),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_duration(text).ok(), Some(expected), "{text}");
        let config = with_defaults(&format!("{{ failover: {{ dwell: {text} }} }}"))
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(config.defaults.failover.dwell, expected, "{text}");
    }
    assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
}

#[test]
fn a_bare_number_asks_for_a_unit() {
    for bare in ["5", "0.5", "\"5\""] {
        let error =
            with_defaults(&format!("{{ timeout: {{ total: {bare} }} }}")).expect_err("bare number");
        let problem = &error.problems()[0];
        assert_eq!(problem.path(), "defaults.timeout.total");
        assert!(
            problem.message().contains("add a unit, e.g. 250ms, 1s, 5m"),
            "{error}"
        );
    }
    let error = with_defaults("{ timeout: { total: 3 parsecs } }").expect_err("unknown unit");
    assert!(
        error.to_string().contains("unknown duration unit"),
        "{error}"
    );
}

#[test]
fn sizes_as_bytes_or_with_units() {
    assert_eq!(parse_size("1048576").ok(), Some(1 << 20));
    assert_eq!(parse_size("512KiB").ok(), Some(512 << 10));
    assert_eq!(parse_size("32MiB").ok(), Some(32 << 20));
    assert_eq!(parse_size("1GB").ok(), Some(1_000_000_000));
    let config =
        with_defaults("{ limits: { max_response_bytes: 512KiB }, cache: { max_bytes: 1000 } }")
            .expect("valid sizes");
    assert_eq!(config.defaults.limits.max_response_bytes, 512 << 10);
    assert_eq!(
        config.defaults.cache.as_ref().map(|c| c.max_bytes),
        Some(1000)
    );
    let error =
        with_defaults("{ limits: { max_response_bytes: 12 parsecs } }").expect_err("bad unit");
    assert_eq!(
        error.problems()[0].path(),
        "defaults.limits.max_response_bytes"
    );
    let error = with_defaults("{ limits: { max_response_bytes: -1 } }").expect_err("negative");
    assert_eq!(error.problems()[0].value(), Some("-1"));
}

#[test]
fn toggles_and_partial_sections() {
    let config = with_defaults(
        "{ cache: true, breaker: { failure_rate: false }, limits: { rate_limit: { per_second: 2.5 }, max_concurrent: 64 } }",
    )
    .expect("valid");
    let d = &config.defaults;
    assert_eq!(
        d.cache,
        Some(Default::default()),
        "`cache: true` = enabled with defaults"
    );
    assert_eq!(
        d.breaker.failure_rate, None,
        "`failure_rate: false` disables it"
    );
    assert_eq!(
        d.breaker.consecutive_failures, 5,
        "other breaker fields keep their defaults"
    );
    let rate = d.limits.rate_limit.as_ref().expect("rate limit on");
    assert_eq!(
        (rate.per_second, rate.burst),
        (2.5, 3),
        "burst defaults to one second's worth"
    );
    assert_eq!(d.limits.max_concurrent, Some(64));

    let error = with_defaults("{ limits: { rate_limit: { burst: 5 } } }").expect_err("no rate");
    assert!(
        error.to_string().contains("`per_second` is required"),
        "{error}"
    );
}

#[test]
fn json_output_is_readable() {
    let config = with_defaults("{ timeout: { attempt: 250ms, total: 1m30s } }").expect("valid");
    let json: serde_json::Value = serde_json::to_value(&config).expect("serializes");
    assert_eq!(json["defaults"]["timeout"]["attempt"], "250ms");
    assert_eq!(json["defaults"]["timeout"]["total"], "1m30s");
    assert_eq!(json["defaults"]["breaker"]["failure_rate"]["window"], "10s");
    assert_eq!(json["clusters"][0]["name"], "local");
    assert_eq!(json["clusters"][0]["load_balancing"], "peak_ewma");
    assert_eq!(
        json["clusters"][0]["source"]["static"]["svc"][0]["port"],
        8080
    );
}
