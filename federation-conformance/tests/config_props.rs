//! Property tests of configuration parsing (`Config::parse`) on arbitrary, truncated and mutated
//! YAML, JSON and TOML: it never panics, and every error names where the problem is (a field
//! path, or a line for syntax errors) and what is wrong.

use federation_core::config::{Config, ConfigError, ConfigFormat};
use proptest::prelude::*;

const YAML: &str = r#"
clusters:
  zervigo:
    consul: { address: "http://consul-zervigo:8500", datacenter: zervigo-dc, wait: 30s }
    load_balancing: least_request
    headers: { X-Caller: looma }
  looma:
    static:
      looma-user-api:
        - { address: 127.0.0.1, port: 9001, tags: [v1] }
        - { id: u2, address: "::1", port: 9002, weight: 2, meta: { zone: a } }
services:
  user:
    prefer: zervigo
    names: { zervigo: user-service, looma: looma-user-api }
  ai:
    names: { looma: looma-user-api }
    tags: ["model=v2"]
    cache: { ttl: 30s, methods: [GET, POST], stale_if_error: 5m }
    limits: { max_concurrent: 10, rate_limit: { per_second: 5.5 }, max_response_bytes: 1MiB }
defaults:
  timeout: { attempt: 1s, total: 3s }
  retry: { max_attempts: 3, budget: { percent: 20, min_per_second: 10, window: 10s }, backoff: { base: 25ms, max: 250ms } }
  breaker: { consecutive_failures: 5, open_for: 1s, max_open_for: 60s, failure_rate: { threshold: 0.5 } }
  failover: { healthy_threshold: 0.5, dwell: 5s }
"#;

fn formats() -> impl Strategy<Value = ConfigFormat> {
    prop_oneof![
        Just(ConfigFormat::Yaml),
        Just(ConfigFormat::Json),
        Just(ConfigFormat::Toml)
    ]
}

/// The example as a JSON tree (the source of the JSON and mutation cases).
fn tree() -> serde_json::Value {
    let config = Config::parse(YAML, ConfigFormat::Yaml).expect("the example is valid");
    assert_eq!(config.clusters.len(), 2);
    serde_norway::from_str(YAML).expect("the example is YAML")
}

/// Every problem is specific: a path or a line, and a message.
fn assert_specific(error: &ConfigError) {
    assert!(!error.problems().is_empty(), "an error with no problems");
    for p in error.problems() {
        assert!(
            !p.message().trim().is_empty(),
            "problem without a message: {p:?}"
        );
        assert!(
            !p.path().is_empty() || p.line().is_some() || !p.message().is_empty(),
            "problem without a location: {p:?}"
        );
    }
    assert!(!error.to_string().is_empty());
}

/// Every leaf path of a JSON tree, as (segments, value).
fn leaves(value: &serde_json::Value, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let mut p = prefix.clone();
                p.push(k.clone());
                leaves(v, p, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let mut p = prefix.clone();
                p.push(i.to_string());
                leaves(v, p, out);
            }
        }
        _ => out.push(prefix),
    }
}

fn replace(value: &mut serde_json::Value, path: &[String], with: serde_json::Value) {
    let Some((head, rest)) = path.split_first() else {
        *value = with;
        return;
    };
    let next = match value {
        serde_json::Value::Object(map) => map.get_mut(head),
        serde_json::Value::Array(items) => {
            head.parse::<usize>().ok().and_then(|i| items.get_mut(i))
        }
        _ => None,
    };
    if let Some(next) = next {
        replace(next, rest, with);
    }
}

fn wrong_values() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(1e308)),
        Just(serde_json::json!(18446744073709551615u64)),
        Just(serde_json::json!(true)),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        Just(serde_json::json!({"unexpected": [1, 2, 3]})),
        Just(serde_json::json!("")),
        Just(serde_json::json!("-5s")),
        Just(serde_json::json!("http://user:pw@host:1/?q#f")),
        Just(serde_json::json!("\u{0}\u{fffd}é")),
        "[a-z0-9 :/.-]{0,40}".prop_map(serde_json::Value::String),
        Just(serde_json::Value::String("x".repeat(100_000))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}", format in formats()) {
        if let Err(e) = Config::parse(&text, format) {
            assert_specific(&e);
        }
    }

    #[test]
    fn arbitrary_bytes_as_text_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), format in formats()) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = Config::parse(&text, format) {
            assert_specific(&e);
        }
    }

    #[test]
    fn truncated_documents_never_panic(cut in 0usize..2000, which in 0usize..3) {
        let tree = tree();
        let (text, format) = match which {
            0 => (YAML.to_owned(), ConfigFormat::Yaml),
            1 => (serde_json::to_string_pretty(&tree).expect("json"), ConfigFormat::Json),
            _ => (toml::to_string(&tree).expect("toml"), ConfigFormat::Toml),
        };
        let mut cut = cut.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Err(e) = Config::parse(&text[..cut], format) {
            assert_specific(&e);
        }
    }

    #[test]
    fn mutated_values_are_reported_at_their_path(pick in any::<prop::sample::Index>(), with in wrong_values()) {
        let mut tree = tree();
        let mut paths = Vec::new();
        leaves(&tree, Vec::new(), &mut paths);
        let path = pick.get(&paths).clone();
        replace(&mut tree, &path, with);
        let text = serde_json::to_string(&tree).expect("json");
        if let Err(e) = Config::parse(&text, ConfigFormat::Json) {
            assert_specific(&e);
            // The problem is located under the section that was changed.
            let section = &path[0];
            prop_assert!(
                e.problems().iter().any(|p| p.path().starts_with(section.as_str())),
                "mutating {path:?} gave problems elsewhere: {e}"
            );
        }
    }
}

proptest! {
    // Each case parses thousands of entries: fewer cases keep the file well under 30 s.
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    #[test]
    fn huge_arrays_are_handled(n in 0usize..5000) {
        let mut tree = tree();
        let entry = serde_json::json!({ "address": "127.0.0.1", "port": 9001 });
        tree["clusters"]["looma"]["static"]["looma-user-api"] = serde_json::Value::Array(vec![entry; n]);
        if let Err(e) = Config::parse(&tree.to_string(), ConfigFormat::Json) {
            assert_specific(&e);
        }
    }
}
