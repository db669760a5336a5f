//! The three formats, the shipped example files and every example in docs/configuration.md.

use std::path::PathBuf;
use std::time::Duration;

use federation_core::config::{
    CachePolicy, Config, ConfigFormat, DiscoverySource, HeaderValueSource, LoadBalancing,
};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("federation-core lives in the workspace root")
        .to_path_buf()
}

fn example(ext: &str) -> Config {
    let path = repo_root()
        .join("examples/config")
        .join(format!("federation.{ext}"));
    Config::from_file(&path).unwrap_or_else(|e| panic!("{} must load:\n{e}", path.display()))
}

#[test]
fn the_three_example_files_load_to_the_same_config() {
    let yaml = example("yaml");
    assert_eq!(yaml, example("toml"), "TOML differs from YAML");
    assert_eq!(yaml, example("json"), "JSON differs from YAML");
}

#[test]
fn example_describes_both_clusters_in_declaration_order() {
    let config = example("toml");
    let names: Vec<&str> = config.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["zervigo", "looma"]);
    let zervigo = config.cluster("zervigo").expect("zervigo declared");
    assert_eq!(zervigo.load_balancing, LoadBalancing::LeastRequest);
    let DiscoverySource::Consul(consul) = &zervigo.source else {
        panic!("zervigo uses Consul");
    };
    assert_eq!(consul.address, "http://consul-zervigo:8500");
    assert_eq!(consul.datacenter.as_deref(), Some("zervigo-dc"));
    assert_eq!(consul.token_env.as_deref(), Some("ZERVIGO_CONSUL_TOKEN"));
    let looma = config.cluster("looma").expect("looma declared");
    assert_eq!(looma.load_balancing, LoadBalancing::RoundRobin);
    assert!(matches!(
        looma.headers[0].value,
        HeaderValueSource::Value(_)
    ));

    let services: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(services[..3], ["basic", "user", "resume"]);
    let user = config.service("user").expect("user declared");
    assert_eq!(user.prefer.as_deref(), Some("zervigo"));
    let looma_user = user.target_in("looma").expect("user exists in looma");
    assert_eq!(looma_user.consul_name, "looma-user-api");
    assert!(user.target_in("nowhere").is_none());
    assert_eq!(user.policy, None, "user overrides nothing");
}

#[test]
fn service_overrides_merge_field_by_field_onto_defaults() {
    let config = example("yaml");
    let ai = config.service("ai").expect("ai declared");
    let policy = ai.policy.as_ref().expect("ai overrides policies");
    assert_eq!(policy.timeout.attempt, Duration::from_secs(10));
    assert_eq!(policy.timeout.total, Duration::from_secs(30));
    assert_eq!(
        policy.retry, config.defaults.retry,
        "untouched sections stay the defaults"
    );
    let cache = policy.cache.as_ref().expect("cache present = enabled");
    assert_eq!(cache.ttl, Duration::from_secs(30));
    assert_eq!(cache.methods, ["GET", "POST"]);
    assert_eq!(cache.max_bytes, CachePolicy::default().max_bytes);
    assert_eq!(ai.tags, ["model=v2"]);

    let processing = config.service("resume-processing").expect("declared");
    let policy = config.policy_for(processing);
    assert_eq!(policy.retry.max_attempts, 2);
    assert_eq!(policy.retry.budget, config.defaults.retry.budget);
    assert!(policy.cache.is_none(), "defaults do not enable the cache");
}

/// Fenced ```yaml / ```toml / ```json blocks of a Markdown document, with their line numbers.
fn fenced_blocks(markdown: &str) -> Vec<(usize, ConfigFormat, String)> {
    let mut blocks = Vec::new();
    // Inside a block: its first line, its format (None for other languages) and its text.
    let mut current: Option<(usize, Option<ConfigFormat>, String)> = None;
    for (number, line) in markdown.lines().enumerate() {
        let trimmed = line.trim();
        match current.take() {
            Some((start, format, text)) if trimmed == "```" => {
                if let Some(format) = format {
                    blocks.push((start, format, text));
                }
            }
            Some((start, format, text)) => current = Some((start, format, text + line + "\n")),
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let format = match info.trim() {
                        "yaml" => Some(ConfigFormat::Yaml),
                        "toml" => Some(ConfigFormat::Toml),
                        "json" => Some(ConfigFormat::Json),
                        _ => None,
                    };
                    current = Some((number + 1, format, String::new()));
                }
            }
        }
    }
    assert!(current.is_none(), "unterminated code block");
    blocks
}

#[test]
fn every_example_in_the_configuration_reference_parses() {
    let path = repo_root().join("docs/configuration.md");
    let markdown = std::fs::read_to_string(&path).expect("docs/configuration.md exists");
    let blocks = fenced_blocks(&markdown);
    assert!(
        blocks.len() >= 6,
        "the reference shows examples in all three formats"
    );
    for format in [ConfigFormat::Yaml, ConfigFormat::Toml, ConfigFormat::Json] {
        assert!(
            blocks.iter().any(|(_, f, _)| *f == format),
            "no {format} example"
        );
    }
    let mut failures = Vec::new();
    for (line, format, text) in &blocks {
        if let Err(e) = Config::parse(text, *format) {
            failures.push(format!("docs/configuration.md:{line} ({format}):\n{e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_complete_reference_example_is_the_same_in_all_formats() {
    let markdown =
        std::fs::read_to_string(repo_root().join("docs/configuration.md")).expect("docs exist");
    let blocks = fenced_blocks(&markdown);
    // The first block of each format is the complete example.
    let first = |format: ConfigFormat| {
        let (_, _, text) = blocks
            .iter()
            .find(|(_, f, _)| *f == format)
            .expect("an example of each format");
        Config::parse(text, format).expect("the complete example parses")
    };
    let yaml = first(ConfigFormat::Yaml);
    assert_eq!(yaml, first(ConfigFormat::Toml));
    assert_eq!(yaml, first(ConfigFormat::Json));
}

#[test]
fn format_from_extension() {
    assert_eq!(
        ConfigFormat::from_path("a/b.yml").ok(),
        Some(ConfigFormat::Yaml)
    );
    assert_eq!(
        ConfigFormat::from_path("b.YAML").ok(),
        Some(ConfigFormat::Yaml)
    );
    assert_eq!(
        ConfigFormat::from_path("b.toml").ok(),
        Some(ConfigFormat::Toml)
    );
    assert_eq!(
        ConfigFormat::from_path("b.json").ok(),
        Some(ConfigFormat::Json)
    );
    let error = ConfigFormat::from_path("federation.ini").expect_err("unknown extension");
    let text = error.to_string();
    assert!(
        text.contains("federation.ini") && text.contains(".yaml, .yml, .toml or .json"),
        "{text}"
    );
    assert_eq!(
        "JSON".parse::<ConfigFormat>().ok(),
        Some(ConfigFormat::Json)
    );
}

#[test]
fn a_missing_file_is_a_config_error_naming_the_file() {
    let error = Config::from_file("/nonexistent/federation.yaml").expect_err("no such file");
    assert!(
        error.to_string().contains("/nonexistent/federation.yaml"),
        "{error}"
    );
    assert!(
        error.problems()[0].message().contains("cannot read"),
        "{error}"
    );
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let cases = [
        (ConfigFormat::Yaml, "clusters:\n  a: [1, 2\n"),
        (ConfigFormat::Toml, "[clusters.a]\nconsul = {\n"),
        (ConfigFormat::Json, "{\n  \"clusters\": {,}\n}"),
    ];
    for (format, text) in cases {
        let error = Config::parse(text, format).expect_err("syntax error");
        let problem = &error.problems()[0];
        assert!(
            problem.message().contains("syntax error"),
            "{format}: {error}"
        );
        assert!(
            problem.line().is_some_and(|l| l >= 2),
            "{format}: {problem:?}"
        );
        assert!(problem.column().is_some(), "{format}: {problem:?}");
    }
}
