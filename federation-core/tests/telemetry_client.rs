//! Telemetry of a real client against loopback instances: the metrics after a scripted sequence
//! (successes, a failover, an ejection, a cache hit), the call and attempt spans, and the
//! `traceparent` the upstream receives.

mod pipeline_support;
mod span_capture {
    include!("telemetry_support/span_capture.rs");
}

use std::collections::HashMap;
use std::time::Duration;

use federation_core::client::{CacheStatus, FederatedServiceClient};
use federation_core::config::{BreakerPolicy, CachePolicy, Config, Policy};
use federation_core::telemetry::trace_context::TraceParent;
use federation_testkit::instance::{Behavior, ServiceInstance};
use pipeline_support::{cluster, config, service, start};
use span_capture::Capture;

async fn two_clusters(
    policy: Policy,
) -> (FederatedServiceClient, ServiceInstance, ServiceInstance) {
    // Before any call of this process reaches the pipeline's span callsites (see span_capture).
    span_capture::install();
    let z = start("zervigo", "user-service", 1).await.remove(0);
    let l = start("looma", "looma-user-api", 1).await.remove(0);
    let mut cfg: Config = config(
        vec![
            cluster("zervigo", "user-service", std::slice::from_ref(&z)),
            cluster("looma", "looma-user-api", std::slice::from_ref(&l)),
        ],
        vec![service(
            "user",
            &[("zervigo", "user-service"), ("looma", "looma-user-api")],
            Some("zervigo"),
        )],
    );
    cfg.defaults = policy;
    (
        FederatedServiceClient::from_config(cfg).expect("client builds"),
        z,
        l,
    )
}

fn samples(text: &str) -> HashMap<String, f64> {
    assert!(text.trim_end().ends_with("# EOF"));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("sample has a value");
            (series.to_owned(), value.parse().expect("numeric value"))
        })
        .collect()
}

fn get(s: &HashMap<String, f64>, series: &str) -> f64 {
    s.get(series)
        .copied()
        .unwrap_or_else(|| panic!("missing {series}"))
}

#[tokio::test]
async fn metrics_follow_a_scripted_sequence() {
    let policy = Policy {
        cache: Some(CachePolicy::default()),
        breaker: BreakerPolicy {
            consecutive_failures: 2,
            failure_rate: None,
            open_for: Duration::from_secs(60),
            ..BreakerPolicy::default()
        },
        ..Policy::default()
    };
    let (client, z, _l) = two_clusters(policy).await;
    // Two successes from the preferred cluster.
    for path in ["/s/1", "/s/2"] {
        let r = client.get("user", path).send().await.expect("success");
        assert_eq!(r.served().cluster(), "zervigo");
    }
    // zervigo starts failing: the call fails over to looma and zervigo's instance is ejected.
    z.set_behavior(Behavior::status(503));
    let r = client.get("user", "/f/0").send().await.expect("failover");
    assert_eq!(r.served().cluster(), "looma");
    // Keep calling until the breaker (2 consecutive failures) ejects the instance.
    let mut calls = 1;
    while !ejected(&client) && calls < 20 {
        let r = client
            .get("user", &format!("/f/{calls}"))
            .send()
            .await
            .expect("success");
        assert!(r.status().is_success());
        calls += 1;
    }
    assert!(ejected(&client), "zervigo's instance was ejected");
    // A cache hit.
    let hit = client.get("user", "/s/1").send().await.expect("hit");
    assert_eq!(hit.served().cache(), CacheStatus::Hit);

    let text = client.metrics_text();
    let s = samples(&text);
    let req = |cluster: &str| {
        format!(
            r#"federation_requests_total{{service="user",cluster="{cluster}",outcome="success"}}"#
        )
    };
    assert_eq!(get(&s, &req("zervigo")), 2.0);
    assert_eq!(get(&s, &req("looma")), f64::from(calls));
    assert_eq!(get(&s, &req("none")), 1.0, "the cache hit");
    assert_eq!(
        get(
            &s,
            r#"federation_failovers_total{service="user",from="zervigo",to="looma"}"#
        ),
        2.0,
        "each of the two calls that met the failing instance failed over"
    );
    let z_id = &z.identity().instance;
    assert_eq!(
        get(
            &s,
            &format!(
                r#"federation_ejections_total{{cluster="zervigo",service="user",instance="{z_id}"}}"#
            )
        ),
        1.0
    );
    assert_eq!(
        get(
            &s,
            &format!(
                r#"federation_breaker_state{{cluster="zervigo",service="user",instance="{z_id}"}}"#
            )
        ),
        2.0
    );
    assert_eq!(
        get(
            &s,
            &format!(
                r#"federation_breaker_transitions_total{{cluster="zervigo",service="user",instance="{z_id}",to_state="open"}}"#
            )
        ),
        1.0
    );
    assert_eq!(
        get(
            &s,
            r#"federation_attempts_total{service="user",cluster="zervigo",outcome="retryable_status"}"#
        ),
        2.0
    );
    assert!(get(&s, r#"federation_retries_total{service="user"}"#) >= 2.0);
    assert_eq!(
        get(
            &s,
            r#"federation_cache_events_total{service="user",event="hit"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            &s,
            r#"federation_cache_events_total{service="user",event="miss"}"#
        ),
        f64::from(2 + calls)
    );
    assert_eq!(
        get(
            &s,
            r#"federation_discovery_instances{cluster="zervigo",service="user-service",health="passing"}"#
        ),
        1.0
    );
    let health = client.health();
    let zervigo = health
        .service("user")
        .and_then(|s| s.cluster("zervigo"))
        .expect("zervigo");
    assert_eq!((zervigo.ejected, zervigo.available), (1, 0));
    assert_eq!(
        health.service("user").and_then(|s| s.selected.as_deref()),
        Some("looma")
    );
}

#[tokio::test]
async fn two_clients_have_separate_metrics() {
    let (a, _z1, _l1) = two_clusters(Policy::default()).await;
    let (b, _z2, _l2) = two_clusters(Policy::default()).await;
    a.get("user", "/x").send().await.expect("ok");
    a.get("user", "/x").send().await.expect("ok");
    b.get("user", "/x").send().await.expect("ok");
    let series = r#"federation_requests_total{service="user",cluster="zervigo",outcome="success"}"#;
    assert_eq!(get(&samples(&a.metrics_text()), series), 2.0);
    assert_eq!(get(&samples(&b.metrics_text()), series), 1.0);
}

#[tokio::test]
async fn spans_describe_the_call_and_its_attempts() {
    let (client, z, _l) = two_clusters(Policy::default()).await;
    z.set_behavior(Behavior::status(503));
    let capture = Capture::start();
    let r = capture
        .run(client.get("user", "/t/1?q=1").send())
        .await
        .expect("failover succeeds");
    assert_eq!(r.served().cluster(), "looma");

    let call = capture.span("federation.call").expect("call span");
    assert_eq!(call.field("service"), Some("user"));
    assert_eq!(call.field("method"), Some("GET"));
    assert_eq!(call.field("path"), Some("/t/1"));
    assert_eq!(call.field("cluster"), Some("looma"));
    assert_eq!(call.field("outcome"), Some("success"));
    assert_eq!(call.field("cache"), Some("bypass"));
    let attempts = capture.all("federation.attempt");
    assert_eq!(
        call.field("attempts"),
        Some(attempts.len().to_string().as_str())
    );
    assert!(attempts.len() >= 2);
    let first = &attempts[0];
    assert_eq!(first.parent.as_deref(), Some("federation.call"));
    assert_eq!(first.field("cluster"), Some("zervigo"));
    assert_eq!(
        first.field("instance"),
        Some(z.identity().instance.as_str())
    );
    assert_eq!(first.field("status"), Some("503"));
    assert_eq!(first.field("error_kind"), Some("retryable_status"));
    assert!(first.field("duration_ms").is_some());
    let last = attempts.last().expect("last attempt");
    assert_eq!(
        (last.field("cluster"), last.field("status")),
        (Some("looma"), Some("200"))
    );
    assert_eq!(last.field("error_kind"), None);
}

#[tokio::test]
async fn upstream_continues_the_callers_trace() {
    let (client, z, _l) = two_clusters(Policy::default()).await;
    z.set_recording(true);
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    client
        .get("user", "/trace")
        .header("traceparent", incoming)
        .header("tracestate", "vendor=x")
        .send()
        .await
        .expect("ok");
    let recorded = z.recorded();
    let sent = recorded
        .last()
        .and_then(|r| r.header("traceparent"))
        .and_then(TraceParent::parse)
        .expect("upstream received a valid traceparent");
    let caller = TraceParent::parse(incoming).expect("valid");
    assert_eq!(sent.trace_id(), caller.trace_id(), "same trace");
    assert_ne!(sent.span_id(), caller.span_id(), "a child span");
    assert_eq!(
        recorded.last().and_then(|r| r.header("tracestate")),
        Some("vendor=x")
    );

    // Without an incoming trace the call starts one: the span's trace id is what upstream sees.
    let capture = Capture::start();
    capture
        .run(client.get("user", "/trace2").send())
        .await
        .expect("ok");
    let root = z
        .recorded()
        .last()
        .and_then(|r| r.header("traceparent"))
        .and_then(TraceParent::parse)
        .expect("root traceparent sent");
    let call = capture.span("federation.call").expect("call span");
    assert_eq!(call.field("trace_id"), Some(root.trace_id().as_str()));
}

fn ejected(client: &FederatedServiceClient) -> bool {
    client
        .health()
        .service("user")
        .and_then(|s| s.cluster("zervigo"))
        .is_some_and(|c| c.ejected == 1)
}
