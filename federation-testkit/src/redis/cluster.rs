//! [`RedisCluster`]: three Redis Cluster masters on loopback, created with
//! `redis-cli --cluster create`, whose nodes a test can kill and restart and whose hash slots it
//! can move from one master to another (the live-resharding a client must follow).
//!
//! Bus ports are passed explicitly (`--cluster-port`): the default `port + 10000` overflows for
//! ephemeral ports above 55535.

use std::io;
use std::time::Duration;

use tokio::time::Instant;

use super::process::{Listen, RedisProcess, ScratchDir, connect, free_ports};

/// How long `cluster_state:ok` may take after `--cluster create` (~2 s measured).
const CLUSTER_OK_WITHIN: Duration = Duration::from_secs(30);

/// One master of a [`RedisCluster`].
#[derive(Debug)]
struct Node {
    port: u16,
    args: Vec<String>,
    dir: ScratchDir,
    process: Option<RedisProcess>,
}

/// A 3-master Redis Cluster owned by a test. Dropping it kills every node by pid.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: tokio::sync::Mutex<Vec<Node>>,
    ports: Vec<u16>,
}

impl RedisCluster {
    /// Starts three masters on free loopback ports, joins them into a cluster with every slot
    /// assigned and waits for `cluster_state:ok` on each.
    ///
    /// # Errors
    /// `redis-server`/`redis-cli` are missing, a node does not start, or the cluster is not ok
    /// within 30 s.
    pub async fn start() -> io::Result<Self> {
        let mut nodes = Vec::with_capacity(3);
        for i in 0..3 {
            let dir = ScratchDir::new(&format!("cluster{i}"))?;
            let [port, bus] = free_ports::<2>()?;
            let args = vec![
                "--cluster-enabled".to_owned(),
                "yes".to_owned(),
                "--cluster-port".to_owned(),
                bus.to_string(),
                "--cluster-config-file".to_owned(),
                dir.path().join("nodes.conf").display().to_string(),
                "--cluster-node-timeout".to_owned(),
                "5000".to_owned(),
            ];
            let process = RedisProcess::spawn(&Listen::Tcp(port), dir.path(), &args).await?;
            nodes.push(Node {
                port,
                args,
                dir,
                process: Some(process),
            });
        }
        let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
        let cluster = Self {
            nodes: tokio::sync::Mutex::new(nodes),
            ports,
        };
        cluster.create().await?;
        cluster.wait_ok().await?;
        Ok(cluster)
    }

    async fn create(&self) -> io::Result<()> {
        let mut cmd = tokio::process::Command::new("redis-cli");
        cmd.arg("--cluster").arg("create");
        for port in &self.ports {
            cmd.arg(format!("127.0.0.1:{port}"));
        }
        cmd.args(["--cluster-replicas", "0", "--cluster-yes"])
            .kill_on_drop(true);
        let out = cmd.output().await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run `redis-cli --cluster create`: {e}"),
            )
        })?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "`redis-cli --cluster create` failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    /// Waits until every running node reports `cluster_state:ok`.
    ///
    /// # Errors
    /// Not ok within 30 s.
    pub async fn wait_ok(&self) -> io::Result<()> {
        let deadline = Instant::now() + CLUSTER_OK_WITHIN;
        loop {
            let mut all_ok = true;
            for port in self.running_ports().await {
                all_ok &= matches!(cluster_info(port).await, Ok(info) if info.contains("cluster_state:ok"));
            }
            if all_ok {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "cluster on {:?} not ok within {CLUSTER_OK_WITHIN:?}",
                        self.ports
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The masters' ports, in start order.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// Seed addresses `127.0.0.1:<port>` for a client configuration.
    pub fn seeds(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    async fn running_ports(&self) -> Vec<u16> {
        let nodes = self.nodes.lock().await;
        nodes
            .iter()
            .filter(|n| n.process.is_some())
            .map(|n| n.port)
            .collect()
    }

    /// Kills node `index` (SIGKILL). Its slots stay unserved until it restarts.
    pub async fn kill_node(&self, index: usize) {
        let mut nodes = self.nodes.lock().await;
        if let Some(mut process) = nodes.get_mut(index).and_then(|n| n.process.take()) {
            process.kill();
        }
    }

    /// Restarts node `index` on the same port with its cluster configuration (it rejoins with
    /// its slots, without data), then waits for `cluster_state:ok`.
    ///
    /// # Errors
    /// No such node, it does not start, or the cluster does not become ok.
    pub async fn restart_node(&self, index: usize) -> io::Result<()> {
        {
            let mut nodes = self.nodes.lock().await;
            let node = nodes
                .get_mut(index)
                .ok_or_else(|| io::Error::other(format!("no cluster node {index}")))?;
            if let Some(mut process) = node.process.take() {
                process.kill();
            }
            let process =
                RedisProcess::spawn(&Listen::Tcp(node.port), node.dir.path(), &node.args).await?;
            node.process = Some(process);
        }
        self.wait_ok().await
    }

    /// Keys matching `pattern` on every running master (`KEYS`; fine for test-sized data).
    ///
    /// # Errors
    /// A running node does not answer.
    pub async fn keys(&self, pattern: &str) -> io::Result<Vec<String>> {
        let mut all = Vec::new();
        for port in self.running_ports().await {
            let mut conn = connect(&Listen::Tcp(port))
                .await
                .map_err(io::Error::other)?;
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(pattern)
                .query_async(&mut conn)
                .await
                .map_err(io::Error::other)?;
            all.extend(keys);
        }
        Ok(all)
    }

    /// The port of the master serving `key`'s slot.
    ///
    /// # Errors
    /// No node answers, or none claims the slot.
    pub async fn owner_of(&self, key: &str) -> io::Result<u16> {
        let slot = key_slot(self.ports[0], key).await?;
        for port in self.running_ports().await {
            let mut conn = connect(&Listen::Tcp(port))
                .await
                .map_err(io::Error::other)?;
            let shards: redis::Value = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async(&mut conn)
                .await
                .map_err(io::Error::other)?;
            if let Some(owner) = slot_owner(&shards, slot) {
                return Ok(owner);
            }
        }
        Err(io::Error::other(format!(
            "no node claims slot {slot} of {key:?}"
        )))
    }

    /// Moves the hash slot of `key` (with its keys) to the master on port `to`, the way
    /// `redis-cli --cluster reshard` does: IMPORTING/MIGRATING, `MIGRATE` of every key, then
    /// `SETSLOT NODE` on every master.
    ///
    /// # Errors
    /// A node refuses a step.
    pub async fn move_slot_of(&self, key: &str, to: u16) -> io::Result<()> {
        let from = self.owner_of(key).await?;
        if from == to {
            return Ok(());
        }
        let slot = key_slot(from, key).await?;
        let err = io::Error::other;
        let mut src = connect(&Listen::Tcp(from)).await.map_err(err)?;
        let mut dst = connect(&Listen::Tcp(to)).await.map_err(err)?;
        let src_id = my_id(&mut src).await?;
        let dst_id = my_id(&mut dst).await?;
        setslot(&mut dst, slot, "IMPORTING", &src_id).await?;
        setslot(&mut src, slot, "MIGRATING", &dst_id).await?;
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(100)
                .query_async(&mut src)
                .await
                .map_err(err)?;
            if keys.is_empty() {
                break;
            }
            redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(to)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("KEYS")
                .arg(&keys)
                .query_async::<()>(&mut src)
                .await
                .map_err(err)?;
        }
        for port in self.running_ports().await {
            let mut conn = connect(&Listen::Tcp(port)).await.map_err(err)?;
            setslot(&mut conn, slot, "NODE", &dst_id).await?;
        }
        self.wait_ok().await
    }
}

async fn cluster_info(port: u16) -> redis::RedisResult<String> {
    let mut conn = connect(&Listen::Tcp(port)).await?;
    redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async(&mut conn)
        .await
}

async fn key_slot(port: u16, key: &str) -> io::Result<u16> {
    let mut conn = connect(&Listen::Tcp(port))
        .await
        .map_err(io::Error::other)?;
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(&mut conn)
        .await
        .map_err(io::Error::other)
}

async fn my_id(conn: &mut redis::aio::MultiplexedConnection) -> io::Result<String> {
    redis::cmd("CLUSTER")
        .arg("MYID")
        .query_async(conn)
        .await
        .map_err(io::Error::other)
}

async fn setslot(
    conn: &mut redis::aio::MultiplexedConnection,
    slot: u16,
    state: &str,
    node: &str,
) -> io::Result<()> {
    redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg(state)
        .arg(node)
        .query_async::<()>(conn)
        .await
        .map_err(|e| io::Error::other(format!("CLUSTER SETSLOT {slot} {state}: {e}")))
}

/// The port of the master owning `slot` in a `CLUSTER SLOTS` reply.
fn slot_owner(reply: &redis::Value, slot: u16) -> Option<u16> {
    let redis::Value::Array(ranges) = reply else {
        return None;
    };
    ranges.iter().find_map(|range| {
        let redis::Value::Array(parts) = range else {
            return None;
        };
        let (
            Some(redis::Value::Int(lo)),
            Some(redis::Value::Int(hi)),
            Some(redis::Value::Array(master)),
        ) = (parts.first(), parts.get(1), parts.get(2))
        else {
            return None;
        };
        if !(*lo..=*hi).contains(&i64::from(slot)) {
            return None;
        }
        match master.get(1) {
            Some(redis::Value::Int(port)) => u16::try_from(*port).ok(),
            _ => None,
        }
    })
}
