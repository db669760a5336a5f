//! Real Redis servers for tests: a standalone server on a loopback port or a unix socket, and a
//! three-master Redis Cluster.
//!
//! A shared cache tier is only proven against the failures production Redis has: a server that
//! dies mid-traffic and comes back empty, one that stalls, a cluster whose slots move. Doubles do
//! not reproduce those, so these start Debian's `redis-server` (7.x) as child processes on free
//! ports; every process is killed by its own pid when its owner is dropped, also when a test
//! panics.
//!
//! ```no_run
//! use federation_testkit::redis::{RedisCluster, RedisServer};
//! # async fn demo() -> std::io::Result<()> {
//! let standalone = RedisServer::start().await?;
//! let cluster = RedisCluster::start().await?;     // ~2 s to cluster_state:ok
//! let seeds = cluster.seeds();                    // ["127.0.0.1:<port>", ...]
//! # let _ = (standalone, seeds); Ok(()) }
//! ```

mod cluster;
mod process;
mod server;

pub use cluster::RedisCluster;
pub use process::Listen;
pub use server::RedisServer;

/// Whether `redis-server` is on the `PATH` (tests that need it can say so clearly instead of
/// failing with a spawn error).
pub fn available() -> bool {
    std::process::Command::new("redis-server")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
