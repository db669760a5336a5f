//! [`RedisServer`]: one standalone `redis-server` on a loopback port or a unix socket, which a
//! test can stop, kill, restart on the same address, pause and flush.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::process::{Listen, RedisProcess, ScratchDir, connect, free_port};

/// A standalone Redis server owned by a test. Dropping it kills the process by pid.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let redis = federation_testkit::redis::RedisServer::start().await?;
/// let url = redis.url(); // redis://127.0.0.1:<port>
/// redis.kill();          // clients now see refused connections
/// redis.restart().await?; // same port, empty data set
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RedisServer {
    listen: Listen,
    extra: Vec<String>,
    process: std::sync::Mutex<Option<RedisProcess>>,
    // Declared last: dropped after the process is killed.
    dir: ScratchDir,
}

impl RedisServer {
    /// Starts a server on a free loopback TCP port.
    ///
    /// # Errors
    /// `redis-server` is not installed, or it did not answer within 10 s.
    pub async fn start() -> io::Result<Self> {
        Self::start_with(false, Vec::new()).await
    }

    /// Starts a server listening only on a unix socket inside its own scratch directory.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn start_unix() -> io::Result<Self> {
        Self::start_with(true, Vec::new()).await
    }

    /// Starts a TCP server with extra `redis-server` arguments (e.g. `--maxmemory 1mb`).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn start_with_args(extra: &[&str]) -> io::Result<Self> {
        Self::start_with(false, extra.iter().map(|s| (*s).to_owned()).collect()).await
    }

    async fn start_with(unix: bool, extra: Vec<String>) -> io::Result<Self> {
        let dir = ScratchDir::new("standalone")?;
        let listen = if unix {
            Listen::Unix(dir.path().join("redis.sock"))
        } else {
            Listen::Tcp(free_port()?)
        };
        let process = RedisProcess::spawn(&listen, dir.path(), &extra).await?;
        Ok(Self {
            listen,
            extra,
            process: std::sync::Mutex::new(Some(process)),
            dir,
        })
    }

    /// Where the server listens.
    pub fn listen(&self) -> &Listen {
        &self.listen
    }

    /// The TCP port (`None` for a unix-socket server).
    pub fn port(&self) -> Option<u16> {
        match self.listen {
            Listen::Tcp(port) => Some(port),
            Listen::Unix(_) => None,
        }
    }

    /// The unix socket path (`None` for a TCP server).
    pub fn socket_path(&self) -> Option<PathBuf> {
        match &self.listen {
            Listen::Tcp(_) => None,
            Listen::Unix(path) => Some(path.clone()),
        }
    }

    /// `redis://127.0.0.1:<port>` or `unix://<path>`.
    pub fn url(&self) -> String {
        match &self.listen {
            Listen::Tcp(port) => format!("redis://127.0.0.1:{port}"),
            Listen::Unix(path) => format!("unix://{}", path.display()),
        }
    }

    /// The pid of the running process, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.lock().as_ref().map(RedisProcess::pid)
    }

    /// Whether the process runs (it was not stopped or killed since the last start).
    pub fn is_running(&self) -> bool {
        self.lock().is_some()
    }

    /// Kills the process at once (SIGKILL): connections are reset, data is lost.
    pub fn kill(&self) {
        if let Some(mut process) = self.lock().take() {
            process.kill();
        }
    }

    /// Stops the process gracefully (SIGTERM).
    pub async fn stop(&self) {
        let process = self.lock().take();
        if let Some(mut process) = process {
            process.stop().await;
        }
    }

    /// Starts the server again on the same address, with an empty data set. A running process
    /// is killed first.
    ///
    /// # Errors
    /// As [`start`](Self::start) (also when another process took the port meanwhile).
    pub async fn restart(&self) -> io::Result<()> {
        self.kill();
        let process = RedisProcess::spawn(&self.listen, self.dir.path(), &self.extra).await?;
        *self.lock() = Some(process);
        Ok(())
    }

    /// Makes every client command wait `duration` on the server (`CLIENT PAUSE <ms> ALL`): a
    /// slow Redis, without touching the clients' connections.
    ///
    /// # Errors
    /// The server does not answer.
    pub async fn pause(&self, duration: Duration) -> redis::RedisResult<()> {
        let mut conn = self.connection().await?;
        redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(duration.as_millis().to_string())
            .arg("ALL")
            .query_async::<()>(&mut conn)
            .await
    }

    /// Deletes every key (`FLUSHALL`).
    ///
    /// # Errors
    /// The server does not answer.
    pub async fn flush(&self) -> redis::RedisResult<()> {
        let mut conn = self.connection().await?;
        redis::cmd("FLUSHALL").query_async::<()>(&mut conn).await
    }

    /// Keys matching `pattern` (`KEYS`; fine for test-sized data sets).
    ///
    /// # Errors
    /// The server does not answer.
    pub async fn keys(&self, pattern: &str) -> redis::RedisResult<Vec<String>> {
        let mut conn = self.connection().await?;
        redis::cmd("KEYS").arg(pattern).query_async(&mut conn).await
    }

    /// A new connection for the test's own commands.
    ///
    /// # Errors
    /// The server does not answer.
    pub async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        connect(&self.listen).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<RedisProcess>> {
        self.process
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
