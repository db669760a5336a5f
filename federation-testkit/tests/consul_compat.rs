//! The double accepts what real Consul clients send and answers their reads as Consul does:
//! the Go client's `"Check": null`/`"Checks": null`, py-consul's lower-case keys, snake_case
//! keys, `Kind`/`Proxy`/`Connect` echoed, the agent read endpoints, `?filter`, `node-meta`,
//! `peer`, `partition`, `cached`. The same bodies are sent by the real clients in
//! `tests/consul-compat-go` and `tests/consul-compat-py`; these tests pin them at the HTTP level.

mod consul_support;

use consul_support::{get, put, start};
use serde_json::{Value, json};

/// The body HashiCorp's Go client (api v1.34) marshals for a registration without checks.
fn go_client_body() -> Value {
    json!({
        "ID": "orders-1", "Name": "orders", "Port": 8080, "Address": "127.0.0.1",
        "Check": null, "Checks": null,
    })
}

#[tokio::test]
async fn null_check_fields_of_the_go_client_are_accepted() {
    let consul = start("zervigo-dc").await;
    let answer = put(
        &consul,
        "/v1/agent/service/register",
        Some(go_client_body()),
    )
    .await;
    assert_eq!((answer.status, answer.body.as_str()), (200, ""));
    let health = get(&consul, "/v1/health/service/orders").await.json();
    assert_eq!(health[0]["Service"]["ID"], "orders-1");
    let checks: Vec<&Value> = health[0]["Checks"]
        .as_array()
        .expect("checks")
        .iter()
        .collect();
    assert_eq!(checks.len(), 1, "only serfHealth: {checks:?}");
}

#[tokio::test]
async fn lower_case_and_snake_case_keys_are_consuls_fields() {
    let consul = start("zervigo-dc").await;
    // py-consul's spelling (`enabletagoverride`, `checks`, `ttl`) and snake_case.
    let body = json!({
        "name": "orders", "id": "orders-1", "address": "127.0.0.1", "port": 8080,
        "enabletagoverride": true, "weights": {"passing": 5, "warning": 2},
        "tagged_addresses": {"lan": {"address": "10.0.0.7", "port": 9090}},
        "meta": {"Some_Key": "v"},
        "checks": [{"ttl": "30s", "deregister_critical_service_after": "10m", "notes": null}],
    });
    let answer = put(&consul, "/v1/agent/service/register", Some(body)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let service = get(&consul, "/v1/agent/service/orders-1").await;
    assert!(service.header("x-consul-contenthash").is_some());
    assert!(service.header("x-consul-index").is_none());
    let service = service.json();
    assert_eq!(service["EnableTagOverride"], true);
    assert_eq!(service["Weights"], json!({"Passing": 5, "Warning": 2}));
    assert_eq!(
        service["TaggedAddresses"]["lan"],
        json!({"Address": "10.0.0.7", "Port": 9090})
    );
    assert_eq!(
        service["Meta"],
        json!({"Some_Key": "v"}),
        "map keys are data, not renamed"
    );
    let checks = get(&consul, "/v1/agent/checks").await.json();
    assert_eq!(checks["service:orders-1"]["Type"], "ttl", "{checks}");
}

#[tokio::test]
async fn an_empty_check_is_no_check_and_unsupported_kinds_are_named() {
    let consul = start("zervigo-dc").await;
    let body = json!({"Name": "orders", "Check": {}});
    let answer = put(&consul, "/v1/agent/service/register", Some(body)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(get(&consul, "/v1/agent/checks").await.json(), json!({}));

    let body = json!({"Name": "orders", "Check": {"GRPC": "127.0.0.1:9000", "Interval": "10s"}});
    let answer = put(&consul, "/v1/agent/service/register", Some(body)).await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.body.starts_with("Invalid check: ") && answer.body.contains("gRPC"),
        "{}",
        answer.body
    );
    let body = json!({"Name": "orders", "Check": {"TTL": "10"}});
    let answer = put(&consul, "/v1/agent/service/register", Some(body)).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (
            400,
            "Request decode failed: time: missing unit in duration \"10\""
        )
    );
}

#[tokio::test]
async fn kind_proxy_and_connect_are_echoed() {
    let consul = start("zervigo-dc").await;
    let body = json!({
        "Kind": "connect-proxy", "ID": "web-sidecar", "Name": "web-sidecar-proxy", "Port": 21000,
        "Proxy": {"DestinationServiceName": "web", "LocalServicePort": 8080},
        "Connect": null,
    });
    assert_eq!(
        put(&consul, "/v1/agent/service/register", Some(body))
            .await
            .status,
        200
    );
    let native = json!({"Name": "web", "Connect": {"Native": true}});
    assert_eq!(
        put(&consul, "/v1/agent/service/register", Some(native))
            .await
            .status,
        200
    );
    let health = get(&consul, "/v1/health/service/web-sidecar-proxy")
        .await
        .json();
    let service = &health[0]["Service"];
    assert_eq!(service["Kind"], "connect-proxy");
    assert_eq!(service["Proxy"]["DestinationServiceName"], "web");
    assert_eq!(
        service["Proxy"]["Mode"], "",
        "Consul's defaults stay under the given fields"
    );
    let catalog = get(&consul, "/v1/catalog/service/web").await.json();
    assert_eq!(catalog[0]["ServiceConnect"], json!({"Native": true}));
    assert_eq!(catalog[0]["ServiceKind"], "");
    let agent = get(&consul, "/v1/agent/services").await.json();
    assert!(
        agent["web"].get("Proxy").is_none(),
        "no Proxy for an ordinary service: {agent}"
    );
    assert_eq!(agent["web-sidecar"]["Kind"], "connect-proxy");
}

async fn register_three(consul: &federation_testkit::consul::ConsulDouble) {
    for (n, zone, tags) in [
        (1, "a", json!(["v2", "grpc"])),
        (2, "b", json!(["v2"])),
        (3, "c", json!(["v1"])),
    ] {
        let body = json!({
            "ID": format!("orders-{n}"), "Name": "orders", "Tags": tags,
            "Meta": {"zone": zone},
            "Check": {"CheckID": format!("orders-{n}:ttl"), "TTL": "30s", "Status": "passing"},
        });
        let answer = put(consul, "/v1/agent/service/register", Some(body)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
}

fn ids(entries: &Value, pointer: &str) -> Vec<String> {
    let mut ids: Vec<String> = entries
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|entry| entry.pointer(pointer)?.as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn filter_node_meta_and_peer_select_entries() {
    let consul = start("zervigo-dc").await;
    register_three(&consul).await;
    let cases = [
        (
            "filter=%22v2%22+in+Service.Tags",
            vec!["orders-1", "orders-2"],
        ),
        (
            "filter=Service.Meta.zone+%3D%3D+c+or+Service.ID+%3D%3D+orders-1",
            vec!["orders-1", "orders-3"],
        ),
        ("filter=not+(Service.Tags+contains+v2)", vec!["orders-3"]),
        (
            "node-meta=consul-network-segment:",
            vec!["orders-1", "orders-2", "orders-3"],
        ),
        ("node-meta=rack:r1", vec![]),
        ("peer=other", vec![]),
    ];
    for (query, want) in cases {
        let answer = get(&consul, &format!("/v1/health/service/orders?{query}")).await;
        assert_eq!(answer.status, 200, "{query}: {}", answer.body);
        assert!(answer.index() > 0);
        assert_eq!(ids(&answer.json(), "/Service/ID"), want, "{query}");
    }
    let catalog = get(
        &consul,
        "/v1/catalog/service/orders?filter=ServiceTags+contains+v1",
    )
    .await;
    assert_eq!(ids(&catalog.json(), "/ServiceID"), vec!["orders-3"]);
    let services = get(
        &consul,
        "/v1/catalog/services?filter=ServiceTags+contains+v1",
    )
    .await;
    assert_eq!(services.json(), json!({"consul": [], "orders": ["v1"]}));
    let agent = get(&consul, "/v1/agent/services?filter=Meta.zone+%21%3D+a")
        .await
        .json();
    let mut keys: Vec<&String> = agent.as_object().expect("a map").keys().collect();
    keys.sort();
    assert_eq!(keys, ["orders-2", "orders-3"]);
    let bad = get(
        &consul,
        "/v1/health/service/orders?filter=Service.ID+matches+x",
    )
    .await;
    assert_eq!(bad.status, 500);
    assert!(
        bad.body
            .starts_with("Failed to create boolean expression evaluator: "),
        "{}",
        bad.body
    );
}

#[tokio::test]
async fn cached_reads_miss_then_hit_and_enterprise_scopes_are_refused() {
    let consul = start("zervigo-dc").await;
    register_three(&consul).await;
    let first = get(&consul, "/v1/health/service/orders?cached").await;
    let second = get(&consul, "/v1/health/service/orders?cached").await;
    assert_eq!(
        (first.header("x-cache"), first.header("age")),
        (Some("MISS"), Some("0"))
    );
    assert_eq!(second.header("x-cache"), Some("HIT"));
    assert!(
        get(&consul, "/v1/health/service/orders")
            .await
            .header("x-cache")
            .is_none()
    );
    let refused = get(&consul, "/v1/health/service/orders?partition=p1").await;
    assert_eq!(
        (refused.status, refused.body.as_str()),
        (
            400,
            "Invalid query parameter: \"partition\" - Partitions are a Consul Enterprise feature"
        )
    );
    let header = consul_support::send(
        consul_support::client()
            .get(format!("{}/v1/agent/services", consul.url()))
            .header("X-Consul-Namespace", "team"),
    )
    .await;
    assert_eq!(
        (header.status, header.body.as_str()),
        (
            400,
            "Invalid header: \"X-Consul-Namespace\" - Namespaces are a Consul Enterprise feature"
        )
    );
}

#[tokio::test]
async fn agent_reads_have_no_index_and_unknown_ids_are_404() {
    let consul = start("zervigo-dc").await;
    register_three(&consul).await;
    for path in ["/v1/agent/services", "/v1/agent/checks"] {
        let answer = get(&consul, path).await;
        assert_eq!(answer.status, 200);
        assert!(answer.header("x-consul-index").is_none(), "{path}");
        assert_eq!(
            answer.json().as_object().map(|m| m.len()),
            Some(3),
            "{path}"
        );
    }
    let missing = get(&consul, "/v1/agent/service/nope").await;
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (404, "unknown service ID: nope")
    );
    let outside = get(&consul, "/health").await;
    assert_eq!(
        (outside.status, outside.body.as_str()),
        (
            404,
            "Invalid URL path: if attempting to use the HTTP API, ensure the path starts with '/v1/'\n"
        )
    );
    let unknown = get(&consul, "/v1/agent/members").await;
    assert_eq!(
        (unknown.status, unknown.body.as_str()),
        (
            404,
            "Invalid URL path: not a recognized HTTP API endpoint\n"
        )
    );
}

#[tokio::test]
async fn out_of_range_numbers_get_consuls_texts_not_serdes() {
    let consul = start("zervigo-dc").await;
    let cases = [
        (
            json!({"Name": "x", "Weights": {"Passing": 0, "Warning": 1}}),
            "Invalid Weights: Passing must be greater than 0",
        ),
        (
            json!({"Name": "x", "Weights": {"Passing": 1, "Warning": -1}}),
            "Invalid Weights: Warning must be greater or equal than 0",
        ),
        (
            json!({"Name": "x", "Weights": {"Passing": 70000, "Warning": 1}}),
            "Invalid Weights: DNS Weight must be between 0 and 65535",
        ),
        (
            json!({"Name": "x", "Port": 70000}),
            "Invalid service port: Port is 70000; the Consul double supports 0-65535",
        ),
        (
            json!({"Name": "x", "TaggedAddresses": {"wan": {"Address": "a", "Port": -1}}}),
            "Invalid service port: TaggedAddresses.wan.Port is -1; the Consul double supports 0-65535",
        ),
    ];
    for (body, want) in cases {
        let answer = put(&consul, "/v1/agent/service/register", Some(body.clone())).await;
        assert_eq!((answer.status, answer.body.as_str()), (400, want), "{body}");
    }
}
