//! Agent writes over HTTP (consul-api.md §4, checklist item 8).

mod consul_support;

use consul_support::{check_statuses, get, put};
use serde_json::json;

#[tokio::test]
async fn register_validates_like_consul() {
    let consul = consul_support::start("zervigo-dc").await;
    for (body, message) in [
        (json!({"Port": 80}), "Missing service name"),
        (
            json!({"Name": "web", "Address": "0.0.0.0"}),
            "Invalid service address",
        ),
        (
            json!({"Name": "web", "Weights": {"Passing": 0, "Warning": 1}}),
            "Invalid Weights: Passing must be greater than 0",
        ),
        (
            json!({"Name": "web", "Check": {"HTTP": "http://x/"}}),
            "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, or TCP checks",
        ),
        (
            json!({"Name": "web", "Check": {"TTL": "5s", "Status": "bogus"}}),
            "Status for checks must 'passing', 'warning', 'critical'",
        ),
        (
            json!({"Name": "web", "Meta": {"consul-x": "1"}}),
            "Invalid Service Meta: Couldn't load metadata pair ('consul-x', '1'): Key prefix 'consul-' is reserved for internal use",
        ),
    ] {
        let answer = put(&consul, "/v1/agent/service/register", Some(body.clone())).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (400, message),
            "{body}"
        );
    }
    let garbage = consul_support::send(
        consul_support::client()
            .put(format!("{}/v1/agent/service/register", consul.url()))
            .body("{not json"),
    )
    .await;
    assert_eq!(garbage.status, 400);
    assert!(garbage.body.starts_with("Request decode failed"));
    let wrong_verb = get(&consul, "/v1/agent/service/register").await;
    assert_eq!(
        (wrong_verb.status, wrong_verb.body.as_str()),
        (405, "method GET not allowed")
    );
    assert_eq!(wrong_verb.header("allow"), Some("OPTIONS,PUT"));
}

#[tokio::test]
async fn register_generates_ids_upserts_and_keeps_check_state() {
    let consul = consul_support::start("zervigo-dc").await;
    let body = json!({
        "ID": "order-svc-7f3a", "Name": "order-svc", "Address": "127.0.0.1", "Port": 7443,
        "Checks": [
            {"Name": "order-svc ttl", "TTL": "60s"},
            {"CheckID": "order-svc-7f3a:ttl", "TTL": "60s", "Status": "passing"}
        ]
    });
    let answer = put(&consul, "/v1/agent/service/register", Some(body.clone())).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, ""));
    let entries = get(&consul, "/v1/health/service/order-svc").await.json();
    let checks = entries[0]["Checks"].as_array().expect("checks").clone();
    let check_ids: Vec<&str> = checks
        .iter()
        .filter_map(|check| check["CheckID"].as_str())
        .collect();
    assert_eq!(
        check_ids,
        [
            "serfHealth",
            "order-svc-7f3a:ttl",
            "service:order-svc-7f3a:1"
        ]
    );
    assert_eq!(check_statuses(&entries), ["passing", "critical"]);

    let pass = put(
        &consul,
        "/v1/agent/check/pass/service:order-svc-7f3a:1?note=up",
        None,
    )
    .await;
    assert_eq!((pass.status, pass.body.as_str()), (200, ""));
    let index = consul.service_index("order-svc");
    // Same body again: an upsert that keeps the check state and moves nothing.
    assert_eq!(
        put(&consul, "/v1/agent/service/register", Some(body.clone()))
            .await
            .status,
        200
    );
    assert_eq!(
        consul.service_index("order-svc"),
        index,
        "identical re-registration is a no-op"
    );
    let entries = get(&consul, "/v1/health/service/order-svc").await.json();
    assert_eq!(check_statuses(&entries), ["passing", "passing"]);
    // A changed definition moves the index and keeps the check state.
    let mut changed = body;
    changed["Port"] = json!(7444);
    assert_eq!(
        put(&consul, "/v1/agent/service/register", Some(changed))
            .await
            .status,
        200
    );
    assert!(consul.service_index("order-svc") > index);
    let entries = get(&consul, "/v1/health/service/order-svc").await.json();
    assert_eq!(entries[0]["Service"]["Port"], 7444);
    assert_eq!(check_statuses(&entries), ["passing", "passing"]);
    assert_eq!(entries.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn replace_existing_checks_drops_checks_not_in_the_request() {
    let consul = consul_support::start("zervigo-dc").await;
    let two = json!({"Name": "web", "Checks": [{"CheckID": "a", "TTL": "60s"}, {"CheckID": "b", "TTL": "60s"}]});
    let one = json!({"Name": "web", "Checks": [{"CheckID": "a", "TTL": "60s"}]});
    put(&consul, "/v1/agent/service/register", Some(two)).await;
    put(&consul, "/v1/agent/service/register", Some(one.clone())).await;
    assert_eq!(
        check_statuses(&get(&consul, "/v1/health/service/web").await.json()).len(),
        2,
        "kept without the flag"
    );
    put(
        &consul,
        "/v1/agent/service/register?replace-existing-checks",
        Some(one),
    )
    .await;
    assert_eq!(
        check_statuses(&get(&consul, "/v1/health/service/web").await.json()).len(),
        1
    );
}

#[tokio::test]
async fn deregister_and_check_updates_report_unknown_ids_and_non_ttl_checks() {
    let consul = consul_support::start("zervigo-dc").await;
    let body = json!({"ID": "web-1", "Name": "web", "Checks": [
        {"CheckID": "ttl", "TTL": "60s"},
        {"CheckID": "http", "HTTP": "http://127.0.0.1:9/", "Interval": "10s"}
    ]});
    put(&consul, "/v1/agent/service/register", Some(body)).await;

    for (path, status) in [
        ("warn", "warning"),
        ("fail", "critical"),
        ("pass", "passing"),
    ] {
        let answer = put(&consul, &format!("/v1/agent/check/{path}/ttl?note=n"), None).await;
        assert_eq!(answer.status, 200);
        let entries = get(&consul, "/v1/health/service/web").await.json();
        let check = entries[0]["Checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["CheckID"] == "ttl")
            .cloned()
            .expect("ttl");
        assert_eq!(
            (check["Status"].as_str(), check["Output"].as_str()),
            (Some(status), Some("n"))
        );
    }
    let update = put(
        &consul,
        "/v1/agent/check/update/ttl",
        Some(json!({"Status": "warning", "Output": "slow"})),
    )
    .await;
    assert_eq!(update.status, 200);
    let bad = put(
        &consul,
        "/v1/agent/check/update/ttl",
        Some(json!({"Status": "meh"})),
    )
    .await;
    assert_eq!(
        (bad.status, bad.body.as_str()),
        (400, "Invalid check status: 'meh'")
    );
    let not_ttl = put(&consul, "/v1/agent/check/pass/http", None).await;
    assert_eq!(
        (not_ttl.status, not_ttl.body.as_str()),
        (500, "CheckID \"http\" does not have associated TTL")
    );
    let unknown = put(&consul, "/v1/agent/check/pass/nope", None).await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.starts_with("Unknown check ID \"nope\""));
    let get_pass = get(&consul, "/v1/agent/check/pass/ttl").await;
    assert_eq!(get_pass.status, 405);

    let gone = put(&consul, "/v1/agent/service/deregister/web-1", None).await;
    assert_eq!((gone.status, gone.body.as_str()), (200, ""));
    assert_eq!(get(&consul, "/v1/health/service/web").await.body, "[]");
    let again = put(&consul, "/v1/agent/service/deregister/web-1", None).await;
    assert_eq!(
        (again.status, again.body.as_str()),
        (
            404,
            "Unknown service ID \"web-1\". Ensure that the service ID is passed, not the service name."
        )
    );
}

#[tokio::test]
async fn maintenance_over_http_validates_enable_and_wakes_watchers() {
    let consul = consul_support::start("zervigo-dc").await;
    put(
        &consul,
        "/v1/agent/service/register",
        Some(json!({"ID": "web-1", "Name": "web"})),
    )
    .await;
    let missing = put(&consul, "/v1/agent/service/maintenance/web-1", None).await;
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (400, "Missing value for enable")
    );
    let invalid = put(
        &consul,
        "/v1/agent/service/maintenance/web-1?enable=perhaps",
        None,
    )
    .await;
    assert_eq!(
        (invalid.status, invalid.body.as_str()),
        (400, "Invalid value for enable: \"perhaps\"")
    );
    let unknown = put(
        &consul,
        "/v1/agent/service/maintenance/nope?enable=true",
        None,
    )
    .await;
    assert_eq!(
        (unknown.status, unknown.body.as_str()),
        (404, "No service registered with ID \"nope\"")
    );
    let index = consul.service_index("web");
    let on = put(
        &consul,
        "/v1/agent/service/maintenance/web-1?enable=true&reason=upgrade+now",
        None,
    )
    .await;
    assert_eq!(on.status, 200);
    assert!(consul.service_index("web") > index);
    let entries = get(&consul, "/v1/health/service/web").await.json();
    let notes = entries[0]["Checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find_map(|c| {
            c["Notes"]
                .as_str()
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
        });
    assert_eq!(notes.as_deref(), Some("upgrade now"));
    assert_eq!(
        put(
            &consul,
            "/v1/agent/service/maintenance/web-1?enable=false",
            None
        )
        .await
        .status,
        200
    );
    assert_eq!(
        check_statuses(&get(&consul, "/v1/health/service/web").await.json()),
        Vec::<String>::new()
    );
}
