//! The Rust [`Driver`]: the scenario's calls through `FederatedServiceClient`'s public API.
//!
//! The configuration goes through the SDK's own JSON parser (`Config::parse`), exactly as the
//! Python binding's `from_dict` and the Go module's `New` receive it, so a scenario also proves
//! the configuration text means the same thing in every language.

use std::time::{Duration, Instant};

use federation_core::client::FederatedServiceClient;
use federation_core::config::{Config, ConfigFormat};
use http::Method;

use crate::driver::{CallRecord, Driver};
use crate::schema::CallSpec;

/// The Rust SDK under test.
#[derive(Clone, Debug)]
pub struct SdkDriver {
    client: FederatedServiceClient,
}

impl SdkDriver {
    /// A client built from the generated configuration JSON.
    pub fn from_json(config: &serde_json::Value) -> Result<Self, String> {
        let text = config.to_string();
        let parsed = Config::parse(&text, ConfigFormat::Json)
            .map_err(|e| format!("scenario configuration rejected: {e}\n{text}"))?;
        let client = FederatedServiceClient::builder()
            .config(parsed)
            .seed(7)
            .build()
            .map_err(|e| format!("client: {e}"))?;
        Ok(Self { client })
    }

    /// The client (for checks beyond the scenario format, e.g. metrics).
    pub fn client(&self) -> &FederatedServiceClient {
        &self.client
    }
}

impl Driver for SdkDriver {
    async fn call(&self, spec: &CallSpec) -> CallRecord {
        let started = Instant::now();
        let method = match Method::from_bytes(spec.method.as_bytes()) {
            Ok(m) => m,
            Err(e) => {
                return CallRecord {
                    error_kind: Some("invalid_request".to_owned()),
                    error: Some(format!("method `{}`: {e}", spec.method)),
                    ..CallRecord::default()
                };
            }
        };
        let mut builder = self.client.request(method, &spec.service, &spec.path);
        for (name, value) in &spec.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(idempotent) = spec.idempotent {
            builder = builder.idempotent(idempotent);
        }
        if let Some(ms) = spec.timeout_ms {
            builder = builder.timeout(Duration::from_millis(ms));
        }
        if let Some(ms) = spec.attempt_timeout_ms {
            builder = builder.attempt_timeout(Duration::from_millis(ms));
        }
        if let Some(cluster) = &spec.cluster {
            builder = builder.cluster(cluster.clone());
        }
        if let Some(tags) = &spec.tags {
            builder = builder.tags(tags.clone());
        }
        if let Some(body) = &spec.body {
            builder = builder.body(body.clone());
        }
        match builder.send().await {
            Ok(response) => {
                let served = response.served();
                CallRecord {
                    status: Some(response.status().as_u16()),
                    cluster: Some(served.cluster().to_owned()),
                    instance: Some(served.instance().to_owned()),
                    attempts: served
                        .attempts()
                        .iter()
                        .map(|a| (a.cluster().to_owned(), a.instance().to_owned()))
                        .collect(),
                    cache: Some(served.cache().as_str().to_owned()),
                    elapsed: started.elapsed(),
                    ..CallRecord::default()
                }
            }
            Err(error) => CallRecord {
                error_kind: Some(error.kind().as_str().to_owned()),
                error: Some(error.to_string()),
                attempts: error
                    .attempts()
                    .iter()
                    .map(|a| (a.cluster().to_owned(), a.instance().to_owned()))
                    .collect(),
                elapsed: started.elapsed(),
                ..CallRecord::default()
            },
        }
    }

    fn reload(&self, config: &serde_json::Value) -> Result<(), String> {
        let text = config.to_string();
        let parsed = Config::parse(&text, ConfigFormat::Json)
            .map_err(|e| format!("reload configuration rejected: {e}"))?;
        self.client
            .reload(parsed)
            .map(|_| ())
            .map_err(|e| format!("reload: {e}"))
    }

    fn health(&self) -> serde_json::Value {
        serde_json::to_value(self.client.health()).unwrap_or(serde_json::Value::Null)
    }
}
