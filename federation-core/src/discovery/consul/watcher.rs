//! The blocking-query loop of one (cluster, Consul service).
//!
//! Failures this prevents, in loop order:
//! - **busy loops**: a request after an answer that changed nothing takes a token from a small
//!   bucket, so a server that answers at once with an unchanged index is polled a few times per
//!   second at most, while the happy path (one long-poll per change or per `wait`) never waits;
//! - **delayed change storms**: a request after an answer that changed the instances takes no
//!   token, so the tenth change of a service within a second is seen as fast as the first
//!   (the bucket used to hold it back by up to `pace_refill`);
//! - **missed updates after an index regression** (snapshot restore, agent restart, another
//!   cluster's index): an index lower than the one sent resets it to 0, so the next request
//!   re-reads at once instead of blocking on a number the server will never reach; an index
//!   below 1 is clamped to 1;
//! - **slow recovery**: after any failure the index is reset to 0 too, so the first request
//!   after Consul comes back answers immediately and clears `stale`, rather than blocking for a
//!   whole `wait`;
//! - **thundering herds**: failures back off exponentially with jitter;
//! - **a stale list after a long outage**: while backing off from an unreachable agent, a TCP
//!   connect every `4 × backoff_base` ends the backoff as soon as the agent is back
//!   (`recover.rs`), instead of sleeping out a delay that grew to 30 s;
//! - **emptied sets**: failures only mark the last known set stale (see `state.rs`).

use std::sync::Arc;

use super::http::ConsulHttp;
use crate::discovery::state::ServiceState;
use crate::discovery::tuning::{Backoff, DiscoveryTuning, TokenBucket};

/// Runs until aborted. Publishes every change of `service` into `state`.
pub(crate) async fn run(
    http: Arc<ConsulHttp>,
    service: String,
    state: Arc<ServiceState>,
    tuning: DiscoveryTuning,
) {
    let mut index: u64 = 0;
    let mut backoff = Backoff::new(&tuning);
    let mut bucket = TokenBucket::new(&tuning);
    // The watch's own connection, reused from one query to the next (`long_poll.rs`).
    let mut conn = None;
    // Only a poll after an answer that changed nothing is paced: a burst of real changes
    // (a deploy, a change storm) is followed at once, however long it lasts.
    let mut paced = true;
    loop {
        if paced {
            bucket.acquire().await;
        }
        state.record_poll();
        match http.health_service(&service, index, &mut conn).await {
            Ok(answer) => {
                let got = answer.index.max(1);
                index = if got < index {
                    tracing::info!(
                        service = %service,
                        sent = index,
                        got,
                        "Consul index went backwards; re-reading without blocking"
                    );
                    0
                } else {
                    got
                };
                backoff.reset();
                let changed = state.record_success(answer.parsed.instances, got);
                if changed {
                    tracing::debug!(service = %service, index = got, "instances changed");
                }
                paced = !changed;
            }
            Err(error) => {
                index = 0;
                paced = true;
                let delay = backoff.next_delay();
                if state.record_error(&error) {
                    tracing::warn!(%error, retry_in = ?delay, "Consul poll failed; keeping the last known instances");
                } else {
                    tracing::debug!(%error, retry_in = ?delay, "Consul poll failed again");
                }
                let every = tuning.backoff_base.saturating_mul(4);
                super::recover::back_off(&http, error.kind(), delay, every).await;
            }
        }
    }
}
