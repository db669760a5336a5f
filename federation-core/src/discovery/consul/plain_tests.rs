//! The watch's own HTTP/1.1 exchange against scripted loopback agents: framings, limits,
//! connection reuse and what a waiting query holds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

use super::*;
use crate::discovery::DiscoveryErrorKind;
use crate::discovery::consul::http::tests::http;
use crate::discovery::consul::long_poll::tests::read_request;
use crate::discovery::consul::long_poll::{Connector, Query};
use crate::discovery::consul::plain_body::probe::WAITS;

/// One entry of a `/v1/health/service` answer (instance `user-1` at 10.0.0.1:8080).
const ONE_INSTANCE: &str = r#"[{"Node":{"Node":"n1","Address":"10.0.0.1"},
"Service":{"ID":"user-1","Service":"user-service","Port":8080},
"Checks":[{"CheckID":"serfHealth","Status":"passing"}]}]"#;

/// What the agent sends for one request.
#[derive(Clone)]
struct Reply {
    bytes: Vec<u8>,
    /// Close the connection after sending `bytes`.
    close: bool,
}

fn reply(bytes: impl Into<Vec<u8>>) -> Reply {
    Reply {
        bytes: bytes.into(),
        close: false,
    }
}

/// A `200` with `x-consul-index: index`, `extra` header lines and `body` by Content-Length.
fn sized(index: u64, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nx-consul-index: {index}\r\n{extra}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `body` as a chunked answer of `piece`-byte chunks, each size line with an extension, and a
/// trailer section.
fn chunked(index: u64, body: &str, piece: usize) -> Vec<u8> {
    let mut out =
        format!("HTTP/1.1 200 OK\r\nX-Consul-Index: {index}\r\nTransfer-Encoding: chunked\r\n\r\n")
            .into_bytes();
    for chunk in body.as_bytes().chunks(piece) {
        out.extend_from_slice(format!("{:X};ext=\"a;b\"\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0;last\r\nx-trailer: 1\r\nx-other: two\r\n\r\n");
    out
}

/// A loopback agent answering the n-th request (over all connections) with `script[n]`,
/// written `step` bytes at a time (yielding between writes, so the client sees every split);
/// holds each answer until `gate` is notified when one is given. Counts accepted connections.
struct Agent {
    url: String,
    accepted: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

async fn agent(script: Vec<Reply>, step: usize, gate: Option<Arc<Notify>>) -> Agent {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    let accepted = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (count, served) = (Arc::clone(&accepted), Arc::clone(&requests));
    let script = Arc::new(script);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_nodelay(true);
            let (script, served, gate) = (Arc::clone(&script), Arc::clone(&served), gate.clone());
            tokio::spawn(serve(stream, script, served, step, gate));
        }
    });
    Agent {
        url,
        accepted,
        requests,
    }
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    script: Arc<Vec<Reply>>,
    served: Arc<AtomicUsize>,
    step: usize,
    gate: Option<Arc<Notify>>,
) {
    while read_request(&mut stream).await {
        let n = served.fetch_add(1, Ordering::SeqCst);
        let Some(reply) = script.get(n) else { return };
        if let Some(gate) = &gate {
            gate.notified().await;
        }
        for piece in reply.bytes.chunks(step) {
            if stream.write_all(piece).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
        if reply.close {
            return;
        }
    }
}

/// Runs `polls` queries on one connection slot; returns the answers' indexes.
async fn poll(url: &str, polls: u64) -> Vec<u64> {
    let h = http(url);
    let mut conn = None;
    let mut indexes = Vec::new();
    for i in 0..polls {
        let answer = h
            .health_service("user-service", i, &mut conn)
            .await
            .expect("answer");
        assert_eq!(answer.parsed.instances.len(), 1, "{:?}", answer.parsed);
        assert_eq!(answer.parsed.instances[0].id, "user-1");
        indexes.push(answer.index);
    }
    indexes
}

#[tokio::test]
async fn content_length_answers_are_read_and_the_connection_reused() {
    let script = (1..=4).map(|i| reply(sized(i, "", ONE_INSTANCE))).collect();
    let agent = agent(script, 4096, None).await;
    assert_eq!(poll(&agent.url, 4).await, [1, 2, 3, 4]);
    assert_eq!(agent.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn chunked_answers_split_into_single_bytes_are_decoded_and_the_connection_reused() {
    let script = (1..=3)
        .map(|i| reply(chunked(10 + i, ONE_INSTANCE, 7)))
        .collect();
    let agent = agent(script, 1, None).await;
    assert_eq!(poll(&agent.url, 3).await, [11, 12, 13]);
    // The trailers were consumed exactly: every answer came on the first connection.
    assert_eq!(agent.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_answer_with_connection_close_is_followed_by_a_new_connection() {
    // Neither agent closes the socket: the client must honour what the answer says.
    let close = reply(sized(1, "connection: close\r\n", ONE_INSTANCE));
    let http10 = reply(
        String::from_utf8(sized(2, "", ONE_INSTANCE))
            .expect("ascii")
            .replace("HTTP/1.1", "HTTP/1.0"),
    );
    let until_close = Reply {
        bytes: format!("HTTP/1.1 200 OK\r\nx-consul-index: 3\r\n\r\n{ONE_INSTANCE}").into(),
        close: true,
    };
    let script = vec![
        close,
        http10,
        until_close,
        reply(sized(4, "", ONE_INSTANCE)),
    ];
    let agent = agent(script, 4096, None).await;
    assert_eq!(poll(&agent.url, 4).await, [1, 2, 3, 4]);
    assert_eq!(agent.accepted.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn an_agent_closing_mid_body_fails_the_query_and_the_next_one_reconnects() {
    let full = sized(1, "", ONE_INSTANCE);
    let cut = Reply {
        bytes: full[..full.len() - 10].to_vec(),
        close: true,
    };
    let script = vec![cut, reply(sized(2, "", ONE_INSTANCE))];
    let agent = agent(script, 4096, None).await;
    let h = http(&agent.url);
    let mut conn = None;
    let err = h
        .health_service("user-service", 0, &mut conn)
        .await
        .expect_err("a cut answer is an error");
    assert_eq!(err.kind, DiscoveryErrorKind::Unreachable, "{err}");
    assert!(err.to_string().contains("closed in the middle"), "{err}");
    assert!(conn.is_none());
    let answer = h
        .health_service("user-service", 0, &mut conn)
        .await
        .expect("the next query works");
    assert_eq!(answer.index, 2);
    assert_eq!(agent.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_500_with_a_body_is_surfaced_with_its_status_and_text() {
    let script = vec![reply(
        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 17\r\n\r\nNo cluster leader",
    )];
    let agent = agent(script, 4096, None).await;
    let err = http(&agent.url)
        .health_service("user-service", 0, &mut None)
        .await
        .expect_err("a 500 is an error");
    match &err.kind {
        DiscoveryErrorKind::Status { code: 500, body } => assert_eq!(body, "No cluster leader"),
        other => panic!("expected a 500 status error, got {other:?}: {err}"),
    }
    assert!(err.to_string().contains("Consul answered 500"), "{err}");
}

/// Sends one query straight through the connector with small limits.
async fn exchange(url: &str, limits: Limits) -> Result<Answer, ExchangeError> {
    let connector = Connector::new(Duration::from_secs(2), None).expect("connector");
    let uri: http::Uri = format!("{url}/v1/health/service/s").parse().expect("uri");
    let query = Query {
        uri: &uri,
        token: Some("secret-token"),
        limits,
    };
    connector.exchange(None, &query).await.map(|(a, _)| a)
}

#[tokio::test]
async fn heads_and_bodies_over_their_limits_are_refused_with_the_limit_named() {
    let limits = Limits {
        head: 256,
        body: 100,
    };
    let long_head = reply(sized(1, &format!("x-pad: {}\r\n", "p".repeat(300)), "[]"));
    let agent1 = agent(vec![long_head], 4096, None).await;
    match exchange(&agent1.url, limits).await {
        Err(ExchangeError::Protocol(m)) => assert!(m.contains("too large (over 256"), "{m}"),
        other => panic!("expected a head-limit error, got {other:?}"),
    }
    let body = format!("[{}]", " ".repeat(120));
    for (bytes, want) in [
        (sized(1, "", &body), "122"),
        (chunked(1, &body, 50), "over 100"),
    ] {
        let agent = agent(vec![reply(bytes)], 4096, None).await;
        match exchange(&agent.url, limits).await {
            Err(ExchangeError::TooLarge(n)) => assert_eq!(n, want),
            other => panic!("expected a body-limit error, got {other:?}"),
        }
    }
    let fits = exchange(
        &agent(vec![reply(chunked(1, "[]", 1))], 1, None).await.url,
        limits,
    )
    .await
    .expect("a small answer fits");
    assert_eq!(fits.body, b"[]");
}

#[tokio::test]
async fn malformed_chunks_are_protocol_errors() {
    let head = "HTTP/1.1 200 OK\r\nx-consul-index: 1\r\ntransfer-encoding: chunked\r\n\r\n";
    let limits = Limits {
        head: 8192,
        body: 1000,
    };
    for (chunks, want) in [
        ("zz\r\n[]\r\n0\r\n\r\n", "invalid chunk size"),
        ("2\r\n[]]\r\n0\r\n\r\n", "longer than its announced size"),
    ] {
        let agent = agent(vec![reply(format!("{head}{chunks}"))], 4096, None).await;
        match exchange(&agent.url, limits).await {
            Err(ExchangeError::Protocol(m)) => assert!(m.contains(want), "{m}"),
            other => panic!("expected {want:?}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_waiting_query_holds_no_read_buffer_and_none_is_kept_between_answers() {
    let gate = Arc::new(Notify::new());
    let script = (1..=2).map(|i| reply(sized(i, "", ONE_INSTANCE))).collect();
    let agent = agent(script, 4096, Some(Arc::clone(&gate))).await;
    let waits = Arc::new(Mutex::new(Vec::new()));
    let h = http(&agent.url);
    let mut conn = None;
    for query in 1..=2usize {
        let before = waits.lock().expect("lock").len();
        let control = async {
            // The agent holds the answer until the query is waiting for it.
            let deadline = Instant::now() + Duration::from_secs(10);
            while (agent.requests.load(Ordering::SeqCst) < query
                || waits.lock().expect("lock").len() == before)
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let first_wait = waits.lock().expect("lock").get(before).copied();
            gate.notify_one();
            first_wait
        };
        let poll = WAITS.scope(
            Arc::clone(&waits),
            h.health_service("user-service", 0, &mut conn),
        );
        let (answer, first_wait) = tokio::join!(poll, control);
        answer.expect("answer");
        assert_eq!(first_wait, Some(0), "read buffer while waiting: {waits:?}");
    }
    assert_eq!(agent.accepted.load(Ordering::SeqCst), 1);
}

#[test]
fn a_token_that_cannot_travel_in_a_header_is_refused_without_echoing_it() {
    let err = request("/v1/x", "consul:8500", Some("abc\r\nx-evil: 1")).expect_err("refused");
    assert!(err.contains("control character"), "{err}");
    assert!(!err.contains("abc"), "{err}");
    let ok = request("/v1/x?index=2", "consul:8500", Some("abc")).expect("valid");
    assert_eq!(
        ok,
        b"GET /v1/x?index=2 HTTP/1.1\r\nhost: consul:8500\r\nx-consul-token: abc\r\n\r\n"
    );
}
