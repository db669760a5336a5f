//! Result cache behaviour a caller sees: single-flight, TTL, byte bound, stale-while-revalidate,
//! stale-if-error, invalidation, POST keyed by body, Cache-Control. Time runs on tokio's paused
//! clock, so every time-dependent assertion is deterministic. Here: single flight, failures, TTL
//! and the byte bound; [`freshness`]: stale windows, max-age and invalidation; [`keys`]: what is
//! keyed and stored, and metrics.

mod freshness;
mod keys;

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
