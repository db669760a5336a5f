//! The `spill` policy section: partial overrides, `true`/`false`, and thresholds that cannot
//! give hysteresis reported with their field path, the value and what is allowed.

use std::time::Duration;

use federation_core::config::{Config, ConfigError, ConfigFormat, SpillPolicy, SpillSignal};

/// A `chat` service preferring `zervigo` with `service` keys appended, `defaults.spill` set.
fn parse(service: &str) -> Result<Config, ConfigError> {
    parse_chat(&format!("    prefer: zervigo\n{service}"))
}

fn parse_chat(service: &str) -> Result<Config, ConfigError> {
    let doc = format!(
        "clusters:\n  zervigo:\n    static: {{ ai: [ {{ address: 127.0.0.1, port: 8081 }} ] }}\n\
         services:\n  chat:\n    names: {{ zervigo: ai }}\n{service}\
         defaults:\n  spill: {{ max_share: 0.4 }}\n"
    );
    Config::parse(&doc, ConfigFormat::Yaml)
}

fn spill_of(config: &Config) -> Option<&SpillPolicy> {
    config.policy_for(&config.services[0]).spill.as_ref()
}

#[test]
fn a_service_override_keeps_the_defaults_other_spill_fields() {
    let config = parse("    spill: { signal: in_flight, min_dwell: 30s }\n").expect("valid");
    let spill = spill_of(&config).expect("on");
    assert_eq!(spill.signal, SpillSignal::InFlight);
    assert_eq!(spill.min_dwell, Duration::from_secs(30));
    assert_eq!(spill.max_share, 0.4);
    assert_eq!(spill.enter_factor, 2.0);
    assert_eq!(spill_of(&parse("    spill: false\n").expect("valid")), None);
}

#[test]
fn thresholds_without_hysteresis_are_reported() {
    let service = "    spill: { enter_factor: 1, exit_factor: 2, max_share: 1.5, min_dwell: 0s, \
                   signal: p50 }\n";
    let error = parse(service).expect_err("invalid");
    let at = |path: &str| {
        error
            .problems()
            .iter()
            .find(|p| p.path() == path)
            .unwrap_or_else(|| panic!("no problem at `{path}` in:\n{error}"))
            .clone()
    };
    let signal = at("services.chat.spill.signal");
    assert_eq!(signal.value(), Some("\"p50\""), "{signal:?}");
    assert!(
        signal.message().contains("allowed: `latency`, `in_flight`"),
        "{signal:?}"
    );
    assert!(
        at("services.chat.spill.enter_factor")
            .message()
            .contains("greater than 1")
    );
    let exit = at("services.chat.spill.exit_factor");
    assert_eq!(exit.value(), Some("2"));
    assert!(exit.message().contains("below enter_factor"), "{exit:?}");
    assert!(
        at("services.chat.spill.max_share")
            .message()
            .contains("at most 1")
    );
    assert!(
        at("services.chat.spill.min_dwell")
            .message()
            .contains("greater than 0s")
    );
}

#[test]
fn a_service_spill_without_prefer_is_reported_and_an_inherited_one_is_not() {
    let error = parse_chat("    spill: { enter_factor: 3 }\n").expect_err("no prefer");
    let problem = error
        .problems()
        .iter()
        .find(|p| p.path() == "services.chat.spill")
        .unwrap_or_else(|| panic!("no problem at services.chat.spill in:\n{error}"));
    assert!(problem.message().contains("no `prefer`"), "{problem:?}");
    assert!(
        problem.message().contains("add `prefer: <cluster>`"),
        "{problem:?}"
    );
    let inherited = parse_chat("").expect("defaults.spill applies only where a service prefers");
    assert!(spill_of(&inherited).is_some());
    parse_chat("    spill: false\n").expect("turning spill off needs no prefer");
}
