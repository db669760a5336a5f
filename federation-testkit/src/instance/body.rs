//! Response bodies: the identity document, its padding, and bodies fed by a task.
//!
//! The happy path answers with one `Full` buffer (no task, no channel). Slow, broken and
//! oversized answers stream from a spawned task through a small channel, so the task decides
//! when each byte leaves and when the connection breaks.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame};
use serde::Serialize;
use tokio::sync::mpsc;

/// Spaces used for padding and oversized bodies (trailing whitespace keeps the body valid JSON).
static PADDING: [u8; 64 * 1024] = [b' '; 64 * 1024];

/// The body type every response uses.
pub(crate) type ResponseBody = Either<Full<Bytes>, ChunkBody>;

/// The identity document every answer carries.
#[derive(Serialize)]
pub(crate) struct Answer<'a> {
    pub(crate) cluster: &'a str,
    pub(crate) service: &'a str,
    pub(crate) instance: &'a str,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) traceparent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) deadline: Option<&'a str>,
    pub(crate) body_len: usize,
    pub(crate) status: u16,
}

impl Answer<'_> {
    /// The document as JSON, padded with trailing spaces to `size` bytes when given.
    pub(crate) fn to_bytes(&self, size: Option<usize>) -> Vec<u8> {
        // Serializing borrowed strings and integers cannot fail.
        let mut out = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        if let Some(size) = size.filter(|size| out.len() < *size) {
            out.resize(size, b' ');
        }
        out
    }
}

/// A body whose chunks come from a channel; ends when the sender is dropped.
#[derive(Debug)]
pub(crate) struct ChunkBody {
    rx: mpsc::Receiver<Bytes>,
}

impl ChunkBody {
    /// A body and the sender that feeds it (one chunk in flight at a time).
    pub(crate) fn channel() -> (mpsc::Sender<Bytes>, Self) {
        let (tx, rx) = mpsc::channel(1);
        (tx, Self { rx })
    }
}

impl Body for ChunkBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// A full body.
pub(crate) fn full(bytes: Vec<u8>) -> ResponseBody {
    Either::Left(Full::new(Bytes::from(bytes)))
}

/// Send `head` then whitespace until `total` bytes went out (or the client left).
pub(crate) async fn feed_oversized(tx: mpsc::Sender<Bytes>, head: Vec<u8>, total: usize) {
    let mut left = total;
    let head = Bytes::from(head);
    let first = head.slice(..head.len().min(left));
    left -= first.len();
    if tx.send(first).await.is_err() {
        return;
    }
    while left > 0 {
        let n = left.min(PADDING.len());
        if tx.send(Bytes::from_static(&PADDING[..n])).await.is_err() {
            return;
        }
        left -= n;
    }
}
