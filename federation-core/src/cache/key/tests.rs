//! Key building: equal requests give equal keys; stack-built lookup keys match stored ones.

use super::*;
use http::{HeaderMap, HeaderValue, Method};
use moka::Equivalent;

fn builder(vary: &[&str]) -> KeyBuilder {
    KeyBuilder::new(
        &vary.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
        false,
    )
}

#[test]
fn query_order_does_not_matter() {
    let b = builder(&[]);
    let h = HeaderMap::new();
    let k1 = b.build(&Method::GET, "/u", Some("b=2&a=1"), &h, b"", None);
    let k2 = b.build(&Method::GET, "/u", Some("a=1&&b=2"), &h, b"", None);
    assert_eq!(k1, k2);
    assert_eq!(k1.expect("key").as_str(), "/u GET - a=1&b=2");
}

#[test]
fn many_query_pairs_sort_too() {
    let b = builder(&[]);
    let h = HeaderMap::new();
    let fwd: Vec<String> = (0..40).map(|i| format!("k{i:02}=v")).collect();
    let rev: Vec<String> = fwd.iter().rev().cloned().collect();
    let k1 = b.build(&Method::GET, "/", Some(&fwd.join("&")), &h, b"", None);
    let k2 = b.build(&Method::GET, "/", Some(&rev.join("&")), &h, b"", None);
    assert_eq!(k1, k2);
}

#[test]
fn method_path_and_body_distinguish() {
    let b = builder(&[]);
    let h = HeaderMap::new();
    let get = b.build(&Method::GET, "/x", None, &h, b"", None);
    let head = b.build(&Method::HEAD, "/x", None, &h, b"", None);
    let p1 = b.build(&Method::POST, "/x", None, &h, b"{\"q\":1}", None);
    let p2 = b.build(&Method::POST, "/x", None, &h, b"{\"q\":2}", None);
    let p1b = b.build(&Method::POST, "/x", None, &h, b"{\"q\":1}", None);
    assert_ne!(get, head);
    assert_ne!(p1, p2);
    assert_eq!(p1, p1b);
    assert_ne!(
        b.build(&Method::GET, "/x y", None, &h, b"", None),
        b.build(&Method::GET, "/x", Some("y"), &h, b"", None)
    );
}

#[test]
fn vary_headers_distinguish_and_stay_secret() {
    let b = builder(&["X-Tenant", "authorization"]);
    let mut h1 = HeaderMap::new();
    h1.insert("x-tenant", HeaderValue::from_static("acme"));
    h1.insert(
        "authorization",
        HeaderValue::from_static("Bearer secret-token"),
    );
    let mut h2 = h1.clone();
    h2.insert("x-tenant", HeaderValue::from_static("globex"));
    let k1 = b
        .build(&Method::GET, "/x", None, &h1, b"", None)
        .expect("key");
    let k2 = b
        .build(&Method::GET, "/x", None, &h2, b"", None)
        .expect("key");
    assert_ne!(k1, k2);
    assert!(!format!("{k1:?}").contains("secret"));
    assert!(!k1.as_str().contains("acme"));
}

#[test]
fn credentials_bypass_unless_varied() {
    let b = builder(&[]);
    let mut h = HeaderMap::new();
    h.insert("authorization", HeaderValue::from_static("Bearer t"));
    assert!(b.build(&Method::GET, "/x", None, &h, b"", None).is_none());
    let mut c = HeaderMap::new();
    c.insert("cookie", HeaderValue::from_static("sid=1"));
    assert!(b.build(&Method::GET, "/x", None, &c, b"", None).is_none());
}

#[test]
fn tag_filters_distinguish_in_any_order() {
    let b = builder(&[]);
    let h = HeaderMap::new();
    let tags = |t: &[&str]| t.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let (v2, v3) = (tags(&["model=v2"]), tags(&["model=v3"]));
    let default = b.build(&Method::POST, "/infer", None, &h, b"q", None);
    let k2 = b.build(&Method::POST, "/infer", None, &h, b"q", Some(&v2));
    let k3 = b.build(&Method::POST, "/infer", None, &h, b"q", Some(&v3));
    assert_ne!(k2, k3);
    assert_ne!(default, k3);
    let ab = tags(&["a", "b"]);
    let ba = tags(&["b", "a", "b"]);
    assert_eq!(
        b.build(&Method::GET, "/x", None, &h, b"", Some(&ab)),
        b.build(&Method::GET, "/x", None, &h, b"", Some(&ba))
    );
    let k = b
        .build(&Method::GET, "/x", None, &h, b"", Some(&ab))
        .expect("key");
    assert_eq!(k.path(), "/x", "tags are not part of the path");
}

#[test]
fn path_is_recoverable() {
    let b = builder(&[]);
    let k = b
        .build(
            &Method::GET,
            "/a b",
            Some("q=1"),
            &HeaderMap::new(),
            b"",
            None,
        )
        .expect("key");
    assert_eq!(k.path(), "/a b");
}

/// Method, path, query, headers, body and tag filter of one request.
type Case<'a> = (
    Method,
    &'a str,
    Option<&'a str>,
    &'a HeaderMap,
    &'a [u8],
    Option<&'a [String]>,
);

/// The stack-built lookup key of a request hashes and compares like the stored key built from
/// the same request, for every part of a key.
#[test]
fn lookup_keys_match_stored_keys() {
    use std::hash::BuildHasher;

    let b = builder(&["x-tenant"]);
    let mut tenant = HeaderMap::new();
    tenant.insert("x-tenant", HeaderValue::from_static("acme"));
    let tags = vec!["model=v3".to_owned(), "a".to_owned()];
    let cases: Vec<Case<'_>> = vec![
        (Method::GET, "/api/v1/users/42", None, &tenant, b"", None),
        (Method::GET, "/u", Some("b=2&a=1&&c"), &tenant, b"", None),
        (Method::HEAD, "/u", Some("?x=1"), &tenant, b"", None),
        (
            Method::POST,
            "/infer",
            None,
            &tenant,
            b"{\"q\":1}",
            Some(&tags),
        ),
        (Method::GET, "/", Some(""), &tenant, b"", Some(&tags)),
    ];
    let state = std::collections::hash_map::RandomState::new();
    for (method, path, query, headers, body, tags) in cases {
        let stored = b
            .build(&method, path, query, headers, body, tags)
            .expect("cacheable");
        let mut lookup = KeyBuf::new();
        assert!(b.build_buf(&mut lookup, &method, path, query, headers, body, tags));
        assert!(lookup.equivalent(&stored), "{stored:?}");
        assert_eq!(
            state.hash_one(&lookup),
            state.hash_one(&stored),
            "{stored:?}"
        );
        let other = b
            .build(&method, "/other", query, headers, body, tags)
            .expect("cacheable");
        assert!(!lookup.equivalent(&other));
    }
}

/// A path and query differing only in where the path ends are different keys for lookups too.
#[test]
fn lookup_keys_keep_the_path_boundary() {
    let b = builder(&[]);
    let h = HeaderMap::new();
    let stored = b
        .build(&Method::GET, "/x y", None, &h, b"", None)
        .expect("key");
    let mut lookup = KeyBuf::new();
    assert!(b.build_buf(&mut lookup, &Method::GET, "/x", Some("y"), &h, b"", None));
    assert!(!lookup.equivalent(&stored));
}

/// Requests that bypass the cache, and keys too long for the stack, build no lookup key.
#[test]
fn lookup_keys_refuse_credentials_and_long_keys() {
    let b = builder(&[]);
    let mut h = HeaderMap::new();
    h.insert("authorization", HeaderValue::from_static("Bearer t"));
    assert!(!b.build_buf(&mut KeyBuf::new(), &Method::GET, "/x", None, &h, b"", None));
    let long = format!("/{}", "a".repeat(INLINE_KEY));
    let h = HeaderMap::new();
    assert!(!b.build_buf(&mut KeyBuf::new(), &Method::GET, &long, None, &h, b"", None));
    let long_query = "k=v&".repeat(INLINE_KEY / 4);
    assert!(!b.build_buf(
        &mut KeyBuf::new(),
        &Method::GET,
        "/x",
        Some(&long_query),
        &h,
        b"",
        None
    ));
}

#[test]
fn shared_digests_match_across_builders_and_still_separate_requests() {
    let a = KeyBuilder::new(&["accept-language".to_owned()], true);
    let b = KeyBuilder::new(&["accept-language".to_owned()], true);
    let mut h = HeaderMap::new();
    h.insert("accept-language", HeaderValue::from_static("de"));
    let ka = a.build(&Method::POST, "/infer", None, &h, b"{\"q\":1}", None);
    let kb = b.build(&Method::POST, "/infer", None, &h, b"{\"q\":1}", None);
    assert_eq!(ka, kb, "two processes build the same key");
    let other_body = b.build(&Method::POST, "/infer", None, &h, b"{\"q\":2}", None);
    assert_ne!(ka, other_body);
    h.insert("accept-language", HeaderValue::from_static("fr"));
    let other_lang = b.build(&Method::POST, "/infer", None, &h, b"{\"q\":1}", None);
    assert_ne!(ka, other_lang);
    let random =
        builder(&["accept-language"]).build(&Method::POST, "/infer", None, &h, b"{\"q\":1}", None);
    assert_ne!(
        random, other_lang,
        "per-process digests differ from shared ones"
    );
}
