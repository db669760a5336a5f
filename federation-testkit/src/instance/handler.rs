//! Turning one request into the answer the current [`Behavior`] asks for.
//!
//! Order of events for a request: `/health` is answered at once from the health status; anything
//! else is counted, its body read to the end (so `body_len` is exact and a reset really happens
//! *after* the request arrived), optionally recorded, delayed by the latency draw, then answered
//! according to the mode. With the default behaviour this is one atomic increment, one small map
//! update and one JSON serialization.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Either};
use hyper::body::Incoming;

use super::behavior::{Behavior, Mode};
use super::body::{self, Answer, ChunkBody, ResponseBody};
use super::connection::{Break, ConnControl};
use super::server::Shared;
use super::stats::RecordedRequest;

/// Header carrying the caller's remaining deadline, echoed as `deadline`.
pub const DEADLINE_HEADER: &str = "x-federation-deadline-ms";
/// W3C trace context header, echoed as `traceparent`.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Bytes per chunk in [`Mode::SlowDrip`].
const DRIP_CHUNK: usize = 32;
/// Pause after the partial body was handed to hyper, so it reaches the socket before the RST.
const FLUSH_GRACE: Duration = Duration::from_millis(30);
/// What [`Mode::MalformedHeaders`] writes instead of a response head.
const MALFORMED: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: not-a-number\r\nthis line has no colon\r\n\r\n{}";

/// Answer one request.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    control: Arc<ConnControl>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let (parts, body) = req.into_parts();
    if parts.uri.path() == "/health" {
        drain(body).await;
        return Ok(health(&shared));
    }
    shared.stats.count(parts.uri.path());
    let body_len = drain(body).await;
    if shared.stats.is_recording() {
        shared.stats.record(RecordedRequest {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers.clone(),
            body_len,
            received_at: SystemTime::now(),
        });
    }

    let behavior = shared.behavior_arc();
    let echo = shared.echoes_propagation();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .filter(|_| echo)
            .and_then(|v| v.to_str().ok())
    };
    let identity = shared.identity();
    let mut answer = Answer {
        cluster: &identity.cluster,
        service: &identity.service,
        instance: &identity.instance,
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        traceparent: header(TRACEPARENT_HEADER),
        deadline: header(DEADLINE_HEADER),
        body_len,
        status: 200,
    };
    if behavior.is_plain() {
        return Ok(respond(
            StatusCode::OK,
            None,
            body::full(answer.to_bytes(None)),
        ));
    }

    let delay = shared.sampler.delay(&behavior.latency);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match behavior.mode {
        Mode::Hang => return std::future::pending().await,
        Mode::ResetAfterRequest => {
            control.trigger(Break::Reset);
            return std::future::pending().await;
        }
        Mode::MalformedHeaders => {
            control.trigger(Break::RawThenClose(Bytes::from_static(MALFORMED)));
            return std::future::pending().await;
        }
        _ => {}
    }

    let status = choose_status(&shared, &behavior);
    answer.status = status.as_u16();
    let retry_after = behavior
        .retry_after
        .as_deref()
        .filter(|_| status.as_u16() >= 400)
        .and_then(|v| HeaderValue::from_str(v).ok());
    let bytes = answer.to_bytes(behavior.body_size);

    let response = match behavior.mode {
        Mode::SlowDrip { chunk_delay } => {
            let len = bytes.len();
            let (tx, body) = ChunkBody::channel();
            tokio::spawn(async move {
                for chunk in Bytes::from(bytes).chunks(DRIP_CHUNK) {
                    tokio::time::sleep(chunk_delay).await;
                    if tx.send(Bytes::copy_from_slice(chunk)).await.is_err() {
                        return;
                    }
                }
            });
            with_length(respond(status, retry_after, Either::Right(body)), len)
        }
        Mode::ResetMidBody => {
            let len = bytes.len();
            let (tx, body) = ChunkBody::channel();
            tokio::spawn(async move {
                let half = Bytes::from(bytes).slice(..len / 2);
                if tx.send(half).await.is_ok() {
                    // Wait until hyper took the chunk, then give it time to write it.
                    let _ = tx.reserve().await;
                    tokio::time::sleep(FLUSH_GRACE).await;
                }
                control.trigger(Break::Reset);
            });
            with_length(respond(status, retry_after, Either::Right(body)), len)
        }
        Mode::Oversized { bytes: total } => {
            let (tx, body) = ChunkBody::channel();
            tokio::spawn(body::feed_oversized(tx, bytes, total));
            respond(StatusCode::OK, None, Either::Right(body))
        }
        _ => respond(status, retry_after, body::full(bytes)),
    };
    Ok(response)
}

/// The fixed status, else an injected error, else 200. An invalid code becomes 500.
fn choose_status(shared: &Shared, behavior: &Behavior) -> StatusCode {
    let code = match behavior.status {
        Some(code) => code,
        None if shared.sampler.chance(behavior.error_rate) => behavior.error_status,
        None => 200,
    };
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn respond(
    status: StatusCode,
    retry_after: Option<HeaderValue>,
    body: ResponseBody,
) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(value) = retry_after {
        headers.insert(RETRY_AFTER, value);
    }
    response
}

fn with_length(mut response: Response<ResponseBody>, len: usize) -> Response<ResponseBody> {
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(len));
    response
}

fn health(shared: &Shared) -> Response<ResponseBody> {
    let code = shared.health_status();
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let word = match code {
        200..=299 => "passing",
        429 => "warning",
        _ => "critical",
    };
    let text = format!("{{\"status\":\"{word}\",\"code\":{code}}}");
    respond(status, None, body::full(text.into_bytes()))
}

/// Read a request body to its end, returning how many bytes arrived.
async fn drain(mut body: Incoming) -> usize {
    let mut len = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    len += data.len();
                }
            }
            Err(_) => break,
        }
    }
    len
}
