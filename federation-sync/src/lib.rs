//! # federation-sync
//!
//! Cross-cluster data sync over Kafka.
#![forbid(unsafe_code)]
