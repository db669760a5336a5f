//! Secrets (ACL tokens, literal header values) never leak, and `token_env`/`env` resolve at start.

use federation_core::config::{
    ClusterConfig, Config, ConfigFormat, ConsulSource, DiscoverySource, HeaderValueSource, Secret,
};

const TOKEN: &str = "tok-9f8e7d6c-never-print-me";
const HEADER: &str = "Bearer hdr-1234-never-print-me";

fn config_with_secrets() -> Config {
    let text = format!(
        r#"
clusters:
  zervigo:
    consul: {{ address: "http://consul-zervigo:8500", token: "{TOKEN}" }}
    headers:
      Authorization: "{HEADER}"
services:
  user: {{ names: {{ zervigo: user-service }} }}
"#
    );
    Config::parse(&text, ConfigFormat::Yaml).expect("valid configuration")
}

fn assert_clean(text: &str, what: &str) {
    assert!(!text.contains(TOKEN), "{what} leaks the token:\n{text}");
    assert!(
        !text.contains("hdr-1234"),
        "{what} leaks the header value:\n{text}"
    );
}

#[test]
fn debug_display_and_json_never_show_secrets() {
    let config = config_with_secrets();
    assert_clean(&format!("{config:?}"), "Debug");
    assert_clean(&format!("{config:#?}"), "pretty Debug");
    let json = serde_json::to_string_pretty(&config).expect("serializes");
    assert_clean(&json, "JSON");
    assert!(
        json.contains("\"***\""),
        "secrets are shown masked:\n{json}"
    );

    let secret = Secret::new(TOKEN);
    assert_clean(&format!("{secret} {secret:?}"), "Secret");
    assert_eq!(secret.expose(), TOKEN, "the value is still there to send");

    // The secret is really loaded.
    let cluster = config.cluster("zervigo").expect("declared");
    let token = cluster
        .resolve_token()
        .expect("inline token")
        .expect("some token");
    assert_eq!(token.expose(), TOKEN);
    let headers = cluster.resolve_headers().expect("literal header");
    assert_eq!(headers[0].1.to_str().ok(), Some(HEADER));
    assert_clean(&format!("{headers:?}"), "resolved headers Debug");
}

#[test]
fn errors_never_show_secrets() {
    // Invalid configuration around the secrets: the errors name the fields but not the values.
    let text = format!(
        r#"
clusters:
  zervigo:
    consul: {{ address: "http://consul-zervigo:8500", token: "{TOKEN}", token_env: X, wait: 0s }}
    headers:
      Authorization: "{HEADER}\u0001"
      X-Num: 42
  creds:
    consul: {{ address: "http://user:{TOKEN}@consul:8500" }}
services: {{}}
"#
    );
    let error = Config::parse(&text, ConfigFormat::Yaml).expect_err("invalid");
    let report = error.to_string();
    assert_clean(&report, "Display of the error");
    assert_clean(&format!("{error:?}"), "Debug of the error");
    for path in [
        "clusters.zervigo.consul",
        "clusters.zervigo.consul.wait",
        "clusters.zervigo.headers.Authorization",
        "clusters.zervigo.headers.X-Num",
        "clusters.creds.consul.address",
    ] {
        assert!(
            error.problems().iter().any(|p| p.path() == path),
            "no problem at {path}:\n{report}"
        );
    }
    let num = error
        .problems()
        .iter()
        .find(|p| p.path().ends_with("X-Num"))
        .expect("reported");
    assert_eq!(
        num.value(),
        None,
        "header values are secret even when mistyped"
    );
}

#[test]
fn token_env_is_read_when_resolved() {
    let var = "FEDERATION_TEST_TOKEN_ENV_READ_7361";
    let mut consul = ConsulSource::new("http://127.0.0.1:8500");
    consul.token_env = Some(var.to_owned());
    let error = consul
        .resolve_token("clusters.zervigo.consul")
        .expect_err("variable not set yet");
    let problem = &error.problems()[0];
    assert_eq!(problem.path(), "clusters.zervigo.consul.token_env");
    assert_eq!(problem.value(), Some(&*format!("\"{var}\"")));
    assert!(problem.message().contains("not set"), "{error}");

    let none = ConsulSource::new("http://127.0.0.1:8500");
    assert_eq!(none.resolve_token("x").expect("anonymous"), None);
}

#[test]
fn header_env_missing_names_the_field_and_variable() {
    let var = "FEDERATION_TEST_HEADER_ENV_MISSING_5521";
    let mut cluster = ClusterConfig::new(
        "looma",
        DiscoverySource::Consul(ConsulSource::new("http://127.0.0.1:8500")),
    );
    cluster
        .headers
        .push(federation_core::config::DefaultHeader {
            name: "X-Api-Key".to_owned(),
            value: HeaderValueSource::Env(var.to_owned()),
        });
    let error = cluster.resolve_headers().expect_err("variable missing");
    let problem = &error.problems()[0];
    assert_eq!(problem.path(), "clusters.looma.headers.X-Api-Key.env");
    assert!(error.to_string().contains(var), "{error}");
}

/// Setting a variable in this process needs `unsafe` (edition 2024), which the crate forbids;
/// so the test re-runs itself as a child process with the variables set.
#[test]
fn token_env_and_header_env_resolve_from_the_environment() {
    const TOKEN_VAR: &str = "FEDERATION_TEST_TOKEN_ENV_OK_8812";
    const HEADER_VAR: &str = "FEDERATION_TEST_HEADER_ENV_OK_8813";
    if std::env::var_os(TOKEN_VAR).is_none() {
        let exe = std::env::current_exe().expect("test binary path");
        let output = std::process::Command::new(exe)
            .args([
                "--exact",
                "token_env_and_header_env_resolve_from_the_environment",
                "--nocapture",
            ])
            .env(TOKEN_VAR, TOKEN)
            .env(HEADER_VAR, HEADER)
            .output()
            .expect("child test runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("1 passed"),
            "the child ran the test:\n{stdout}"
        );
        return;
    }
    let text = format!(
        r#"{{
  "clusters": {{ "zervigo": {{
    "consul": {{ "address": "http://consul-zervigo:8500", "token_env": "{TOKEN_VAR}" }},
    "headers": {{ "X-Api-Key": {{ "env": "{HEADER_VAR}" }} }} }} }},
  "services": {{}}
}}"#
    );
    let config = Config::parse(&text, ConfigFormat::Json).expect("valid configuration");
    let cluster = &config.clusters[0];
    let token = cluster
        .resolve_token()
        .expect("variable set")
        .expect("a token");
    assert_eq!(token.expose(), TOKEN);
    let headers = cluster.resolve_headers().expect("variable set");
    assert_eq!(headers[0].0.as_str(), "x-api-key");
    assert_eq!(headers[0].1.to_str().ok(), Some(HEADER));
    assert_clean(&format!("{config:?} {headers:?}"), "Debug after resolution");
}
