//! Stale-while-revalidate, stale-if-error, Cache-Control max-age and invalidation (including a
//! fetch in flight while it happens), on tokio's paused clock.

use super::*;

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
