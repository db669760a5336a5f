//! `cache.l2`: the shared Redis tier of a service's result cache (schema, reading, checks).
//!
//! A shared tier misconfigured fails in the worst way: silently. A typo in the address makes
//! every process fetch upstream on its own forever; a 5 s operation timeout turns a stalled
//! Redis into 5 s calls; a password in the file ends up in a repository. So the target is exactly
//! one of `address`, `cluster` or `unix_socket`, every number has a checked range, and the
//! password is only ever named (`password_env`) and read from the environment at start.
//!
//! ```yaml
//! cache:
//!   ttl: 30s
//!   l2:
//!     address: 127.0.0.1:6379          # or cluster: [h1:7000, h2:7001] or unix_socket: /run/redis.sock
//!     key_prefix: "federation:"
//!     ttl: 5m                          # L2 lifetime; default: the cache ttl
//!     timeout: 5ms                     # per Redis operation
//!     password_env: REDIS_PASSWORD
//!     max_value_bytes: 1MiB            # larger values stay in L1 only
//!     lease: 2s                        # fleet-wide single flight
//! ```

use std::time::Duration;

use serde::Serialize;

use super::error::{Problems, join};
use super::read::{self, Fields, set};
use super::tree::Node;
use super::units::{format_duration as fd, format_size};

/// Where the L2 tier's Redis is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum L2Target {
    /// One server, `host:port`.
    Address(String),
    /// Redis Cluster seed nodes, `host:port` each.
    Cluster(Vec<String>),
    /// One server on a unix socket.
    UnixSocket(String),
}

/// The shared Redis tier of one service's result cache. Present = enabled.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct L2Policy {
    /// The Redis to use.
    pub target: L2Target,
    /// Prefix of every key and of the invalidation channel. Default: `federation:`.
    pub key_prefix: String,
    /// Lifetime of a value in Redis (past it, plus the stale windows, Redis drops it).
    /// Default: `None` (the cache `ttl`).
    #[serde(serialize_with = "super::units::ser_opt_duration")]
    pub ttl: Option<Duration>,
    /// Longest wait for one Redis operation; a slower Redis is treated as a miss. Default: 5 ms.
    #[serde(serialize_with = "super::units::ser_duration")]
    pub timeout: Duration,
    /// Environment variable holding the Redis password (`AUTH`). Default: none.
    pub password_env: Option<String>,
    /// Values larger than this (body + headers) are kept in L1 only. Default: 1 MiB.
    pub max_value_bytes: u64,
    /// How long a process that fetches a missing value holds the fleet-wide lease; others wait
    /// up to this long (never past their call deadline) for its value. Default: 2 s.
    #[serde(serialize_with = "super::units::ser_duration")]
    pub lease: Duration,
}

impl L2Policy {
    /// An L2 tier on `target` with the defaults.
    pub fn new(target: L2Target) -> Self {
        Self {
            target,
            key_prefix: "federation:".to_owned(),
            ttl: None,
            timeout: Duration::from_millis(5),
            password_env: None,
            max_value_bytes: 1024 * 1024,
            lease: Duration::from_secs(2),
        }
    }
}

const KEYS: &[&str] = &[
    "address",
    "cluster",
    "unix_socket",
    "key_prefix",
    "ttl",
    "timeout",
    "password_env",
    "max_value_bytes",
    "lease",
];

/// Reads `cache.l2`: a map, or `false` (off). Without a target the section is reported.
pub(crate) fn apply_l2(target: &mut Option<L2Policy>, node: &Node, path: &str, p: &mut Problems) {
    match node {
        Node::Bool(false) => *target = None,
        Node::Map(_) => {
            let Some(f) = read::fields(node, path, KEYS, p) else {
                return;
            };
            let inherited = target.take();
            let Some(to) =
                read_target(&f, path, p).or(inherited.as_ref().map(|l| l.target.clone()))
            else {
                return;
            };
            let mut l2 = inherited.unwrap_or_else(|| L2Policy::new(to.clone()));
            l2.target = to;
            set(&f, "key_prefix", p, read::string, &mut l2.key_prefix);
            if let Some((n, at)) = f.get("ttl") {
                l2.ttl = read::duration(n, &at, p).or(l2.ttl);
            }
            set(&f, "timeout", p, read::duration, &mut l2.timeout);
            if let Some((n, at)) = f.get("password_env") {
                l2.password_env = read::string(n, &at, p).or(l2.password_env.take());
            }
            set(
                &f,
                "max_value_bytes",
                p,
                read::size,
                &mut l2.max_value_bytes,
            );
            set(&f, "lease", p, read::duration, &mut l2.lease);
            *target = Some(l2);
        }
        other => read::wrong_type(other, path, "a map or false", p),
    }
}

/// Exactly one of `address`, `cluster`, `unix_socket`.
fn read_target(f: &Fields<'_>, path: &str, p: &mut Problems) -> Option<L2Target> {
    let mut found = Vec::new();
    if let Some((n, at)) = f.get("address") {
        found.push(read::string(n, &at, p).map(L2Target::Address));
    }
    if let Some((n, at)) = f.get("cluster") {
        found.push(read::string_list(n, &at, p).map(L2Target::Cluster));
    }
    if let Some((n, at)) = f.get("unix_socket") {
        found.push(read::string(n, &at, p).map(L2Target::UnixSocket));
    }
    match found.len() {
        0 => None,
        1 => found.pop().flatten(),
        _ => {
            p.push(
                path,
                None,
                "give exactly one of `address`, `cluster` or `unix_socket`",
            );
            None
        }
    }
}

/// Range checks of an L2 section at `path` (`<owner>.cache.l2`), given the cache `ttl`.
pub(crate) fn check_l2(l2: &L2Policy, path: &str, p: &mut Problems) {
    match &l2.target {
        L2Target::Address(addr) => check_addr(addr, &join(path, "address"), p),
        L2Target::Cluster(seeds) if seeds.is_empty() => p.push(
            &join(path, "cluster"),
            Some("[]".to_owned()),
            "list at least one seed node, e.g. [10.0.0.1:7000]",
        ),
        L2Target::Cluster(seeds) => {
            for (i, seed) in seeds.iter().enumerate() {
                check_addr(seed, &super::error::index(&join(path, "cluster"), i), p);
            }
        }
        L2Target::UnixSocket(s) if s.is_empty() => p.push(
            &join(path, "unix_socket"),
            Some("\"\"".to_owned()),
            "give the socket's path, e.g. /run/redis/redis.sock",
        ),
        L2Target::UnixSocket(_) => {}
    }
    if l2
        .key_prefix
        .chars()
        .any(|c| c.is_whitespace() || c == '*' || c == '?')
    {
        p.push(
            &join(path, "key_prefix"),
            Some(format!("\"{}\"", l2.key_prefix)),
            "no whitespace, `*` or `?` (the prefix is used in key patterns)",
        );
    }
    if l2.ttl.is_some_and(|t| t.is_zero()) {
        p.push(
            &join(path, "ttl"),
            Some(fd(Duration::ZERO)),
            "allowed: a duration greater than 0s",
        );
    }
    if l2.timeout.is_zero() || l2.timeout > Duration::from_secs(1) {
        p.push(
            &join(path, "timeout"),
            Some(fd(l2.timeout)),
            "allowed: more than 0s and at most 1s (a slow Redis must not slow every call)",
        );
    }
    if l2.lease.is_zero() {
        p.push(
            &join(path, "lease"),
            Some(fd(l2.lease)),
            "allowed: a duration greater than 0s",
        );
    }
    if l2.max_value_bytes == 0 {
        p.push(
            &join(path, "max_value_bytes"),
            Some(format_size(0)),
            "allowed: at least 1 byte, e.g. 1MiB",
        );
    }
    if l2.password_env.as_deref().is_some_and(str::is_empty) {
        p.push(
            &join(path, "password_env"),
            Some("\"\"".to_owned()),
            "name an environment variable",
        );
    }
}

fn check_addr(addr: &str, path: &str, p: &mut Problems) {
    let ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !ok {
        p.push(
            path,
            Some(format!("\"{addr}\"")),
            "expected host:port, e.g. 127.0.0.1:6379",
        );
    }
}
