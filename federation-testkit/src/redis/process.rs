//! One `redis-server` child process: spawned with explicit arguments, waited for until it
//! answers `PING`, killed by its own pid when dropped.
//!
//! A test that fails half-way must not leave a Redis server behind holding a port (the next run
//! then talks to a stale server with stale data), so the child lives in a [`Child`] guard whose
//! `Drop` kills it by pid and reaps it; its data directory is removed with it.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How long a fresh `redis-server` may take to answer `PING` (it takes ~40 ms here).
const READY_WITHIN: Duration = Duration::from_secs(10);

/// A private directory for one server's files (logs, cluster config, unix socket), removed on
/// drop.
#[derive(Debug)]
pub(crate) struct ScratchDir(PathBuf);

impl ScratchDir {
    pub(crate) fn new(label: &str) -> io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "federation-redis-{label}-{}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// `127.0.0.1:<port>`.
    Tcp(u16),
    /// A unix socket at this path (TCP is switched off: `--port 0`).
    Unix(PathBuf),
}

/// A running `redis-server`, killed by pid when dropped.
#[derive(Debug)]
pub(crate) struct RedisProcess {
    child: Child,
}

impl RedisProcess {
    /// Spawns `redis-server` listening on `listen` with `extra` arguments, its files in `dir`,
    /// and waits until it answers `PING`.
    pub(crate) async fn spawn(listen: &Listen, dir: &Path, extra: &[String]) -> io::Result<Self> {
        let log = std::fs::File::create(dir.join("redis.log"))?;
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .args(["--protected-mode", "no"]);
        match listen {
            Listen::Tcp(port) => {
                cmd.args(["--port", &port.to_string()]);
            }
            Listen::Unix(path) => {
                cmd.args(["--port", "0", "--unixsocketperm", "700"])
                    .arg("--unixsocket")
                    .arg(path);
            }
        }
        cmd.args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        let child = cmd.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot start `redis-server` (apt-get install -y redis-server): {e}"),
            )
        })?;
        let mut process = Self { child };
        process.wait_ready(listen, dir).await?;
        Ok(process)
    }

    /// The child's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_ready(&mut self, listen: &Listen, dir: &Path) -> io::Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
                return Err(io::Error::other(format!(
                    "redis-server exited with {status} before answering: {log}"
                )));
            }
            if ping(listen).await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "redis-server on {listen:?} did not answer PING within {READY_WITHIN:?}"
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the process to stop (SIGTERM), waiting up to 5 s before killing it.
    pub(crate) async fn stop(&mut self) {
        // The pid is our own child's, still unreaped, so it cannot name another process.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.kill();
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `PING` over a fresh connection; any reply counts (`NOAUTH` from a server started with
/// `--requirepass` means it is up).
pub(crate) async fn ping(listen: &Listen) -> redis::RedisResult<()> {
    let mut conn = connect(listen).await?;
    match redis::cmd("PING").query_async::<()>(&mut conn).await {
        Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => Err(e),
        _ => Ok(()),
    }
}

/// A fresh multiplexed connection to the server at `listen`.
pub(crate) async fn connect(
    listen: &Listen,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let info = match listen {
        Listen::Tcp(port) => redis::ConnectionAddr::Tcp("127.0.0.1".to_owned(), *port),
        Listen::Unix(path) => redis::ConnectionAddr::Unix(path.clone()),
    };
    let client = redis::Client::open(info)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// A loopback TCP port nobody listens on right now.
pub(crate) fn free_port() -> io::Result<u16> {
    let [port] = free_ports::<1>()?;
    Ok(port)
}

/// `N` distinct loopback TCP ports nobody listens on right now. Every listener is held until
/// all ports are read: picked one after the other, the kernel may hand out one port twice.
pub(crate) fn free_ports<const N: usize>() -> io::Result<[u16; N]> {
    let mut listeners = Vec::with_capacity(N);
    for _ in 0..N {
        listeners.push(std::net::TcpListener::bind(("127.0.0.1", 0))?);
    }
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}
