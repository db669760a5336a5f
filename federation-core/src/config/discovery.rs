//! The `discovery` section: client-wide discovery options.
//!
//! Failure prevented: a process that configures a thousand services but calls ten holding a
//! thousand long polls against Consul, with no way to say otherwise from its configuration
//! file (the builder option alone would leave the Python and Go bindings, which build from
//! configuration, without it). See docs/ARCHITECTURE.md, "Lazy watches".

use serde::Serialize;

use super::error::Problems;
use super::read;
use super::tree::Node;

/// Client-wide discovery options (the `discovery` section).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DiscoveryOptions {
    /// Start a service's discovery watches on its first call (or in `wait_ready`) instead of
    /// when the client is built. Default: `false` (every configured service is watched from
    /// build). `ClientBuilder::lazy_discovery_watches` overrides it.
    pub lazy_watches: bool,
}

/// Reads the `discovery` section at `path`.
pub(super) fn read_discovery(node: &Node, path: &str, p: &mut Problems) -> DiscoveryOptions {
    let mut options = DiscoveryOptions::default();
    if let Some(f) = read::fields(node, path, &["lazy_watches"], p)
        && let Some((node, path)) = f.get("lazy_watches")
        && let Some(lazy) = read::boolean(node, &path, p)
    {
        options.lazy_watches = lazy;
    }
    options
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigFormat};

    const BASE: &str = "clusters:\n  a:\n    static:\n      svc: [{ address: 127.0.0.1, port: 1 }]\n\
                        services:\n  svc: { names: { a: svc } }\n";

    #[test]
    fn lazy_watches_is_read_and_defaults_to_off() {
        let off = Config::parse(BASE, ConfigFormat::Yaml).expect("valid");
        assert!(!off.discovery.lazy_watches);
        let text = format!("{BASE}discovery:\n  lazy_watches: true\n");
        let on = Config::parse(&text, ConfigFormat::Yaml).expect("valid");
        assert!(on.discovery.lazy_watches);
    }

    #[test]
    fn a_wrong_value_or_key_names_the_field() {
        let text = format!("{BASE}discovery:\n  lazy_watches: \"yes\"\n");
        let err = Config::parse(&text, ConfigFormat::Yaml)
            .expect_err("a string is not a boolean")
            .to_string();
        assert!(err.contains("discovery.lazy_watches"), "{err}");
        assert!(err.contains("true or false"), "{err}");
        let text = format!("{BASE}discovery:\n  lazy_watch: true\n");
        let err = Config::parse(&text, ConfigFormat::Yaml)
            .expect_err("unknown key")
            .to_string();
        assert!(err.contains("discovery.lazy_watch"), "{err}");
        assert!(err.contains("lazy_watches"), "{err}");
    }
}
