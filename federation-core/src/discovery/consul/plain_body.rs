//! Reading a plain-HTTP answer (`plain.rs`): the read buffer and the body framings.
//!
//! Failures this prevents: a large Consul answer (Go `net/http` sends anything over ~2 KiB
//! chunked) being cut or mis-read when its chunks arrive split across reads at any byte;
//! chunk extensions or trailers being taken for data; and a broken or hostile agent growing a
//! body, a chunk-size line or a trailer section without bound (each has a limit, and the error
//! says which one was exceeded); and a waiting query holding a read buffer (the [`Reader`]
//! reserves it only once the stream is readable, and frees it with itself).

use std::io;

use bytes::BufMut;
use tokio::net::TcpStream;

/// The sizes an answer may not exceed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Bytes of the status line and headers (and of a chunked body's trailers).
    pub(crate) head: usize,
    /// Bytes of the body (after chunked decoding).
    pub(crate) body: usize,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// The connection failed or closed before any byte of the answer arrived (for a kept
    /// connection: the agent closed it, so the query may be sent again on a new one).
    #[error(transparent)]
    Unanswered(io::Error),
    /// The connection failed, or could not be opened, or closed during the answer.
    #[error(transparent)]
    Transport(Box<dyn std::error::Error + Send + Sync>),
    /// The answer is not HTTP/1.1 this reader accepts.
    #[error("{0}")]
    Protocol(String),
    /// The query cannot be sent as asked (the text says why; never the token).
    #[error("{0}")]
    Request(String),
    /// The body is larger than [`Limits::body`]; the text is its size (`123` or `over 64`).
    #[error("the answer is {0} bytes")]
    TooLarge(String),
}

/// Longest chunk-size line (size, extensions and CRLF) accepted.
const MAX_SIZE_LINE: usize = 1024;

/// How an answer's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// `Content-Length` bytes (0 for 204 and 304).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the agent closes the connection.
    UntilClose,
}

/// Reads the whole body framed by `framing`, at most `limits.body` bytes.
pub(super) async fn read_body(
    reader: &mut Reader<'_>,
    framing: Framing,
    limits: Limits,
) -> Result<Vec<u8>, ExchangeError> {
    match framing {
        Framing::Length(n) => {
            if n > limits.body as u64 {
                return Err(ExchangeError::TooLarge(n.to_string()));
            }
            let n = n as usize;
            let mut body = Vec::with_capacity(n);
            reader.read_into(&mut body, n).await.map_err(mid_body)?;
            Ok(body)
        }
        Framing::Chunked => read_chunked(reader, limits).await,
        Framing::UntilClose => read_until_close(reader, limits.body).await,
    }
}

/// A read error inside the body: a truncated answer.
fn mid_body(e: std::io::Error) -> ExchangeError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        closed("in the middle of the answer's body")
    } else {
        ExchangeError::Transport(Box::new(e))
    }
}

async fn read_chunked(reader: &mut Reader<'_>, limits: Limits) -> Result<Vec<u8>, ExchangeError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader, MAX_SIZE_LINE, "chunk-size line").await?;
        let size = chunk_size(&line)?;
        if size == 0 {
            read_trailers(reader, limits.head).await?;
            return Ok(body);
        }
        if size > (limits.body - body.len()) as u64 {
            return Err(ExchangeError::TooLarge(format!("over {}", limits.body)));
        }
        reader
            .read_into(&mut body, size as usize)
            .await
            .map_err(mid_body)?;
        let longer =
            || ExchangeError::Protocol("a chunk is longer than its announced size".to_owned());
        let end = read_line(reader, 2, "chunk end")
            .await
            .map_err(|e| match e {
                ExchangeError::Protocol(_) => longer(),
                other => other,
            })?;
        if !end.is_empty() {
            return Err(longer());
        }
    }
}

/// The size of a chunk-size line (`1a3f;name=value`): hexadecimal, extensions skipped.
fn chunk_size(line: &[u8]) -> Result<u64, ExchangeError> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = digits.trim_ascii();
    let invalid = || {
        ExchangeError::Protocol(format!(
            "invalid chunk size {:?} (expected hexadecimal digits)",
            String::from_utf8_lossy(line)
        ))
    };
    if digits.is_empty() || digits.len() > 15 {
        return Err(invalid());
    }
    let text = std::str::from_utf8(digits).map_err(|_| invalid())?;
    u64::from_str_radix(text, 16).map_err(|_| invalid())
}

/// Skips the trailer fields after the last chunk, up to the empty line ending the body.
async fn read_trailers(reader: &mut Reader<'_>, limit: usize) -> Result<(), ExchangeError> {
    let mut total = 0;
    loop {
        let line = read_line(reader, limit - total, "trailer section").await?;
        if line.is_empty() {
            return Ok(());
        }
        total += line.len() + 2;
        if total >= limit {
            return Err(ExchangeError::Protocol(format!(
                "the answer's trailer section is too large (over {limit} bytes)"
            )));
        }
    }
}

/// The next line without its line end (CRLF, or a bare LF as Go accepts), at most `limit`
/// bytes including the line end.
async fn read_line(
    reader: &mut Reader<'_>,
    limit: usize,
    what: &str,
) -> Result<Vec<u8>, ExchangeError> {
    loop {
        let buffered = reader.buffered();
        if let Some(pos) = buffered.iter().position(|&b| b == b'\n') {
            let line = buffered[..pos]
                .strip_suffix(b"\r")
                .unwrap_or(&buffered[..pos]);
            let line = line.to_vec();
            reader.consume(pos + 1);
            return Ok(line);
        }
        let have = buffered.len();
        if have >= limit {
            return Err(ExchangeError::Protocol(format!(
                "the answer's {what} is too long (over {limit} bytes)"
            )));
        }
        match reader.fill(limit - have).await {
            Ok(0) => return Err(closed(&format!("in the answer's {what}"))),
            Ok(_) => {}
            Err(e) => return Err(ExchangeError::Transport(Box::new(e))),
        }
    }
}

async fn read_until_close(reader: &mut Reader<'_>, limit: usize) -> Result<Vec<u8>, ExchangeError> {
    let mut body = reader.buffered().to_vec();
    reader.consume(body.len());
    loop {
        if body.len() > limit {
            return Err(ExchangeError::TooLarge(format!("over {limit}")));
        }
        match reader.fill(limit + 1 - body.len()).await {
            Ok(0) => return Ok(body),
            Ok(_) => {
                let read = reader.buffered();
                let n = read.len();
                body.extend_from_slice(read);
                reader.consume(n);
            }
            Err(e) => return Err(ExchangeError::Transport(Box::new(e))),
        }
    }
}

/// The connection ended `where` (a truncated answer).
pub(super) fn closed(place: &str) -> ExchangeError {
    let e = io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the connection closed {place}"),
    );
    ExchangeError::Transport(Box::new(e))
}

/// The bytes read from a stream and not yet consumed. Its buffer is reserved only once the
/// stream has something to read, and freed with the reader.
pub(super) struct Reader<'a> {
    stream: &'a TcpStream,
    buf: Vec<u8>,
    at: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(stream: &'a TcpStream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            at: 0,
        }
    }

    /// The unconsumed bytes.
    pub(super) fn buffered(&self) -> &[u8] {
        &self.buf[self.at..]
    }

    /// Marks the first `n` unconsumed bytes as consumed.
    pub(super) fn consume(&mut self, n: usize) {
        self.at = (self.at + n).min(self.buf.len());
    }

    /// Waits until the stream is readable, then reads at most `max` bytes into the buffer
    /// (reserving it then); 0 = the stream ended.
    pub(super) async fn fill(&mut self, max: usize) -> io::Result<usize> {
        if self.at > 0 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        loop {
            probe::waiting(self.buf.capacity());
            self.stream.readable().await?;
            self.buf.reserve(max.min(READ_CHUNK));
            match self.stream.try_read_buf(&mut (&mut self.buf).limit(max)) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Appends exactly `n` bytes to `out`: the buffered ones first, the rest read from the
    /// stream straight into `out` (no copy through the buffer).
    pub(super) async fn read_into(&mut self, out: &mut Vec<u8>, n: usize) -> io::Result<()> {
        let take = n.min(self.buffered().len());
        out.extend_from_slice(&self.buf[self.at..self.at + take]);
        self.consume(take);
        let mut left = n - take;
        while left > 0 {
            probe::waiting(self.buf.capacity());
            self.stream.readable().await?;
            out.reserve(left.min(READ_CHUNK * 8));
            match self.stream.try_read_buf(&mut (&mut *out).limit(left)) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(read) => left -= read,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The read buffer reserved at a time (Consul's heads fit in one).
const READ_CHUNK: usize = 8192;

/// What tests see of the read buffer: its capacity each time a read starts waiting.
#[cfg(test)]
pub(super) mod probe {
    use std::sync::{Arc, Mutex};

    tokio::task_local! {
        /// Capacities of the read buffer at each wait of the exchanges run in this scope.
        pub(crate) static WAITS: Arc<Mutex<Vec<usize>>>;
    }

    pub(crate) fn waiting(capacity: usize) {
        let _ = WAITS.try_with(|w| {
            if let Ok(mut w) = w.lock() {
                w.push(capacity);
            }
        });
    }
}

#[cfg(not(test))]
mod probe {
    #[inline(always)]
    pub(super) fn waiting(_capacity: usize) {}
}
