//! One readiness wait for every front end: until each route's registry has answered.
//!
//! **Failure prevented.** A fresh client routes as soon as it is built, but its first calls
//! fail with `NoHealthyInstance` ("discovery has not answered yet") until each cluster's
//! registry answered once, or go to whichever cluster answered first. Programs that must not
//! drop their first requests wait for readiness; the Python package, the CLI and the examples
//! each had their own wait with its own meaning. [`FederatedServiceClient::wait_ready`] is the
//! one wait: every (service, cluster) route has had a successful registry answer, or the error
//! names the routes still waiting and their last registry error.

use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use super::front::FederatedServiceClient;
use crate::error::{Error, Reason};

impl FederatedServiceClient {
    /// Waits, at most `timeout`, until the registry of every cluster has answered successfully
    /// once for every service it serves (no poll loop: each route's discovery channel wakes
    /// the wait). Starts the discovery watches of services not called yet (watches are
    /// otherwise started by a service's first call), so after it every configured service is
    /// watched.
    ///
    /// # Errors
    /// [`ErrorKind::Discovery`](crate::ErrorKind::Discovery) naming each `service in cluster`
    /// still waiting, with its last registry error (`user in looma (connection refused)`).
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        let until = Instant::now() + timeout;
        // Readiness is about every route: start the watches no call has started yet.
        let inner = self.inner();
        for svc in inner.services.values() {
            svc.watch(&inner.clusters, inner.startup_grace);
        }
        let routes: Vec<_> = inner
            .services
            .values()
            .flat_map(|s| s.routes.iter().map(move |r| (&*s.name, r)))
            .collect();
        let answers = join_all(routes.iter().map(|(_, r)| r.first_success(until))).await;
        let waiting: Vec<String> = routes
            .iter()
            .zip(answers)
            .filter_map(|((service, route), answer)| {
                let error = answer.err()?;
                let error = error.map(|e| format!(" ({e})")).unwrap_or_default();
                Some(format!("{service} in {}{error}", route.cluster))
            })
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        Err(Error::new(Reason::NotReady {
            timeout,
            waiting: waiting.join(", "),
        }))
    }
}
