//! Configuration: the schema of clusters, logical services and policies, loaded from YAML, TOML
//! or JSON or built in code.

mod model;

pub use model::*;
