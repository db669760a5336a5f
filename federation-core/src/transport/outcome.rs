//! What one exchange returns: a fully read response or why it failed.
//!
//! **Failure prevented.** The classification of an attempt (retry elsewhere, fail, or answer)
//! depends on *where* the exchange broke: before the request left (nothing sent, safe to retry)
//! or after (maybe processed). Both transports report through these two types so the call loop
//! classifies them the same way.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use tokio::time::Instant;

use crate::error::HttpError;

/// Why one exchange failed.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection: the request never reached the server.
    Connect(HttpError),
    /// The exchange broke after the request may have been sent.
    Lost(HttpError),
    /// The body exceeded the limit.
    TooLarge,
}

/// A fully read response.
pub(crate) struct Exchange {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// When its body had been read to its end: the attempt's end, one clock reading shared by
    /// the connection's give-back, the breaker, the latency sample and the call's duration.
    pub(crate) ended: Instant,
}
