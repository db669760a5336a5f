//! A Zervigo tool asking ai-service for inferences: model version by tag, cached POSTs.
//!
//! **The failure it shows handled.** Inference is slow and costly, and ai-service runs two
//! model versions side by side (`model=v2` and `model=v3` Consul tags). A tool that hard-codes
//! instance addresses breaks on every redeploy, recomputes identical prompts, and fails outright
//! when the v3 pool is empty. This one selects instances by tag per call, caches inference POSTs
//! by body (the cache key includes a hash of the body), retries a POST only when it never
//! reached a server (a refused connection), and falls back to v2 when no v3 instance can take
//! the call.
//!
//! **What it does.** Asks v2 twice with the same prompt (a miss, then a hit), asks v3. With
//! `--sandbox` it kills a v2 instance (calls still succeed: the refused POSTs are retried on
//! another instance), then kills the only v3 instance and shows the fallback to v2.

use std::io::Write;
use std::time::Duration;

use federation_core::client::FederatedServiceClient;
use federation_core::error::{Error, ErrorKind};
use serde_json::json;

use crate::BoxError;
use crate::report::{Step, metric_lines};
use crate::setup::{DISCOVERY_WAIT, Federation};

/// The logical service called.
pub const SERVICE: &str = "ai";

/// The Consul name of ai-service in looma.
const CONSUL_NAME: &str = "ai-service";

/// A model version, selected through the instances' Consul tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// The current model (`model=v2`, the service's configured default tag).
    V2,
    /// The next model (`model=v3`), served by fewer instances.
    V3,
}

impl Model {
    /// The Consul tag of the instances serving this model.
    pub fn tag(self) -> &'static str {
        match self {
            Self::V2 => "model=v2",
            Self::V3 => "model=v3",
        }
    }

    /// The model's name as sent in the request body.
    pub fn name(self) -> &'static str {
        match self {
            Self::V2 => "v2",
            Self::V3 => "v3",
        }
    }
}

/// What the example observed.
#[derive(Debug, Default)]
pub struct AiReport {
    /// Every call, in order.
    pub steps: Vec<Step>,
    /// With `--sandbox`: the model that answered when v3 was asked for with no v3 instance.
    pub fallback: Option<Model>,
}

impl AiReport {
    /// The step with this label, if the example made it.
    pub fn step(&self, label: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.label == label)
    }
}

/// Asks `model` for an inference on `prompt`.
///
/// The model is both the tag filter (which instances may answer) and part of the body, so the
/// cache never serves one model's answer for the other (the cache key hashes the body, not the
/// per-call tags).
pub async fn infer(
    client: &FederatedServiceClient,
    model: Model,
    prompt: &str,
) -> Result<Step, Error> {
    let response = client
        .post(SERVICE, "/v1/inference")
        .tags([model.tag()])
        .json(&json!({ "model": model.name(), "prompt": prompt }))
        .timeout(Duration::from_secs(10))
        .send()
        .await?
        .error_for_status()?;
    Ok(Step::of(String::new(), &response))
}

/// Asks v3, falling back to v2 when no v3 instance could take the call. Only failures where
/// nothing was processed fall back: an inference that may have run is not sent twice.
pub async fn infer_prefer_v3(
    client: &FederatedServiceClient,
    prompt: &str,
) -> Result<(Model, Step), Error> {
    match infer(client, Model::V3, prompt).await {
        Ok(step) => Ok((Model::V3, step)),
        Err(e) if nothing_processed(&e) => {
            let step = infer(client, Model::V2, prompt).await?;
            Ok((Model::V2, step))
        }
        Err(e) => Err(e),
    }
}

/// Whether `e` guarantees no instance processed the request.
fn nothing_processed(e: &Error) -> bool {
    match e.kind() {
        ErrorKind::NoHealthyInstance | ErrorKind::CircuitOpen => true,
        ErrorKind::Transport => !e.may_have_reached_server(),
        _ => false,
    }
}

/// Runs the example, narrating to `out`.
///
/// # Errors
/// A call that fails (its kind and trail are in the message) or a sandbox operation that fails.
pub async fn run(fed: &Federation, out: &mut dyn Write) -> Result<AiReport, BoxError> {
    let client = &fed.client;
    let mut report = AiReport::default();
    if let Err(e) = client.wait_ready(DISCOVERY_WAIT).await {
        writeln!(out, "warning: {e}; calling anyway")?;
    }
    let prompt = "summarise resume 7 for a backend role";
    record(
        &mut report,
        out,
        "v2 inference (cold)",
        infer(client, Model::V2, prompt).await,
    )?;
    record(
        &mut report,
        out,
        "v2 inference (cached)",
        infer(client, Model::V2, prompt).await,
    )?;
    record(
        &mut report,
        out,
        "v3 inference",
        infer(client, Model::V3, prompt).await,
    )?;

    if let Some(sandbox) = &fed.sandbox {
        let instances = sandbox.instances("looma", CONSUL_NAME);
        let v2 = instances
            .iter()
            .find(|i| !i.identity().instance.contains("-v3-"));
        let v3 = instances
            .iter()
            .find(|i| i.identity().instance.contains("-v3-"));
        let (Some(v2), Some(v3)) = (v2, v3) else {
            return Err("the sandbox has no v2 and v3 ai-service instances".into());
        };
        writeln!(out, "-- killing {}", v2.identity().instance)?;
        v2.kill().await;
        for n in 1..=3 {
            let prompt = format!("rank candidates for job {n}");
            let result = infer(client, Model::V2, &prompt).await;
            record(&mut report, out, "one v2 instance dead", result)?;
        }
        writeln!(
            out,
            "-- killing {} (the only v3 instance)",
            v3.identity().instance
        )?;
        v3.kill().await;
        let alive = instances.len().saturating_sub(2);
        sandbox
            .wait_for_passing("looma", CONSUL_NAME, alive, Duration::from_secs(20))
            .await?;
        let (model, step) = match infer_prefer_v3(client, "draft an offer letter").await {
            Ok(answer) => answer,
            Err(e) => {
                writeln!(out, "v3 with fallback: {} error: {e}", e.kind())?;
                return Err(e.into());
            }
        };
        writeln!(out, "-- asked for v3, answered by {}", model.name())?;
        record(&mut report, out, "v3 wanted, none alive", Ok(step))?;
        report.fallback = Some(model);
        writeln!(out, "-- restarting them")?;
        sandbox.revive_all("looma", CONSUL_NAME).await?;
    }

    let metrics = client.metrics_text();
    let prefixes = ["federation_requests_total", "federation_cache_events_total"];
    for line in metric_lines(&metrics, SERVICE, &prefixes) {
        writeln!(out, "  {line}")?;
    }
    Ok(report)
}

/// Records and prints one call's result.
fn record(
    report: &mut AiReport,
    out: &mut dyn Write,
    label: &str,
    result: Result<Step, Error>,
) -> Result<(), BoxError> {
    match result {
        Ok(mut step) => {
            step.label = label.to_owned();
            writeln!(out, "{step}")?;
            report.steps.push(step);
            Ok(())
        }
        Err(e) => {
            writeln!(out, "{label}: {} error: {e}", e.kind())?;
            Err(e.into())
        }
    }
}
