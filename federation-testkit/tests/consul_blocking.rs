//! The blocking-query contract of `/v1/health/service` (consul-api.md §1.6, checklist item 1).

mod consul_support;

use std::time::{Duration, Instant};

use consul_support::{Answer, EVENTUALLY, get, service, start};
use federation_testkit::consul::{ConsulOptions, Fault};
use tokio::task::JoinHandle;

/// Repeats `poke` every 20 ms until the blocked query `watcher` returns (or panics after
/// [`EVENTUALLY`]). A single poke after a fixed sleep would race the query's arrival at the
/// double: a poke that lands before the query parks is lost and the query blocks for its wait.
async fn poke_until_answered(mut watcher: JoinHandle<Answer>, mut poke: impl FnMut()) -> Answer {
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        poke();
        tokio::select! {
            answer = &mut watcher => return answer.expect("watcher task"),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the blocked query did not return within {EVENTUALLY:?}"
        );
    }
}

#[tokio::test]
async fn index_absent_or_zero_answers_at_once_with_an_index_of_at_least_one() {
    let consul = start("zervigo-dc").await;
    let started = Instant::now();
    let unknown = get(&consul, "/v1/health/service/nothing-here").await;
    assert_eq!(unknown.status, 200);
    assert_eq!(unknown.body, "[]");
    assert!(unknown.index() >= 1);
    let zero = get(&consul, "/v1/health/service/nothing-here?index=0&wait=10s").await;
    assert_eq!(zero.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "non-blocking reads must not wait"
    );
}

#[tokio::test]
async fn a_blocked_query_returns_as_soon_as_the_service_changes() {
    let consul = start("zervigo-dc").await;
    consul
        .register(service("web", "web-1", 8080))
        .expect("register");
    let first = get(&consul, "/v1/health/service/web").await;
    let index = first.index();
    assert_eq!(index, consul.service_index("web"));

    let watcher = {
        let consul = consul.clone();
        tokio::spawn(async move {
            get(
                &consul,
                &format!("/v1/health/service/web?index={index}&wait=30s"),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !watcher.is_finished(),
        "the query must block while nothing changes"
    );
    let changed_at = Instant::now();
    consul
        .register(service("web", "web-2", 8081))
        .expect("register second");
    let answer = tokio::time::timeout(EVENTUALLY, watcher)
        .await
        .expect("woken in time")
        .expect("task");
    assert!(changed_at.elapsed() < EVENTUALLY);
    assert!(answer.index() > index);
    assert_eq!(answer.json().as_array().map(Vec::len), Some(2));
    assert!(consul.last_change("WEB").is_some_and(|at| at >= changed_at));
}

#[tokio::test]
async fn a_timeout_returns_200_with_the_same_index_and_other_services_do_not_wake_it() {
    let consul = start("zervigo-dc").await;
    consul
        .register(service("web", "web-1", 8080))
        .expect("register");
    let index = consul.service_index("web");
    let started = Instant::now();
    let watcher = {
        let consul = consul.clone();
        tokio::spawn(async move {
            get(
                &consul,
                &format!("/v1/health/service/web?index={index}&wait=1s"),
            )
            .await
        })
    };
    // Unrelated changes all through the wait (so some certainly land while it is blocked).
    let mut n = 0;
    let answer = poke_until_answered(watcher, || {
        n += 1;
        consul
            .register(service("other", &format!("other-{n}"), 9000))
            .expect("unrelated change");
    })
    .await;
    assert!(n >= 10, "only {n} unrelated changes during the wait");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "held for the wait: {:?}",
        started.elapsed()
    );
    assert_eq!(answer.status, 200);
    assert_eq!(answer.index(), index);
}

#[tokio::test]
async fn an_index_ahead_of_the_server_holds_for_the_whole_wait_then_returns_the_lower_index() {
    let consul = start("zervigo-dc").await;
    consul
        .register(service("web", "web-1", 8080))
        .expect("register");
    let foreign_index = consul.service_index("web") + 5_000_000_000;
    let started = Instant::now();
    let answer = get(
        &consul,
        &format!("/v1/health/service/web?index={foreign_index}&wait=1s"),
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(answer.index(), consul.service_index("web"));
}

#[tokio::test]
async fn spurious_wakeups_return_unchanged_data_and_index() {
    let consul = start("zervigo-dc").await;
    consul
        .register(service("web", "web-1", 8080))
        .expect("register");
    let before = get(&consul, "/v1/health/service/web").await;
    let index = before.index();
    let watcher = {
        let consul = consul.clone();
        tokio::spawn(async move {
            get(
                &consul,
                &format!("/v1/health/service/web?index={index}&wait=30s"),
            )
            .await
        })
    };
    let answer = poke_until_answered(watcher, || consul.spurious_wakeup("Web")).await;
    assert_eq!(answer.index(), index);
    assert_eq!(answer.body, before.body);
}

#[tokio::test]
async fn an_index_reset_returns_blocked_queries_with_a_far_lower_index() {
    let mut options = ConsulOptions::new("looma-dc");
    options.initial_index = 5_000_000_000;
    let consul = consul_support::start_with(options).await;
    consul
        .register(service("web", "web-1", 8080))
        .expect("register");
    let index = consul.service_index("web");
    assert!(index > 5_000_000_000, "index spaces start where configured");
    let watcher = {
        let consul = consul.clone();
        tokio::spawn(async move {
            get(
                &consul,
                &format!("/v1/health/service/web?index={index}&wait=30s"),
            )
            .await
        })
    };
    let answer = poke_until_answered(watcher, || consul.set_fault(Fault::IndexReset)).await;
    assert!(
        answer.index() < index / 2,
        "{} should be far below {index}",
        answer.index()
    );
    assert!(answer.index() >= 1);
    assert_eq!(
        answer.json().as_array().map(Vec::len),
        Some(1),
        "data survives the restore"
    );
    // Later changes keep moving the (new, lower) index forward.
    let reset_index = answer.index();
    consul
        .register(service("web", "web-2", 8081))
        .expect("register after reset");
    assert!(consul.service_index("web") > reset_index);
}

#[tokio::test]
async fn service_names_are_case_insensitive() {
    let consul = start("zervigo-dc").await;
    consul
        .register(service("User-API", "u1", 8080))
        .expect("register");
    let answer = get(&consul, "/v1/health/service/user-api").await;
    assert_eq!(answer.json()[0]["Service"]["Service"], "User-API");
    assert_eq!(answer.index(), consul.service_index("USER-API"));
    assert_eq!(consul.health_requests("user-API"), 1);
}

#[tokio::test]
async fn invalid_blocking_parameters_are_plain_text_400s() {
    let consul = start("zervigo-dc").await;
    for (query, message) in [
        ("wait=10", "Invalid wait time"),
        ("wait=abc", "Invalid wait time"),
        ("index=-1", "Invalid index"),
        ("index=x", "Invalid index"),
        ("passing=maybe", "Invalid value for ?passing"),
        (
            "stale&consistent",
            "Cannot specify ?stale with ?consistent, conflicting semantics.",
        ),
    ] {
        let answer = get(&consul, &format!("/v1/health/service/web?{query}")).await;
        assert_eq!(answer.status, 400, "{query}");
        assert_eq!(answer.body, message, "{query}");
        assert!(
            answer
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/plain")),
            "{query}"
        );
    }
    assert_eq!(
        get(&consul, "/v1/health/service/web?wait=1500ms&index=1")
            .await
            .status,
        200
    );
}

/// Every blocked query is held for `wait` plus a random jitter of at most `wait / 16`, and the
/// jitter is spread over that range rather than fixed. Tokio's paused clock makes the held
/// time exact, so the upper bound needs no scheduling slack.
#[tokio::test(start_paused = true)]
async fn wait_jitter_stays_within_a_sixteenth() {
    const WAIT: Duration = Duration::from_millis(1_600);
    const SIXTEENTH: Duration = Duration::from_millis(100);
    let mut options = ConsulOptions::new("zervigo-dc");
    options.jitter = true;
    let consul = consul_support::start_with(options).await;
    let index = consul.service_index("web");
    let mut jitters = Vec::new();
    for _ in 0..40 {
        let started = tokio::time::Instant::now();
        let answer = get(
            &consul,
            &format!("/v1/health/service/web?index={index}&wait=1600ms"),
        )
        .await;
        assert_eq!(answer.index(), index);
        let held = started.elapsed();
        assert!(
            held >= WAIT && held <= WAIT + SIXTEENTH,
            "held {held:?}, allowed {WAIT:?} to {:?}",
            WAIT + SIXTEENTH
        );
        jitters.push(held - WAIT);
    }
    // Uniform over [0, 100 ms): 40 draws all in one half has odds 2^-39; the mean of 40 draws
    // is 50 ms with a standard deviation of about 4.6 ms, so 30..70 ms is over 4 deviations.
    let low = jitters.iter().filter(|j| **j < SIXTEENTH / 2).count();
    let mean = jitters.iter().sum::<Duration>() / 40;
    assert!(
        (1..40).contains(&low),
        "jitter not spread over the range: {jitters:?}"
    );
    assert!(
        mean >= Duration::from_millis(30) && mean <= Duration::from_millis(70),
        "mean jitter {mean:?}: {jitters:?}"
    );
}
