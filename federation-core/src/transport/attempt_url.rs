//! The URI of one attempt, built without re-parsing the instance's address.
//!
//! Failure prevented: parsing `scheme://host:port/prefix/path` on every attempt. Host parsing
//! (IP and IDNA checks in the `url` crate) was the largest single cost of a call on the client
//! side (callgrind: ≈ 18k instructions per call). The endpoint's origin is parsed once per
//! discovery update with the `url` crate (so hosts are normalised exactly as a URL parser does:
//! lower case, IDNA, default port dropped) and kept as an `http` scheme and authority, which an
//! attempt clones by reference count.
//!
//! The path and query take one of two routes. A plain one (only characters a URL parser leaves
//! alone, no dot segments) becomes the URI's path as it is: one check of the bytes. Anything
//! else (spaces, `..`, `%2e`, quotes, backslashes, non-ASCII) goes through the `url` crate
//! first, so it is percent-encoded and normalised exactly as parsing the concatenated string
//! would, and the result is what is sent. When the origin does not parse (a discovered address
//! no URL can carry), the attempt fails with the parser's message.

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Uri};
use url::{Position, Url};

use crate::shared_bytes::shared_bytes;

/// `scheme://authority` of one endpoint, parsed and normalised once.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    scheme: Scheme,
    authority: Authority,
    /// The `Host` header for a plain-HTTP endpoint, sharing the authority's bytes: the HTTP
    /// client would otherwise format and copy it on every request. `None` for `https`, where
    /// the connection may be HTTP/2 (`:authority`, no `Host`), which the HTTP client decides.
    http1_host: Option<HeaderValue>,
}

impl Origin {
    /// The `Host` header to send on a plain-HTTP endpoint (see the field).
    pub(crate) fn http1_host(&self) -> Option<&HeaderValue> {
        self.http1_host.as_ref()
    }
}

/// Parses `scheme://authority/` once per endpoint; `None` when it is not a plain origin.
pub(crate) fn parse_origin(scheme: &str, authority: &str) -> Option<Origin> {
    let url = Url::parse(&format!("{scheme}://{authority}/")).ok()?;
    // Only a plain origin can be reused by appending a path and query.
    if !(url.has_host() && url.path() == "/" && url.query().is_none()) {
        return None;
    }
    // Host and non-default port, as the HTTP client writes the `Host` header.
    let normalised =
        Bytes::copy_from_slice(url[Position::BeforeHost..Position::AfterPort].as_bytes());
    let scheme = Scheme::try_from(url.scheme()).ok()?;
    let http1_host = if scheme == Scheme::HTTP {
        Some(HeaderValue::from_maybe_shared(normalised.clone()).ok()?)
    } else {
        None
    };
    Some(Origin {
        scheme,
        authority: Authority::from_maybe_shared(normalised).ok()?,
        http1_host,
    })
}

/// Bytes a URL parser keeps unchanged in a path or query of an `http(s)` URL (RFC 3986
/// unreserved and sub-delimiters except `'`, plus `:`, `@`, `/`, `?` and `%`). `http`'s
/// `PathAndQuery` parser accepts every one of them too.
pub(crate) fn is_plain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
                | b'?'
                | b'%'
        )
}

/// Whether `prefix + path_and_query` needs no encoding or normalisation by a URL parser.
fn is_plain(prefix: &str, path_and_query: &str) -> bool {
    let path = path_and_query
        .split_once('?')
        .map_or(path_and_query, |(path, _)| path);
    let bytes_plain =
        prefix.bytes().all(is_plain_byte) && path_and_query.bytes().all(is_plain_byte);
    bytes_plain && !has_dot_marker(prefix) && !has_dot_marker(path)
}

/// Whether `s` contains `/.`, `%2e` or `%2E`: where a dot segment (`.`, `..`, also
/// percent-encoded), which a URL parser resolves, could start. One pass over the bytes (this
/// runs on every attempt; a substring search per pattern cost more than the rest of the URI).
fn has_dot_marker(s: &str) -> bool {
    s.as_bytes()
        .windows(2)
        .enumerate()
        .any(|(i, pair)| match pair {
            [b'/', b'.'] => true,
            [b'%', b'2'] => matches!(s.as_bytes().get(i + 2), Some(b'e' | b'E')),
            _ => false,
        })
}

/// The URI for `path_and_query` (starts with `/`, no fragment: the pipeline validated it) on
/// an endpoint with `origin`, `base_url` (`scheme://authority` + `prefix`, for the error
/// message and the fallback) and the route's path `prefix` (empty or `/x`, no trailing slash).
/// The error names what does not parse.
pub(crate) fn attempt_uri(
    origin: Option<&Origin>,
    base_url: &str,
    prefix: &str,
    path_and_query: &str,
) -> Result<Uri, String> {
    let Some(origin) = origin else {
        let raw = format!("{base_url}{path_and_query}");
        return Err(match Url::parse(&raw) {
            Err(e) => format!("invalid URL {raw}: {e}"),
            Ok(_) => format!("invalid URL {raw}: not a plain scheme://host:port origin"),
        });
    };
    let path = if is_plain(prefix, path_and_query) {
        // The HTTP client clones the URI: shared bytes make that clone free.
        let bytes = if prefix.is_empty() {
            shared_bytes(path_and_query.as_bytes())
        } else {
            shared_bytes(format!("{prefix}{path_and_query}").as_bytes())
        };
        PathAndQuery::from_maybe_shared(bytes)
    } else {
        // Encoded and normalised as a URL parser does; the origin is already known to parse.
        let url = Url::parse(&format!("{base_url}{path_and_query}"))
            .map_err(|e| format!("invalid URL {base_url}{path_and_query}: {e}"))?;
        PathAndQuery::from_maybe_shared(Bytes::copy_from_slice(
            url[Position::BeforePath..Position::AfterQuery].as_bytes(),
        ))
    }
    .map_err(|e| format!("invalid path {path_and_query}: {e}"))?;
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(origin.scheme.clone());
    parts.authority = Some(origin.authority.clone());
    parts.path_and_query = Some(path);
    Uri::from_parts(parts).map_err(|e| format!("invalid URL {base_url}{path_and_query}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(authority: &str, prefix: &str, path: &str) -> String {
        let origin = parse_origin("http", authority);
        assert!(origin.is_some(), "{authority} parses");
        let base = format!("http://{authority}{prefix}");
        match attempt_uri(origin.as_ref(), &base, prefix, path) {
            Ok(uri) => uri.to_string(),
            Err(e) => panic!("expected a URI for {authority}{prefix}{path}, got {e}"),
        }
    }

    #[test]
    fn matches_parsing_the_concatenated_string() {
        let paths = [
            "/",
            "/api/v1/users/42",
            "/api/v1/users?id=1&x=%20y",
            "/a?b=c?d",
            "/a?",
            "//evil.example/x",
            "/a/../b/./c",
            "/a/..",
            "/a/.hidden/x",
            "/caf\u{e9}/%zz/%41",
            "/a%2Fb?q=%2F",
            "/with space?and space",
            "/%2e%2e/x",
            "/.%2E/x",
            "/q?it's=\"quoted\"&<x>",
            "/back\\slash",
            "/{braces}/`tick`/|pipe|/^caret^/[brackets]",
            "/tilde~_-.!$&()*+,;=:@",
            "/q?a=..&b=/./",
        ];
        for authority in [
            "127.0.0.1:8080",
            "[::1]:9000",
            "users.internal:80",
            "Svc.Example:443",
        ] {
            for prefix in ["", "/api", "/v1/x"] {
                for path in paths {
                    let expected = Url::parse(&format!("http://{authority}{prefix}{path}"))
                        .expect("the concatenated string parses")
                        .to_string();
                    assert_eq!(
                        built(authority, prefix, path),
                        expected,
                        "authority {authority} prefix {prefix} path {path}"
                    );
                }
            }
        }
    }

    #[test]
    fn plain_paths_skip_the_url_parser_and_others_do_not() {
        assert!(is_plain("", "/api/v1/users/42?fields=a,b&x=%20"));
        assert!(is_plain("/v1", "/a.b/c..d/e."));
        assert!(!is_plain("", "/a/./b"));
        assert!(!is_plain("", "/a/%2E%2e/b"));
        assert!(!is_plain("", "/with space"));
        assert!(!is_plain("", "/caf\u{e9}"));
        assert!(!is_plain("", "/q?it's"));
    }

    #[test]
    fn dot_markers_are_found_anywhere() {
        for s in ["/.", "/a/./b", "/a/..", "/%2e", "/a%2E%2e", "/x/%2E"] {
            assert!(has_dot_marker(s), "{s}");
        }
        for s in ["", "/", "/a.b/c", "/%2f", "/%2", "/a/b.", "%", "/v1.2/x"] {
            assert!(!has_dot_marker(s), "{s}");
        }
    }

    #[test]
    fn the_host_header_is_the_normalised_authority_for_plain_http_only() {
        let host = |scheme: &str, authority: &str| {
            parse_origin(scheme, authority)
                .and_then(|o| o.http1_host().map(|h| h.to_str().unwrap_or("?").to_owned()))
        };
        assert_eq!(
            host("http", "127.0.0.1:8080").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            host("http", "Example.COM:80").as_deref(),
            Some("example.com")
        );
        assert_eq!(host("http", "[::1]:9000").as_deref(), Some("[::1]:9000"));
        // https may negotiate HTTP/2, which carries `:authority` instead: the client decides.
        assert_eq!(host("https", "example.com:8443"), None);
    }

    #[test]
    fn a_double_slash_path_stays_a_path_on_the_same_host() {
        let uri = built("127.0.0.1:8080", "", "//evil.example/x");
        assert!(
            uri.starts_with("http://127.0.0.1:8080//evil.example/x"),
            "{uri}"
        );
    }

    #[test]
    fn an_origin_that_does_not_parse_fails_with_the_parser_message() {
        assert!(parse_origin("http", "bad host:80").is_none());
        let err = attempt_uri(None, "http://bad host:80", "", "/x")
            .expect_err("no URI for an invalid host");
        assert!(err.contains("http://bad host:80/x"), "{err}");
        assert!(err.contains("invalid"), "{err}");
    }
}
