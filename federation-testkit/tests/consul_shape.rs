//! Wire shape: JSON keys and null rules, headers, plain-text errors, routing, catalog reads
//! (consul-api.md §1–§3, checklist items 2, 4, 5, 9).

mod consul_support;

use std::collections::BTreeMap;

use consul_support::{get, service, start};
use federation_testkit::consul::{ServiceRegistration, Weights};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::test]
async fn a_minimal_registration_renders_with_go_omitempty_and_null_rules() {
    let consul = start("zervigo-dc").await;
    consul
        .register(ServiceRegistration {
            name: "bare".into(),
            ..ServiceRegistration::default()
        })
        .expect("register");
    let answer = get(&consul, "/v1/health/service/bare").await;
    let entry = &answer.json()[0];
    let service = &entry["Service"];
    assert_eq!(service["ID"], "bare", "ID defaults to Name");
    assert_eq!(service["Service"], "bare");
    assert_eq!(service["Tags"], json!([]));
    assert_eq!(service["Address"], "");
    assert_eq!(service["Meta"], serde_json::Value::Null);
    assert!(
        service.get("Port").is_none(),
        "Port is omitted when 0: {service}"
    );
    assert!(
        service.get("TaggedAddresses").is_none(),
        "no tagged addresses without an IP address"
    );
    assert!(service.get("Kind").is_none());
    assert_eq!(service["Weights"], json!({"Passing": 1, "Warning": 1}));
    assert_eq!(
        service["Proxy"],
        json!({"Mode": "", "MeshGateway": {}, "Expose": {}})
    );
    assert!(service["CreateIndex"].as_u64().is_some() && service["ModifyIndex"].as_u64().is_some());

    let node = &entry["Node"];
    assert_eq!(node["Datacenter"], "zervigo-dc");
    assert_eq!(node["Node"], "zervigo-dc-node-1");
    assert_eq!(node["Address"], "127.0.0.1");
    assert_eq!(node["TaggedAddresses"]["lan_ipv4"], "127.0.0.1");
    assert_eq!(node["ID"].as_str().map(str::len), Some(36));

    let checks = entry["Checks"].as_array().expect("Checks array");
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0]["CheckID"], "serfHealth");
    assert_eq!(checks[0]["Name"], "Serf Health Status");
    assert_eq!(checks[0]["Status"], "passing");
    assert_eq!(checks[0]["ServiceTags"], json!([]));
    assert_eq!(checks[0]["Type"], "");
}

#[tokio::test]
async fn a_full_registration_renders_tagged_addresses_weights_and_meta() {
    let consul = start("zervigo-dc").await;
    let mut registration = service("order-svc", "order-1", 7443);
    registration.tags = vec!["v1".into(), "grpc".into()];
    registration.meta = Some(BTreeMap::from([("zone".into(), "a".into())]));
    registration.weights = Some(Weights {
        passing: 5,
        warning: 1,
    });
    consul.register(registration).expect("register");
    let entry = get(&consul, "/v1/health/service/order-svc").await.json()[0].clone();
    let service = &entry["Service"];
    assert_eq!(service["Port"], 7443);
    assert_eq!(service["Tags"], json!(["v1", "grpc"]));
    assert_eq!(service["Meta"], json!({"zone": "a"}));
    assert_eq!(service["Weights"], json!({"Passing": 5, "Warning": 1}));
    assert_eq!(
        service["TaggedAddresses"]["lan_ipv4"],
        json!({"Address": "127.0.0.1", "Port": 7443})
    );
    assert_eq!(
        service["TaggedAddresses"]["wan_ipv4"],
        json!({"Address": "127.0.0.1", "Port": 7443})
    );
}

#[tokio::test]
async fn reads_carry_consul_headers_and_writes_do_not_carry_index_headers() {
    let consul = start("zervigo-dc").await;
    let answer = get(&consul, "/v1/health/service/web").await;
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("x-consul-knownleader"), Some("true"));
    assert_eq!(answer.header("x-consul-lastcontact"), Some("0"));
    assert_eq!(
        answer.header("x-consul-effective-consistency"),
        Some("leader")
    );
    assert_eq!(answer.header("x-consul-default-acl-policy"), Some("allow"));
    assert_eq!(
        answer.header("x-consul-query-backend"),
        Some("blocking-query")
    );
    let stale = get(&consul, "/v1/health/service/web?stale").await;
    assert_eq!(
        stale.header("x-consul-effective-consistency"),
        Some("stale")
    );
    let consistent = get(&consul, "/v1/health/service/web?consistent").await;
    assert_eq!(
        consistent.header("x-consul-effective-consistency"),
        Some("consistent")
    );
    let datacenters = get(&consul, "/v1/catalog/datacenters").await;
    assert!(datacenters.header("x-consul-index").is_none());
}

#[tokio::test]
async fn header_names_are_canonicalised_as_go_writes_them() {
    let consul = start("zervigo-dc").await;
    let mut stream = tokio::net::TcpStream::connect(consul.addr())
        .await
        .expect("connect");
    stream
        .write_all(b"GET /v1/health/service/web HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    for name in [
        "X-Consul-Index:",
        "X-Consul-Knownleader:",
        "X-Consul-Lastcontact:",
        "X-Consul-Default-Acl-Policy:",
    ] {
        assert!(raw.contains(name), "{name} missing in:\n{raw}");
    }
}

#[tokio::test]
async fn unknown_paths_wrong_methods_and_enterprise_params_answer_like_consul() {
    let consul = start("zervigo-dc").await;
    let unknown = get(&consul, "/v1/health/nodes-of-everything").await;
    assert_eq!(
        (unknown.status, unknown.body.as_str()),
        (
            404,
            "Invalid URL path: not a recognized HTTP API endpoint\n"
        )
    );
    let wrong = consul_support::send(
        consul_support::client().post(format!("{}/v1/health/service/web", consul.url())),
    )
    .await;
    assert_eq!(
        (wrong.status, wrong.body.as_str()),
        (405, "method POST not allowed")
    );
    assert_eq!(wrong.header("allow"), Some("GET,OPTIONS"));
    let options = consul_support::send(consul_support::client().request(
        reqwest::Method::OPTIONS,
        format!("{}/v1/agent/service/register", consul.url()),
    ))
    .await;
    assert_eq!(
        (options.status, options.header("allow")),
        (200, Some("OPTIONS,PUT"))
    );
    let namespace = get(&consul, "/v1/health/service/web?ns=team").await;
    assert_eq!(namespace.status, 400);
    assert!(
        namespace
            .body
            .contains("Namespaces are a Consul Enterprise feature")
    );
    let missing = get(&consul, "/v1/health/service/").await;
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (400, "Missing service name")
    );
}

#[tokio::test]
async fn each_double_is_an_isolated_datacenter() {
    let zervigo = start("zervigo-dc").await;
    let looma = start("looma-dc").await;
    zervigo
        .register(service("web", "web-1", 8080))
        .expect("register");
    assert_eq!(get(&looma, "/v1/health/service/web").await.body, "[]");
    assert_eq!(
        get(&zervigo, "/v1/catalog/datacenters").await.json(),
        json!(["zervigo-dc"])
    );
    assert_eq!(
        get(&looma, "/v1/catalog/datacenters").await.json(),
        json!(["looma-dc"])
    );
    let remote = get(&zervigo, "/v1/health/service/web?dc=looma-dc").await;
    assert_eq!(
        (remote.status, remote.body.as_str()),
        (500, "No path to datacenter")
    );
    assert_eq!(
        get(&zervigo, "/v1/health/service/web?dc=zervigo-dc")
            .await
            .status,
        200
    );
    assert_eq!(
        get(&looma, "/v1/agent/self").await.json()["Config"]["Datacenter"],
        "looma-dc"
    );
    assert_eq!(
        get(&looma, "/v1/status/leader").await.json(),
        json!("127.0.0.1:8300")
    );
}

#[tokio::test]
async fn catalog_reads_have_their_own_shapes() {
    let consul = start("zervigo-dc").await;
    let mut first = service("web", "web-1", 8080);
    first.tags = vec!["v2".into()];
    let mut second = service("web", "web-2", 0);
    second.tags = vec!["http".into(), "v2".into()];
    consul.register(first).expect("register");
    consul.register(second).expect("register");
    let services = get(&consul, "/v1/catalog/services").await;
    assert_eq!(
        services.json(),
        json!({"consul": [], "web": ["http", "v2"]})
    );
    assert!(services.index() >= 1);
    let flat = get(&consul, "/v1/catalog/service/web?tag=http").await;
    assert_eq!(flat.index(), consul.service_index("web"));
    let entries = flat.json();
    assert_eq!(entries.as_array().map(Vec::len), Some(1));
    assert_eq!(entries[0]["ServiceID"], "web-2");
    assert_eq!(
        entries[0]["ServicePort"], 0,
        "ServicePort is not omitempty in the catalog"
    );
    assert_eq!(entries[0]["ServiceTags"], json!(["http", "v2"]));
    assert!(entries[0].get("Checks").is_none());
    assert_eq!(get(&consul, "/v1/catalog/service/nothing").await.body, "[]");
}

#[tokio::test]
async fn pretty_indents_the_body() {
    let consul = start("zervigo-dc").await;
    consul
        .register(service("web", "web-1", 8080))
        .expect("register");
    let pretty = get(&consul, "/v1/health/service/web?pretty").await;
    assert!(pretty.body.contains("\n  "), "indented: {}", pretty.body);
    assert!(
        !get(&consul, "/v1/health/service/web")
            .await
            .body
            .contains('\n')
    );
}
