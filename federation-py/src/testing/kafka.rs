//! `KafkaBroker`: the testkit's real Kafka broker (KRaft, single node, loopback), so Python tests
//! run the sync against the same broker recipe as the Rust and Go tests.
//!
//! The broker is a JVM child process. It is stopped by its own pid on `close()`, on leaving a
//! `with` block and when the object is garbage-collected (the testkit's Drop kills it and
//! deletes its folder; its watchdog kills it if this process dies first).

use std::sync::{Arc, Mutex, PoisonError};

use federation_testkit::kafka::{KafkaBroker, KafkaError, KafkaOptions, skip_without_java};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyTuple, PyType};

use super::seconds;
use crate::runtime::{self, RtHandle};

/// A real Apache Kafka broker on 127.0.0.1 (needs Java 17+; the jars are fetched once).
#[pyclass(frozen, name = "KafkaBroker", module = "federation._federation")]
pub(crate) struct PyKafkaBroker {
    inner: Mutex<Option<Arc<KafkaBroker>>>,
    rt: RtHandle,
}

fn kafka_err(error: &KafkaError) -> PyErr {
    PyRuntimeError::new_err(format!("Kafka broker: {error}"))
}

impl PyKafkaBroker {
    fn broker(&self) -> PyResult<Arc<KafkaBroker>> {
        self.rt.check()?;
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| PyRuntimeError::new_err("the KafkaBroker is closed"))
    }
}

#[pymethods]
impl PyKafkaBroker {
    /// Starts a broker and waits until it accepts a topic. `properties` are extra
    /// `server.properties` lines (they override the testkit's).
    #[classmethod]
    #[pyo3(signature = (*, heap_mb=512, ready_timeout=90.0, properties=Vec::new()))]
    fn start(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        heap_mb: u32,
        ready_timeout: f64,
        properties: Vec<(String, String)>,
    ) -> PyResult<Self> {
        let options = KafkaOptions {
            heap_mb,
            ready_timeout: seconds("ready_timeout", ready_timeout)?,
            properties,
            ..KafkaOptions::default()
        };
        let rt = runtime::current()?;
        let broker = rt
            .block_on(py, KafkaBroker::start_with(options))?
            .map_err(|e| kafka_err(&e))?;
        Ok(Self {
            inner: Mutex::new(Some(Arc::new(broker))),
            rt,
        })
    }

    /// Why a test needing a broker must skip on this machine (no Java), or None. Under CI
    /// (`CI` set) a missing Java is a setup error instead (it raises).
    #[staticmethod]
    fn skip_reason() -> Option<String> {
        skip_without_java()
    }

    /// `127.0.0.1:<port>` for `bootstrap_servers` (unchanged across restarts).
    #[getter]
    fn bootstrap_servers(&self) -> PyResult<String> {
        Ok(self.broker()?.bootstrap_servers())
    }

    /// The client port.
    #[getter]
    fn port(&self) -> PyResult<u16> {
        Ok(self.broker()?.port())
    }

    /// The JVM's pid while it runs, else None.
    #[getter]
    fn pid(&self) -> PyResult<Option<u32>> {
        Ok(self.broker()?.pid())
    }

    /// Whether the JVM is running.
    #[getter]
    fn running(&self) -> PyResult<bool> {
        Ok(self.broker()?.is_running())
    }

    /// Clean shutdown (SIGTERM, SIGKILL after 30 s); the data is kept for `restart()`.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let broker = self.broker()?;
        self.rt.block_on(py, async move { broker.stop().await })
    }

    /// Crash: SIGKILL by pid; the data written so far is kept for `restart()`.
    fn kill(&self) -> PyResult<()> {
        self.broker()?.kill();
        Ok(())
    }

    /// Starts again on the same port with the same data and waits until it accepts a topic.
    fn restart(&self, py: Python<'_>) -> PyResult<()> {
        let broker = self.broker()?;
        self.rt
            .block_on(py, async move { broker.restart().await })?
            .map_err(|e| kafka_err(&e))
    }

    /// Creates a topic (replication factor 1); an existing one is fine.
    #[pyo3(signature = (topic, partitions=1))]
    fn create_topic(&self, py: Python<'_>, topic: String, partitions: u32) -> PyResult<()> {
        let broker = self.broker()?;
        self.rt
            .block_on(
                py,
                async move { broker.create_topic(&topic, partitions).await },
            )?
            .map_err(|e| kafka_err(&e))
    }

    /// The end of the broker's log, for failure messages.
    fn log_tail(&self) -> PyResult<String> {
        Ok(self.broker()?.log_tail())
    }

    /// Stops the broker cleanly and deletes its data. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(broker) = taken {
            self.rt.check_pid()?;
            // Dropping the last handle (on the runtime, after the stop) deletes the folder.
            self.rt.block_on(py, async move { broker.stop().await })?;
        }
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }
}
