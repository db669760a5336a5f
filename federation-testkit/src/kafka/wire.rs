//! Just enough of the Kafka protocol to create a topic: the readiness probe and test setup.
//!
//! "The port is open" is not "the broker works": a KRaft node accepts connections seconds before
//! its controller has elected itself, and a client that connects then sees timeouts. Creating a
//! topic exercises the controller, the metadata log and the broker together, so the testkit calls
//! a broker ready when that succeeds. The testkit stays free of a Kafka client library (the core's
//! test binaries use it and must not link librdkafka), so this file speaks `CreateTopics` v4
//! (non-flexible encoding, supported by Kafka 2.x through 4.x) over a plain TCP stream.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `CreateTopics` API key.
const CREATE_TOPICS: i16 = 19;
/// The version spoken (v4: throttle time and error messages, no tagged fields).
const CREATE_TOPICS_V4: i16 = 4;
/// Kafka's `TOPIC_ALREADY_EXISTS`: success for our purpose.
const TOPIC_ALREADY_EXISTS: i16 = 36;
/// Largest answer accepted (one topic's result is a few dozen bytes).
const MAX_RESPONSE: usize = 1 << 20;

/// Why a `CreateTopics` call did not create the topic.
#[derive(Debug)]
pub(crate) enum CreateError {
    /// Connecting, writing or reading failed (broker not up yet, or gone).
    Io(io::Error),
    /// The broker answered with a Kafka error code (e.g. 7 request timed out, 41 not controller).
    Kafka { code: i16, message: Option<String> },
    /// The answer did not parse.
    Malformed(&'static str),
}

impl std::fmt::Display for CreateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CreateError::Io(e) => write!(f, "{e}"),
            CreateError::Kafka { code, message } => {
                write!(f, "Kafka error code {code}")?;
                match message {
                    Some(m) => write!(f, ": {m}"),
                    None => Ok(()),
                }
            }
            CreateError::Malformed(what) => write!(f, "malformed CreateTopics answer: {what}"),
        }
    }
}

/// Create `topic` with `partitions` partitions (replication factor 1); an existing topic counts
/// as created. `timeout` bounds the whole exchange and is also the broker-side timeout.
pub(crate) async fn create_topic(
    addr: SocketAddr,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<(), CreateError> {
    match tokio::time::timeout(timeout, exchange(addr, topic, partitions, timeout)).await {
        Ok(result) => result,
        Err(_) => Err(CreateError::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no CreateTopics answer within {timeout:?}"),
        ))),
    }
}

async fn exchange(
    addr: SocketAddr,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<(), CreateError> {
    let mut stream = TcpStream::connect(addr).await.map_err(CreateError::Io)?;
    let correlation_id = 1;
    let request = encode_request(correlation_id, topic, partitions, timeout);
    stream.write_all(&request).await.map_err(CreateError::Io)?;
    let len = stream.read_i32().await.map_err(CreateError::Io)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|n| *n <= MAX_RESPONSE)
        .ok_or(CreateError::Malformed("response size out of range"))?;
    let mut body = vec![0; len];
    stream
        .read_exact(&mut body)
        .await
        .map_err(CreateError::Io)?;
    decode_response(correlation_id, &body)
}

fn put_string(buf: &mut Vec<u8>, s: &str) {
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&s.as_bytes()[..len as usize]);
}

/// Size-prefixed request: header v1 (api key, version, correlation id, client id) + body v4.
fn encode_request(correlation_id: i32, topic: &str, partitions: i32, timeout: Duration) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64 + topic.len());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&CREATE_TOPICS.to_be_bytes());
    buf.extend_from_slice(&CREATE_TOPICS_V4.to_be_bytes());
    buf.extend_from_slice(&correlation_id.to_be_bytes());
    put_string(&mut buf, "federation-testkit");
    buf.extend_from_slice(&1i32.to_be_bytes()); // one topic
    put_string(&mut buf, topic);
    buf.extend_from_slice(&partitions.to_be_bytes());
    buf.extend_from_slice(&1i16.to_be_bytes()); // replication factor
    buf.extend_from_slice(&0i32.to_be_bytes()); // no manual assignments
    buf.extend_from_slice(&0i32.to_be_bytes()); // no configs
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    buf.extend_from_slice(&timeout_ms.to_be_bytes());
    buf.push(0); // validate_only = false
    let size = i32::try_from(buf.len() - 4).unwrap_or(i32::MAX);
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf
}

/// A cursor over a response body.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], CreateError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(CreateError::Malformed("truncated"))?;
        self.0 = rest;
        Ok(*head)
    }
    fn i16(&mut self) -> Result<i16, CreateError> {
        self.take::<2>().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Result<i32, CreateError> {
        self.take::<4>().map(i32::from_be_bytes)
    }
    fn nullable_string(&mut self) -> Result<Option<String>, CreateError> {
        let len = self.i16()?;
        let Ok(len) = usize::try_from(len) else {
            return Ok(None);
        };
        let bytes = self
            .0
            .get(..len)
            .ok_or(CreateError::Malformed("truncated string"))?;
        self.0 = &self.0[len..];
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }
}

/// Response header v0 (correlation id) + body v4 (throttle, per-topic error code and message).
fn decode_response(correlation_id: i32, body: &[u8]) -> Result<(), CreateError> {
    let mut r = Reader(body);
    if r.i32()? != correlation_id {
        return Err(CreateError::Malformed("correlation id differs"));
    }
    let _throttle_ms = r.i32()?;
    if r.i32()? != 1 {
        return Err(CreateError::Malformed("expected one topic result"));
    }
    let _name = r.nullable_string()?;
    let code = r.i16()?;
    let message = r.nullable_string()?;
    match code {
        0 | TOPIC_ALREADY_EXISTS => Ok(()),
        code => Err(CreateError::Kafka { code, message }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_size_prefixed_and_names_the_topic() {
        let req = encode_request(7, "orders", 3, Duration::from_secs(5));
        let size = i32::from_be_bytes([req[0], req[1], req[2], req[3]]);
        assert_eq!(usize::try_from(size).ok(), Some(req.len() - 4));
        assert_eq!(&req[4..6], &19i16.to_be_bytes());
        assert_eq!(&req[6..8], &4i16.to_be_bytes());
        assert!(req.windows(6).any(|w| w == b"orders"));
    }

    fn response(code: i16, message: Option<&str>) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        put_string(&mut b, "orders");
        b.extend_from_slice(&code.to_be_bytes());
        match message {
            Some(m) => put_string(&mut b, m),
            None => b.extend_from_slice(&(-1i16).to_be_bytes()),
        }
        b
    }

    #[test]
    fn created_and_already_existing_are_success_other_codes_are_errors() {
        assert!(decode_response(1, &response(0, None)).is_ok());
        assert!(decode_response(1, &response(36, Some("exists"))).is_ok());
        match decode_response(1, &response(41, Some("not controller"))) {
            Err(CreateError::Kafka { code: 41, message }) => {
                assert_eq!(message.as_deref(), Some("not controller"));
            }
            other => panic!("expected Kafka error 41, got {other:?}"),
        }
        assert!(matches!(
            decode_response(2, &response(0, None)),
            Err(CreateError::Malformed(_))
        ));
        assert!(matches!(
            decode_response(1, &response(0, None)[..9]),
            Err(CreateError::Malformed(_))
        ));
    }
}
