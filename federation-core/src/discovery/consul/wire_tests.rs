//! Parsing tests on the examples of consul-api.md §2.3 and on odd inputs.

use super::*;

/// consul-api.md §2.3, Example A (two entries: empty Service.Address, IPv6).
const EXAMPLE_A: &str = r#"[
  {
    "Node": {
      "ID": "5b0f3c7e-1d2a-4c6b-9e11-0a7d2f1e9c40", "Node": "zervigo-app-1",
      "Address": "172.20.0.11", "Datacenter": "zervigo-dc",
      "TaggedAddresses": {"lan": "172.20.0.11", "lan_ipv4": "172.20.0.11",
                          "wan": "172.20.0.11", "wan_ipv4": "172.20.0.11"},
      "Meta": {"consul-network-segment": "", "consul-version": "1.16.4"},
      "CreateIndex": 12, "ModifyIndex": 15
    },
    "Service": {
      "ID": "user-api-8081", "Service": "user-api", "Tags": ["v2", "http"], "Address": "",
      "Meta": null, "Port": 8081, "Weights": {"Passing": 1, "Warning": 1},
      "EnableTagOverride": false, "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
      "Connect": {}, "PeerName": "", "CreateIndex": 4100, "ModifyIndex": 4100
    },
    "Checks": [
      {"Node": "zervigo-app-1", "CheckID": "serfHealth", "Name": "Serf Health Status",
       "Status": "passing", "Notes": "", "Output": "Agent alive and reachable",
       "ServiceID": "", "ServiceName": "", "ServiceTags": [], "Type": "",
       "Interval": "", "Timeout": "", "ExposedPort": 0, "Definition": {},
       "CreateIndex": 12, "ModifyIndex": 12},
      {"Node": "zervigo-app-1", "CheckID": "service:user-api-8081", "Name": "Service 'user-api' check",
       "Status": "warning", "Notes": "", "Output": "HTTP GET http://172.20.0.11:8081/health: 429 Too Many Requests",
       "ServiceID": "user-api-8081", "ServiceName": "user-api", "ServiceTags": ["v2", "http"],
       "Type": "http", "Interval": "10s", "Timeout": "2s", "ExposedPort": 0, "Definition": {},
       "CreateIndex": 4100, "ModifyIndex": 4127}
    ]
  },
  {
    "Node": {
      "ID": "9c2e6a51-7f34-4b0e-8d2a-3e5f6a7b8c9d", "Node": "zervigo-app-2",
      "Address": "2001:db8::22", "Datacenter": "zervigo-dc",
      "TaggedAddresses": {"lan": "2001:db8::22", "lan_ipv6": "2001:db8::22",
                          "wan": "2001:db8::22", "wan_ipv6": "2001:db8::22"},
      "Meta": {"consul-network-segment": ""}, "CreateIndex": 20, "ModifyIndex": 20
    },
    "Service": {
      "ID": "user-api-1", "Service": "user-api", "Tags": ["v2"], "Address": "2001:db8::22",
      "TaggedAddresses": {"lan_ipv6": {"Address": "2001:db8::22", "Port": 9000},
                          "wan_ipv6": {"Address": "2001:db8::22", "Port": 9000}},
      "Meta": {"zone": "a"}, "Port": 9000, "Weights": {"Passing": 10, "Warning": 1},
      "EnableTagOverride": false, "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
      "Connect": {}, "PeerName": "", "CreateIndex": 3990, "ModifyIndex": 3990
    },
    "Checks": [
      {"Node": "zervigo-app-2", "CheckID": "serfHealth", "Name": "Serf Health Status",
       "Status": "passing", "Notes": "", "Output": "Agent alive and reachable",
       "ServiceID": "", "ServiceName": "", "ServiceTags": [], "Type": "",
       "Interval": "", "Timeout": "", "ExposedPort": 0, "Definition": {},
       "CreateIndex": 20, "ModifyIndex": 20}
    ]
  }
]"#;

fn parse(body: &str) -> Vec<Instance> {
    parse_health("user-api", body.as_bytes())
        .expect("the body should parse")
        .instances
}

#[test]
fn example_a_resolves_addresses_weights_and_health() {
    let parsed = parse_health("user-api", EXAMPLE_A.as_bytes()).expect("example A parses");
    assert_eq!(parsed.datacenter.as_deref(), Some("zervigo-dc"));
    let [first, second] = &parsed.instances[..] else {
        panic!("expected two instances, got {:?}", parsed.instances);
    };
    // Empty Service.Address falls back to Node.Address; the warning check marks it Warning.
    assert_eq!(first.id, "user-api-8081");
    assert_eq!(first.node, "zervigo-app-1");
    assert_eq!(first.authority(), "172.20.0.11:8081");
    assert_eq!(first.health, Health::Warning);
    assert_eq!(first.tags, ["v2", "http"]);
    assert!(first.meta.is_empty(), "Meta: null becomes an empty map");
    // IPv6 stays bare in `host` and is bracketed by `authority`.
    assert_eq!(second.host, "2001:db8::22");
    assert_eq!(second.authority(), "[2001:db8::22]:9000");
    assert_eq!(
        second.weights,
        Weights {
            passing: 10,
            warning: 1
        }
    );
    assert_eq!(second.health, Health::Passing);
    assert_eq!(second.meta.get("zone").map(String::as_str), Some("a"));
}

#[test]
fn a_critical_node_check_or_maintenance_makes_the_instance_critical() {
    let body = r#"[{"Node":{"Node":"n1","Address":"10.0.0.1"},
        "Service":{"ID":"a","Service":"s","Address":"10.0.0.9","Port":80},
        "Checks":[{"CheckID":"serfHealth","Status":"critical"},{"CheckID":"service:a","Status":"passing"}]},
        {"Node":{"Node":"n2","Address":"10.0.0.2"},
        "Service":{"ID":"b","Service":"s","Port":80},
        "Checks":[{"CheckID":"_service_maintenance:b","Status":"critical"},{"CheckID":"service:b","Status":"warning"}]}]"#;
    let got = parse(body);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|i| i.health == Health::Critical), "{got:?}");
    assert_eq!(
        got[0].host, "10.0.0.9",
        "Service.Address wins over Node.Address"
    );
}

#[test]
fn missing_and_null_fields_take_defaults() {
    let body = r#"[{"Node":{"Node":"n","Address":"h.example"},
        "Service":{"ID":"x","Service":"s","Port":7,"Tags":null,"Meta":null,"Weights":null,"Address":null},
        "Checks":null}]"#;
    let got = parse(body);
    assert_eq!(got.len(), 1);
    let i = &got[0];
    assert_eq!(i.authority(), "h.example:7");
    assert_eq!(i.weights, Weights::default());
    assert_eq!(i.health, Health::Passing, "no checks means passing");
    assert!(i.tags.is_empty());
}

#[test]
fn weights_are_clamped_and_partial_weights_keep_consul_defaults() {
    let body = r#"[{"Node":{"Address":"1.1.1.1"},"Service":{"ID":"a","Port":1,"Weights":{"Passing":999999,"Warning":-3}}},
                   {"Node":{"Address":"1.1.1.2"},"Service":{"ID":"b","Port":1,"Weights":{"Passing":4}}}]"#;
    let got = parse(body);
    assert_eq!(got[0].weights.passing, 65_535);
    assert_eq!(got[0].weights.warning, 0);
    assert_eq!(got[1].weights.passing, 4);
    assert_eq!(got[1].weights.warning, 1);
}

#[test]
fn instances_without_port_or_address_are_skipped() {
    let body = r#"[{"Node":{"Node":"n","Address":"10.0.0.1"},"Service":{"ID":"no-port","Service":"s"}},
        {"Node":{"Node":"n","Address":""},"Service":{"ID":"no-host","Service":"s","Port":80}},
        {"Node":{"Node":"n","Address":"10.0.0.1"},"Service":{"ID":"bad-port","Service":"s","Port":70000}},
        {"Node":{"Node":"n","Address":"10.0.0.1"},"Service":{"ID":"ok","Service":"s","Port":80,"Kind":"","Namespace":"x","Future":{"a":1}}}]"#;
    let got = parse(body);
    let ids: Vec<_> = got.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        ["ok"],
        "unknown fields are ignored, unusable entries skipped"
    );
}

#[test]
fn bracketed_ipv6_is_stored_bare() {
    let got = parse(
        r#"[{"Node":{"Address":"::1"},"Service":{"ID":"a","Address":"[fd00::5]","Port":9}}]"#,
    );
    assert_eq!(got[0].host, "fd00::5");
    assert_eq!(got[0].authority(), "[fd00::5]:9");
}

#[test]
fn empty_array_is_a_valid_empty_answer() {
    assert!(parse("[]").is_empty());
    assert!(
        parse(" [ ]\n").is_empty(),
        "pretty-printed dev agents add whitespace"
    );
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for body in [
        "",
        "null",
        "{}",
        "[{\"Node\":",
        "<html>502 Bad Gateway</html>",
        "[1,2]",
        "\u{0}\u{1}",
        r#"[{"Service":{"Port":"eighty"}}]"#,
    ] {
        assert!(
            parse_health("s", body.as_bytes()).is_err(),
            "{body:?} should be rejected"
        );
    }
}

#[test]
fn results_are_sorted_by_node_and_id() {
    let body = r#"[{"Node":{"Node":"b","Address":"1.1.1.1"},"Service":{"ID":"x","Port":1}},
                   {"Node":{"Node":"a","Address":"1.1.1.1"},"Service":{"ID":"y","Port":1}},
                   {"Node":{"Node":"a","Address":"1.1.1.1"},"Service":{"ID":"x","Port":1}}]"#;
    let keys: Vec<_> = parse(body).iter().map(Instance::key).collect();
    assert_eq!(keys, ["a/x", "a/y", "b/x"]);
}
