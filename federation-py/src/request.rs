//! Turning Python keyword arguments into a core request, with the interpreter attached.
//!
//! Bad arguments (a negative timeout, both `json` and `content`, a header that is not text) must
//! fail at the call site as `InvalidRequestError`, before anything is spawned or sent. Everything
//! Python-specific (`json.dumps`, `str()` of query values) happens here, so the Rust work that
//! runs without the interpreter only sees plain Rust data.

use std::time::Duration;

use federation_core::client::{FederatedServiceClient, RequestBuilder};
use http::Method;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyMapping, PyString};

use crate::errors::invalid_request;

/// The keyword arguments every call method accepts.
pub(crate) struct CallOptions<'py> {
    pub(crate) params: Option<Bound<'py, PyAny>>,
    pub(crate) headers: Option<Bound<'py, PyAny>>,
    pub(crate) json: Option<Bound<'py, PyAny>>,
    pub(crate) content: Option<Bound<'py, PyAny>>,
    pub(crate) timeout: Option<f64>,
    /// Per-attempt timeout in seconds (`None`: the service's `timeout.attempt`).
    pub(crate) attempt_timeout: Option<f64>,
    pub(crate) idempotent: Option<bool>,
    pub(crate) cluster: Option<String>,
    /// Instance tags for this call instead of the service's `tags`: a mapping
    /// (`{"model": "v3"}` → `model=v3`) or a sequence of tag strings.
    pub(crate) tags: Option<Bound<'py, PyAny>>,
}

static JSON_DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The HTTP method named `name`, case-insensitively (`"get"` is GET). Allocates only for a
/// name that is not upper-case already.
pub(crate) fn method(py: Python<'_>, name: &str) -> PyResult<Method> {
    let parsed = if name.bytes().any(|b| b.is_ascii_lowercase()) {
        Method::from_bytes(name.to_ascii_uppercase().as_bytes())
    } else {
        Method::from_bytes(name.as_bytes())
    };
    parsed.map_err(|_| invalid_request(py, format!("invalid HTTP method {name:?}")))
}

/// A request builder for `method service path` with every option applied.
pub(crate) fn build(
    py: Python<'_>,
    client: &FederatedServiceClient,
    method: Method,
    service: &str,
    path: &str,
    options: CallOptions<'_>,
) -> PyResult<RequestBuilder> {
    let mut builder = client.request(method, service, path);
    if let Some(params) = options.params {
        let pairs = pairs(py, &params, "params")?;
        builder = builder.query(&pairs);
    }
    if let Some(headers) = options.headers {
        for (name, value) in pairs(py, &headers, "headers")? {
            builder = builder.header(name, value);
        }
    }
    match (options.json, options.content) {
        (Some(_), Some(_)) => {
            return Err(invalid_request(
                py,
                "pass either `json` or `content`, not both",
            ));
        }
        (Some(value), None) => {
            let dumps = JSON_DUMPS.get_or_try_init(py, || {
                Ok::<_, PyErr>(py.import("json")?.getattr("dumps")?.unbind())
            })?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("separators", (",", ":"))?;
            let text = dumps.bind(py).call((value,), Some(&kwargs)).map_err(|e| {
                invalid_request(py, format!("`json` is not JSON-serializable: {e}"))
            })?;
            let text: String = text.extract()?;
            builder = builder
                .header("content-type", "application/json")
                .body(text.into_bytes());
        }
        (None, Some(content)) => {
            if let Ok(bytes) = content.cast::<PyBytes>() {
                builder = builder.body(bytes.as_bytes().to_vec());
            } else if let Ok(text) = content.cast::<PyString>() {
                builder = builder.body(text.to_cow()?.as_bytes().to_vec());
            } else {
                return Err(invalid_request(py, "`content` must be bytes or str"));
            }
        }
        (None, None) => {}
    }
    if let Some(seconds) = options.timeout {
        builder = builder.timeout(duration(py, seconds)?);
    }
    if let Some(seconds) = options.attempt_timeout {
        builder = builder.attempt_timeout(duration(py, seconds)?);
    }
    if let Some(idempotent) = options.idempotent {
        builder = builder.idempotent(idempotent);
    }
    if let Some(cluster) = options.cluster {
        builder = builder.cluster(cluster);
    }
    if let Some(tags) = options.tags {
        builder = builder.tags(tag_list(py, &tags)?);
    }
    Ok(builder)
}

/// The `tags` argument as tag strings: a mapping gives `key=value` per entry, a sequence of
/// strings is taken as is (a bare `str` is refused: it would be read as one tag per letter).
fn tag_list(py: Python<'_>, tags: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let wrong = |what: String| {
        invalid_request(
            py,
            format!(
                "`tags` must be a mapping such as {{\"model\": \"v3\"}} or a list of tag \
                 strings such as [\"model=v3\"]; {what}"
            ),
        )
    };
    if tags.is_instance_of::<PyString>() {
        return Err(wrong(format!("got the string {tags}")));
    }
    if tags.cast::<PyMapping>().is_ok() {
        let mut out = Vec::new();
        for (key, value) in pairs(py, tags, "tags")? {
            if key.is_empty() || key.contains('=') {
                return Err(wrong(format!("got the key {key:?}")));
            }
            out.push(format!("{key}={value}"));
        }
        return Ok(out);
    }
    let items = tags
        .try_iter()
        .map_err(|_| wrong(format!("got {}", type_name(tags))))?;
    let mut out = Vec::new();
    for item in items {
        let item = item?;
        match item.cast::<PyString>() {
            Ok(text) if !text.to_cow()?.is_empty() => out.push(text.to_cow()?.into_owned()),
            _ => return Err(wrong(format!("got the item {item}"))),
        }
    }
    Ok(out)
}

/// The Python type name of `value`, for messages.
fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// A timeout in seconds as a `Duration`; positive and finite.
fn duration(py: Python<'_>, seconds: f64) -> PyResult<Duration> {
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(invalid_request(
            py,
            format!("`timeout` must be a positive number of seconds, got {seconds}"),
        ));
    }
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| invalid_request(py, format!("`timeout` of {seconds} s is out of range")))
}

/// `(name, value)` text pairs from a mapping or an iterable of pairs; values go through `str()`.
fn pairs(py: Python<'_>, value: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<(String, String)>> {
    let items = if let Ok(mapping) = value.cast::<PyMapping>() {
        mapping.items()?.into_any()
    } else {
        value.clone()
    };
    let mut out = Vec::new();
    let iter = items
        .try_iter()
        .map_err(|_| invalid_request(py, format!("`{what}` must be a mapping or pairs")))?;
    for item in iter {
        let (key, val): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract().map_err(|_| {
            invalid_request(py, format!("`{what}` items must be (name, value) pairs"))
        })?;
        let key: String = key
            .extract()
            .map_err(|_| invalid_request(py, format!("`{what}` names must be str")))?;
        out.push((key, val.str()?.to_cow()?.into_owned()));
    }
    Ok(out)
}
