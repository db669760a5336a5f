//! What can go wrong starting a broker, each with what to do about it.

use std::path::PathBuf;
use std::time::Duration;

/// Why a [`KafkaBroker`](super::KafkaBroker) could not be started or restarted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaError {
    /// No Java runtime: the broker is a JVM program. Tests skip on this one only.
    #[error("Kafka needs Java: {0}")]
    JavaMissing(String),
    /// The broker jars are not in the cache and could not be fetched.
    #[error("Kafka jars unavailable in {}: {reason}", dir.display())]
    Jars {
        /// The cache folder.
        dir: PathBuf,
        /// What failed (Maven missing, download error, ...).
        reason: String,
    },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Formatting the storage folder (`kafka.tools.StorageTool format`) failed.
    #[error("formatting Kafka storage failed ({status}): {output}")]
    Format {
        /// The tool's exit status.
        status: String,
        /// The end of its output.
        output: String,
    },
    /// The broker process ended before it became ready.
    #[error("the Kafka broker exited during start-up ({status}); end of its log:\n{log_tail}")]
    Exited {
        /// Its exit status.
        status: String,
        /// The end of its log.
        log_tail: String,
    },
    /// The broker did not accept a topic within the start-up deadline.
    #[error(
        "the Kafka broker was not ready within {after:?} (last probe: {last}); end of its log:\n{log_tail}"
    )]
    NotReady {
        /// The deadline that passed.
        after: Duration,
        /// The last readiness probe's error.
        last: String,
        /// The end of its log.
        log_tail: String,
    },
    /// Creating a topic failed.
    #[error("creating topic {topic:?} failed: {reason}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's answer or the connection error.
        reason: String,
    },
    /// The call needs a running broker.
    #[error("the Kafka broker is not running")]
    NotRunning,
}

impl KafkaError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        KafkaError::Io {
            what: what.into(),
            source,
        }
    }
}
