//! Request decoding and response building shared by every endpoint.
//!
//! Consul answers errors as plain text and successes as minified JSON, and decodes query
//! strings as Go's `url.ParseQuery` does (`+` is a space, percent escapes decoded). Clients
//! that parse an error body as JSON, or that forget to percent-encode, must fail here as they
//! would against Consul, so these helpers are the only way handlers read requests and write
//! responses.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;
use percent_encoding::percent_decode_str;
use serde::Serialize;

/// The response type of every handler.
pub(crate) type Reply = Response<Full<Bytes>>;

/// A decoded request.
#[derive(Debug)]
pub(crate) struct Req {
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Req {
    /// The first value of a query parameter (`Some("")` for a bare `?flag`).
    pub(crate) fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a repeatable query parameter.
    pub(crate) fn params(&self, key: &str) -> Vec<String> {
        self.query
            .iter()
            .filter(|(name, _)| name == key)
            .map(|(_, value)| value.clone())
            .collect()
    }

    /// Whether a query parameter is present at all.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.query.iter().any(|(name, _)| name == key)
    }

    /// A header as text, if present and valid.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// Decodes a query string like Go's `url.ParseQuery`.
pub(crate) fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(key), decode_component(value))
        })
        .collect()
}

fn decode_component(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// Decodes a path segment (no `+` handling, as Go's path unescaping).
pub(crate) fn decode_path(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

fn with_type(status: u16, content_type: &'static str, body: Bytes) -> Reply {
    let mut reply = Response::new(Full::new(body));
    *reply.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    reply
}

/// An early error reply (boxed: a `Response` is large for an `Err` variant).
pub(crate) type Rejection = Box<Reply>;

/// A plain-text rejection.
pub(crate) fn reject(status: u16, body: impl Into<String>) -> Rejection {
    Box::new(text(status, body))
}

/// A plain-text reply (every Consul error).
pub(crate) fn text(status: u16, body: impl Into<String>) -> Reply {
    with_type(
        status,
        "text/plain; charset=utf-8",
        Bytes::from(body.into()),
    )
}

/// A successful write: 200 with an empty body.
pub(crate) fn empty_ok() -> Reply {
    let mut reply = Response::new(Full::new(Bytes::new()));
    *reply.status_mut() = StatusCode::OK;
    reply
}

/// A 200 JSON reply, minified unless `?pretty` was given.
pub(crate) fn json<T: Serialize>(value: &T, pretty: bool) -> Reply {
    json_with(value, pretty, false)
}

/// A 200 JSON reply; with `garbled` the body is cut in half and ends in a broken literal
/// (the `Garbled` fault), so it can never parse.
pub(crate) fn json_with<T: Serialize>(value: &T, pretty: bool, garbled: bool) -> Reply {
    let encoded = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    };
    match encoded {
        Ok(mut body) => {
            if garbled {
                body.truncate(body.len() / 2);
                body.extend_from_slice(b"{\"Node\":[tru");
            }
            with_type(200, "application/json", Bytes::from(body))
        }
        Err(error) => text(500, format!("failed to encode response: {error}")),
    }
}

/// Inserts a header whose value is built at run time (ignored if not a valid header value).
pub(crate) fn set_header(reply: &mut Reply, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        reply.headers_mut().insert(name, value);
    }
}
