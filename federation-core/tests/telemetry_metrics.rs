//! Metrics as a scraper sees them: the exposition parses, counters move, names are stable and two
//! clients' metrics never collide.

use std::collections::HashMap;
use std::time::Duration;

use federation_core::telemetry::{BreakerStateValue, Metrics};

/// Parses a text exposition into `series → value`, failing on any malformed sample line.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    assert!(
        text.trim_end().ends_with("# EOF"),
        "exposition ends with # EOF"
    );
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
        let value: f64 = value.parse().expect("sample value is a number");
        if let Some(open) = series.find('{') {
            assert!(series.ends_with('}'), "label set closed: {line}");
            let name = &series[..open];
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "name: {name}"
            );
        }
        samples.insert(series.to_owned(), value);
    }
    samples
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("missing series {series}"))
}

#[test]
fn counters_move_and_exposition_parses() {
    let m = Metrics::new();
    m.call(
        "user",
        Some("zervigo"),
        "success",
        Duration::from_millis(12),
    );
    m.call(
        "user",
        Some("zervigo"),
        "success",
        Duration::from_millis(400),
    );
    m.call("user", None, "success", Duration::from_micros(50));
    m.call("user", Some("looma"), "timeout", Duration::from_secs(3));
    m.attempt("user", "zervigo", "transport", Duration::from_millis(5));
    m.attempt("user", "looma", "success", Duration::from_millis(7));
    m.retry("user");
    m.failover("user", "zervigo", "looma");
    m.budget_rejected("user");
    m.breaker_transition("zervigo", "user", "u1", BreakerStateValue::Open);
    m.ejection("zervigo", "user", "u1");
    m.breaker_state("zervigo", "user", "u2", BreakerStateValue::HalfOpen);
    m.cache("user", "hit");
    m.discovery_instances("looma", "user", "passing", 3);
    m.discovery_error("looma", "user");
    m.discovery_staleness("looma", "user", 2.5);

    let s = parse(&m.encode());
    let ok = r#"{service="user",cluster="zervigo",outcome="success"}"#;
    assert_eq!(value(&s, &format!("federation_requests_total{ok}")), 2.0);
    assert_eq!(
        value(
            &s,
            r#"federation_requests_total{service="user",cluster="none",outcome="success"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            &format!("federation_request_duration_seconds_count{ok}")
        ),
        2.0
    );
    let le = r#"federation_request_duration_seconds_bucket{le="0.3",service="user",cluster="zervigo",outcome="success"}"#;
    assert_eq!(value(&s, le), 1.0, "12 ms under 300 ms, 400 ms over");
    assert_eq!(
        value(
            &s,
            r#"federation_attempts_total{service="user",cluster="zervigo",outcome="transport"}"#
        ),
        1.0
    );
    assert_eq!(
        value(&s, r#"federation_retries_total{service="user"}"#),
        1.0
    );
    assert_eq!(
        value(
            &s,
            r#"federation_failovers_total{service="user",from="zervigo",to="looma"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            r#"federation_retry_budget_rejections_total{service="user"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            r#"federation_breaker_state{cluster="zervigo",service="user",instance="u1"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &s,
            r#"federation_breaker_state{cluster="zervigo",service="user",instance="u2"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            r#"federation_breaker_transitions_total{cluster="zervigo",service="user",instance="u1",to_state="open"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            r#"federation_ejections_total{cluster="zervigo",service="user",instance="u1"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            r#"federation_cache_events_total{service="user",event="hit"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            r#"federation_discovery_instances{cluster="looma",service="user",health="passing"}"#
        ),
        3.0
    );
    assert_eq!(
        value(
            &s,
            r#"federation_discovery_errors_total{cluster="looma",service="user"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            r#"federation_discovery_staleness_seconds{cluster="looma",service="user"}"#
        ),
        2.5
    );
}

#[test]
fn two_clients_do_not_collide() {
    let a = Metrics::new();
    let b = Metrics::new();
    a.call("user", Some("zervigo"), "success", Duration::from_millis(1));
    a.call("user", Some("zervigo"), "success", Duration::from_millis(1));
    b.call("user", Some("zervigo"), "success", Duration::from_millis(1));
    let series = r#"federation_requests_total{service="user",cluster="zervigo",outcome="success"}"#;
    assert_eq!(value(&parse(&a.encode()), series), 2.0);
    assert_eq!(value(&parse(&b.encode()), series), 1.0);
}

#[test]
fn forgotten_instances_leave_the_exposition() {
    let m = Metrics::new();
    m.breaker_transition("zervigo", "user", "gone", BreakerStateValue::Open);
    m.ejection("zervigo", "user", "gone");
    assert!(m.encode().contains(r#"instance="gone""#));
    m.forget_instance("zervigo", "user", "gone");
    assert!(!m.encode().contains(r#"instance="gone""#));
}
