//! Discovery: instance sets per (cluster, Consul service), from Consul blocking queries or a
//! static list.

mod model;

pub use model::*;
