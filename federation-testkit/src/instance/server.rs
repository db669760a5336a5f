//! The [`ServiceInstance`] handle: start, kill, restart on the same port, and the knobs tests
//! turn while it runs.
//!
//! Killing must look like a crashed process to a pooled client: the listener closes (new
//! connections are refused) and every established connection is reset, not left to idle out.
//! The accept loop owns a `JoinSet` of connection tasks; `kill` flips a watch flag that both the
//! loop and every connection task wait on, then waits until all of them ended. `restart` binds
//! the same port again with `SO_REUSEADDR`, retrying briefly while the kernel releases it.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Mutex, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::behavior::Behavior;
use super::connection;
use super::sample::{Sampler, seed_from};
use super::stats::{RecordedRequest, Stats};

/// How long `restart` keeps retrying a bind that fails with "address in use".
const REBIND_PATIENCE: Duration = Duration::from_secs(3);
/// Pause between bind attempts.
const REBIND_STEP: Duration = Duration::from_millis(25);
/// Listen backlog (bursts of connects from benchmarks must not be refused).
const BACKLOG: u32 = 1024;

/// Who an instance is: echoed in every answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// Cluster name (`zervigo`).
    pub cluster: String,
    /// Consul service name (`user-service`).
    pub service: String,
    /// Instance id (`user-service-1`).
    pub instance: String,
}

impl Identity {
    /// An identity from its three parts.
    pub fn new(
        cluster: impl Into<String>,
        service: impl Into<String>,
        instance: impl Into<String>,
    ) -> Self {
        Self {
            cluster: cluster.into(),
            service: service.into(),
            instance: instance.into(),
        }
    }
}

/// State shared by the handle, the accept loop and every connection.
#[derive(Debug)]
pub(crate) struct Shared {
    identity: Identity,
    behavior: RwLock<Arc<Behavior>>,
    health: AtomicU16,
    /// Whether answers echo the `traceparent` and deadline headers (default: yes).
    echo: AtomicBool,
    pub(crate) stats: Arc<Stats>,
    pub(crate) sampler: Sampler,
}

impl Shared {
    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }

    pub(crate) fn behavior_arc(&self) -> Arc<Behavior> {
        Arc::clone(&self.behavior.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn health_status(&self) -> u16 {
        self.health.load(Ordering::Relaxed)
    }

    pub(crate) fn echoes_propagation(&self) -> bool {
        self.echo.load(Ordering::Relaxed)
    }
}

/// A running accept loop.
#[derive(Debug)]
struct Run {
    kill: watch::Sender<bool>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Inner {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: AtomicBool,
    run: Mutex<Option<Run>>,
}

/// A programmable HTTP/1.1 service on `127.0.0.1`. Cheap to clone; the server stops when the
/// last clone is dropped.
///
/// Every answer is JSON: `{"cluster","service","instance","method","path","query",
/// "traceparent"?,"deadline"?,"body_len","status"}` with `Content-Type: application/json`.
/// `GET /health` answers the status set by [`set_health_status`](Self::set_health_status) and is
/// not counted and not affected by the [`Behavior`].
#[derive(Clone, Debug)]
pub struct ServiceInstance {
    inner: Arc<Inner>,
}

impl ServiceInstance {
    /// Start an instance on `127.0.0.1` with an ephemeral port. Its random draws are seeded from
    /// the identity (see [`set_seed`](Self::set_seed)).
    pub async fn start(identity: Identity) -> io::Result<ServiceInstance> {
        let listener = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let addr = listener.local_addr()?;
        let seed = seed_from(&[&identity.cluster, &identity.service, &identity.instance]);
        let shared = Arc::new(Shared {
            identity,
            behavior: RwLock::new(Arc::new(Behavior::default())),
            health: AtomicU16::new(200),
            echo: AtomicBool::new(true),
            stats: Arc::new(Stats::default()),
            sampler: Sampler::new(seed),
        });
        let run = spawn_accept(listener, Arc::clone(&shared));
        Ok(ServiceInstance {
            inner: Arc::new(Inner {
                addr,
                shared,
                running: AtomicBool::new(true),
                run: Mutex::new(Some(run)),
            }),
        })
    }

    /// The listening address (unchanged by kill and restart).
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.inner.addr.port()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// Who this instance is.
    pub fn identity(&self) -> &Identity {
        &self.inner.shared.identity
    }

    /// Replace the behaviour; applies to requests received from now on.
    pub fn set_behavior(&self, behavior: Behavior) {
        *self
            .inner
            .shared
            .behavior
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(behavior);
    }

    /// Whether answers echo the received `traceparent` and `x-federation-deadline` headers in
    /// the JSON body (default: `true`, so tests can check propagation). Benchmarks turn it off
    /// so every client gets byte-identical answers whatever headers it sends.
    pub fn set_echo_propagation(&self, echo: bool) {
        self.inner.shared.echo.store(echo, Ordering::Relaxed);
    }

    /// The current behaviour.
    pub fn behavior(&self) -> Behavior {
        (*self.inner.shared.behavior_arc()).clone()
    }

    /// Restart the random sequence (error draws, latency draws) from `seed`.
    pub fn set_seed(&self, seed: u64) {
        self.inner.shared.sampler.reseed(seed);
    }

    /// Stop listening and reset every open connection (clients see connection refused or
    /// connection reset). Returns once every connection is closed. Idempotent.
    pub async fn kill(&self) {
        let mut run = self.inner.run.lock().await;
        self.inner.running.store(false, Ordering::SeqCst);
        if let Some(run) = run.take() {
            let _ = run.kill.send(true);
            let _ = run.task.await;
        }
    }

    /// Listen again on the same port. A no-op when already running. Fails if the port stays
    /// taken (by another process) for a few seconds.
    pub async fn restart(&self) -> io::Result<()> {
        let mut run = self.inner.run.lock().await;
        if run.is_some() {
            return Ok(());
        }
        let listener = rebind(self.inner.addr).await?;
        *run = Some(spawn_accept(listener, Arc::clone(&self.inner.shared)));
        self.inner.running.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// True between start/restart and kill.
    pub fn is_running(&self) -> bool {
        self.inner.running.load(Ordering::SeqCst)
    }

    /// Requests received since start or the last [`reset_counters`](Self::reset_counters),
    /// `/health` excluded. Counted when the request head arrives, whatever the answer.
    pub fn requests(&self) -> u64 {
        self.inner.shared.stats.total()
    }

    /// Requests received for one path (without query). Only the first
    /// [`MAX_PATHS`](super::MAX_PATHS) distinct paths are counted individually.
    pub fn requests_for(&self, path: &str) -> u64 {
        self.inner.shared.stats.for_path(path)
    }

    /// Request counts per path.
    pub fn requests_by_path(&self) -> HashMap<String, u64> {
        self.inner.shared.stats.per_path()
    }

    /// Connections currently open to this instance (a pooled client keeps a few; a killed
    /// instance has none).
    pub fn connections(&self) -> usize {
        self.inner.shared.stats.open_connections()
    }

    /// Zero every counter and clear the recorded requests.
    pub fn reset_counters(&self) {
        self.inner.shared.stats.reset();
    }

    /// Turn request recording on or off (default: off, so benchmarks pay nothing).
    pub fn set_recording(&self, on: bool) {
        self.inner.shared.stats.set_recording(on);
    }

    /// The last requests received while recording was on (at most
    /// [`RECORD_CAPACITY`](super::RECORD_CAPACITY)), oldest first.
    pub fn recorded(&self) -> Vec<RecordedRequest> {
        self.inner.shared.stats.recorded()
    }

    /// What `GET /health` answers: 200 by default; Consul maps 2xx to passing, 429 to warning
    /// and anything else to critical.
    pub fn set_health_status(&self, status: u16) {
        self.inner.shared.health.store(status, Ordering::Relaxed);
    }

    /// The status `GET /health` currently answers.
    pub fn health_status(&self) -> u16 {
        self.inner.shared.health_status()
    }
}

/// A listener on `addr` with `SO_REUSEADDR`, so a restart can reuse the port at once.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

async fn rebind(addr: SocketAddr) -> io::Result<TcpListener> {
    let deadline = tokio::time::Instant::now() + REBIND_PATIENCE;
    loop {
        match bind(addr) {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot listen on {addr} again: {e}"),
                    ));
                }
                tokio::time::sleep(REBIND_STEP).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Resolves once the instance is killed or its handle is gone (the guard is not kept).
pub(crate) async fn killed(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|killed| *killed).await;
}

fn spawn_accept(listener: TcpListener, shared: Arc<Shared>) -> Run {
    let (kill, rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, shared, rx));
    Run { kill, task }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, kill: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    let mut stop = kill.clone();
    loop {
        tokio::select! {
            biased;
            _ = killed(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(connection::serve(stream, Arc::clone(&shared), kill.clone()));
                }
                // Out of descriptors or a connection aborted before accept: keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    // Every connection task sees the same flag and resets its socket.
    while conns.join_next().await.is_some() {}
}
