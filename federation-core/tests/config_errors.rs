//! Validation reports every problem at once (in document order), each with its field path,
//! value and what is allowed.

use federation_core::config::{
    ClusterConfig, Config, ConfigError, ConfigFormat, ConfigProblem, ConsulSource, DiscoverySource,
    ServiceConfig, ServiceTarget, UpstreamTls,
};

fn errors(text: &str, format: ConfigFormat) -> ConfigError {
    match Config::parse(text, format) {
        Ok(config) => panic!("expected problems, got {config:#?}"),
        Err(e) => e,
    }
}

/// The problem at `path`, failing with the whole report when absent.
fn at<'a>(error: &'a ConfigError, path: &str) -> &'a ConfigProblem {
    error
        .problems()
        .iter()
        .find(|p| p.path() == path)
        .unwrap_or_else(|| panic!("no problem at `{path}` in:\n{error}"))
}

const MANY_MISTAKES: &str = r#"
clusters:
  zervigo:
    consul:
      address: "consul-zervigo:8500"
      datacenter: zervigo-dc
      wait: 5
      token: "s3cr3t-token-value"
      token_env: ZERVIGO_TOKEN
    load_balancing: round-robin
  looma:
    static:
      looma-user-api:
        - { address: 10.0.0.1, port: 70000 }
    tls: { client_cert: /etc/cert.pem }
services:
  user:
    prefr: zervigo
    names: { zervigo: user-service, lomma: looma-user-api }
  ai:
    prefer: zervigo
    names: { looma: ai-service }
    cache: { ttl: 30s, methods: [GET, get, FETCH] }
    retry: { max_attempts: 0 }
defaults:
  timeout: { attempt: 5s, total: 3s }
  retry: { backoff: { base: 1s, max: 100ms } }
  breaker: { open_for: 2m, max_open_for: 1m, failure_rate: { threshold: 1.5 } }
  timout: { attempt: 1s }
"#;

#[test]
fn a_file_with_many_mistakes_reports_every_one_with_path_and_value() {
    let error = errors(MANY_MISTAKES, ConfigFormat::Yaml);
    let report = error.to_string();

    let address = at(&error, "clusters.zervigo.consul.address");
    assert_eq!(address.value(), Some("\"consul-zervigo:8500\""));
    assert!(address.message().contains("http://"), "{report}");

    let wait = at(&error, "clusters.zervigo.consul.wait");
    assert_eq!(wait.value(), Some("5"));
    assert!(
        wait.message().contains("add a unit, e.g. 250ms, 1s, 5m"),
        "{report}"
    );

    assert!(
        at(&error, "clusters.zervigo.consul")
            .message()
            .contains("not both")
    );

    let lb = at(&error, "clusters.zervigo.load_balancing");
    assert_eq!(lb.value(), Some("\"round-robin\""));
    assert!(
        lb.message().contains("did you mean `round_robin`?"),
        "{report}"
    );
    assert!(
        lb.message()
            .contains("`peak_ewma`, `least_request`, `round_robin`"),
        "{report}"
    );

    let port = at(&error, "clusters.looma.static.looma-user-api[0].port");
    assert_eq!(port.value(), Some("70000"));
    assert!(port.message().contains("1 to 65535"), "{report}");

    assert!(
        at(&error, "clusters.looma.tls.client_key")
            .message()
            .contains("client_cert")
    );

    let prefr = at(&error, "services.user.prefr");
    assert!(
        prefr.message().contains("did you mean `prefer`?"),
        "{report}"
    );
    assert!(prefr.message().contains("allowed fields here"), "{report}");

    let lomma = at(&error, "services.user.names.lomma");
    assert!(
        lomma.message().contains("did you mean `looma`?"),
        "{report}"
    );

    let prefer = at(&error, "services.ai.prefer");
    assert!(
        prefer.message().contains("does not exist in this cluster"),
        "{report}"
    );

    let lower = at(&error, "services.ai.cache.methods[1]");
    assert!(lower.message().contains("did you mean `GET`?"), "{report}");
    at(&error, "services.ai.cache.methods[2]");
    assert_eq!(
        at(&error, "services.ai.retry.max_attempts").value(),
        Some("0")
    );

    let attempt = at(&error, "defaults.timeout.attempt");
    assert_eq!(attempt.value(), Some("5s"));
    assert!(attempt.message().contains("timeout.total (3s)"), "{report}");
    at(&error, "defaults.retry.backoff.base");
    at(&error, "defaults.breaker.open_for");
    assert_eq!(
        at(&error, "defaults.breaker.failure_rate.threshold").value(),
        Some("1.5")
    );
    assert!(
        at(&error, "defaults.timout")
            .message()
            .contains("did you mean `timeout`?")
    );

    // The defaults' problems are reported once, not again for every overriding service.
    assert!(
        !error
            .problems()
            .iter()
            .any(|p| p.path() == "services.ai.timeout.attempt"),
        "{report}"
    );
    assert_eq!(error.problems().len(), 17, "{report}");
    // Display: a header line, then one line per problem.
    assert_eq!(
        report.lines().count(),
        1 + error.problems().len(),
        "{report}"
    );
    assert!(
        report.starts_with("invalid configuration (17 problems):"),
        "{report}"
    );
    assert!(
        !report.contains("s3cr3t"),
        "the inline token leaked:\n{report}"
    );
}

#[test]
fn the_same_mistakes_are_found_in_toml_and_json() {
    let toml = r#"
[clusters.zervigo]
consul = { address = "consul-zervigo:8500", wait = 5 }
load_balancing = "round-robin"
[services.user]
prefr = "zervigo"
"#;
    let json = r#"{
  "clusters": { "zervigo": { "consul": { "address": "consul-zervigo:8500", "wait": 5 },
                              "load_balancing": "round-robin" } },
  "services": { "user": { "prefr": "zervigo" } }
}"#;
    for (text, format) in [(toml, ConfigFormat::Toml), (json, ConfigFormat::Json)] {
        let error = errors(text, format);
        let paths: Vec<&str> = error.problems().iter().map(|p| p.path()).collect();
        assert_eq!(
            paths,
            [
                "clusters.zervigo.consul.address",
                "clusters.zervigo.consul.wait",
                "clusters.zervigo.load_balancing",
                "services.user.prefr",
            ],
            "{format}: {error}"
        );
    }
}

#[test]
fn structural_mistakes() {
    let text = r#"
clusters:
  both:
    consul: { address: "http://a:8500" }
    static: { svc: [ { address: h, port: 1 } ] }
  neither:
    load_balancing: peak_ewma
  odd: 42
  "bad name!":
    static: { svc: [] }
services:
  svc:
    prefer: neither
    names: { neither: { tags: [x] } }
    path_prefix: api
  "": {}
"#;
    let error = errors(text, ConfigFormat::Yaml);
    assert!(
        at(&error, "clusters.both").message().contains("not both"),
        "{error}"
    );
    assert!(
        at(&error, "clusters.neither")
            .message()
            .contains("no discovery source"),
        "{error}"
    );
    assert!(
        at(&error, "clusters.odd")
            .message()
            .contains("expected a map, found an integer")
    );
    assert!(
        at(&error, "clusters.bad name!")
            .message()
            .contains("invalid cluster name")
    );
    assert!(
        at(&error, "services.svc.names.neither.name")
            .message()
            .contains("missing")
    );
    assert!(
        at(&error, "services.svc.path_prefix")
            .message()
            .contains("starting with `/`")
    );
    assert!(
        at(&error, "services.")
            .message()
            .contains("invalid service name"),
        "{error}"
    );
    // Placeholders for unreadable clusters do not cause follow-up reports.
    assert!(
        !error
            .problems()
            .iter()
            .any(|p| p.path().ends_with(".static")),
        "{error}"
    );
}

#[test]
fn an_empty_or_clusterless_document_says_what_is_missing() {
    let error = errors("", ConfigFormat::Yaml);
    assert!(error.to_string().contains("empty"), "{error}");
    let error = errors("services: {}", ConfigFormat::Yaml);
    assert!(
        at(&error, "clusters")
            .message()
            .contains("at least one cluster"),
        "{error}"
    );
    let error = errors("[1, 2]", ConfigFormat::Json);
    assert!(
        error.problems()[0].message().contains("expected a map"),
        "{error}"
    );
}

#[test]
fn headers_and_instances_are_checked() {
    let text = r#"
clusters:
  a:
    static:
      svc:
        - { address: "http://h:80", port: 80 }
        - { address: h2, port: 81, weight: 0, colour: red }
    headers:
      "Bad Header": x
      Host: example
      X-Token: { env: "" }
services: {}
"#;
    let error = errors(text, ConfigFormat::Yaml);
    at(&error, "clusters.a.static.svc[0].address");
    assert!(
        at(&error, "clusters.a.static.svc[1].weight")
            .message()
            .contains("1 to 65535")
    );
    assert!(
        at(&error, "clusters.a.static.svc[1].colour")
            .message()
            .contains("allowed fields")
    );
    assert!(
        at(&error, "clusters.a.headers.Bad Header")
            .message()
            .contains("invalid header name")
    );
    assert!(
        at(&error, "clusters.a.headers.Host")
            .message()
            .contains("set by the client")
    );
    at(&error, "clusters.a.headers.X-Token.env");
}

#[test]
fn configs_built_in_code_get_the_same_checks() {
    let mut cluster = ClusterConfig::new(
        "zervigo",
        DiscoverySource::Consul(ConsulSource::new("consul:8500")),
    );
    cluster.tls = Some(UpstreamTls {
        client_key: Some("/key.pem".into()),
        ..UpstreamTls::default()
    });
    let mut user = ServiceConfig::new("user");
    user.prefer = Some("lomma".into());
    user.targets.push(ServiceTarget {
        cluster: "zervigo".into(),
        consul_name: String::new(),
        tags: Vec::new(),
        path_prefix: Some("/api/".into()),
    });
    let mut config = Config {
        clusters: vec![cluster],
        services: vec![user],
        ..Config::default()
    };
    config.defaults.retry.max_attempts = 0;
    let error = config.validate().expect_err("several problems");
    for path in [
        "clusters.zervigo.consul.address",
        "clusters.zervigo.tls.client_cert",
        "services.user.names.zervigo",
        "services.user.names.zervigo.path_prefix",
        "services.user.prefer",
        "defaults.retry.max_attempts",
    ] {
        at(&error, path);
    }
    assert_eq!(error.problems().len(), 6, "{error}");

    let good = Config {
        clusters: vec![ClusterConfig::new(
            "local",
            DiscoverySource::Consul(ConsulSource::new("http://127.0.0.1:8500")),
        )],
        services: vec![ServiceConfig::new("user")],
        ..Config::default()
    };
    good.validate()
        .expect("a minimal code-built config is valid");
    assert!(
        Config::default().validate().is_err(),
        "no clusters is an error"
    );
}

#[test]
fn the_error_report_shown_in_the_reference_is_accurate() {
    let text = "clusters:\n  zervigo:\n    consul: { address: \"consul-zervigo:8500\", wait: 5 }\nservices:\n  user: { prefr: zervigo }\n";
    let error = errors(text, ConfigFormat::Yaml).with_source_name("federation.yaml");
    let expected = "invalid configuration federation.yaml (3 problems):
  clusters.zervigo.consul.address = \"consul-zervigo:8500\": expected an http:// or https:// URL of the agent, e.g. \"http://consul-zervigo:8500\"
  clusters.zervigo.consul.wait = 5: a bare number is ambiguous: add a unit, e.g. 250ms, 1s, 5m
  services.user.prefr: unknown field `prefr` (did you mean `prefer`?); allowed fields here: `prefer`, `names`, `tags`, `path_prefix`, `split`, `timeout`, `retry`, `breaker`, `failover`, `load_balancing`, `cache`, `limits`, `hedge`, `spill`";
    assert_eq!(error.to_string(), expected);
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/configuration.md"
    ))
    .expect("docs exist");
    assert!(
        docs.contains(expected),
        "docs/configuration.md shows an outdated report"
    );
}

#[test]
fn connection_settings_are_read_and_checked() {
    let ok = Config::parse(
        r#"
clusters:
  zervigo:
    static: { user-service: [ { address: 127.0.0.1, port: 8081 } ] }
    connections: { max_idle_per_instance: 0, idle_timeout: 30s, connect_timeout: 250ms, tcp_nodelay: false }
  looma:
    static: { looma-user-api: [ { address: 127.0.0.1, port: 8082 } ] }
services:
  user:
    names: { zervigo: user-service, looma: looma-user-api }
"#,
        ConfigFormat::Yaml,
    )
    .expect("valid");
    let zervigo = &ok.cluster("zervigo").expect("zervigo").connections;
    assert_eq!(zervigo.max_idle_per_instance, Some(0));
    assert_eq!(
        zervigo.idle_timeout,
        Some(std::time::Duration::from_secs(30))
    );
    assert_eq!(
        zervigo.connect_timeout,
        Some(std::time::Duration::from_millis(250))
    );
    assert_eq!(zervigo.tcp_nodelay, Some(false));
    let looma = &ok.cluster("looma").expect("looma").connections;
    assert_eq!(looma, &Default::default(), "unset: the builder's values");

    let error = errors(
        r#"
clusters:
  zervigo:
    static: { user-service: [ { address: 127.0.0.1, port: 8081 } ] }
    connections: { max_idle: 4, idle_timeout: 0s, connect_timeout: 1, tcp_nodelay: yes please }
  looma:
    static: { looma-user-api: [ { address: 127.0.0.1, port: 8082 } ] }
    connections: { max_idle_per_instance: -1 }
services:
  user:
    names: { zervigo: user-service, looma: looma-user-api }
"#,
        ConfigFormat::Yaml,
    );
    let report = error.to_string();
    let unknown = at(&error, "clusters.zervigo.connections.max_idle");
    assert!(
        unknown.message().contains("max_idle_per_instance"),
        "{report}"
    );
    let idle = at(&error, "clusters.zervigo.connections.idle_timeout");
    assert_eq!(idle.value(), Some("0s"));
    assert!(idle.message().contains("more than 0"), "{report}");
    let connect = at(&error, "clusters.zervigo.connections.connect_timeout");
    assert!(connect.message().contains("add a unit"), "{report}");
    at(&error, "clusters.zervigo.connections.tcp_nodelay");
    let negative = at(&error, "clusters.looma.connections.max_idle_per_instance");
    assert_eq!(negative.value(), Some("-1"));
}

#[test]
fn panic_threshold_is_a_share_or_false() {
    let config = |failover: &str| {
        format!(
            "clusters:\n  zervigo:\n    static: {{ user-service: [ {{ address: 127.0.0.1, port: 8081 }} ] }}\n\
             services:\n  user:\n    names: {{ zervigo: user-service }}\n\
             defaults:\n  failover: {failover}\n"
        )
    };
    let parse = |failover: &str| Config::parse(&config(failover), ConfigFormat::Yaml);
    let default = parse("{ dwell: 1s }").expect("valid");
    assert_eq!(default.defaults.failover.panic_threshold, Some(0.0));
    let half = parse("{ panic_threshold: 0.5 }").expect("valid");
    assert_eq!(half.defaults.failover.panic_threshold, Some(0.5));
    let off = parse("{ panic_threshold: false }").expect("valid");
    assert_eq!(off.defaults.failover.panic_threshold, None);

    let error = errors(&config("{ panic_threshold: 1.5 }"), ConfigFormat::Yaml);
    let problem = at(&error, "defaults.failover.panic_threshold");
    assert_eq!(problem.value(), Some("1.5"), "{error}");
    assert!(problem.message().contains("false"), "{error}");
    let error = errors(&config("{ panic_threshold: half }"), ConfigFormat::Yaml);
    at(&error, "defaults.failover.panic_threshold");
}
