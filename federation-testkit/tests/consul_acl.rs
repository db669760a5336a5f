//! The ACL model (consul-api.md §1.2, checklist item 7).

mod consul_support;

use consul_support::{client, send, service, start_with};
use federation_testkit::consul::{AclOptions, AclToken, ConsulOptions};
use serde_json::json;

async fn acl_double() -> federation_testkit::consul::ConsulDouble {
    let mut options = ConsulOptions::new("zervigo-dc");
    options.acl = Some(AclOptions {
        default_deny: true,
        tokens: vec![
            AclToken {
                secret: "reader".into(),
                read: true,
                write: false,
            },
            AclToken {
                secret: "writer".into(),
                read: false,
                write: true,
            },
            AclToken {
                secret: "nothing".into(),
                read: false,
                write: false,
            },
        ],
    });
    let consul = start_with(options).await;
    consul
        .register(service("web", "web-1", 8080))
        .expect("in-process registration bypasses ACLs");
    consul
}

#[tokio::test]
async fn the_token_is_read_from_query_header_or_bearer() {
    let consul = acl_double().await;
    let url = format!("{}/v1/health/service/web", consul.url());
    let by_query = send(client().get(format!("{url}?token=reader"))).await;
    let by_header = send(client().get(&url).header("X-Consul-Token", "reader")).await;
    let by_bearer = send(client().get(&url).header("Authorization", "Bearer reader")).await;
    for answer in [&by_query, &by_header, &by_bearer] {
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json().as_array().map(Vec::len), Some(1));
        assert_eq!(answer.header("x-consul-default-acl-policy"), Some("deny"));
    }
    // The query parameter wins over the header; an empty header counts as absent.
    let query_first = send(
        client()
            .get(format!("{url}?token=reader"))
            .header("X-Consul-Token", "typo"),
    )
    .await;
    assert_eq!(query_first.status, 200);
    let empty = send(client().get(&url).header("X-Consul-Token", "")).await;
    assert_eq!((empty.status, empty.body.as_str()), (200, "[]"));
    assert!(
        empty.header("x-consul-results-filtered-by-acls").is_none(),
        "never sent to anonymous callers"
    );
}

#[tokio::test]
async fn unknown_tokens_are_403_and_tokens_without_read_are_silently_filtered() {
    let consul = acl_double().await;
    let url = format!("{}/v1/health/service/web", consul.url());
    let unknown = send(client().get(&url).header("X-Consul-Token", "typo")).await;
    assert_eq!(
        (unknown.status, unknown.body.as_str()),
        (403, "ACL not found")
    );
    let no_read = send(client().get(&url).header("X-Consul-Token", "nothing")).await;
    assert_eq!((no_read.status, no_read.body.as_str()), (200, "[]"));
    assert_eq!(
        no_read.header("x-consul-results-filtered-by-acls"),
        Some("true")
    );
    assert!(no_read.index() >= 1);
    let write_implies_read = send(client().get(&url).header("X-Consul-Token", "writer")).await;
    assert_eq!(write_implies_read.json().as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn writes_need_write_permission() {
    let consul = acl_double().await;
    let url = format!("{}/v1/agent/service/register", consul.url());
    let body = json!({"Name": "api"});
    let denied = send(
        client()
            .put(&url)
            .header("X-Consul-Token", "reader")
            .json(&body),
    )
    .await;
    assert_eq!(denied.status, 403);
    assert!(
        denied.body.starts_with("Permission denied"),
        "{}",
        denied.body
    );
    assert!(denied.body.contains("service:write"));
    let anonymous = send(client().put(&url).json(&body)).await;
    assert_eq!(anonymous.status, 403);
    let allowed = send(
        client()
            .put(&url)
            .header("Authorization", "bearer writer")
            .json(&body),
    )
    .await;
    assert_eq!((allowed.status, allowed.body.as_str()), (200, ""));
    let deregister = send(
        client()
            .put(format!(
                "{}/v1/agent/service/deregister/web-1",
                consul.url()
            ))
            .header("X-Consul-Token", "reader"),
    )
    .await;
    assert_eq!(deregister.status, 403);
}

#[tokio::test]
async fn agent_reads_filter_silently_and_a_named_service_is_403() {
    let consul = acl_double().await;
    let get = |path: &str, token: &str| {
        send(
            client()
                .get(format!("{}{path}", consul.url()))
                .header("X-Consul-Token", token.to_owned()),
        )
    };
    let readable = get("/v1/agent/services", "reader").await;
    assert_eq!(readable.json()["web-1"]["Service"], "web");
    let hidden = get("/v1/agent/services", "nothing").await;
    assert_eq!((hidden.status, hidden.json()), (200, json!({})));
    let checks = get("/v1/agent/checks", "nothing").await;
    assert_eq!((checks.status, checks.json()), (200, json!({})));
    let one = get("/v1/agent/service/web-1", "nothing").await;
    assert_eq!(one.status, 403);
    assert!(
        one.body
            .starts_with("Permission denied: token with AccessorID '")
            && one
                .body
                .ends_with("lacks permission 'service:read' on \"web\""),
        "{}",
        one.body
    );
    assert_eq!(get("/v1/agent/service/web-1", "reader").await.status, 200);
}
