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
use http::Uri;
use http::uri::{Authority, PathAndQuery, Scheme};
use url::{Position, Url};

/// `scheme://authority` of one endpoint, parsed and normalised once.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    scheme: Scheme,
    authority: Authority,
}

/// Parses `scheme://authority/` once per endpoint; `None` when it is not a plain origin.
pub(crate) fn parse_origin(scheme: &str, authority: &str) -> Option<Origin> {
    let url = Url::parse(&format!("{scheme}://{authority}/")).ok()?;
    // Only a plain origin can be reused by appending a path and query.
    if !(url.has_host() && url.path() == "/" && url.query().is_none()) {
        return None;
    }
    let normalised = &url[Position::BeforeHost..Position::AfterPort];
    Some(Origin {
        scheme: Scheme::try_from(url.scheme()).ok()?,
        authority: Authority::from_maybe_shared(Bytes::copy_from_slice(normalised.as_bytes()))
            .ok()?,
    })
}

/// Bytes a URL parser keeps unchanged in a path or query of an `http(s)` URL (RFC 3986
/// unreserved and sub-delimiters except `'`, plus `:`, `@`, `/`, `?` and `%`).
fn is_plain_byte(b: u8) -> bool {
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
    // Dot segments (`.`, `..`, also percent-encoded) are resolved by a URL parser.
    let no_dots = |s: &str| !s.contains("/.") && !s.contains("%2e") && !s.contains("%2E");
    bytes_plain && no_dots(prefix) && no_dots(path)
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
        let mut full = String::with_capacity(prefix.len() + path_and_query.len());
        full.push_str(prefix);
        full.push_str(path_and_query);
        PathAndQuery::from_maybe_shared(Bytes::from(full))
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
