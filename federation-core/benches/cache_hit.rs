//! The cache-hit path against a bare moka `get`, in the same run (BENCHMARKS.md G3: a hit should
//! cost at most 2x a bare moka get).
//!
//! Run with `cargo bench -p federation-core --bench cache_hit` (add `-- --sample-size 100` to time
//! batches of 100 as `federation bench --scenario cache` does; the interleaved harness figure is
//! the one docs/BENCHMARKS.md judges G3 by). Every benchmark drives its future
//! with `now_or_never` (a hit never waits), so executor overhead is the same near-zero for all.
//!
//! - `bare_moka_get`: `moka::future::Cache<String, Arc<_>>::get` with a prebuilt key;
//! - `client_call_cache_hit`: a full in-process `FederatedServiceClient` call (request builder,
//!   span, key, lookup, metrics, `Response`) answered from the cache; a loopback testkit
//!   instance served the first call only.
//!
//! (The cache's lookup and key functions are internal since issue 17; their own micro-benchmarks
//! went with them, and the hit path is measured through the public call.)

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use federation_core::cache::FetchOutcome;
use federation_core::config::model::CachePolicy;
use futures_util::FutureExt;
use http::HeaderMap;

fn main() {
    divan::main();
}

const PATH: &str = "/api/v1/users/42";
const QUERY: &str = "fields=name,email&expand=company";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Drives a future that is expected to be ready at once; falls back to the runtime otherwise.
fn ready<F: std::future::Future>(rt: &tokio::runtime::Runtime, fut: F) -> F::Output {
    let mut fut = Box::pin(fut);
    match (&mut fut).now_or_never() {
        Some(out) => out,
        None => rt.block_on(fut),
    }
}

fn outcome() -> FetchOutcome {
    FetchOutcome::new(200, HeaderMap::new(), Bytes::from_static(&[b'x'; 512]))
}

#[divan::bench]
fn bare_moka_get(bencher: divan::Bencher<'_, '_>) {
    let rt = runtime();
    let cache: moka::future::Cache<String, Arc<Bytes>> = moka::future::Cache::new(10_000);
    let key = format!("{PATH} GET - {QUERY}");
    rt.block_on(cache.insert(key.clone(), Arc::new(outcome().body)));
    bencher.bench_local(|| ready(&rt, cache.get(divan::black_box(&key))));
}

#[divan::bench]
fn client_call_cache_hit(bencher: divan::Bencher<'_, '_>) {
    use federation_core::client::{CacheStatus, FederatedServiceClient};
    use federation_core::config::StaticInstance;
    use federation_core::config::{ClusterConfig, Config, DiscoverySource, Policy, ServiceConfig};
    use federation_testkit::instance::{Identity, ServiceInstance};

    let rt = runtime();
    let instance = rt
        .block_on(ServiceInstance::start(Identity::new(
            "zervigo", "user", "u1",
        )))
        .expect("instance starts");
    let mut services = std::collections::BTreeMap::new();
    services.insert(
        "user".to_owned(),
        vec![StaticInstance {
            id: Some("u1".to_owned()),
            address: "127.0.0.1".to_owned(),
            port: instance.port(),
            tags: Vec::new(),
            meta: std::collections::BTreeMap::new(),
            weight: 1,
        }],
    );
    let config = Config {
        clusters: vec![ClusterConfig::new(
            "zervigo",
            DiscoverySource::Static(services),
        )],
        services: vec![ServiceConfig::new("user")],
        defaults: Policy {
            cache: Some(CachePolicy {
                ttl: Duration::from_secs(3600),
                ..CachePolicy::default()
            }),
            ..Policy::default()
        },
        sync: None,
        discovery: Default::default(),
    };
    let client = rt
        .block_on(async { FederatedServiceClient::from_config(config) })
        .expect("client");
    let path = format!("{PATH}?{QUERY}");
    rt.block_on(client.get("user", &path).send())
        .expect("first call fills the cache");
    bencher.bench_local(|| {
        let response = ready(&rt, client.get("user", divan::black_box(&path)).send()).expect("hit");
        debug_assert_eq!(response.served().cache(), CacheStatus::Hit);
        response
    });
}
