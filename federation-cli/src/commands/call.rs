//! `federation call SERVICE PATH`: one call through the full client pipeline, like curl.
//!
//! Testing a route by hand with curl bypasses exactly what needs testing (cluster choice,
//! balancing, retries, failover, cache). This sends one request through a
//! `FederatedServiceClient` built from the configuration and prints the body; `-v` adds how it
//! was served: cluster, instance, every attempt with its outcome, cache status and total time.
//! Exit 1 for a failed call or a 4xx/5xx answer, 4 when no instance is available.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use federation_core::client::{FederatedServiceClient, Request, Response, ServedBy};
use http::{HeaderName, HeaderValue};
use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::commands::snapshot::wait_for_discovery;
use crate::config_source;
use crate::duration::parse_duration;
use crate::exit::{CliError, Exit};
use crate::output::{millis, print_json};

/// Arguments of `federation call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// Logical service name (from the configuration).
    #[arg(value_name = "SERVICE")]
    pub service: String,
    /// Request path, with query string if any (`/api/v1/users/42?fields=name`).
    #[arg(value_name = "PATH")]
    pub path: String,
    /// HTTP method (default GET, or POST when a body is given).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,
    /// Request header `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Request body (raw).
    #[arg(
        short = 'd',
        long = "data",
        value_name = "DATA",
        conflicts_with = "data_json"
    )]
    pub data: Option<String>,
    /// Request body as JSON (validated; sets Content-Type: application/json). `--json` is the
    /// global output flag, hence this name.
    #[arg(long = "data-json", value_name = "JSON")]
    pub data_json: Option<String>,
    /// Send to this cluster only (no cross-cluster failover).
    #[arg(long, value_name = "CLUSTER")]
    pub cluster: Option<String>,
    /// Total deadline of the call (default: the service's configured total timeout).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
    /// Print how the call was served (cluster, instance, attempts, cache) on stderr.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Sends the call and prints the answer.
///
/// # Errors
/// Exit 2 for a bad header, body, method or unknown service; 3 for the configuration; 4 when no
/// instance is available; 1 for other failures.
pub async fn run(global: &GlobalArgs, args: CallArgs) -> Result<Exit, CliError> {
    let config = config_source::load(global.config.as_deref())?;
    let request = build_request(&args)?;
    let client = FederatedServiceClient::from_config(config)?;
    wait_for_discovery(&client, DISCOVERY_WAIT).await;
    let response = match client.call(&args.service, request).await {
        Ok(response) => response,
        Err(error) => {
            if args.verbose && !global.json {
                for a in error.attempts() {
                    eprintln!(
                        "* attempt {}/{}: {}{}, {}",
                        a.cluster(),
                        a.instance(),
                        a.outcome().as_str(),
                        a.status()
                            .map_or(String::new(), |s| format!(" {}", s.as_u16())),
                        millis(a.duration())
                    );
                }
            }
            return Err(error.into());
        }
    };
    let status = response.status();
    if global.json {
        print_json(&CallJson::from(&response))?;
    } else {
        if args.verbose {
            eprint!("{}", describe(&response));
        }
        let mut out = std::io::stdout().lock();
        out.write_all(response.body())
            .and_then(|()| {
                if response.body().ends_with(b"\n") {
                    Ok(())
                } else {
                    out.write_all(b"\n")
                }
            })
            .map_err(|e| CliError::failure(format!("cannot write output: {e}")))?;
        if status.is_client_error() || status.is_server_error() {
            eprintln!("error: {} answered {status}", args.service);
        }
    }
    Ok(if status.is_client_error() || status.is_server_error() {
        Exit::Failure
    } else {
        Exit::Ok
    })
}

/// How long a one-shot call waits for the registries' first answer.
const DISCOVERY_WAIT: Duration = Duration::from_secs(5);

fn build_request(args: &CallArgs) -> Result<Request, CliError> {
    let body = match (&args.data, &args.data_json) {
        (Some(data), _) => Some(data.clone()),
        (None, Some(json)) => {
            serde_json::from_str::<serde_json::Value>(json)
                .map_err(|e| CliError::usage(format!("--data-json is not valid JSON: {e}")))?;
            Some(json.clone())
        }
        (None, None) => None,
    };
    let method = args
        .method
        .clone()
        .unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.to_owned());
    let mut request = Request::try_new(&method.to_ascii_uppercase(), args.path.clone())
        .map_err(|e| CliError::usage(e.to_string()))?;
    for header in &args.headers {
        let (name, value) = parse_header(header)?;
        request.headers_mut().append(name, value);
    }
    if args.data_json.is_some() && !request.headers().contains_key(http::header::CONTENT_TYPE) {
        request.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if let Some(body) = body {
        request.set_body(body);
    }
    if let Some(cluster) = &args.cluster {
        request.set_cluster(cluster.clone());
    }
    if let Some(timeout) = args.timeout {
        request.set_timeout(timeout);
    }
    Ok(request)
}

/// Parses `Name: value`.
fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), CliError> {
    let bad = |why: &str| {
        CliError::usage(format!(
            "invalid header `{text}`: {why}; use -H 'Name: value'"
        ))
    };
    let (name, value) = text.split_once(':').ok_or_else(|| bad("missing `:`"))?;
    let name = HeaderName::try_from(name.trim()).map_err(|_| bad("bad header name"))?;
    let value = HeaderValue::try_from(value.trim()).map_err(|_| bad("bad header value"))?;
    Ok((name, value))
}

/// The `-v` description of how a response was served.
fn describe(response: &Response) -> String {
    let served = response.served();
    let mut out = format!(
        "* {} from {}/{} in {} (cache {})\n",
        response.status(),
        served.cluster(),
        served.instance(),
        millis(served.elapsed()),
        served.cache().as_str()
    );
    for (i, a) in served.attempts().iter().enumerate() {
        out.push_str(&format!(
            "*   attempt {}: {}/{} {}{} in {}\n",
            i + 1,
            a.cluster(),
            a.instance(),
            a.outcome().as_str(),
            a.status()
                .map_or(String::new(), |s| format!(" {}", s.as_u16())),
            millis(a.duration())
        ));
    }
    out
}

/// The `--json` document.
#[derive(Debug, Serialize)]
struct CallJson {
    status: u16,
    headers: Vec<(String, String)>,
    body: serde_json::Value,
    served: ServedJson,
}

#[derive(Debug, Serialize)]
struct ServedJson {
    cluster: String,
    instance: String,
    cache: &'static str,
    elapsed_ms: f64,
    attempts: Vec<AttemptJson>,
}

#[derive(Debug, Serialize)]
struct AttemptJson {
    cluster: String,
    instance: String,
    outcome: &'static str,
    status: Option<u16>,
    duration_ms: f64,
}

impl From<&Response> for CallJson {
    fn from(r: &Response) -> Self {
        let body = serde_json::from_slice(r.body()).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(r.body()).into_owned())
        });
        Self {
            status: r.status().as_u16(),
            headers: r
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body,
            served: served_json(r.served()),
        }
    }
}

fn served_json(s: &ServedBy) -> ServedJson {
    ServedJson {
        cluster: s.cluster().to_owned(),
        instance: s.instance().to_owned(),
        cache: s.cache().as_str(),
        elapsed_ms: s.elapsed().as_secs_f64() * 1000.0,
        attempts: s
            .attempts()
            .iter()
            .map(|a| AttemptJson {
                cluster: a.cluster().to_owned(),
                instance: a.instance().to_owned(),
                outcome: a.outcome().as_str(),
                status: a.status().map(|s| s.as_u16()),
                duration_ms: a.duration().as_secs_f64() * 1000.0,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse() {
        let (n, v) = parse_header("X-Trace:  abc ").expect("valid header");
        assert_eq!(n.as_str(), "x-trace");
        assert_eq!(v, "abc");
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }
}
