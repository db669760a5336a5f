//! What an instance does with each request: latency, errors, fixed statuses and broken
//! transports.
//!
//! A [`Behavior`] is a plain value: tests build one, hand it to
//! [`ServiceInstance::set_behavior`](super::ServiceInstance::set_behavior) and every request
//! received afterwards follows it. The default answers `200` at once.

use std::time::Duration;

/// How an instance answers. `Behavior::default()` answers every request at once with `200` and
/// the identity JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct Behavior {
    /// Delay before answering. Default: [`Latency::None`].
    pub latency: Latency,
    /// Probability (0.0–1.0, clamped) of answering `error_status` instead of success. Drawn from
    /// the instance's seeded generator. Default: 0.0.
    pub error_rate: f64,
    /// Status used when `error_rate` fires. Default: 500.
    pub error_status: u16,
    /// A fixed status for every request (e.g. 503 or 429); wins over `error_rate`.
    /// Default: `None`.
    pub status: Option<u16>,
    /// `Retry-After` value sent on every response with a status ≥ 400. Default: `None`.
    pub retry_after: Option<String>,
    /// Transport-level behaviour. Default: [`Mode::Normal`].
    pub mode: Mode,
    /// Pad the JSON body with trailing whitespace (still valid JSON) to this many bytes.
    /// Default: `None` (the bare identity document, ~200 bytes).
    pub body_size: Option<usize>,
}

impl Default for Behavior {
    fn default() -> Self {
        Self {
            latency: Latency::None,
            error_rate: 0.0,
            error_status: 500,
            status: None,
            retry_after: None,
            mode: Mode::Normal,
            body_size: None,
        }
    }
}

impl Behavior {
    /// The default behaviour: `200` at once.
    pub fn ok() -> Self {
        Self::default()
    }

    /// Every request answered with `status` (and the identity JSON).
    pub fn status(status: u16) -> Self {
        Self {
            status: Some(status),
            ..Self::default()
        }
    }

    /// Every request answered after a fixed delay.
    pub fn delayed(delay: Duration) -> Self {
        Self {
            latency: Latency::Fixed(delay),
            ..Self::default()
        }
    }

    /// Every request handled in the given transport mode.
    pub fn mode(mode: Mode) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }

    /// True when answering needs no randomness, no timer and no special transport handling:
    /// the cheap path a benchmark measures against.
    pub(crate) fn is_plain(&self) -> bool {
        matches!(self.latency, Latency::None)
            && self.error_rate <= 0.0
            && self.status.is_none()
            && matches!(self.mode, Mode::Normal)
            && self.body_size.is_none()
    }
}

/// A latency distribution.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Latency {
    /// Answer at once.
    #[default]
    None,
    /// Always this delay.
    Fixed(Duration),
    /// Uniform between the two bounds (inclusive; swapped if given backwards).
    Uniform(Duration, Duration),
    /// Log-normal with the given median and 99th percentile (a realistic long tail).
    /// A `p99` below `p50` is treated as equal to it (no spread).
    LogNormal {
        /// Median delay.
        p50: Duration,
        /// 99th-percentile delay.
        p99: Duration,
    },
}

/// Transport-level behaviour: how (or whether) the answer reaches the client.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Mode {
    /// A well-formed HTTP/1.1 answer on a keep-alive connection.
    #[default]
    Normal,
    /// Read the whole request, then never answer (the connection stays open until the client
    /// gives up or the instance is killed).
    Hang,
    /// Read the whole request, then reset the connection (TCP RST via `SO_LINGER 0`) without
    /// answering: the request may have been processed, so a client must not blindly retry a
    /// non-idempotent call.
    ResetAfterRequest,
    /// Send the status line, headers and about half of the body, then reset the connection.
    ResetMidBody,
    /// Send the answer in small chunks (32 bytes) with this delay between them.
    SlowDrip {
        /// Delay between chunks.
        chunk_delay: Duration,
    },
    /// Answer `200` with a chunked body (no `Content-Length`) of exactly this many bytes: the
    /// identity JSON followed by whitespace. Tests response-size limits.
    Oversized {
        /// Total body size in bytes.
        bytes: usize,
    },
    /// Answer with bytes that are not a valid HTTP/1.1 response head, then close.
    MalformedHeaders,
}
