//! Client CPU per call, SDK against plain reqwest, for profiling the hot path (BENCHMARKS.md G1).
//!
//! Throughput on a shared 2-core machine swings with whatever else runs; instruction counts do
//! not. By default this program runs one variant per process so `perf stat` can count it:
//!
//! ```sh
//! cargo build --release -p federation-core --example call_cost
//! perf stat -e instructions:u,instructions:k target/release/examples/call_cost sdk 20000 64
//! perf stat -e instructions:u,instructions:k target/release/examples/call_cost reqwest 20000 64
//! ```
//!
//! Arguments: variant (or several joined by `+`, e.g. `floor+sdk`: each in turn in one process,
//! 3 rounds) (`sdk`, `reqwest`, `hyper`: hyper-util's pooled client alone, or `floor`:
//! raw `hyper::client::conn::http1` connections in a per-instance idle list, as the bench's
//! `hyper floor` variant), number of calls, concurrency, and optionally extra
//! YAML lines for the service (`"    load_balancing: round_robin"`). Three loopback testkit
//! instances serve both variants in the same process (their cost is the same for both, apart
//! from the larger body the SDK's propagated headers produce). It also prints the process CPU
//! time per call (user + system, from `/proc/self/stat`, and each apart), the context switches
//! per call of all its threads (`/proc/self/task/*/status`) and the p50/p99 latency of the
//! calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use federation_core::client::FederatedServiceClient;
use federation_core::config::{Config, ConfigFormat};
use federation_testkit::instance::{Identity, ServiceInstance};
use support::cpu_ticks_split;

mod support;

fn main() {
    support::since_start();
    let args: Vec<String> = std::env::args().collect();
    let variants = variants(args.get(1).map_or("sdk", String::as_str));
    let calls = support::number(&args, 2, "calls", 20_000) as usize;
    let concurrency = support::number(&args, 3, "concurrency", 1) as usize;
    // Optional: extra YAML lines for the service (e.g. `    load_balancing: round_robin`).
    let extra = args.get(4).cloned().unwrap_or_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(&variants, calls, concurrency.max(1), &extra));
}

/// The variants of argument 1: one, or a `+`-joined list (`sdk+floor`) run in turn in one
/// process, 3 rounds, so a comparison also sees what they do to each other (the bench runs
/// its variants that way, each leaving its connections open).
fn variants(arg: &str) -> Vec<&'static str> {
    const VARIANTS: [&str; 4] = ["sdk", "reqwest", "hyper", "floor"];
    arg.split('+')
        .map(|one| {
            let chosen = support::choice(&[String::new(), one.to_owned()], 1, "variant", &VARIANTS);
            VARIANTS.into_iter().find(|v| *v == chosen).unwrap_or("sdk")
        })
        .collect()
}

async fn run(kinds: &[&'static str], calls: usize, concurrency: usize, extra: &str) {
    let mut instances = Vec::new();
    for i in 0..3 {
        let identity = Identity::new("bench", "bench-svc", format!("bench-svc-{i}"));
        let instance = ServiceInstance::start(identity).await.expect("instance");
        instance.set_echo_propagation(false);
        instances.push(instance);
    }
    let mut yaml = String::from("clusters:\n  bench:\n    static:\n      bench-svc:\n");
    for (i, instance) in instances.iter().enumerate() {
        yaml.push_str(&format!(
            "        - {{ id: bench-svc-{i}, address: 127.0.0.1, port: {} }}\n",
            instance.port()
        ));
    }
    yaml.push_str("services:\n  bench:\n    names: { bench: bench-svc }\n");
    if !extra.is_empty() {
        yaml.push_str(extra);
        yaml.push('\n');
    }
    let config = Config::parse(&yaml, ConfigFormat::Yaml).expect("config");
    let client = FederatedServiceClient::from_config(config).expect("client");
    let urls: Arc<[String]> = instances
        .iter()
        .map(|i| format!("{}/bench", i.url().trim_end_matches('/')))
        .collect();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let plain = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .pool_max_idle_per_host(1024)
        .pool_idle_timeout(Duration::from_secs(90))
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest");
    let hyper_client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    > = {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector)
    };
    let uris: Arc<[http::Uri]> = urls.iter().map(|u| u.parse().expect("uri")).collect();
    let floor_pools: Arc<[floor::Upstream]> = instances
        .iter()
        .map(|i| floor::Upstream::new(i.port()))
        .collect();
    let next = Arc::new(AtomicUsize::new(0));
    let one = {
        let client = client.clone();
        let plain = plain.clone();
        let urls = Arc::clone(&urls);
        let next = Arc::clone(&next);
        move |variant: &str| {
            let raw = variant == "hyper";
            let sdk = variant == "sdk";
            let floor = variant == "floor";
            let client = client.clone();
            let plain = plain.clone();
            let urls = Arc::clone(&urls);
            let hyper_client = hyper_client.clone();
            let uris = Arc::clone(&uris);
            let floor_pools = Arc::clone(&floor_pools);
            let i = next.fetch_add(1, Ordering::Relaxed);
            async move {
                if floor {
                    floor_pools[i % floor_pools.len()].get().await
                } else if raw {
                    use http_body_util::BodyExt;
                    let req = http::Request::get(uris[i % uris.len()].clone())
                        .body(http_body_util::Full::new(bytes::Bytes::new()))
                        .expect("request");
                    match hyper_client.request(req).await {
                        Ok(r) => {
                            let ok = r.status().is_success();
                            r.into_body().collect().await.is_ok() && ok
                        }
                        Err(_) => false,
                    }
                } else if sdk {
                    client
                        .get("bench", "/bench")
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
                } else {
                    match plain.get(&urls[i % urls.len()]).send().await {
                        Ok(r) => {
                            let ok = r.status().is_success();
                            r.bytes().await.is_ok() && ok
                        }
                        Err(_) => false,
                    }
                }
            }
        }
    };
    // Warm-up: connections, discovery, allocator.
    for kind in kinds {
        for _ in 0..500 {
            one(kind).await;
        }
    }
    let rounds = if kinds.len() > 1 { 3 } else { 1 };
    for _ in 0..rounds {
        for kind in kinds {
            measure(kind, &one, calls, concurrency, &instances).await;
        }
    }
}

/// One measured run of `variant`: `calls` calls from `concurrency` workers.
async fn measure<F, Fut>(
    variant: &'static str,
    one: &F,
    calls: usize,
    concurrency: usize,
    instances: &[ServiceInstance],
) where
    F: Fn(&'static str) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(calls)));
    let before = cpu_ticks_split();
    let switches_before = support::context_switches();
    let started = std::time::Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let one = one.clone();
        let done = Arc::clone(&done);
        let failed = Arc::clone(&failed);
        let latencies = Arc::clone(&latencies);
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while done.fetch_add(1, Ordering::Relaxed) < calls {
                let sent = std::time::Instant::now();
                if !one(variant).await {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                mine.push(sent.elapsed());
            }
            if let Ok(mut all) = latencies.lock() {
                all.extend(mine);
            }
        }));
    }
    for w in workers {
        w.await.expect("worker");
    }
    let wall = started.elapsed();
    let mut sorted = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    sorted.sort_unstable();
    let at = |q: f64| {
        let i = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
        sorted.get(i).copied().unwrap_or_default()
    };
    let after = cpu_ticks_split();
    let (user, system) = (after.0 - before.0, after.1 - before.1);
    let ticks = user + system;
    let (voluntary, involuntary) = support::context_switches();
    let per_call = |n: u64, m: u64| n.saturating_sub(m) as f64 / calls as f64;
    let switches = format!(
        "switches/call {:.3} voluntary {:.3} involuntary",
        per_call(voluntary, switches_before.0),
        per_call(involuntary, switches_before.1)
    );
    // Connection parity: how many connections each instance holds open, and its share of calls.
    let spread: Vec<String> = instances
        .iter()
        .map(|i| format!("{} conns / {} reqs", i.connections(), i.requests()))
        .collect();
    // Clock ticks are 10 ms on Linux.
    let cpu_us = ticks as f64 * 10_000.0 / calls as f64;
    let user_us = user as f64 * 10_000.0 / calls as f64;
    let system_us = system as f64 * 10_000.0 / calls as f64;
    println!(
        "[{:.2}s] {variant}: {calls} calls at c={concurrency} in {wall:?} ({:.0}/s), {} failed, CPU {cpu_us:.1} µs/call (user {user_us:.1}, system {system_us:.1}), \
         {switches}, latency p50 {:?} p99 {:?}; instances: {}",
        support::since_start().as_secs_f64(),
        calls as f64 / wall.as_secs_f64(),
        failed.load(Ordering::Relaxed),
        at(0.5),
        at(0.99),
        spread.join(", ")
    );
}

/// The bench's raw-hyper floor (`federation-cli/src/bench/floor.rs`), in one process with the
/// instances like the other variants.
mod floor {
    use std::sync::Mutex;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper::client::conn::http1::{self, SendRequest};
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpStream;

    type Sender = SendRequest<Empty<Bytes>>;

    pub struct Upstream {
        addr: String,
        idle: Mutex<Vec<Sender>>,
    }

    impl Upstream {
        pub fn new(port: u16) -> Self {
            Self {
                addr: format!("127.0.0.1:{port}"),
                idle: Mutex::new(Vec::new()),
            }
        }

        pub async fn get(&self) -> bool {
            let idle = self.idle.lock().expect("idle").pop();
            let mut sender = match idle {
                Some(sender) => sender,
                None => {
                    let stream = TcpStream::connect(&self.addr).await.expect("connect");
                    stream.set_nodelay(true).expect("nodelay");
                    let (sender, conn) = http1::handshake(TokioIo::new(stream))
                        .await
                        .expect("handshake");
                    tokio::spawn(conn);
                    sender
                }
            };
            let request = hyper::Request::get("/bench")
                .header(hyper::header::HOST, self.addr.as_str())
                .body(Empty::new())
                .expect("request");
            if sender.ready().await.is_err() {
                return false;
            }
            let Ok(response) = sender.send_request(request).await else {
                return false;
            };
            let ok = response.status().is_success();
            let read = response.into_body().collect().await.is_ok();
            self.idle.lock().expect("idle").push(sender);
            ok && read
        }
    }
}
