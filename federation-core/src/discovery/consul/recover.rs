//! Fast return of a Consul agent that could not be reached.
//!
//! **Failure prevented:** after a long agent outage the watcher's backoff has doubled up to its
//! cap (30 s by default), so when the agent answers again the client keeps routing on the
//! instance list from before the outage for up to 30 s more: an instance that restarted during
//! the outage stays "critical" (unroutable) although the agent reports it passing. The
//! 10-minute chaos run found this behind its losses at step 768 of seed 2026 (issue 24): the
//! agent had been back for 4.5 s and the only live instance was still unknown to the client.
//!
//! **Algorithm** (the breaker's fast recovery, `breaker/recover.rs`, applied to the agent): while
//! the watcher backs off after an [`Unreachable`](DiscoveryErrorKind::Unreachable) error, a
//! TCP connect to the agent's address every `4 × backoff_base` (jittered 0.75–1, so clients do
//! not probe in step; bounded by half that period) tells whether it accepts connections again;
//! the first that succeeds ends the backoff and the watcher polls at once. After any other
//! error (a hung agent, `500 No cluster leader`, a bad answer) a successful connect says
//! nothing, so the full backoff applies and a misbehaving agent is not polled faster.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::http::ConsulHttp;
use crate::discovery::DiscoveryErrorKind;

/// Sleeps `delay` after an error of `kind`; for an unreachable agent, returns as soon as a
/// connect to it succeeds (probing every `every`).
pub(crate) async fn back_off(
    http: &ConsulHttp,
    kind: &DiscoveryErrorKind,
    delay: Duration,
    every: Duration,
) {
    let until = Instant::now() + delay;
    let target = match (kind, http.agent_address()) {
        (DiscoveryErrorKind::Unreachable, Some(target)) => target,
        _ => {
            tokio::time::sleep_until(until).await;
            return;
        }
    };
    let every = every.max(Duration::from_millis(10));
    let limit = every / 2;
    loop {
        let pause = every.mul_f64(rand::random_range(0.75..=1.0));
        let next = Instant::now() + pause;
        if next >= until {
            tokio::time::sleep_until(until).await;
            return;
        }
        tokio::time::sleep_until(next).await;
        let connect = TcpStream::connect((target.0.as_str(), target.1));
        if matches!(tokio::time::timeout(limit, connect).await, Ok(Ok(_))) {
            tracing::debug!(host = %target.0, port = target.1, "Consul agent accepts connections again; polling now");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::http::tests::http;
    use super::*;

    #[tokio::test]
    async fn an_unreachable_agent_that_accepts_again_ends_the_backoff() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let http = http(&format!("http://127.0.0.1:{port}"));
        let started = std::time::Instant::now();
        let kind = DiscoveryErrorKind::Unreachable;
        back_off(
            &http,
            &kind,
            Duration::from_secs(30),
            Duration::from_millis(40),
        )
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    /// An agent whose accept queue is full (it drops new SYNs, as a restarted agent does under
    /// a fleet's reconnect storm): a request's connect times out, and that is `Unreachable`,
    /// so the recovery probe, not the doubled backoff, decides when to poll again.
    #[tokio::test]
    async fn a_connect_that_times_out_is_unreachable_so_the_probe_applies() {
        use crate::config::ConsulSource;
        use crate::discovery::tuning::DiscoveryTuning;
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let addr = socket.local_addr().expect("addr");
        let _listener = socket.listen(1).expect("listen");
        // Fill the accept queue: later connects get no answer to their SYN.
        let mut held = Vec::new();
        for _ in 0..8 {
            let connect = TcpStream::connect(addr);
            if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_millis(100), connect).await
            {
                held.push(stream);
            }
        }
        let tuning = DiscoveryTuning {
            connect_timeout: Duration::from_millis(200),
            ..DiscoveryTuning::default()
        };
        let source = ConsulSource::new(format!("http://{addr}"));
        let http = ConsulHttp::new("zervigo", &source, None, &tuning).expect("valid");
        let err = http
            .health_service("user-service", 0, &mut None)
            .await
            .expect_err("nobody accepts");
        assert_eq!(err.kind, DiscoveryErrorKind::Unreachable, "{err}");
        assert!(err.to_string().contains("unreachable"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_keep_the_full_backoff() {
        let http = http("http://127.0.0.1:9");
        let started = Instant::now();
        let kind = DiscoveryErrorKind::Timeout;
        back_off(
            &http,
            &kind,
            Duration::from_secs(30),
            Duration::from_millis(40),
        )
        .await;
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }
}
