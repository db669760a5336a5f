//! Calls driven by the calling thread (`federation_core::bindings::run_here`), end to end against
//! real loopback servers: they are served like any call, a pooled connection the server closed
//! while the thread was away is not reused, timeouts fire on the thread's own timer, and work
//! that outlives the call (a stale-while-revalidate refresh) runs on the main runtime.

mod pipeline_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use federation_core::bindings::run_here;
use federation_core::client::{CacheStatus, FederatedServiceClient, Request};
use federation_core::config::{CachePolicy, Config, Policy, StaticInstance};
use federation_core::error::ErrorKind;
use federation_testkit::instance::{Behavior, Mode};
use pipeline_support::{cluster, cluster_with, config, service, start};
use tokio::runtime::Runtime;

fn home() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn a_driven_call_is_served_like_any_other() {
    let home = home();
    let z = home.block_on(start("zervigo", "user-service", 2));
    let cfg = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = client_of(&home, cfg);
    for _ in 0..3 {
        let response = run_here(home.handle(), client.get("user", "/api/v1/users/42").send())
            .expect("driven")
            .expect("call succeeds");
        assert_eq!(response.status(), 200);
        assert_eq!(response.served().cluster(), "zervigo");
        let body: serde_json::Value = response.json().expect("identity JSON");
        assert_eq!(body["instance"], response.served().instance());
    }
    // The same client keeps serving asynchronous calls.
    let response = home
        .block_on(client.get("user", "/a").send())
        .expect("async call");
    assert_eq!(response.status(), 200);
}

/// An HTTP/1.1 server that answers each request with keep-alive and closes a connection after
/// it has been idle for 50 ms; returns its port and the number of connections it accepted.
fn closing_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || serve_until_idle(stream));
        }
    });
    (port, accepted)
}

fn serve_until_idle(stream: std::net::TcpStream) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return, // closed, or idle for 50 ms: close
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// A client whose service `user` is the one server listening on `port`.
fn client_of_port(home: &Runtime, port: u16) -> FederatedServiceClient {
    let entry = StaticInstance {
        id: Some("raw".into()),
        address: "127.0.0.1".into(),
        port,
        tags: Vec::new(),
        meta: Default::default(),
        weight: 1,
    };
    let cfg = config(
        vec![cluster_with("zervigo", "user-service", vec![entry])],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    client_of(home, cfg)
}

/// The client of `cfg`, built inside the main runtime (as a binding builds it).
fn client_of(home: &Runtime, cfg: Config) -> FederatedServiceClient {
    let _context = home.enter();
    FederatedServiceClient::from_config(cfg).expect("valid config")
}

#[test]
fn a_connection_the_server_closed_while_the_thread_was_away_is_not_reused() {
    let home = home();
    let (port, accepted) = closing_server();
    let client = client_of_port(&home, port);
    let post = || {
        let mut request = Request::try_new("POST", "/orders").expect("request");
        request.set_body(b"{}".to_vec());
        run_here(home.handle(), client.call("user", request)).expect("driven")
    };
    let first = post().expect("first POST");
    assert_eq!(first.status(), 200);
    // The server closes the idle connection; a POST is never retried once it may have been
    // sent, so reusing the dead connection would fail this call.
    std::thread::sleep(Duration::from_millis(250));
    let second = post().expect("second POST on a new connection");
    assert_eq!(second.status(), 200);
    assert_eq!(second.served().attempts().len(), 1);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[test]
fn timeouts_fire_on_the_calling_threads_timer() {
    let home = home();
    let z = home.block_on(start("zervigo", "user-service", 1));
    z[0].set_behavior(Behavior::mode(Mode::Hang));
    let cfg = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = client_of(&home, cfg);
    let started = Instant::now();
    let outcome = run_here(
        home.handle(),
        client
            .get("user", "/slow")
            .timeout(Duration::from_millis(200))
            .send(),
    )
    .expect("driven");
    let error = outcome.expect_err("a hanging upstream times out");
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_refresh_started_by_a_driven_call_completes_after_the_call() {
    let home = home();
    let z = home.block_on(start("zervigo", "user-service", 1));
    let mut cfg = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    cfg.defaults = Policy {
        cache: Some(CachePolicy {
            ttl: Duration::from_millis(200),
            stale_while_revalidate: Some(Duration::from_secs(60)),
            ..CachePolicy::default()
        }),
        ..Policy::default()
    };
    let client = client_of(&home, cfg);
    let get = || {
        run_here(home.handle(), client.get("user", "/u/1").send())
            .expect("driven")
            .expect("call succeeds")
    };
    assert_eq!(get().served().cache(), CacheStatus::Miss);
    std::thread::sleep(Duration::from_millis(300));
    z[0].set_behavior(Behavior::delayed(Duration::from_millis(100)));
    // Served stale at once; the refresh runs on the main runtime while this thread sleeps.
    assert_eq!(get().served().cache(), CacheStatus::Stale);
    let until = Instant::now() + Duration::from_secs(10);
    while z[0].requests_for("/u/1") < 2 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        z[0].requests_for("/u/1"),
        2,
        "the refresh reached the upstream"
    );
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(get().served().cache(), CacheStatus::Hit);
}

/// A server that reads one request, never answers, and reports when the client closes the
/// connection.
fn silent_server() -> (u16, std::sync::mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let (closed, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            let _ = closed.send(());
        }
    });
    (port, seen)
}

#[test]
fn an_abandoned_request_closes_its_connection_before_the_call_returns() {
    let home = home();
    let (port, closed) = silent_server();
    let client = client_of_port(&home, port);
    // The caller gives up (as a cancelled Go context does): the call future is dropped.
    let gave_up = run_here(home.handle(), async {
        tokio::time::timeout(
            Duration::from_millis(200),
            client.get("user", "/slow").send(),
        )
        .await
    })
    .expect("driven");
    assert!(gave_up.is_err(), "the upstream never answers");
    // This thread now sleeps; the upstream must still see the connection closed.
    assert!(
        closed.recv_timeout(Duration::from_secs(5)).is_ok(),
        "the upstream never saw the request abandoned"
    );
}
