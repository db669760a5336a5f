//! The [`KafkaBroker`] handle: start, stop, kill and restart one single-node KRaft broker.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::error::KafkaError;
use super::jars::{KAFKA_VERSION, ensure_jars, java_available, java_command};
use super::process::{BrokerProcess, Launch, read_tail};
use super::properties::{Ports, random_cluster_id, server_properties};
use super::wire;

/// The topic the readiness probe creates.
const READY_TOPIC: &str = "__federation_ready";
/// How long a clean stop waits for the JVM before SIGKILL.
const STOP_PATIENCE: Duration = Duration::from_secs(30);
/// Pause between readiness probes.
const PROBE_STEP: Duration = Duration::from_millis(100);

/// Numbers broker folders within this process.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// How to run a broker. `KafkaOptions::default()` is what tests want.
#[derive(Clone, Debug)]
#[must_use]
pub struct KafkaOptions {
    /// Kafka version (a `kafka_2.13` release on Maven Central). Default [`KAFKA_VERSION`].
    pub version: String,
    /// JVM maximum heap in MiB. Default 512.
    pub heap_mb: u32,
    /// How long start and restart wait for a topic to be creatable. Default 90 s (a loaded
    /// two-core machine takes 3 to 15 s).
    pub ready_timeout: Duration,
    /// Extra `server.properties` lines, applied last (they override the testkit's).
    pub properties: Vec<(String, String)>,
}

impl Default for KafkaOptions {
    fn default() -> Self {
        Self {
            version: KAFKA_VERSION.to_string(),
            heap_mb: 512,
            ready_timeout: Duration::from_secs(90),
            properties: Vec::new(),
        }
    }
}

/// A real Apache Kafka broker (KRaft, broker + controller in one JVM) on two free loopback ports,
/// with its data in a private temporary folder. Stopped, restarted and killed by its own pid;
/// dropping the handle kills the JVM and deletes the folder.
#[derive(Debug)]
pub struct KafkaBroker {
    ports: Ports,
    dir: PathBuf,
    launch: Launch,
    ready_timeout: Duration,
    process: Mutex<Option<BrokerProcess>>,
}

impl KafkaBroker {
    /// Start a broker with default options and wait until it accepts a topic.
    pub async fn start() -> Result<KafkaBroker, KafkaError> {
        Self::start_with(KafkaOptions::default()).await
    }

    /// Start a broker: fetch the jars if needed, format fresh storage with a random cluster id,
    /// launch the JVM and wait until a topic can be created.
    pub async fn start_with(options: KafkaOptions) -> Result<KafkaBroker, KafkaError> {
        java_available().map_err(KafkaError::JavaMissing)?;
        let version = options.version.clone();
        let jars = tokio::task::spawn_blocking(move || ensure_jars(&version))
            .await
            .map_err(|e| KafkaError::io("fetching jars", std::io::Error::other(e)))??;
        let dir = private_dir()?;
        let (broker_port, controller_port) = two_free_ports()?;
        let broker = KafkaBroker {
            ports: Ports {
                broker: broker_port,
                controller: controller_port,
            },
            launch: Launch {
                java: java_command(),
                jars,
                heap_mb: options.heap_mb,
            },
            ready_timeout: options.ready_timeout,
            process: Mutex::new(None),
            dir,
        };
        let text = server_properties(broker.ports, &broker.dir.join("data"), &options.properties);
        std::fs::write(broker.properties_path(), text)
            .map_err(|e| KafkaError::io("writing server.properties", e))?;
        let (launch, props, log) = (
            broker.launch.clone(),
            broker.properties_path(),
            broker.log_path(),
        );
        tokio::task::spawn_blocking(move || {
            launch.format_storage(&props, &random_cluster_id(), &log)
        })
        .await
        .map_err(|e| KafkaError::io("formatting storage", std::io::Error::other(e)))??;
        broker.launch_and_wait().await?;
        Ok(broker)
    }

    /// `host:port` for a Kafka client's `bootstrap.servers` (unchanged across restarts).
    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.ports.broker)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.ports.broker
    }

    /// The JVM's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.lock().as_ref().map(BrokerProcess::pid)
    }

    /// Whether the JVM is running (started and not yet seen to exit).
    pub fn is_running(&self) -> bool {
        self.lock().as_mut().is_some_and(|p| p.exited().is_none())
    }

    /// The broker's folder (data, `server.properties`, `broker.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The end of the broker's log (stdout and stderr of every start), for failure messages.
    pub fn log_tail(&self) -> String {
        read_tail(&self.log_path())
    }

    /// Clean shutdown: SIGTERM, then wait (SIGKILL after 30 s). Data is kept for [`restart`](Self::restart).
    pub async fn stop(&self) {
        let process = self.lock().take();
        if let Some(process) = process {
            process.terminate();
            process.reap(STOP_PATIENCE).await;
        }
    }

    /// Crash: SIGKILL by pid, no flush. Data written so far stays for [`restart`](Self::restart).
    pub fn kill(&self) {
        if let Some(mut process) = self.lock().take() {
            process.kill_now();
        }
    }

    /// Start again on the same ports with the same data (stopping it cleanly first if it runs),
    /// and wait until it accepts a topic.
    pub async fn restart(&self) -> Result<(), KafkaError> {
        self.stop().await;
        self.launch_and_wait().await
    }

    /// Create `topic` with `partitions` partitions (replication factor 1); an existing topic is
    /// fine.
    pub async fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), KafkaError> {
        if !self.is_running() {
            return Err(KafkaError::NotRunning);
        }
        let partitions = i32::try_from(partitions).unwrap_or(i32::MAX);
        wire::create_topic(self.addr(), topic, partitions, Duration::from_secs(30))
            .await
            .map_err(|e| KafkaError::CreateTopic {
                topic: topic.to_string(),
                reason: e.to_string(),
            })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<BrokerProcess>> {
        self.process.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.ports.broker))
    }

    fn properties_path(&self) -> PathBuf {
        self.dir.join("server.properties")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("broker.log")
    }

    async fn launch_and_wait(&self) -> Result<(), KafkaError> {
        let process = self
            .launch
            .spawn_broker(&self.properties_path(), &self.log_path())?;
        tracing::debug!(
            pid = process.pid(),
            port = self.ports.broker,
            "Kafka broker launched"
        );
        *self.lock() = Some(process);
        let result = self.wait_ready().await;
        if result.is_err() {
            self.kill();
        }
        result
    }

    /// Probe until the readiness topic is created, the JVM exits, or the deadline passes.
    async fn wait_ready(&self) -> Result<(), KafkaError> {
        let deadline = tokio::time::Instant::now() + self.ready_timeout;
        let mut last = String::from("no probe yet");
        loop {
            if let Some(status) = self.lock().as_mut().and_then(BrokerProcess::exited) {
                return Err(KafkaError::Exited {
                    status: status.to_string(),
                    log_tail: self.log_tail(),
                });
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(KafkaError::NotReady {
                    after: self.ready_timeout,
                    last,
                    log_tail: self.log_tail(),
                });
            }
            let probe = left.min(Duration::from_secs(5));
            match wire::create_topic(self.addr(), READY_TOPIC, 1, probe).await {
                Ok(()) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(PROBE_STEP).await;
        }
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh folder under the system temp dir, private to this broker.
fn private_dir() -> Result<PathBuf, KafkaError> {
    let dir = std::env::temp_dir().join(format!(
        "federation-kafka-{}-{}-{:08x}",
        std::process::id(),
        NEXT_ID.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(dir.join("data"))
        .map_err(|e| KafkaError::io(format!("creating {}", dir.display()), e))?;
    Ok(dir)
}

/// Two distinct loopback ports that were free a moment ago (the kernel picks them). Both
/// listeners are held until both ports are read: picked one after the other, the kernel may
/// hand out the same port twice, and Kafka refuses two listeners on one port (seen in CI).
fn two_free_ports() -> Result<(u16, u16), KafkaError> {
    let bind = || {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| KafkaError::io("finding a free port", e))
    };
    let port = |listener: &TcpListener| {
        listener
            .local_addr()
            .map(|a| a.port())
            .map_err(|e| KafkaError::io("finding a free port", e))
    };
    let (first, second) = (bind()?, bind()?);
    Ok((port(&first)?, port(&second)?))
}
