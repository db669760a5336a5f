//! The connection to the tier's Redis: standalone (TCP or unix socket) or Redis Cluster, made in
//! the background, every operation bounded by the configured timeout.
//!
//! A cache tier must never be the reason a call is slow or fails. So nothing waits for a
//! connection: until one is established (and whenever Redis is away) an operation returns `None`
//! at once; every operation that is sent is abandoned after `timeout`. Connections and their
//! driver tasks live on the client's main runtime: a call driven on its own thread (`driven`)
//! hands its Redis operations there instead of creating connections on a runtime that only runs
//! while that thread is inside a call.

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo, RedisResult};

use crate::config::{L2Target, Secret};

/// How long establishing a connection may take (in the background, never on a call).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// An established connection (cheap to clone: both kinds multiplex over shared sockets).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    /// Runs `cmd` (no timeout of its own: callers bound it).
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &mut self,
        cmd: &redis::Cmd,
    ) -> RedisResult<T> {
        match self {
            Conn::Single(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => cmd.query_async(c).await,
        }
    }
}

/// Where to connect and with which credentials.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) target: L2Target,
    pub(crate) password: Option<Secret>,
}

impl Endpoint {
    /// Connection details of one server (`host:port` or a socket path).
    pub(crate) fn info(&self, addr: ConnectionAddr) -> RedisResult<ConnectionInfo> {
        let info = addr.into_connection_info()?;
        let mut redis = RedisConnectionInfo::default();
        if let Some(password) = &self.password {
            redis = redis.set_password(password.expose());
        }
        Ok(info.set_redis_settings(redis))
    }

    /// The servers to try for a plain (non-cluster) connection: the one server, or every seed.
    pub(crate) fn servers(&self) -> Vec<ConnectionAddr> {
        match &self.target {
            L2Target::Address(a) => tcp(a).into_iter().collect(),
            L2Target::Cluster(seeds) => seeds.iter().filter_map(|s| tcp(s)).collect(),
            L2Target::UnixSocket(path) => vec![ConnectionAddr::Unix(path.into())],
        }
    }

    /// Connects the tier's main connection.
    pub(crate) async fn connect(&self) -> RedisResult<Conn> {
        if let L2Target::Cluster(_) = &self.target {
            let infos: Vec<ConnectionInfo> = self
                .servers()
                .into_iter()
                .map(|a| self.info(a))
                .collect::<RedisResult<_>>()?;
            let mut builder = redis::cluster::ClusterClient::builder(infos)
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(Duration::from_secs(1));
            if let Some(password) = &self.password {
                builder = builder.password(password.expose());
            }
            let conn = builder.build()?.get_async_connection().await?;
            return Ok(Conn::Cluster(conn));
        }
        let addr = self.servers().into_iter().next().ok_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "no address"))
        })?;
        let client = redis::Client::open(self.info(addr)?)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_max_delay(Duration::from_millis(500))
            .set_number_of_retries(2);
        Ok(Conn::Single(
            client.get_connection_manager_with_config(config).await?,
        ))
    }

    /// A plain connection to one server (the pub/sub subscriber, a cluster node's `SCAN`).
    pub(crate) fn client(&self, addr: ConnectionAddr) -> RedisResult<redis::Client> {
        redis::Client::open(self.info(addr)?)
    }
}

/// `host:port` as a TCP address.
pub(crate) fn tcp(addr: &str) -> Option<ConnectionAddr> {
    let (host, port) = addr.rsplit_once(':')?;
    Some(ConnectionAddr::Tcp(host.to_owned(), port.parse().ok()?))
}

/// The tier's connection slot, filled in the background.
#[derive(Default)]
pub(crate) struct Slot(Mutex<Option<Conn>>);

impl Slot {
    pub(crate) fn get(&self) -> Option<Conn> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set(&self, conn: Conn) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(conn);
    }
}

/// How an operation ended.
pub(crate) enum Ended<T> {
    Done(T),
    Failed,
    TimedOut,
}

/// Runs `op` bounded by `timeout`; on a driven call's thread, on the main runtime `home`.
pub(crate) async fn bounded<T, Fut>(timeout: Duration, op: Fut) -> Ended<T>
where
    Fut: Future<Output = RedisResult<T>> + Send + 'static,
    T: Send + 'static,
{
    let run = async move { tokio::time::timeout(timeout, op).await };
    let outcome = if crate::driven::active()
        && let Some(home) = crate::driven::spawn_handle()
    {
        match home.spawn(run).await {
            Ok(outcome) => outcome,
            Err(_) => return Ended::Failed,
        }
    } else {
        run.await
    };
    match outcome {
        Ok(Ok(value)) => Ended::Done(value),
        Ok(Err(_)) => Ended::Failed,
        Err(_) => Ended::TimedOut,
    }
}
