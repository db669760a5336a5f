//! Property tests of Consul answer parsing through a real discovery watcher (the parser is
//! private to federation-core; see `consul_probe`): arbitrary and truncated JSON, wrong types,
//! huge arrays, odd addresses (IPv6 included) and broken `X-Consul-Index` headers never panic or
//! hang the watcher; every instance it accepts is routable (non-empty host, non-zero port).

use federation_conformance::consul_probe::{BodyServer, discover};
use federation_core::discovery::DiscoveryErrorKind;
use proptest::prelude::*;
use serde_json::json;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn entry(
    address: serde_json::Value,
    port: serde_json::Value,
    node_address: &str,
) -> serde_json::Value {
    json!({
        "Node": { "Node": "n1", "Address": node_address, "Datacenter": "dc1" },
        "Service": { "ID": "svc-1", "Service": "svc", "Tags": ["a"], "Address": address,
                     "Meta": null, "Port": port, "Weights": { "Passing": 1, "Warning": 1 } },
        "Checks": [{ "CheckID": "serfHealth", "Status": "passing" }]
    })
}

fn valid_answer() -> Vec<u8> {
    serde_json::to_vec(&json!([
        entry(json!("127.0.0.1"), json!(8080), "10.0.0.1"),
        entry(json!("::1"), json!(8081), "10.0.0.1"),
    ]))
    .expect("json")
}

fn odd_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        "\\PC{0,20}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("Node".to_owned()),
                    Just("Service".to_owned()),
                    Just("Checks".to_owned()),
                    Just("Address".to_owned()),
                    Just("Port".to_owned()),
                    Just("ID".to_owned()),
                    Just("Weights".to_owned()),
                    Just("Status".to_owned()),
                    "[A-Za-z]{1,8}"
                ],
                inner,
                0..6,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn addresses() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(json!("::1")),
        Just(json!("[::1]")),
        Just(json!("fe80::1%eth0")),
        Just(json!("2001:db8::8a2e:370:7334")),
        Just(json!("")),
        Just(json!("   ")),
        Just(json!("256.1.1.1")),
        Just(json!("host name with spaces")),
        Just(json!("http://10.0.0.1:80/")),
        Just(json!(null)),
        Just(json!(42)),
        "\\PC{0,30}".prop_map(serde_json::Value::String),
    ]
}

fn ports() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(65535)),
        Just(json!(65536)),
        Just(json!(1e20)),
        Just(json!("8080")),
        Just(json!(null)),
        (1u16..).prop_map(|p| json!(p)),
    ]
}

/// Serves `body` and checks the watcher's verdict.
fn check(
    server: &BodyServer,
    rt: &tokio::runtime::Runtime,
    body: Vec<u8>,
    index: Option<String>,
) -> Result<(), TestCaseError> {
    match rt.block_on(discover(server, body, index)) {
        Ok(set) => {
            for i in set.instances.iter() {
                prop_assert!(
                    !i.host.trim().is_empty() && i.port != 0,
                    "unroutable instance accepted: {i:?}"
                );
            }
        }
        Err(e) => prop_assert!(
            *e.kind() != DiscoveryErrorKind::Timeout,
            "watcher hung or died: {e}"
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let rt = runtime();
        let server = rt.block_on(BodyServer::start()).expect("server");
        check(&server, &rt, body, Some("7".into()))?;
    }

    #[test]
    fn truncated_answers(cut in 0usize..600) {
        let rt = runtime();
        let server = rt.block_on(BodyServer::start()).expect("server");
        let body = valid_answer();
        let cut = cut.min(body.len());
        check(&server, &rt, body[..cut].to_vec(), Some("7".into()))?;
    }

    #[test]
    fn wrong_types_anywhere(value in odd_json()) {
        let rt = runtime();
        let server = rt.block_on(BodyServer::start()).expect("server");
        let body = serde_json::to_vec(&json!([value])).expect("json");
        check(&server, &rt, body, Some("7".into()))?;
    }

    #[test]
    fn odd_addresses_and_ports(address in addresses(), port in ports(), node in "\\PC{0,16}") {
        let rt = runtime();
        let server = rt.block_on(BodyServer::start()).expect("server");
        let body = serde_json::to_vec(&json!([entry(address, port, &node)])).expect("json");
        check(&server, &rt, body, Some("7".into()))?;
    }

    #[test]
    fn odd_index_headers(index in proptest::option::of(prop_oneof![
        Just("0".to_owned()), Just("-1".to_owned()), Just("18446744073709551616".to_owned()),
        Just(" 12 ".to_owned()), "\\PC{0,12}".prop_filter("header-safe", |s| !s.contains(['\r', '\n']))
    ])) {
        let rt = runtime();
        let server = rt.block_on(BodyServer::start()).expect("server");
        check(&server, &rt, valid_answer(), index)?;
    }
}

#[test]
fn a_huge_answer_is_parsed_and_ipv6_kept() {
    let rt = runtime();
    let server = rt.block_on(BodyServer::start()).expect("server");
    let entries: Vec<_> = (0..20_000)
        .map(|n| {
            let mut e = entry(json!("2001:db8::1"), json!(1 + n % 60_000), "10.0.0.1");
            e["Service"]["ID"] = json!(format!("svc-{n}"));
            e
        })
        .collect();
    let body = serde_json::to_vec(&entries).expect("json");
    let set = rt
        .block_on(discover(&server, body, Some("9".into())))
        .expect("a large valid answer is accepted");
    assert_eq!(set.instances.len(), 20_000);
    assert!(set.instances.iter().all(|i| i.host == "2001:db8::1"));
}

/// The parser in-process (`parse_health_answer`): many more cases than the loopback path can
/// afford, same verdict: never a panic, never an unroutable instance accepted.
fn check_in_process(body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok((instances, _)) = federation_core::discovery::parse_health_answer("svc", body) {
        for i in &instances {
            prop_assert!(
                !i.host.trim().is_empty() && i.port != 0,
                "unroutable instance accepted: {i:?}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, .. ProptestConfig::default() })]

    #[test]
    fn in_process_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check_in_process(&body)?;
    }

    #[test]
    fn in_process_wrong_types_and_odd_addresses(
        value in odd_json(),
        address in addresses(),
        port in ports(),
        cut in 0usize..600,
    ) {
        check_in_process(value.to_string().as_bytes())?;
        let answer = serde_json::to_vec(&serde_json::json!([entry(address, port, "n1")]))
            .expect("json");
        check_in_process(&answer)?;
        check_in_process(&valid_answer()[..cut.min(valid_answer().len())])?;
    }
}
