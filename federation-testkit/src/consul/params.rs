//! Query parameters of Consul's list reads, parsed and applied as the agent does.
//!
//! Real clients send more than `index` and `wait`: the Go client adds `stale`, `cached`,
//! `near`, `filter`, `node-meta` and `peer` from its `QueryOptions`, py-consul adds
//! `merge-central-config`. A double that rejected them (or ignored `filter`) would answer
//! differently from Consul. Each read parses its parameters here once: malformed values get
//! Consul's 400 texts, `filter` is parsed up front (500 when it cannot be), and the list filters
//! (`filter`, `node-meta`, `peer`) are applied to the rendered entries. `near` is accepted and
//! changes nothing: every entry lives on the double's single node, so the RTT order is the
//! catalog order. Unknown parameters are ignored, as Consul ignores them.

use std::time::Duration;

use serde::Serialize;

use super::duration::parse_go_duration;
use super::filter::{self, Expr};
use super::http::{Rejection, Req, reject};

/// Parameters common to blocking reads.
pub(crate) struct ReadParams {
    pub(crate) index: u64,
    pub(crate) wait: Option<Duration>,
    pub(crate) consistency: &'static str,
    pub(crate) pretty: bool,
    pub(crate) tags: Vec<String>,
    pub(crate) cached: bool,
    filter: Option<Expr>,
    node_meta: Vec<(String, String)>,
    peer: bool,
}

/// Parses the parameters every catalog/health read accepts.
pub(crate) fn parse_read(req: &Req) -> Result<ReadParams, Rejection> {
    let stale = req.has("stale");
    let consistent = req.has("consistent");
    let cached = req.has("cached");
    if consistent && (stale || cached) {
        return Err(reject(
            400,
            "Cannot specify ?stale with ?consistent, conflicting semantics.",
        ));
    }
    let index = match req.param("index").filter(|value| !value.is_empty()) {
        None => 0,
        Some(value) => value
            .parse::<u64>()
            .map_err(|_| reject(400, "Invalid index"))?,
    };
    let wait = match req.param("wait").filter(|value| !value.is_empty()) {
        None => None,
        Some(value) => {
            Some(parse_go_duration(value).ok_or_else(|| reject(400, "Invalid wait time"))?)
        }
    };
    let consistency = if stale {
        "stale"
    } else if consistent {
        "consistent"
    } else {
        "leader"
    };
    Ok(ReadParams {
        index,
        wait,
        consistency,
        pretty: req.has("pretty"),
        tags: req.params("tag"),
        cached,
        filter: parse_filter(req)?,
        node_meta: parse_node_meta(req)?,
        peer: req.param("peer").is_some_and(|peer| !peer.is_empty()),
    })
}

/// `?filter=` parsed (500 `Failed to create boolean expression evaluator: …` when it cannot be).
pub(crate) fn parse_filter(req: &Req) -> Result<Option<Expr>, Rejection> {
    match req.param("filter").filter(|text| !text.is_empty()) {
        None => Ok(None),
        Some(text) => filter::parse(text).map(Some).map_err(|e| reject(500, e)),
    }
}

/// `?node-meta=key:value` (repeatable; all pairs must match the node's metadata).
fn parse_node_meta(req: &Req) -> Result<Vec<(String, String)>, Rejection> {
    req.params("node-meta")
        .into_iter()
        .map(|pair| match pair.split_once(':') {
            Some((key, value)) => Ok((key.to_owned(), value.to_owned())),
            None => Err(reject(
                400,
                format!("Invalid node-meta filter: {pair:?} is not of the form key:value"),
            )),
        })
        .collect()
}

/// `?passing`: Go's `strconv.ParseBool`, a bare flag meaning true.
pub(crate) fn parse_passing(req: &Req) -> Result<bool, Rejection> {
    match req.param("passing") {
        None => Ok(false),
        Some("" | "1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(_) => Err(reject(400, "Invalid value for ?passing")),
    }
}

impl ReadParams {
    /// Keeps the entries the list filters select. `node_meta_of` returns an entry's node
    /// metadata; a `peer` names no imported service here, so it empties the list.
    pub(crate) fn retain<T: Serialize>(
        &self,
        entries: &mut Vec<T>,
        node_meta_of: impl Fn(&serde_json::Value) -> Option<serde_json::Value>,
    ) {
        if self.peer {
            entries.clear();
            return;
        }
        if self.filter.is_none() && self.node_meta.is_empty() {
            return;
        }
        entries.retain(|entry| {
            let Ok(json) = serde_json::to_value(entry) else {
                return false;
            };
            let meta = node_meta_of(&json);
            let meta_ok = self.node_meta.iter().all(|(key, value)| {
                meta.as_ref()
                    .and_then(|meta| meta.get(key))
                    .and_then(serde_json::Value::as_str)
                    == Some(value.as_str())
            });
            meta_ok && self.filter.as_ref().is_none_or(|f| f.matches(&json))
        });
    }
}

/// Whether `filter` (if any) selects `entry` as rendered in JSON.
pub(crate) fn selects<T: Serialize>(filter: Option<&Expr>, entry: &T) -> bool {
    filter.is_none_or(|f| serde_json::to_value(entry).is_ok_and(|json| f.matches(&json)))
}
