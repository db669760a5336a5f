//! # Kafka broker
//!
//! A real Apache Kafka broker for tests, the sandbox and benchmarks. Sync code tested against a
//! mock broker misses what real Kafka does: consumer-group rebalances, redelivery after a crash
//! before commit, idempotent-producer retries across a broker restart, partition leadership
//! moving. So the testkit runs the real thing, one recipe for every language:
//!
//! - jars: `org.apache.kafka:kafka_2.13` (+ a log4j binding) from Maven Central, fetched once by
//!   `scripts/kafka-jars.sh` into a cache folder ([`jar_dir`]);
//! - storage formatted with a random cluster id; a generated single-node KRaft
//!   `server.properties` on two free loopback ports (replication factors 1, no initial
//!   rebalance delay);
//! - ready when a topic can be created (`wire`: a minimal `CreateTopics` client, so the testkit
//!   does not link librdkafka);
//! - stop (SIGTERM), kill (SIGKILL) and restart on the same ports with the same data, each by the
//!   JVM's own pid; Drop kills it, and a watchdog kills it if the test process dies first.
//!
//! Java is the only thing a machine must have; [`java_available`] says why not when it is missing,
//! so a test can skip with that message.
//!
//! ```no_run
//! # async fn demo() -> Result<(), federation_testkit::kafka::KafkaError> {
//! use federation_testkit::kafka::KafkaBroker;
//!
//! let broker = KafkaBroker::start().await?;
//! broker.create_topic("zervigo.sync.user", 3).await?;
//! let bootstrap = broker.bootstrap_servers(); // "127.0.0.1:<port>"
//! broker.kill();
//! broker.restart().await?;
//! # let _ = bootstrap; Ok(()) }
//! ```

mod broker;
mod error;
mod jars;
mod process;
mod properties;
mod wire;

pub use broker::{KafkaBroker, KafkaOptions};
pub use error::KafkaError;
pub use jars::{KAFKA_VERSION, jar_dir, java_available, skip_without_java};
