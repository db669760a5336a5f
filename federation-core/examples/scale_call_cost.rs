//! CPU per call of a client that knows many services, for profiling benchmark S5.
//!
//! The scale scenario measures a 1,000-service client against a 10-service one in the same
//! process, alongside the doubles and the other client's watches; a difference there can come
//! from the call path, from the runtime, or from the background. This program builds one client
//! per process, against two testkit Consul doubles holding `services` × `instances` per cluster,
//! watches every route (`wait_ready`) and calls one service in a loop, so `perf stat` or
//! `perf record` see one variant alone:
//!
//! ```sh
//! cargo build --release -p federation-core --example scale_call_cost
//! perf stat -e task-clock,context-switches target/release/examples/scale_call_cost 1000 20 20000 1 5
//! perf stat -e task-clock,context-switches target/release/examples/scale_call_cost 10 20 20000 1 5
//! ```
//!
//! Arguments: services per cluster, instances per service, calls, concurrency, the watches'
//! blocking wait in seconds (a long wait keeps the watches' answers out of the measurement).
//! It prints the process CPU per call (user + system, `/proc/self/stat`), p50 / p99, and the
//! process CPU spent while idle for as long as the calls took (the background: watches, doubles).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use federation_core::client::FederatedServiceClient;
use federation_core::config::{Config, ConfigFormat};
use federation_testkit::consul::{ConsulDouble, ConsulOptions, ServiceRegistration};
use federation_testkit::instance::{Identity, ServiceInstance};
use support::cpu_ticks;

mod support;

const CLUSTERS: [&str; 2] = ["scale-a", "scale-b"];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let services = support::number(&args, 1, "services", 1000) as usize;
    let instances = support::number(&args, 2, "instances per service", 20) as usize;
    let calls = support::number(&args, 3, "calls", 20_000) as usize;
    let concurrency = support::number(&args, 4, "concurrency", 1).max(1) as usize;
    let wait = support::number(&args, 5, "blocking wait (s)", 5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(services, instances, calls, concurrency, wait));
}

async fn run(services: usize, instances: usize, calls: usize, concurrency: usize, wait: u64) {
    let mut servers = Vec::new();
    for i in 0..3 {
        let identity = Identity::new("bench", "svc-0000", format!("svc-0000-{i}"));
        let server = ServiceInstance::start(identity).await.expect("instance");
        server.set_echo_propagation(false);
        servers.push(server);
    }
    let mut doubles = Vec::new();
    for dc in CLUSTERS {
        let double = ConsulDouble::start(ConsulOptions::new(dc))
            .await
            .expect("double");
        for i in 0..services {
            for k in 0..instances {
                let port = if i == 0 {
                    servers[k % servers.len()].port()
                } else {
                    9
                };
                double
                    .register(ServiceRegistration {
                        id: Some(format!("svc-{i:04}-{k:02}")),
                        name: format!("svc-{i:04}"),
                        address: "127.0.0.1".to_owned(),
                        port,
                        ..ServiceRegistration::default()
                    })
                    .expect("register");
            }
        }
        doubles.push(double);
    }
    let mut yaml = String::from("clusters:\n");
    for (dc, double) in CLUSTERS.iter().zip(&doubles) {
        let _ = writeln!(
            yaml,
            "  {dc}:\n    consul: {{ address: \"{}\", datacenter: {dc}, wait: {wait}s }}",
            double.url()
        );
    }
    yaml.push_str("services:\n");
    for i in 0..services {
        let _ = writeln!(
            yaml,
            "  svc-{i:04}:\n    prefer: {a}\n    names: {{ {a}: svc-{i:04}, {b}: svc-{i:04} }}",
            a = CLUSTERS[0],
            b = CLUSTERS[1]
        );
    }
    let config = Config::parse(&yaml, ConfigFormat::Yaml).expect("config");
    let client = FederatedServiceClient::builder()
        .config(config)
        .lazy_discovery_watches(true)
        .build()
        .expect("client");
    client
        .wait_ready(Duration::from_secs(60))
        .await
        .expect("ready");
    for _ in 0..500 {
        let _ = client.get("svc-0000", "/bench").send().await;
    }
    let before = cpu_ticks();
    let started = Instant::now();
    let mut workers = Vec::new();
    let per_worker = calls / concurrency;
    for _ in 0..concurrency {
        let client = client.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                let sent = Instant::now();
                let ok = client
                    .get("svc-0000", "/bench")
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                assert!(ok, "a call failed");
                mine.push(sent.elapsed());
            }
            mine
        }));
    }
    let mut latencies = Vec::with_capacity(calls);
    for w in workers {
        latencies.extend(w.await.expect("worker"));
    }
    let wall = started.elapsed();
    let ticks = cpu_ticks() - before;
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let idle_before = cpu_ticks();
    tokio::time::sleep(wall).await;
    let idle = cpu_ticks() - idle_before;
    let n = latencies.len() as f64;
    println!(
        "services={services} instances={instances} c={concurrency} wait={wait}s: {} calls in {wall:?} \
         ({:.0}/s), CPU {:.1} µs/call, p50 {:?}, p99 {:?}; idle for as long: CPU {:.1} µs per call-time",
        latencies.len(),
        n / wall.as_secs_f64(),
        ticks as f64 * 10_000.0 / n,
        at(0.5),
        at(0.99),
        idle as f64 * 10_000.0 / n,
    );
}
