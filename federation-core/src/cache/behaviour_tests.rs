//! Result cache behaviour a caller sees: single-flight, TTL, byte bound, stale-while-revalidate,
//! stale-if-error, invalidation, POST keyed by body, Cache-Control. Time runs on tokio's paused
//! clock, so every time-dependent assertion is deterministic.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::cache::{CacheKey, CacheStatus, FetchOutcome, ResultCache};
use crate::config::model::CachePolicy;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};

#[derive(Debug, PartialEq)]
struct UpstreamDown;

/// A scripted upstream that counts fetches.
#[derive(Clone, Default)]
struct Upstream {
    calls: Arc<AtomicUsize>,
}

impl Upstream {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// A fetch answering `status` with `body` after `delay`.
    fn answer(
        &self,
        status: u16,
        body: &'static str,
        delay: Duration,
    ) -> impl FnOnce()
        -> futures_util::future::BoxFuture<'static, Result<FetchOutcome, UpstreamDown>>
    + Send
    + 'static {
        let calls = Arc::clone(&self.calls);
        move || {
            Box::pin(async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                Ok(FetchOutcome::new(
                    status,
                    HeaderMap::new(),
                    Bytes::from_static(body.as_bytes()),
                ))
            })
        }
    }

    /// A fetch failing after `delay` (every cluster down).
    fn fail(
        &self,
        delay: Duration,
    ) -> impl FnOnce()
        -> futures_util::future::BoxFuture<'static, Result<FetchOutcome, UpstreamDown>>
    + Send
    + 'static {
        let calls = Arc::clone(&self.calls);
        move || {
            Box::pin(async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                Err(UpstreamDown)
            })
        }
    }
}

fn policy() -> CachePolicy {
    CachePolicy {
        ttl: Duration::from_secs(1),
        ..CachePolicy::default()
    }
}

fn get_key(cache: &ResultCache, path: &str) -> CacheKey {
    cache
        .key(&Method::GET, path, None, &HeaderMap::new(), b"")
        .expect("GET is cacheable")
}

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn hundred_identical_misses_make_one_fetch() {
    let cache = ResultCache::new("user", &policy());
    let upstream = Upstream::default();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let cache = cache.clone();
        let fetch = upstream.answer(200, "v1", 50 * MS);
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_fetch(get_key(&cache, "/users/42"), fetch)
                .await
        }));
    }
    for task in tasks {
        let (response, status) = task.await.expect("task ran").expect("fetch succeeded");
        assert_eq!(status, CacheStatus::Miss);
        assert_eq!(&response.body[..], b"v1");
    }
    assert_eq!(upstream.calls(), 1);
    assert_eq!(cache.in_flight(), 0, "the flight unregistered itself");
    let (_, status) = cache
        .get_or_fetch(get_key(&cache, "/users/42"), upstream.answer(200, "v2", MS))
        .await
        .expect("hit");
    assert_eq!(status, CacheStatus::Hit);
    assert_eq!(upstream.calls(), 1);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.fetches), (1, 100, 1));
}

#[tokio::test(start_paused = true)]
async fn failed_fetch_reaches_every_waiter_and_is_not_cached() {
    let cache = ResultCache::new("user", &policy());
    let upstream = Upstream::default();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let cache = cache.clone();
        let fetch = upstream.fail(50 * MS);
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_fetch(get_key(&cache, "/users/42"), fetch)
                .await
        }));
    }
    let mut errors = Vec::new();
    for task in tasks {
        errors.push(
            task.await
                .expect("task ran")
                .expect_err("every waiter sees the error"),
        );
    }
    assert_eq!(upstream.calls(), 1);
    assert!(
        errors.iter().all(|e| Arc::ptr_eq(e, &errors[0])),
        "one shared error"
    );
    assert!(cache.peek(&get_key(&cache, "/users/42")).await.is_none());
    let (_, status) = cache
        .get_or_fetch(get_key(&cache, "/users/42"), upstream.answer(200, "v1", MS))
        .await
        .expect("next call fetches again");
    assert_eq!(status, CacheStatus::Miss);
    assert_eq!(upstream.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn entries_expire_after_their_ttl() {
    let cache = ResultCache::new("user", &policy());
    let upstream = Upstream::default();
    let key = || get_key(&cache, "/users/1");
    cache
        .get_or_fetch(key(), upstream.answer(200, "v1", MS))
        .await
        .expect("miss");
    tokio::time::advance(Duration::from_millis(900)).await;
    let (_, status) = cache
        .get_or_fetch(key(), upstream.answer(200, "v2", MS))
        .await
        .expect("hit");
    assert_eq!(status, CacheStatus::Hit);
    tokio::time::advance(Duration::from_millis(200)).await;
    let (response, status) = cache
        .get_or_fetch(key(), upstream.answer(200, "v2", MS))
        .await
        .expect("miss");
    assert_eq!(
        (status, &response.body[..]),
        (CacheStatus::Miss, &b"v2"[..])
    );
    assert_eq!(upstream.calls(), 2);
}

#[tokio::test]
async fn real_clock_ttl_of_200ms_expires() {
    let cache = ResultCache::new(
        "user",
        &CachePolicy {
            ttl: Duration::from_millis(200),
            ..policy()
        },
    );
    let upstream = Upstream::default();
    cache
        .get_or_fetch(get_key(&cache, "/x"), upstream.answer(200, "v1", MS))
        .await
        .expect("miss");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, status) = cache
        .get_or_fetch(get_key(&cache, "/x"), upstream.answer(200, "v2", MS))
        .await
        .expect("miss");
    assert_eq!(status, CacheStatus::Miss);
}

#[tokio::test(start_paused = true)]
async fn byte_bound_is_respected() {
    let max_bytes = 64 * 1024;
    let cache = ResultCache::new(
        "user",
        &CachePolicy {
            max_bytes,
            ttl: Duration::from_secs(60),
            ..policy()
        },
    );
    let upstream = Upstream::default();
    static BODY: [u8; 4096] = [b'x'; 4096];
    let body: &'static str = std::str::from_utf8(&BODY).expect("ascii");
    for i in 0..100 {
        let path = format!("/items/{i}");
        cache
            .get_or_fetch(get_key(&cache, &path), upstream.answer(200, body, MS))
            .await
            .expect("miss");
    }
    cache.run_pending_tasks().await;
    let stats = cache.stats();
    assert!(
        stats.bytes <= max_bytes,
        "{} bytes held, bound {max_bytes}",
        stats.bytes
    );
    assert!(
        stats.entries < 16,
        "{} entries of 4 KiB held in 64 KiB",
        stats.entries
    );
    assert!(stats.evictions > 0);

    static HUGE: [u8; 70 * 1024] = [b'y'; 70 * 1024];
    let huge: &'static str = std::str::from_utf8(&HUGE).expect("ascii");
    let (response, _) = cache
        .get_or_fetch(get_key(&cache, "/huge"), upstream.answer(200, huge, MS))
        .await
        .expect("miss");
    assert_eq!(
        response.body.len(),
        huge.len(),
        "returned even though too big to store"
    );
    assert!(cache.peek(&get_key(&cache, "/huge")).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn stale_while_revalidate_serves_stale_and_refreshes_once() {
    let swr = CachePolicy {
        stale_while_revalidate: Some(Duration::from_secs(10)),
        ..policy()
    };
    let cache = ResultCache::new("user", &swr);
    let upstream = Upstream::default();
    cache
        .get_or_fetch(get_key(&cache, "/u"), upstream.answer(200, "v1", MS))
        .await
        .expect("miss");
    tokio::time::advance(Duration::from_millis(1500)).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let cache = cache.clone();
        let fetch = upstream.answer(200, "v2", 100 * MS);
        tasks.push(tokio::spawn(async move {
            cache.get_or_fetch(get_key(&cache, "/u"), fetch).await
        }));
    }
    for task in tasks {
        let (response, status) = task.await.expect("task ran").expect("stale served");
        assert_eq!(
            (status, &response.body[..]),
            (CacheStatus::Stale, &b"v1"[..])
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(upstream.calls(), 2, "exactly one background refresh");
    let (response, status) = cache
        .get_or_fetch(get_key(&cache, "/u"), upstream.answer(200, "v3", MS))
        .await
        .expect("hit");
    assert_eq!((status, &response.body[..]), (CacheStatus::Hit, &b"v2"[..]));
    assert_eq!(cache.stats().stale, 50);
}

#[tokio::test(start_paused = true)]
async fn stale_if_error_serves_stale_when_everything_fails() {
    let sie = CachePolicy {
        stale_if_error: Some(Duration::from_secs(10)),
        ..policy()
    };
    let cache = ResultCache::new("user", &sie);
    let upstream = Upstream::default();
    cache
        .get_or_fetch(get_key(&cache, "/u"), upstream.answer(200, "v1", MS))
        .await
        .expect("miss");
    tokio::time::advance(Duration::from_secs(2)).await;

    let (response, status) = cache
        .get_or_fetch(get_key(&cache, "/u"), upstream.fail(MS))
        .await
        .expect("stale");
    assert_eq!(
        (status, &response.body[..]),
        (CacheStatus::Stale, &b"v1"[..])
    );
    let (response, status) = cache
        .get_or_fetch(get_key(&cache, "/u"), upstream.answer(503, "down", MS))
        .await
        .expect("stale");
    assert_eq!(
        (status, &response.body[..]),
        (CacheStatus::Stale, &b"v1"[..])
    );
    assert_eq!(cache.stats().stale, 2);

    tokio::time::advance(Duration::from_secs(10)).await;
    let err = cache
        .get_or_fetch(get_key(&cache, "/u"), upstream.fail(MS))
        .await
        .expect_err("window over");
    assert_eq!(*err, UpstreamDown);
}

#[tokio::test(start_paused = true)]
async fn without_stale_if_error_a_failure_is_an_error() {
    let cache = ResultCache::new("user", &policy());
    let upstream = Upstream::default();
    cache
        .get_or_fetch(get_key(&cache, "/u"), upstream.answer(200, "v1", MS))
        .await
        .expect("miss");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(
        cache
            .get_or_fetch(get_key(&cache, "/u"), upstream.fail(MS))
            .await
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn invalidate_prefix_and_clear() {
    let cache = ResultCache::new(
        "user",
        &CachePolicy {
            ttl: Duration::from_secs(60),
            ..policy()
        },
    );
    let upstream = Upstream::default();
    let fill = |path: &'static str, query: Option<&'static str>| {
        let cache = cache.clone();
        let fetch = upstream.answer(200, "v", MS);
        async move {
            let key = cache
                .key(&Method::GET, path, query, &HeaderMap::new(), b"")
                .expect("key");
            cache.get_or_fetch(key, fetch).await.expect("ok").1
        }
    };
    for (p, q) in [
        ("/users/1", None),
        ("/users/1", Some("v=2")),
        ("/users/2", None),
        ("/orders/1", None),
    ] {
        assert_eq!(fill(p, q).await, CacheStatus::Miss);
    }
    cache.invalidate("/users/1");
    assert_eq!(fill("/users/1", None).await, CacheStatus::Miss);
    assert_eq!(fill("/users/1", Some("v=2")).await, CacheStatus::Miss);
    assert_eq!(fill("/users/2", None).await, CacheStatus::Hit);
    cache.invalidate_prefix("/users/");
    assert_eq!(fill("/users/2", None).await, CacheStatus::Miss);
    assert_eq!(fill("/orders/1", None).await, CacheStatus::Hit);
    cache.clear();
    assert_eq!(fill("/orders/1", None).await, CacheStatus::Miss);
}

#[tokio::test(start_paused = true)]
async fn a_fetch_in_flight_during_invalidation_does_not_store() {
    let cache = ResultCache::new("user", &policy());
    let upstream = Upstream::default();
    let slow = {
        let cache = cache.clone();
        let fetch = upstream.answer(200, "old", 100 * MS);
        tokio::spawn(async move { cache.get_or_fetch(get_key(&cache, "/u"), fetch).await })
    };
    tokio::time::sleep(10 * MS).await;
    cache.invalidate("/u");
    let (response, _) = slow.await.expect("task ran").expect("fetched");
    assert_eq!(
        &response.body[..],
        b"old",
        "the caller still gets its answer"
    );
    assert!(
        cache.peek(&get_key(&cache, "/u")).await.is_none(),
        "but it is not stored"
    );
}

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
async fn max_age_shortens_the_ttl() {
    let cache = ResultCache::new(
        "user",
        &CachePolicy {
            ttl: Duration::from_secs(60),
            ..policy()
        },
    );
    let fetch = || async {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=2"),
        );
        Ok::<_, UpstreamDown>(FetchOutcome::new(200, headers, Bytes::from_static(b"v")))
    };
    cache
        .get_or_fetch(get_key(&cache, "/m"), fetch)
        .await
        .expect("miss");
    tokio::time::advance(Duration::from_secs(3)).await;
    let (_, s) = cache
        .get_or_fetch(get_key(&cache, "/m"), fetch)
        .await
        .expect("miss");
    assert_eq!(s, CacheStatus::Miss);
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
