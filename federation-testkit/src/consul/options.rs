//! Configuration and control types of the Consul double.
//!
//! Two doubles started with the same options would share an index space, and an SDK that
//! carried an index from one cluster to the other would never notice. `initial_index` lets a
//! test place each datacenter's index space far apart, as two real clusters are.

use std::time::Duration;

/// How a [`ConsulDouble`](super::ConsulDouble) behaves. Build with [`ConsulOptions::new`].
#[derive(Debug, Clone)]
pub struct ConsulOptions {
    /// Datacenter name reported in every entry, in `/v1/catalog/datacenters` and `/v1/agent/self`.
    pub datacenter: String,
    /// Name of the single agent node every service is registered on. Default: `<datacenter>-node-1`.
    pub node_name: String,
    /// First Raft index of the state store. Default: 1000. Use values far apart per datacenter
    /// (for example 1 000 and 5 000 000 000) so an index carried across clusters is visible.
    pub initial_index: u64,
    /// Add Consul's random wait jitter (at most `wait / 16`) to blocking queries. Default: `false`,
    /// so tests can predict when a blocking query times out.
    pub jitter: bool,
    /// ACL enforcement; `None` (the default) disables ACLs: every request is allowed and tokens
    /// are ignored.
    pub acl: Option<AclOptions>,
    /// Smallest interval at which HTTP/TCP checks run, TTLs are checked and the reaper runs.
    /// A check's `Interval` below this is raised to it. Default: 50 ms.
    pub check_interval_floor: Duration,
}

impl ConsulOptions {
    /// Defaults for a datacenter: node `<datacenter>-node-1`, initial index 1000, no jitter,
    /// ACLs disabled, check interval floor 50 ms.
    #[must_use]
    pub fn new(datacenter: impl Into<String>) -> Self {
        let datacenter = datacenter.into();
        Self {
            node_name: format!("{datacenter}-node-1"),
            datacenter,
            initial_index: 1000,
            jitter: false,
            acl: None,
            check_interval_floor: Duration::from_millis(50),
        }
    }
}

/// ACL model of the double: a default policy for anonymous requests and a fixed token list.
#[derive(Debug, Clone, Default)]
pub struct AclOptions {
    /// `true`: anonymous requests may neither read nor write (Consul `default_policy = "deny"`);
    /// reads are silently filtered to `[]`. `false`: anonymous requests may read and write.
    pub default_deny: bool,
    /// Known tokens. A request presenting any other non-empty token gets 403 `ACL not found`.
    pub tokens: Vec<AclToken>,
}

/// One ACL token known to the double.
#[derive(Clone)]
pub struct AclToken {
    /// The secret presented in `X-Consul-Token`, `Authorization: Bearer` or `?token=`.
    pub secret: String,
    /// Grants `service:read` + `node:read` on everything.
    pub read: bool,
    /// Grants `service:write` on everything (implies read).
    pub write: bool,
}

impl std::fmt::Debug for AclToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AclToken")
            .field("secret", &"<redacted>")
            .field("read", &self.read)
            .field("write", &self.write)
            .finish()
    }
}

/// A failure the double injects into every HTTP request until
/// [`clear_fault`](super::ConsulDouble::clear_fault).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Close the listener and drop every open connection: clients see connection refused.
    /// `clear_fault` binds the same port again.
    Down,
    /// Accept connections and read requests, but never answer.
    Hang,
    /// 500 `No cluster leader` with `X-Consul-Knownleader: false` on reads and writes;
    /// `?stale` reads still succeed (with `KnownLeader: false`). `/v1/status/leader` returns `""`.
    NoLeader,
    /// Delay every response by this long.
    Slow(Duration),
    /// 200 with the normal headers but a truncated, unparseable JSON body on JSON reads.
    Garbled,
    /// Answer every request with this status and plain-text body.
    Status(u16, String),
    /// One-shot: the state store's index restarts far lower, as after a snapshot restore, and
    /// blocked queries return at once with the lower index. Nothing remains to clear afterwards.
    IndexReset,
    /// 403 `ACL not found` on every request, as if the client's token had been deleted.
    AclNotFound,
}

/// Status of a Consul health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckStatus {
    /// The check passes.
    Passing,
    /// Degraded: kept by Consul's "not failing" filters, dropped by `?passing`.
    Warning,
    /// Failing: the instance should not receive traffic.
    Critical,
}

impl CheckStatus {
    /// The wire form: `passing`, `warning` or `critical`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passing => "passing",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }

    /// Parses the wire form (exact, lowercase, as Consul does).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "passing" => Some(Self::Passing),
            "warning" => Some(Self::Warning),
            "critical" => Some(Self::Critical),
            _ => None,
        }
    }
}
