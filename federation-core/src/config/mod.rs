//! Configuration: the schema of clusters, logical services and policies, loaded from YAML, TOML
//! or JSON or built in code.
//!
//! A federation misconfigured is a federation that fails over to nowhere, so configuration
//! errors are caught at load time and reported all at once: every problem carries its field path
//! (`services.user.prefer`), the offending value (never a secret) and what is allowed, with a
//! "did you mean" hint for misspelled keys. Loading parses the text into an order-preserving tree
//! (cluster order is the failover tie-break), walks it into the typed [`Config`] while collecting
//! type and key problems, then runs the semantic checks of [`Config::validate`], which configs
//! built in code get as well. The full schema is documented in `docs/configuration.md`.
//!
//! ```
//! use federation_core::config::{Config, ConfigFormat};
//!
//! let yaml = r#"
//! clusters:
//!   zervigo: { consul: { address: "http://consul-zervigo:8500", datacenter: zervigo-dc } }
//!   looma: { consul: { address: "http://consul-looma:8500", datacenter: looma-dc } }
//! services:
//!   user: { prefer: zervigo, names: { zervigo: user-service, looma: looma-user-api } }
//! defaults:
//!   timeout: { attempt: 1s, total: 3s }
//! "#;
//! let config = Config::parse(yaml, ConfigFormat::Yaml).expect("valid configuration");
//! assert_eq!(config.clusters[0].name, "zervigo");
//!
//! let error = Config::parse("clusters: {}\nservices: { user: { prefr: zervigo } }", ConfigFormat::Yaml)
//!     .expect_err("two problems");
//! assert!(error.to_string().contains("did you mean `prefer`?"));
//! ```

mod cache_l2;
mod clusters;
mod discovery;
mod error;
mod hedge;
mod load;
pub mod model;
mod policy;
mod read;
mod secrets;
mod services;
mod spill;
mod split;
mod suggest;
mod sync;
mod sync_read;
mod sync_validate;
mod tree;
pub mod units;
mod validate;
mod validate_cluster;
mod validate_policy;
mod validate_split;

pub use cache_l2::{L2Policy, L2Target};
pub use discovery::DiscoveryOptions;
pub use error::{ConfigError, ConfigProblem};
pub use hedge::HedgePolicy;
pub use load::ConfigFormat;
pub use model::*;
pub use spill::{SpillPolicy, SpillSignal};
pub use split::{SPLIT_TOTAL, SplitArm, SplitConfig};
pub use sync::{ConflictPolicy, EntityType, HandlerRetry, SyncCluster, SyncConfig};
