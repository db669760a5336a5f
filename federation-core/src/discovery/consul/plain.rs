//! A watch's blocking query to a plain-HTTP Consul agent, on a TCP stream the watch owns.
//!
//! Failure this prevents: 2,000 watches costing more client memory than the S1 goal allows
//! (≤ 50 MiB at 40,000 instances; docs/BENCHMARKS.md "S1: what a watch costs"). A hyper HTTP/1.1
//! connection costs ≈ 28 KiB however little it carries (an 8 KiB read buffer and an 8 KiB write
//! buffer reserved for its lifetime, a request channel block, a spawned connection task), and
//! a long poll spends nearly all its life waiting. Here a waiting query holds only its socket:
//! the request is written from a short-lived buffer, the loop waits with
//! [`TcpStream::readable`], and the read buffer is reserved when the answer arrives and
//! dropped once it was read (`read_answer`).
//!
//! The exchange is the small part of HTTP/1.1 a Consul agent (Go `net/http`) speaks: a `GET`
//! with `Host` and the ACL token header, an answer head of at most [`Limits::head`] bytes
//! (parsed by `httparse`), a body framed by `Content-Length`, `Transfer-Encoding: chunked`
//! (Go's framing for large answers; extensions and trailers are skipped) or the end of the
//! connection, at most [`Limits::body`] bytes. `Connection: close`, HTTP/1.0 without
//! `keep-alive`, a body ending with the connection or bytes after the answer all mean the
//! connection is not used again. Body framing is in `plain_body.rs`.

use std::io;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

pub(crate) use super::plain_body::{ExchangeError, Limits};
use super::plain_body::{Framing, Reader, closed, read_body};

/// Most header lines an answer head may have (hyper's default too).
const MAX_HEADERS: usize = 100;

/// One answer as the caller needs it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: http::StatusCode,
    /// The raw `X-Consul-Index` value, if the answer has one.
    pub(crate) index: Option<Vec<u8>>,
    pub(crate) body: Vec<u8>,
}

/// An open connection to a plain-HTTP agent, between two queries.
#[derive(Debug)]
pub(crate) struct PlainConnection {
    stream: TcpStream,
}

impl PlainConnection {
    /// Connects to `host:port` within `timeout`, with `TCP_NODELAY` (a query is one write).
    pub(crate) async fn connect(
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<Self, ExchangeError> {
        let connect = TcpStream::connect((host, port));
        let stream = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(ExchangeError::Transport(Box::new(e))),
            Err(_) => {
                let e = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
                return Err(ExchangeError::Transport(Box::new(e)));
            }
        };
        stream
            .set_nodelay(true)
            .map_err(|e| ExchangeError::Transport(Box::new(e)))?;
        Ok(Self { stream })
    }

    /// Whether a kept connection can carry another query: the agent has not closed it and
    /// sent nothing unasked.
    pub(crate) fn reusable(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Writes `request` and reads its answer; returns the connection again when it can carry
    /// the next query.
    pub(crate) async fn exchange(
        mut self,
        request: &[u8],
        limits: Limits,
    ) -> Result<(Answer, Option<Self>), ExchangeError> {
        self.stream
            .write_all(request)
            .await
            .map_err(ExchangeError::Unanswered)?;
        let mut reader = Reader::new(&self.stream);
        let head = read_head(&mut reader, limits.head).await?;
        let body = read_body(&mut reader, head.framing, limits).await?;
        let clean = reader.buffered().is_empty();
        drop(reader);
        let keep = head.keep_alive && head.framing != Framing::UntilClose && clean;
        let answer = Answer {
            status: head.status,
            index: head.index,
            body,
        };
        Ok((answer, keep.then_some(self)))
    }
}

/// The request bytes of a `GET target` to `host` with the ACL `token`; the error says why the
/// token cannot travel in a header (it never contains the token).
pub(crate) fn request(target: &str, host: &str, token: Option<&str>) -> Result<Vec<u8>, String> {
    let header_safe = |t: &str| t.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f));
    let mut out = Vec::with_capacity(64 + target.len() + host.len());
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    if let Some(token) = token {
        if !header_safe(token) {
            return Err(
                "the ACL token contains a control character (CR, LF, NUL, ...), \
                        which an HTTP header cannot carry"
                    .to_owned(),
            );
        }
        out.extend_from_slice(b"\r\nx-consul-token: ");
        out.extend_from_slice(token.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
    Ok(out)
}

/// The status and headers of an answer, as far as the exchange needs them.
#[derive(Debug)]
struct Head {
    status: http::StatusCode,
    index: Option<Vec<u8>>,
    framing: Framing,
    keep_alive: bool,
}

/// Reads until a whole head is buffered (at most `limit` bytes) and parses it.
async fn read_head(reader: &mut Reader<'_>, limit: usize) -> Result<Head, ExchangeError> {
    loop {
        if let Some((len, head)) = parse_head(reader.buffered())? {
            reader.consume(len);
            return Ok(head);
        }
        let have = reader.buffered().len();
        if have >= limit {
            return Err(ExchangeError::Protocol(format!(
                "the answer's head is too large (over {limit} bytes)"
            )));
        }
        match reader.fill(limit - have).await {
            Ok(0) if have == 0 => {
                let e = io::Error::new(io::ErrorKind::UnexpectedEof, "closed before answering");
                return Err(ExchangeError::Unanswered(e));
            }
            Ok(0) => return Err(closed("in the answer's head")),
            Ok(_) => {}
            Err(e) if have == 0 => return Err(ExchangeError::Unanswered(e)),
            Err(e) => return Err(ExchangeError::Transport(Box::new(e))),
        }
    }
}

/// The head at the start of `bytes` and its length; `None` while it is incomplete.
fn parse_head(bytes: &[u8]) -> Result<Option<(usize, Head)>, ExchangeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    let len = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            return Err(ExchangeError::Protocol(format!(
                "the answer's head is not valid HTTP/1.1: {e}"
            )));
        }
    };
    let code = parsed.code.unwrap_or_default();
    let status = http::StatusCode::from_u16(code)
        .ok()
        .filter(|s| !s.is_informational())
        .ok_or_else(|| ExchangeError::Protocol(format!("unexpected answer status {code}")))?;
    let mut index = None;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let (mut close, mut keep) = (false, false);
    for header in parsed.headers.iter() {
        let name = header.name;
        let value = header.value;
        if name.eq_ignore_ascii_case("x-consul-index") {
            index = Some(value.to_vec());
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(value)?;
            if length.is_some_and(|l| l != n) {
                return Err(ExchangeError::Protocol(
                    "the answer has two different Content-Length headers".to_owned(),
                ));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = is_chunked(value)?;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in String::from_utf8_lossy(value).split(',') {
                close |= token.trim().eq_ignore_ascii_case("close");
                keep |= token.trim().eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    let framing = match (status.as_u16(), chunked, length) {
        (204 | 304, _, _) => Framing::Length(0),
        (_, true, _) => Framing::Chunked,
        (_, false, Some(n)) => Framing::Length(n),
        (_, false, None) => Framing::UntilClose,
    };
    // Both framings announced: chunked wins, and the connection is not trusted afterwards.
    let ambiguous = chunked && length.is_some();
    let keep_alive = !ambiguous && !close && (parsed.version == Some(1) || keep);
    let head = Head {
        status,
        index,
        framing,
        keep_alive,
    };
    Ok(Some((len, head)))
}

fn parse_length(value: &[u8]) -> Result<u64, ExchangeError> {
    std::str::from_utf8(value)
        .ok()
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| {
            ExchangeError::Protocol(format!(
                "invalid Content-Length {:?} (expected a decimal byte count)",
                String::from_utf8_lossy(value)
            ))
        })
}

/// Whether a `Transfer-Encoding` value ends with `chunked`; other codings are refused (a
/// query never asks for them).
fn is_chunked(value: &[u8]) -> Result<bool, ExchangeError> {
    let text = String::from_utf8_lossy(value);
    let codings: Vec<&str> = text.split(',').map(str::trim).collect();
    if codings.iter().all(|c| c.eq_ignore_ascii_case("chunked")) {
        return Ok(true);
    }
    Err(ExchangeError::Protocol(format!(
        "unsupported Transfer-Encoding {text:?} (only chunked is accepted)"
    )))
}

#[cfg(test)]
#[path = "plain_tests.rs"]
mod tests;
