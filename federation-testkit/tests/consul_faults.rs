//! Fault injection (checklist items 4 and 6).

mod consul_support;

use std::time::{Duration, Instant};

use consul_support::{EVENTUALLY, client, get, service, start};
use federation_testkit::consul::Fault;

#[tokio::test]
async fn down_refuses_connections_and_clearing_rebinds_the_same_port() {
    let consul = start("zervigo-dc").await;
    consul
        .register(service("web", "web-1", 8080))
        .expect("register");
    let addr = consul.addr();
    let index = consul.service_index("web");
    let blocked = {
        let url = format!(
            "{}/v1/health/service/web?index={index}&wait=30s",
            consul.url()
        );
        tokio::spawn(async move { client().get(url).send().await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    consul.set_fault(Fault::Down);
    let dropped = tokio::time::timeout(EVENTUALLY, blocked)
        .await
        .expect("blocked query ends")
        .expect("task");
    assert!(dropped.is_err(), "open connections are dropped");
    let refused = client()
        .get(format!("{}/v1/health/service/web", consul.url()))
        .send()
        .await;
    assert!(
        refused.is_err_and(|error| error.is_connect()),
        "connection refused while down"
    );
    consul.clear_fault();
    assert_eq!(consul.addr(), addr);
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        if let Ok(response) = client()
            .get(format!("{}/v1/health/service/web", consul.url()))
            .send()
            .await
        {
            assert_eq!(response.status(), 200);
            break;
        }
        assert!(Instant::now() < deadline, "double did not come back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn hang_accepts_but_never_answers() {
    let consul = start("zervigo-dc").await;
    consul.set_fault(Fault::Hang);
    let hung = client()
        .get(format!("{}/v1/health/service/web", consul.url()))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung.is_err_and(|error| error.is_timeout()));
    assert_eq!(consul.health_requests("web"), 1, "the request was received");
    consul.clear_fault();
    assert_eq!(get(&consul, "/v1/health/service/web").await.status, 200);
}

#[tokio::test]
async fn no_leader_fails_default_reads_but_not_stale_ones() {
    let consul = start("zervigo-dc").await;
    consul.set_fault(Fault::NoLeader);
    let answer = get(&consul, "/v1/health/service/web").await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (500, "No cluster leader")
    );
    assert_eq!(answer.header("x-consul-knownleader"), Some("false"));
    let stale = get(&consul, "/v1/health/service/web?stale").await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.header("x-consul-knownleader"), Some("false"));
    assert_eq!(
        get(&consul, "/v1/status/leader").await.json(),
        serde_json::json!("")
    );
    consul.clear_fault();
    assert_eq!(get(&consul, "/v1/health/service/web").await.status, 200);
}

#[tokio::test]
async fn slow_delays_every_response() {
    let consul = start("zervigo-dc").await;
    consul.set_fault(Fault::Slow(Duration::from_millis(400)));
    let started = Instant::now();
    assert_eq!(get(&consul, "/v1/health/service/web").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn garbled_bodies_do_not_parse_and_statuses_and_acl_faults_are_served() {
    let consul = start("zervigo-dc").await;
    consul
        .register(service("web", "web-1", 8080))
        .expect("register");
    consul.set_fault(Fault::Garbled);
    let garbled = get(&consul, "/v1/health/service/web").await;
    assert_eq!(garbled.status, 200);
    assert!(garbled.header("x-consul-index").is_some());
    assert!(
        serde_json::from_str::<serde_json::Value>(&garbled.body).is_err(),
        "{}",
        garbled.body
    );
    let empty_garbled = get(&consul, "/v1/health/service/nothing").await;
    assert!(serde_json::from_str::<serde_json::Value>(&empty_garbled.body).is_err());

    consul.set_fault(Fault::Status(429, String::new()));
    assert_eq!(get(&consul, "/v1/health/service/web").await.status, 429);
    consul.set_fault(Fault::Status(503, "rate limit exceeded".into()));
    let limited = get(&consul, "/v1/health/service/web").await;
    assert_eq!(
        (limited.status, limited.body.as_str()),
        (503, "rate limit exceeded")
    );
    consul.set_fault(Fault::AclNotFound);
    let acl = get(&consul, "/v1/health/service/web").await;
    assert_eq!((acl.status, acl.body.as_str()), (403, "ACL not found"));
    consul.clear_fault();
    assert_eq!(
        get(&consul, "/v1/health/service/web")
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_server() {
    let consul = start("zervigo-dc").await;
    let url = format!("{}/v1/status/leader", consul.url());
    let copy = consul.clone();
    drop(consul);
    assert_eq!(
        client()
            .get(&url)
            .send()
            .await
            .expect("still served by the clone")
            .status(),
        200
    );
    copy.shutdown().await;
    drop(copy);
    assert!(client().get(&url).send().await.is_err());
}
