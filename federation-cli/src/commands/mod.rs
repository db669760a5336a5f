//! One file per subcommand (the demo, being larger, has its own folder `demo/`).

pub mod call;
pub mod config_check;
pub mod discover;
pub mod health;
pub mod sandbox;
pub mod snapshot;
pub mod sync;
