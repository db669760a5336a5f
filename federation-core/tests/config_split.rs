//! The `split` service section: arms by tags and/or cluster with weights, an optional sticky
//! header, and every impossible split reported with its field path, the value and what is
//! allowed.

use federation_core::config::{Config, ConfigError, ConfigFormat, ConfigProblem, SplitArm};

fn parse(split: &str) -> Result<Config, ConfigError> {
    let doc = format!(
        "clusters:\n\
         \x20 zervigo:\n    static: {{ ai: [ {{ address: 127.0.0.1, port: 8081 }} ] }}\n\
         \x20 looma:\n    static: {{ ai: [ {{ address: 127.0.0.1, port: 8082 }} ] }}\n\
         \x20 mars:\n    static: {{ other: [ {{ address: 127.0.0.1, port: 8083 }} ] }}\n\
         services:\n  chat:\n    names: {{ zervigo: ai, looma: ai }}\n    tags: [prod]\n{split}"
    );
    Config::parse(&doc, ConfigFormat::Yaml)
}

/// The problem at `path`, failing with the whole report when absent.
fn at<'a>(error: &'a ConfigError, path: &str) -> &'a ConfigProblem {
    error
        .problems()
        .iter()
        .find(|p| p.path() == path)
        .unwrap_or_else(|| panic!("no problem at `{path}` in:\n{error}"))
}

#[test]
fn a_split_reads_its_arms_in_order_and_the_sticky_header() {
    let config = parse(
        "    split:\n      sticky_key: header:X-User-Id\n      arms:\n\
         \x20       stable: { tags: [model=v2], weight: 95 }\n\
         \x20       canary: { tags: [model=v3], cluster: looma, weight: 5 }\n",
    )
    .expect("valid");
    let split = config.services[0].split.as_ref().expect("split");
    assert_eq!(split.sticky_header.as_deref(), Some("X-User-Id"));
    let canary = SplitArm {
        name: "canary".to_owned(),
        tags: vec!["model=v3".to_owned()],
        cluster: Some("looma".to_owned()),
        weight: 5,
    };
    assert_eq!(split.arms[0].name, "stable");
    assert_eq!(split.arms[1], canary);
    assert!(parse("").expect("valid").services[0].split.is_none());
}

#[test]
fn impossible_splits_are_reported_with_path_value_and_what_is_allowed() {
    let error = parse(
        "    split:\n      sticky_key: cookie:user\n      stickiness: true\n      arms:\n\
         \x20       stable: { tags: [model=v2], weight: 90 }\n\
         \x20       canary: { tags: [], weight: 5 }\n\
         \x20       mars: { cluster: mars, weight: 1 }\n\
         \x20       other: { cluster: lomma, wieght: 1, weight: 1 }\n\
         \x20       bare: { weight: 1 }\n",
    )
    .expect_err("invalid");
    let sticky = at(&error, "services.chat.split.sticky_key");
    assert_eq!(sticky.value(), Some("\"cookie:user\""));
    assert!(sticky.message().contains("header:<name>"), "{sticky:?}");
    let unknown = at(&error, "services.chat.split.stickiness");
    assert!(
        unknown
            .message()
            .contains("allowed fields here: `sticky_key`, `arms`"),
        "{unknown:?}"
    );
    let empty = at(&error, "services.chat.split.arms.canary.tags");
    assert!(empty.message().contains("empty tag set"), "{empty:?}");
    let mars = at(&error, "services.chat.split.arms.mars.cluster");
    assert_eq!(mars.value(), Some("\"mars\""));
    assert!(mars.message().contains("`zervigo`, `looma`"), "{mars:?}");
    let typo = at(&error, "services.chat.split.arms.other.cluster");
    assert!(typo.message().contains("did you mean `looma`?"), "{typo:?}");
    let key = at(&error, "services.chat.split.arms.other.wieght");
    assert!(key.message().contains("did you mean `weight`?"), "{key:?}");
    let bare = at(&error, "services.chat.split.arms.bare");
    assert!(
        bare.message().contains("`tags`, `cluster` or both"),
        "{bare:?}"
    );
    let sum = at(&error, "services.chat.split.arms");
    assert_eq!(sum.value(), Some("weights add up to 98"));
    assert!(sum.message().contains("must add up to 100"), "{sum:?}");
}

#[test]
fn a_split_needs_arms_with_weights_and_no_cache() {
    let error = parse("    split: { sticky_key: header:X-User-Id }\n").expect_err("no arms");
    assert!(
        at(&error, "services.chat.split.arms")
            .message()
            .contains("missing required field")
    );
    let error =
        parse("    split:\n      arms: { stable: { tags: [model=v2] } }\n").expect_err("no weight");
    let weight = at(&error, "services.chat.split.arms.stable.weight");
    assert!(
        weight.message().contains("missing required field `weight`"),
        "{weight:?}"
    );
    let error = parse(
        "    cache: { ttl: 10s }\n    split:\n      arms: { stable: { tags: [model=v2], weight: 100 } }\n",
    )
    .expect_err("split and cache");
    let both = at(&error, "services.chat.split");
    assert!(both.message().contains("not supported"), "{both:?}");
}
