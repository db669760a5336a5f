//! A scale client in its own process, so its memory is measured alone.
//!
//! The Consul doubles, the upstream servers and the load generator all allocate in the bench
//! process; measuring a client's memory there would count their growth (and whatever the
//! allocator keeps after they free) as the client's. So the bench starts this binary again with
//! [`CLIENT_ENV`] set: the child reads its own `VmRSS` before building the client and after
//! discovery settled, prints one result line, and then idles (its watches keep polling) until
//! the bench kills it, which lets the bench count the idle Consul requests of one client.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::scale_fixture;
use crate::exit::{CliError, Exit};

/// Environment variable that turns `federation bench` into a scale client: `"<url-a> <url-b>
/// <services> <wait-secs> <mode>"`, mode `all` (wait until every route answered) or `call:<k>`
/// (call the first k services once each).
const CLIENT_ENV: &str = "FEDERATION_BENCH_SCALE_CLIENT";
/// Optional command the child runs under (e.g. `heaptrack -o /tmp/s1`), split on whitespace:
/// profiles the client alone. Lines the wrapper prints before the result are skipped.
const WRAP_ENV: &str = "FEDERATION_BENCH_SCALE_CLIENT_WRAP";
/// How long discovery may take before the child gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What one child measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientResult {
    /// `VmRSS` before the client was built, KiB.
    pub rss_before: u64,
    /// `VmRSS` after discovery settled, KiB.
    pub rss_after: u64,
    /// Build → ready (every route answered) or → the last first call answered.
    pub ready: Duration,
}

/// A running child; killed (by its own pid) and reaped when dropped.
pub struct ClientProcess {
    child: Child,
    /// Its measurement.
    pub result: ClientResult,
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a child client and waits for its result line.
///
/// # Errors
/// When it cannot start, or exits or prints something else instead of its result.
pub async fn spawn(
    urls: &[String],
    services: usize,
    wait_secs: u64,
    mode: &str,
) -> Result<ClientProcess, CliError> {
    let fail = |what: String| CliError::failure(format!("bench: scale client ({mode}): {what}"));
    let exe = std::env::current_exe().map_err(|e| fail(format!("own path: {e}")))?;
    let spec = format!("{} {} {services} {wait_secs} {mode}", urls[0], urls[1]);
    let wrap = std::env::var(WRAP_ENV).unwrap_or_default();
    let mut command = wrap.split_whitespace();
    let mut launcher = match command.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(command).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let mut child = launcher
        .args(["bench", "--scenario", "scale"])
        .env(CLIENT_ENV, spec)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| fail(format!("spawn: {e}")))?;
    let stdout = child.stdout.take();
    let mut process = ClientProcess {
        child,
        result: ClientResult::default(),
    };
    // The read blocks until the child is ready: keep it off the runtime's workers, which serve
    // the Consul doubles the child is talking to.
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        if let Some(out) = stdout {
            let mut out = BufReader::new(out);
            // A wrapper's own lines come first; the child's result line ends the read.
            while out.read_line(&mut line).is_ok_and(|n| n > 0)
                && !line.starts_with("scale-client ")
            {
                line.clear();
            }
        }
        line
    })
    .await
    .unwrap_or_default();
    let fields: Vec<u64> = line
        .strip_prefix("scale-client ")
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let [rss_before, rss_after, ready_us] = fields[..] else {
        return Err(fail(format!("unexpected output {line:?}")));
    };
    process.result = ClientResult {
        rss_before,
        rss_after,
        ready: Duration::from_micros(ready_us),
    };
    Ok(process)
}

/// When [`CLIENT_ENV`] is set: runs as a scale client and never returns while healthy.
pub async fn client_mode() -> Option<Result<Exit, CliError>> {
    let spec = std::env::var(CLIENT_ENV).ok()?;
    Some(serve(&spec).await)
}

async fn serve(spec: &str) -> Result<Exit, CliError> {
    let bad = || {
        CliError::usage(format!(
            "{CLIENT_ENV}: expected `<url-a> <url-b> <services> <wait> <mode>`, got {spec:?}"
        ))
    };
    let parts: Vec<&str> = spec.split_whitespace().collect();
    let [url_a, url_b, services, wait, mode] = parts[..] else {
        return Err(bad());
    };
    let services: usize = services.parse().map_err(|_| bad())?;
    let wait: u64 = wait.parse().map_err(|_| bad())?;
    let urls = [url_a.to_owned(), url_b.to_owned()];
    let rss_before = scale_fixture::rss_kib().unwrap_or(0);
    let started = Instant::now();
    let config = scale_fixture::config(&urls, services, wait)?;
    let client = scale_fixture::lazy_client(config)?;
    if mode == "all" {
        client
            .wait_ready(READY_TIMEOUT)
            .await
            .map_err(|e| CliError::failure(format!("scale client: not ready: {e}")))?;
    } else {
        let calls: usize = mode
            .strip_prefix("call:")
            .and_then(|k| k.parse().ok())
            .ok_or_else(bad)?;
        for i in 0..calls.min(services) {
            let name = scale_fixture::service_name(i);
            client
                .get(&name, "/bench")
                .send()
                .await
                .map_err(|e| CliError::failure(format!("scale client: call {name}: {e}")))?;
        }
    }
    let ready = started.elapsed();
    // Let the answers' buffers be dropped and the watchers settle into their blocking queries.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = scale_fixture::rss_kib().unwrap_or(0);
    println!(
        "scale-client {rss_before} {rss_after} {}",
        ready.as_micros()
    );
    if std::env::var_os(WRAP_ENV).is_some() {
        // Under a profiler: exit at once, without dropping anything, so what the profiler
        // reports as not freed is exactly what the settled client holds.
        std::process::exit(0);
    }
    // Idle (watches keep running) until the bench kills this process.
    std::future::pending::<()>().await;
    Ok(Exit::Ok)
}
