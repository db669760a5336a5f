//! Weighted and canary splits through the whole pipeline against loopback instances: a sticky
//! user stays on one arm, a per-call tag override wins over the split, an arm that is empty or
//! fully ejected falls back to the other arm and the response and metrics say so, and an arm
//! naming a cluster takes its calls there.

mod pipeline_support;

use federation_core::client::{FederatedServiceClient, Response};
use federation_core::config::{SplitArm, SplitConfig};
use federation_testkit::instance::{Behavior, ServiceInstance};
use pipeline_support::{cluster, cluster_with, config, entry, service, start};

fn arm(name: &str, tags: &[&str], cluster: Option<&str>, weight: u32) -> SplitArm {
    SplitArm {
        name: name.to_owned(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        cluster: cluster.map(str::to_owned),
        weight,
    }
}

/// Looma serves `ai` from two `model=v2` instances and one `model=v3` instance; the split
/// sends `canary_weight` percent to `model=<canary_model>`, sticky by `X-User-Id`.
async fn canary_world(
    canary_model: &str,
    canary_weight: u32,
) -> (Vec<ServiceInstance>, FederatedServiceClient) {
    let z = start("looma", "ai-service", 3).await;
    let mut entries: Vec<_> = z.iter().map(entry).collect();
    for (e, model) in entries.iter_mut().zip(["model=v2", "model=v2", "model=v3"]) {
        e.tags = vec![model.to_owned()];
    }
    let mut svc = service("ai", &[("looma", "ai-service")], None);
    let canary = format!("model={canary_model}");
    svc.split = Some(SplitConfig {
        sticky_header: Some("X-User-Id".to_owned()),
        arms: vec![
            arm("stable", &["model=v2"], None, 100 - canary_weight),
            arm("canary", &[canary.as_str()], None, canary_weight),
        ],
    });
    let cfg = config(
        vec![cluster_with("looma", "ai-service", entries)],
        vec![svc],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    (z, client)
}

async fn as_user(client: &FederatedServiceClient, user: u32) -> Response {
    client
        .get("ai", "/infer")
        .header("X-User-Id", format!("user-{user}"))
        .send()
        .await
        .expect("a split call is answered")
}

fn arm_of(r: &Response) -> String {
    r.served().split().expect("split service").arm().to_owned()
}

/// The first user the split assigns to `wanted`.
async fn user_on(client: &FederatedServiceClient, wanted: &str) -> u32 {
    for user in 0..200 {
        if arm_of(&as_user(client, user).await) == wanted {
            return user;
        }
    }
    panic!("no user of 200 landed on {wanted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_users_stay_on_their_arm_and_per_call_tags_win() {
    let (z, client) = canary_world("v3", 30).await;
    let canary_instance = &z[2].identity().instance;
    let mut on_canary = 0;
    for user in 0..40 {
        let first = as_user(&client, user).await;
        let arm = arm_of(&first);
        for _ in 0..3 {
            let again = as_user(&client, user).await;
            assert_eq!(arm_of(&again), arm, "user {user} changed arm");
            let split = again.served().split().expect("split");
            assert_eq!(split.served_arm(), Some(arm.as_str()));
            assert_eq!(split.fallback(), None);
            let on_v3 = again.served().instance() == canary_instance;
            assert_eq!(
                on_v3,
                arm == "canary",
                "user {user} on {arm} served by the wrong model"
            );
        }
        on_canary += usize::from(arm == "canary");
    }
    assert!(
        (4..=24).contains(&on_canary),
        "{on_canary} of 40 users on a 30 % canary"
    );

    let stable_user = user_on(&client, "stable").await;
    let overridden = client
        .get("ai", "/infer")
        .header("X-User-Id", format!("user-{stable_user}"))
        .tags(["model=v3"])
        .send()
        .await
        .expect("override");
    assert_eq!(overridden.served().instance(), canary_instance);
    assert!(
        overridden.served().split().is_none(),
        "the override bypasses the split"
    );
    let text = client.metrics_text();
    assert!(
        text.contains("federation_split_calls_total{service=\"ai\",arm=\"canary\"}"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_canary_falls_back_to_the_stable_arm_and_says_so() {
    let (z, client) = canary_world("v9", 50).await;
    let user = user_on(&client, "canary").await;
    let r = as_user(&client, user).await;
    let split = r.served().split().expect("split");
    assert_eq!(split.arm(), "canary");
    assert_eq!(split.served_arm(), Some("stable"));
    let why = split.fallback().expect("fallback reason");
    assert!(
        why.starts_with("empty: looma: no routable instance"),
        "{why}"
    );
    assert_ne!(r.served().instance(), z[2].identity().instance);
    let text = client.metrics_text();
    let series = "federation_split_fallbacks_total{service=\"ai\",arm=\"canary\",reason=\"empty\"}";
    assert!(text.contains(series), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fully_ejected_canary_falls_back_to_the_stable_arm() {
    let (z, client) = canary_world("v3", 50).await;
    let user = user_on(&client, "canary").await;
    z[2].set_behavior(Behavior::status(503));
    // Each failed canary call counts against the only v3 instance until its breaker opens.
    let mut fell_back = None;
    for _ in 0..20 {
        let r = client
            .get("ai", "/infer")
            .header("X-User-Id", format!("user-{user}"))
            .send()
            .await;
        if let Ok(r) = r
            && let Some(split) = r.served().split()
            && split.fallback().is_some()
        {
            fell_back = Some(r);
            break;
        }
    }
    let r = fell_back.expect("the canary's breaker opened within 20 calls");
    let split = r.served().split().expect("split");
    assert_eq!(
        (split.arm(), split.served_arm()),
        ("canary", Some("stable"))
    );
    let why = split.fallback().expect("reason");
    assert!(
        why.starts_with("ejected: looma: all 1 instances ejected"),
        "{why}"
    );
    assert_ne!(r.served().instance(), z[2].identity().instance);
    let series =
        "federation_split_fallbacks_total{service=\"ai\",arm=\"canary\",reason=\"ejected\"}";
    assert!(client.metrics_text().contains(series));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arm_naming_a_cluster_takes_its_calls_there() {
    let z = start("zervigo", "ai", 1).await;
    let l = start("looma", "ai", 1).await;
    let mut svc = service("ai", &[("zervigo", "ai"), ("looma", "ai")], Some("zervigo"));
    svc.split = Some(SplitConfig {
        sticky_header: None,
        arms: vec![
            arm("home", &[], Some("zervigo"), 0),
            arm("away", &[], Some("looma"), 100),
        ],
    });
    let cfg = config(
        vec![cluster("zervigo", "ai", &z), cluster("looma", "ai", &l)],
        vec![svc],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    for _ in 0..5 {
        let r = client.get("ai", "/x").send().await.expect("served");
        assert_eq!(r.served().cluster(), "looma");
        assert_eq!(r.served().split().expect("split").arm(), "away");
    }
    let pinned = client
        .get("ai", "/x")
        .cluster("zervigo")
        .send()
        .await
        .expect("pinned");
    assert_eq!(pinned.served().cluster(), "zervigo");
    assert!(pinned.served().split().is_none());
}
