//! What the cache keys and stores: POST keyed by its body, non-2xx and `no-store` answers
//! returned but not stored; and the events a cache with metrics reports.

use super::*;

#[tokio::test(start_paused = true)]
async fn post_is_keyed_by_body() {
    let methods = vec!["GET".to_owned(), "POST".to_owned()];
    let cache = ResultCache::new(
        "ai",
        &CachePolicy {
            methods,
            ..policy()
        },
    );
    let upstream = Upstream::default();
    let post = |body: &'static [u8]| {
        cache
            .key(&Method::POST, "/v1/infer", None, &HeaderMap::new(), body)
            .expect("POST enabled")
    };
    let run = |key, answer: &'static str| cache.get_or_fetch(key, upstream.answer(200, answer, MS));
    assert_eq!(
        run(post(b"{\"prompt\":\"a\"}"), "A").await.expect("ok").1,
        CacheStatus::Miss
    );
    let (r, s) = run(post(b"{\"prompt\":\"a\"}"), "X").await.expect("ok");
    assert_eq!((s, &r.body[..]), (CacheStatus::Hit, &b"A"[..]));
    let (r, s) = run(post(b"{\"prompt\":\"b\"}"), "B").await.expect("ok");
    assert_eq!((s, &r.body[..]), (CacheStatus::Miss, &b"B"[..]));
    assert!(
        ResultCache::new("user", &policy())
            .key(&Method::POST, "/x", None, &HeaderMap::new(), b"")
            .is_none()
    );
}

#[tokio::test(start_paused = true)]
async fn non_2xx_and_no_store_are_returned_but_not_stored() {
    let cache = ResultCache::new("user", &policy());
    let upstream = Upstream::default();
    let (r, s) = cache
        .get_or_fetch(get_key(&cache, "/missing"), upstream.answer(404, "no", MS))
        .await
        .expect("ok");
    assert_eq!((r.status, s), (404, CacheStatus::Miss));
    assert!(cache.peek(&get_key(&cache, "/missing")).await.is_none());

    let calls = Arc::clone(&upstream.calls);
    let no_store = move || async move {
        calls.fetch_add(1, Ordering::SeqCst);
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        Ok::<_, UpstreamDown>(FetchOutcome::new(
            200,
            headers,
            Bytes::from_static(b"secret"),
        ))
    };
    let (_, s) = cache
        .get_or_fetch(get_key(&cache, "/private"), no_store)
        .await
        .expect("ok");
    assert_eq!(s, CacheStatus::Miss);
    assert!(cache.peek(&get_key(&cache, "/private")).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn cache_with_metrics_reports_its_events() {
    let m = crate::telemetry::Metrics::new();
    let cache = ResultCache::with_metrics("user", &CachePolicy::default(), &m);
    let key = || {
        cache
            .key(&Method::GET, "/u", None, &HeaderMap::new(), b"")
            .expect("key")
    };
    let fetch =
        || async { Ok::<_, std::io::Error>(FetchOutcome::new(200, HeaderMap::new(), "v".into())) };
    cache.get_or_fetch(key(), fetch).await.expect("miss");
    cache.get_or_fetch(key(), fetch).await.expect("hit");
    cache.get_or_fetch(key(), fetch).await.expect("hit");
    let text = m.encode();
    for (event, count) in [("miss", 1), ("hit", 2), ("stale", 0)] {
        let series =
            format!(r#"federation_cache_events_total{{service="user",event="{event}"}} {count}"#);
        assert!(text.lines().any(|l| l == series), "{series} in\n{text}");
    }
}
