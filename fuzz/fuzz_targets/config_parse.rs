//! Fuzzes `Config::parse`: the first byte picks YAML, JSON or TOML, the rest is the document.
//! Any panic, hang or crash is a finding; errors are the expected outcome for most inputs and
//! must always list at least one problem.
#![no_main]

use federation_core::config::{Config, ConfigFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let format = match selector % 3 {
        0 => ConfigFormat::Yaml,
        1 => ConfigFormat::Json,
        _ => ConfigFormat::Toml,
    };
    let text = String::from_utf8_lossy(rest);
    if let Err(error) = Config::parse(&text, format) {
        assert!(!error.problems().is_empty(), "an error without problems");
    }
});
