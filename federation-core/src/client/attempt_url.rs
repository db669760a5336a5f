//! The URL of one attempt, built without re-parsing the instance's address.
//!
//! Failure prevented: parsing `scheme://host:port/prefix/path` from a string on every attempt.
//! Host parsing (IP and IDNA checks) made that the largest single cost of a call on the client
//! side (callgrind: ≈ 18k instructions per call, more than the rest of the SDK's own work). The
//! endpoint's origin (`scheme://authority/`) is parsed once per discovery update; an attempt
//! clones it and sets path and query, which runs only the path and query parsers, the same ones
//! a full parse runs, so the URL is the same as parsing the concatenated string. When the origin
//! does not parse (a discovered address no URL can carry), the attempt falls back to the string
//! and reqwest reports the problem as before.

use reqwest::Url;

/// Where an attempt goes: a prebuilt URL, or the raw string when the origin did not parse.
#[derive(Debug)]
pub(crate) enum AttemptUrl {
    /// Built from the parsed origin.
    Parsed(Url),
    /// `base_url + path`, parsed (and rejected, if invalid) by reqwest.
    Raw(String),
}

/// Parses `scheme://authority/` once per endpoint.
pub(crate) fn parse_origin(scheme: &str, authority: &str) -> Option<Url> {
    let url = Url::parse(&format!("{scheme}://{authority}/")).ok()?;
    // Only a plain origin can be reused by setting path and query.
    (url.has_host() && url.path() == "/" && url.query().is_none()).then_some(url)
}

/// The URL for `path_and_query` (starts with `/`, no fragment: the pipeline validated it) on
/// an endpoint with `origin` (parsed), `base_url` (`origin` + `prefix` as a string) and the
/// route's path `prefix` (empty or `/x`, no trailing slash).
pub(crate) fn attempt_url(
    origin: Option<&Url>,
    base_url: &str,
    prefix: &str,
    path_and_query: &str,
) -> AttemptUrl {
    let Some(origin) = origin else {
        let mut raw = String::with_capacity(base_url.len() + path_and_query.len());
        raw.push_str(base_url);
        raw.push_str(path_and_query);
        return AttemptUrl::Raw(raw);
    };
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let mut url = origin.clone();
    if prefix.is_empty() {
        url.set_path(path);
    } else {
        let mut full = String::with_capacity(prefix.len() + path.len());
        full.push_str(prefix);
        full.push_str(path);
        url.set_path(&full);
    }
    url.set_query(query);
    AttemptUrl::Parsed(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(authority: &str, prefix: &str, path: &str) -> String {
        let origin = parse_origin("http", authority);
        assert!(origin.is_some(), "{authority} parses");
        let base = format!("http://{authority}{prefix}");
        match attempt_url(origin.as_ref(), &base, prefix, path) {
            AttemptUrl::Parsed(url) => url.to_string(),
            AttemptUrl::Raw(raw) => panic!("expected a parsed URL, got {raw}"),
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
            "/caf\u{e9}/%zz/%41",
            "/a%2Fb?q=%2F",
            "/with space?and space",
            "/%2e%2e/x",
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
    fn a_double_slash_path_stays_a_path_on_the_same_host() {
        let url = built("127.0.0.1:8080", "", "//evil.example/x");
        assert!(
            url.starts_with("http://127.0.0.1:8080//evil.example/x"),
            "{url}"
        );
    }

    #[test]
    fn an_origin_that_does_not_parse_falls_back_to_the_string() {
        assert!(parse_origin("http", "bad host:80").is_none());
        match attempt_url(None, "http://bad host:80", "", "/x") {
            AttemptUrl::Raw(raw) => assert_eq!(raw, "http://bad host:80/x"),
            AttemptUrl::Parsed(url) => panic!("expected the raw fallback, got {url}"),
        }
    }
}
