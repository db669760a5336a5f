//! Health semantics and the check runner (checklist item 3, §4.2): `?passing`, tags,
//! maintenance, checks starting critical, HTTP probes, TTL expiry and reaping.

mod consul_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use consul_support::{
    check_statuses, eventually, get, service, start, start_with, target, ttl_check,
};
use federation_testkit::consul::{CheckDefinition, CheckStatus, ConsulOptions};

fn ids(entries: &serde_json::Value) -> Vec<String> {
    let mut ids: Vec<String> = entries
        .as_array()
        .expect("array")
        .iter()
        .map(|entry| {
            entry["Service"]["ID"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn passing_drops_warning_and_critical_but_the_index_covers_everything() {
    let consul = start("zervigo-dc").await;
    for (id, status) in [("ok", "passing"), ("warn", "warning"), ("bad", "critical")] {
        let mut registration = service("web", id, 8080);
        registration.check = Some(ttl_check(&format!("{id}:ttl"), "60s", Some(status)));
        consul.register(registration).expect("register");
    }
    let all = get(&consul, "/v1/health/service/web").await;
    assert_eq!(ids(&all.json()), ["bad", "ok", "warn"]);
    let passing = get(&consul, "/v1/health/service/web?passing").await;
    assert_eq!(ids(&passing.json()), ["ok"]);
    assert_eq!(passing.index(), all.index());
    assert_eq!(
        ids(&get(&consul, "/v1/health/service/web?passing=true")
            .await
            .json()),
        ["ok"]
    );
    assert_eq!(
        ids(&get(&consul, "/v1/health/service/web?passing=0")
            .await
            .json())
        .len(),
        3
    );

    // A flip on an excluded instance still moves the index and wakes a `?passing` watch.
    let index = passing.index();
    let watcher = {
        let consul = consul.clone();
        tokio::spawn(async move {
            get(
                &consul,
                &format!("/v1/health/service/web?passing&index={index}&wait=30s"),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    consul
        .set_check_status("warn:ttl", CheckStatus::Passing, "better")
        .expect("pass");
    let woken = tokio::time::timeout(consul_support::EVENTUALLY, watcher)
        .await
        .expect("woken")
        .expect("task");
    assert_eq!(ids(&woken.json()), ["ok", "warn"]);
}

#[tokio::test]
async fn tag_filters_are_anded_and_case_insensitive() {
    let consul = start("zervigo-dc").await;
    for (id, tags) in [
        ("a", vec!["V2", "http"]),
        ("b", vec!["v2"]),
        ("c", vec!["http"]),
    ] {
        let mut registration = service("web", id, 8080);
        registration.tags = tags.into_iter().map(str::to_owned).collect();
        consul.register(registration).expect("register");
    }
    assert_eq!(
        ids(&get(&consul, "/v1/health/service/web?tag=v2").await.json()),
        ["a", "b"]
    );
    assert_eq!(
        ids(&get(&consul, "/v1/health/service/web?tag=v2&tag=HTTP")
            .await
            .json()),
        ["a"]
    );
    assert_eq!(
        get(&consul, "/v1/health/service/web?tag=grpc").await.body,
        "[]"
    );
}

#[tokio::test]
async fn new_checks_start_critical_and_maintenance_is_a_critical_check() {
    let consul = start("zervigo-dc").await;
    let mut registration = service("web", "web-1", 8080);
    registration.check = Some(ttl_check("web-1:ttl", "60s", None));
    consul.register(registration).expect("register");
    let entries = get(&consul, "/v1/health/service/web").await.json();
    assert_eq!(check_statuses(&entries), ["critical"]);
    assert_eq!(
        get(&consul, "/v1/health/service/web?passing").await.body,
        "[]"
    );

    consul
        .set_check_status("web-1:ttl", CheckStatus::Passing, "")
        .expect("pass");
    assert_eq!(
        ids(&get(&consul, "/v1/health/service/web?passing").await.json()),
        ["web-1"]
    );
    consul
        .set_maintenance("web-1", true, Some("deploying"))
        .expect("maintenance on");
    let entries = get(&consul, "/v1/health/service/web").await.json();
    let maintenance = entries[0]["Checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|check| check["CheckID"] == "_service_maintenance:web-1")
        .cloned()
        .expect("maintenance check present");
    assert_eq!(maintenance["Status"], "critical");
    assert_eq!(maintenance["Name"], "Service Maintenance Mode");
    assert_eq!(maintenance["Notes"], "deploying");
    assert_eq!(
        get(&consul, "/v1/health/service/web?passing").await.body,
        "[]"
    );
    consul
        .set_maintenance("web-1", false, None)
        .expect("maintenance off");
    assert_eq!(
        ids(&get(&consul, "/v1/health/service/web?passing").await.json()),
        ["web-1"]
    );
}

#[tokio::test]
async fn an_http_check_becomes_passing_only_after_the_double_ran_it() {
    let consul = start("zervigo-dc").await;
    let probe_target = target(200, false).await;
    let mut registration = service("web", "web-1", 8080);
    registration.check = Some(CheckDefinition {
        http: Some(probe_target.url.clone()),
        interval: Some("100ms".into()),
        timeout: Some("5s".into()),
        ..CheckDefinition::default()
    });
    consul.register(registration).expect("register");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let entries = get(&consul, "/v1/health/service/web").await.json();
    assert_eq!(
        check_statuses(&entries),
        ["critical"],
        "not passing before a probe answered"
    );
    assert_eq!(entries[0]["Checks"][1]["CheckID"], "service:web-1");
    assert_eq!(entries[0]["Checks"][1]["Type"], "http");
    assert_eq!(entries[0]["Checks"][1]["Interval"], "100ms");
    assert_eq!(probe_target.hits.load(Ordering::SeqCst), 0);

    probe_target.open.send_replace(true);
    let entries = eventually(&consul, "/v1/health/service/web?passing", |body| {
        body.as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    assert!(probe_target.hits.load(Ordering::SeqCst) >= 1);
    let output = entries[0]["Checks"][1]["Output"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        output.starts_with(&format!("HTTP GET {}: 200", probe_target.url)),
        "{output}"
    );

    probe_target.status.store(429, Ordering::SeqCst);
    eventually(&consul, "/v1/health/service/web", |body| {
        check_statuses(body) == ["warning"]
    })
    .await;
    probe_target.status.store(503, Ordering::SeqCst);
    eventually(&consul, "/v1/health/service/web", |body| {
        check_statuses(body) == ["critical"]
    })
    .await;
}

#[tokio::test]
async fn a_probe_slower_than_its_timeout_is_critical() {
    let consul = start("zervigo-dc").await;
    let never_answers = target(200, false).await;
    let mut registration = service("web", "web-1", 8080);
    registration.check = Some(CheckDefinition {
        http: Some(never_answers.url.clone()),
        interval: Some("100ms".into()),
        timeout: Some("200ms".into()),
        status: Some("passing".into()),
        ..CheckDefinition::default()
    });
    consul.register(registration).expect("register");
    let entries = eventually(&consul, "/v1/health/service/web", |body| {
        check_statuses(body) == ["critical"]
    })
    .await;
    assert!(
        entries[0]["Checks"][1]["Output"]
            .as_str()
            .is_some_and(|o| !o.is_empty())
    );
}

#[tokio::test]
async fn a_ttl_check_expires_to_critical_and_a_heartbeat_revives_it() {
    let consul = start("zervigo-dc").await;
    let mut registration = service("web", "web-1", 8080);
    registration.check = Some(ttl_check("web-1:ttl", "300ms", Some("passing")));
    consul.register(registration).expect("register");
    assert_eq!(
        check_statuses(&get(&consul, "/v1/health/service/web").await.json()),
        ["passing"]
    );
    let entries = eventually(&consul, "/v1/health/service/web", |body| {
        check_statuses(body) == ["critical"]
    })
    .await;
    assert_eq!(entries[0]["Checks"][1]["Output"], "TTL expired");
    consul
        .set_check_status("web-1:ttl", CheckStatus::Passing, "alive")
        .expect("heartbeat");
    assert_eq!(
        check_statuses(&get(&consul, "/v1/health/service/web").await.json()),
        ["passing"]
    );
    eventually(&consul, "/v1/health/service/web", |body| {
        check_statuses(body) == ["critical"]
    })
    .await;
}

#[tokio::test]
async fn a_service_critical_longer_than_deregister_after_is_reaped() {
    let mut options = ConsulOptions::new("zervigo-dc");
    options.check_interval_floor = Duration::from_millis(20);
    let consul = start_with(options).await;
    let mut registration = service("web", "web-1", 8080);
    let mut check = ttl_check("web-1:ttl", "100ms", Some("passing"));
    check.deregister_critical_service_after = Some("300ms".into());
    registration.check = Some(check);
    consul.register(registration).expect("register");
    consul
        .register(service("web", "web-2", 8081))
        .expect("register survivor");
    let entries = eventually(&consul, "/v1/health/service/web", |body| {
        body.as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    assert_eq!(ids(&entries), ["web-2"]);
}

#[tokio::test]
async fn reads_follow_renames_deregistrations_and_check_moves_through_the_indexes() {
    let consul = start("zervigo-dc").await;
    for (name, id) in [("web", "w1"), ("web", "w2"), ("api", "a1")] {
        let mut registration = service(name, id, 8080);
        registration.check = Some(ttl_check(&format!("{id}:ttl"), "60s", Some("passing")));
        consul.register(registration).expect("register");
    }
    // `w2` re-registered under another name (same id): it leaves `web` and joins `API`'s
    // reads (case-insensitive), its check with it.
    let mut moved = service("API", "w2", 8080);
    moved.check = Some(ttl_check("w2:ttl", "60s", Some("passing")));
    consul.register(moved).expect("re-register");
    assert_eq!(
        ids(&get(&consul, "/v1/health/service/web").await.json()),
        ["w1"]
    );
    let api = get(&consul, "/v1/health/service/api").await.json();
    assert_eq!(ids(&api), ["a1", "w2"]);
    for entry in api.as_array().expect("array") {
        let checks = entry["Checks"].as_array().expect("checks");
        let id = entry["Service"]["ID"].as_str().unwrap_or_default();
        assert!(
            checks.iter().any(|c| c["CheckID"] == format!("{id}:ttl")),
            "{id} keeps its own check: {checks:?}"
        );
    }
    // Maintenance adds a check to one instance only; deregistering removes it and its checks.
    consul
        .set_maintenance("a1", true, Some("storm"))
        .expect("maintenance");
    let api = get(&consul, "/v1/health/service/api?passing").await.json();
    assert_eq!(ids(&api), ["w2"]);
    consul.deregister("a1").expect("deregister");
    consul.deregister("w1").expect("deregister");
    assert!(ids(&get(&consul, "/v1/health/service/web").await.json()).is_empty());
    assert_eq!(
        ids(&get(&consul, "/v1/health/service/api").await.json()),
        ["w2"]
    );
    let checks = get(&consul, "/v1/agent/checks").await.json();
    let checks = checks.as_object().expect("object");
    assert!(
        !checks
            .keys()
            .any(|id| id.contains("a1") || id.contains("w1")),
        "checks of deregistered services are gone: {checks:?}"
    );
    assert!(checks.contains_key("w2:ttl"));
}
