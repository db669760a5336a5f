//! Every violation a long chaos run found, replayed as a deterministic script.
//!
//! A chaos run finds a failure at some step of some seed after minutes, depending on timing; a
//! fix is only proven when the state of that step is rebuilt on purpose and checked on every
//! run. Each test here sets up the model state of one violation with waits on states (the
//! client's `health()`, the Consul double's passing count), never on timing luck.
//!
//! Step 768 of seed 2026 (issue 24): alive [false, true, false, true, true, true], normal [true,
//! true, true, true, true, false] (instances 0-2 zervigo via Consul, 3-5 looma static). Instance
//! 1 had been alive and normal for over 9 s and three instances answered, yet 23 of 24 calls
//! failed with `no_healthy_instance` and one with 503: every answering instance was still held
//! out by its breaker after earlier failure phases. The breaker periods are long here (20 s up
//! to 60 s, the product's default cap) so the held-out state lasts for the whole script on any
//! machine, where the chaos run's 1–3 s periods needed an unlucky interleaving.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;

use federation_conformance::chaos::{self, schedule::Rng};
use federation_conformance::driver::{CallRecord, Driver, InstanceRef, World};
use federation_conformance::schema::{BehaviorSpec, CallSpec};
use federation_conformance::sdk_driver::SdkDriver;
use federation_conformance::testkit_world::TestkitWorld;

fn request() -> CallSpec {
    chaos::request(None)
}

fn status(code: Option<u16>) -> BehaviorSpec {
    BehaviorSpec {
        status: code,
        ..BehaviorSpec::default()
    }
}

/// One chaos step: 24 calls over 4 callers.
async fn step(driver: &SdkDriver) -> Vec<CallRecord> {
    let workers = (0..4).map(|_| async {
        let mut out = Vec::new();
        for _ in 0..6 {
            out.push(driver.call(&request()).await);
        }
        out
    });
    join_all(workers).await.into_iter().flatten().collect()
}

/// Breaker state of each of `instances` in the client's health snapshot.
fn breakers(driver: &SdkDriver, instances: &[&InstanceRef]) -> Vec<String> {
    let health = driver.health();
    instances
        .iter()
        .map(|r| {
            let clusters = health["services"][0]["clusters"].as_array().cloned();
            clusters
                .unwrap_or_default()
                .iter()
                .filter(|c| c["cluster"] == r.cluster.as_str())
                .flat_map(|c| c["instances"].as_array().cloned().unwrap_or_default())
                .find(|i| i["id"].as_str().is_some_and(|id| id.ends_with(&r.id)))
                .map(|i| i["breaker"].as_str().unwrap_or("?").to_owned())
                .unwrap_or_else(|| "missing".to_owned())
        })
        .collect()
}

/// Calls until the breakers of `instances` are all open; fails after 15 s.
async fn eject(driver: &SdkDriver, instances: &[&InstanceRef]) {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let states = breakers(driver, instances);
        if states.iter().all(|s| s == "open") {
            return;
        }
        assert!(
            Instant::now() < until,
            "breakers never all opened: {states:?}"
        );
        driver.call(&request()).await;
    }
}

/// The world and client of the chaos run, with long breaker periods.
async fn chaos_world() -> (TestkitWorld, SdkDriver, Vec<InstanceRef>) {
    let world = TestkitWorld::start(&chaos::topology())
        .await
        .expect("world");
    let mut config = chaos::client_config(&world).expect("config");
    config["defaults"]["breaker"] = json!({
        "consecutive_failures": 5, "open_for": "20s", "max_open_for": "60s"
    });
    let driver = SdkDriver::from_json(&config).expect("client");
    let all = world.instances();
    let warm_until = Instant::now() + Duration::from_secs(10);
    while !driver.call(&request()).await.succeeded() {
        assert!(Instant::now() < warm_until, "the chaos world never served");
    }
    (world, driver, all)
}

/// Step 768 of seed 2026: the held-out instances answer again, so every call must succeed
/// (red before panic routing: `no_healthy_instance`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_2026_step_768_answering_instances_held_out_by_breakers() {
    // The fault schedule up to step 768 is what the seed draws; check the replay is of that run.
    let mut model =
        chaos::schedule::Model::new(vec![0, 0, 0, 1, 1, 1], vec![true, false], Instant::now());
    let mut rng = Rng::new(2026);
    for _ in 0..768 {
        if rng.chance(0.35) {
            let fault = model.draw(&mut rng);
            model.apply(&fault, Instant::now());
        }
    }
    assert_eq!(model.alive, [false, true, false, true, true, true]);
    assert_eq!(model.normal, [true, true, true, true, true, false]);

    let (world, driver, all) = chaos_world().await;
    // Zervigo 0 and 2 dead and gone from Consul's passing list.
    world.kill(&all[0]).await.expect("kill");
    world.kill(&all[2]).await.expect("kill");
    world
        .wait_passing("zervigo", "user-service", 1, Duration::from_secs(10))
        .await
        .expect("Consul drops the dead instances");
    // The earlier failure phases: every live instance answers 503 until its breaker opens.
    let live: Vec<&InstanceRef> = [1, 3, 4, 5].iter().map(|&i| &all[i]).collect();
    for r in &live {
        world.set_behavior(r, &status(Some(503))).expect("503");
    }
    eject(&driver, &live).await;
    // Step 768: 1, 3 and 4 answer again, 5 still answers 503; their breakers are still open.
    for r in &live[..3] {
        world.set_behavior(r, &status(None)).expect("heal");
    }
    let records = step(&driver).await;
    let failed: Vec<_> = records
        .iter()
        .filter(|r| !r.succeeded())
        .map(|r| (r.status, r.error_kind.clone(), r.error.clone()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of 24 calls lost while instances answered: {failed:?}",
        failed.len()
    );
    // A panic call that succeeded closed the breaker of the instance that answered it.
    let states = breakers(&driver, &live[..3]);
    assert!(states.iter().any(|s| s == "closed"), "{states:?}");
    drop(driver);
    world.shutdown().await;
}

/// The other half of the policy: a fleet that is really down still fails fast, with
/// `no_healthy_instance` and no attempt, although every breaker is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_really_down_still_fails_fast() {
    let (world, driver, all) = chaos_world().await;
    let looma: Vec<&InstanceRef> = all.iter().filter(|r| r.cluster == "looma").collect();
    // Zervigo gone from Consul, looma (static: always listed) refusing connections.
    for r in &all {
        world.kill(r).await.expect("kill");
    }
    world
        .wait_passing("zervigo", "user-service", 0, Duration::from_secs(10))
        .await
        .expect("Consul drops the dead instances");
    eject(&driver, &looma).await;
    for record in step(&driver).await {
        assert_eq!(
            record.error_kind.as_deref(),
            Some("no_healthy_instance"),
            "{record:?}"
        );
        assert!(record.attempts.is_empty(), "{record:?}");
        assert!(record.elapsed < Duration::from_millis(100), "{record:?}");
    }
    drop(driver);
    world.shutdown().await;
}
