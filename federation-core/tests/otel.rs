//! Feature `opentelemetry`: the `federation.call` and `federation.attempt` spans reach an
//! OpenTelemetry SDK (in-memory exporter) through `tracing-opentelemetry`, in the caller's trace,
//! with the names and attributes of tests/telemetry-names.json (the same as Python and Go), and
//! the upstream's `traceparent` names the attempt span as its parent.

mod pipeline_support;

use std::collections::{BTreeMap, BTreeSet};

use federation_core::client::FederatedServiceClient;
use federation_testkit::instance::ServiceInstance;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use pipeline_support::{cluster, config, service, start};
use tracing::Instrument;
use tracing_subscriber::prelude::*;

const INCOMING: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn golden_spans() -> BTreeMap<String, BTreeSet<String>> {
    let text = include_str!("../../tests/telemetry-names.json");
    let names: serde_json::Value = serde_json::from_str(text).expect("golden names are JSON");
    serde_json::from_value(names["spans"].clone()).expect("spans: name -> attributes")
}

fn attributes(span: &SpanData) -> BTreeMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect()
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// A client of one loopback instance, with an OpenTelemetry layer (in-memory exporter, without
/// the layer's own location/thread/level attributes) as this thread's subscriber.
async fn traced_client() -> (
    Vec<ServiceInstance>,
    FederatedServiceClient,
    InMemorySpanExporter,
    tracing::subscriber::DefaultGuard,
) {
    let z = start("zervigo", "user-service", 1).await;
    let cfg = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("test"))
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_level(false)
        .with_target(false);
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    (z, client, exporter, guard)
}

#[tokio::test]
async fn spans_continue_the_incoming_trace_with_the_shared_names() {
    let (_instances, client, exporter, _guard) = traced_client().await;

    let response = client
        .get("user", "/api/v1/users/7")
        .header("traceparent", INCOMING)
        .header("tracestate", "vendor=v1")
        .send()
        .await
        .expect("call succeeds");
    let spans = exporter.get_finished_spans().expect("spans");
    let call = named(&spans, "federation.call");
    let attempt = named(&spans, "federation.attempt");
    assert_eq!((call.len(), attempt.len()), (1, 1), "{spans:#?}");
    let (call, attempt) = (call[0], attempt[0]);
    assert_eq!(
        call.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(call.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert_eq!(attempt.parent_span_id, call.span_context.span_id());
    assert_eq!(call.span_context.trace_state().header(), "vendor=v1");
    // The upstream's parent is the attempt span.
    let body: serde_json::Value = response.json().expect("identity JSON");
    let sent = format!(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
        attempt.span_context.span_id()
    );
    assert_eq!(body["traceparent"], sent.as_str());

    let call_attrs = attributes(call);
    assert_eq!(call_attrs["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(call_attrs["outcome"], "success");
    assert_eq!(call_attrs["cluster"], "zervigo");
    let golden = golden_spans();
    assert_eq!(
        call_attrs.keys().cloned().collect::<BTreeSet<_>>(),
        golden["federation.call"]
    );
    // `error_kind` is recorded only for a failed attempt.
    let mut attempt_keys: BTreeSet<String> = attributes(attempt).into_keys().collect();
    attempt_keys.insert("error_kind".into());
    assert_eq!(attempt_keys, golden["federation.attempt"]);
}

#[tokio::test]
async fn without_traceparent_the_current_span_is_the_parent() {
    let (_instances, client, exporter, _guard) = traced_client().await;

    let response = client
        .get("user", "/x")
        .send()
        .instrument(tracing::info_span!("handler"))
        .await
        .expect("call succeeds");
    let spans = exporter.get_finished_spans().expect("spans");
    let handler = named(&spans, "handler")[0];
    let call = named(&spans, "federation.call")[0];
    assert_eq!(call.parent_span_id, handler.span_context.span_id());
    let trace = handler.span_context.trace_id().to_string();
    assert_eq!(attributes(call)["trace_id"], trace);
    let body: serde_json::Value = response.json().expect("identity JSON");
    let sent = body["traceparent"].as_str().expect("traceparent echoed");
    assert_eq!(sent.split('-').nth(1), Some(trace.as_str()), "{sent}");
}
