//! Kill and restart: a killed instance looks like a crashed process to pooled clients, and it
//! comes back on the same port.

use std::io::ErrorKind;
use std::time::Duration;

use federation_testkit::instance::{Behavior, Identity, Mode, ServiceInstance};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn start() -> ServiceInstance {
    ServiceInstance::start(Identity::new("zervigo", "job-service", "job-1"))
        .await
        .expect("instance starts")
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client builds")
}

/// One request on an existing keep-alive connection; returns the status code.
async fn get_on(conn: &mut BufReader<TcpStream>, path: &str) -> std::io::Result<u16> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    conn.get_mut().write_all(request.as_bytes()).await?;
    let mut status_line = String::new();
    if conn.read_line(&mut status_line).await? == 0 {
        return Err(ErrorKind::UnexpectedEof.into());
    }
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(ErrorKind::InvalidData)?;
    let mut length = 0;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().map_err(|_| ErrorKind::InvalidData)?;
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await?;
    Ok(status)
}

#[tokio::test]
async fn kill_resets_established_keep_alive_connections() {
    let instance = start().await;
    let stream = TcpStream::connect(instance.addr()).await.expect("connects");
    let mut conn = BufReader::new(stream);
    assert_eq!(get_on(&mut conn, "/one").await.expect("first request"), 200);
    assert_eq!(
        get_on(&mut conn, "/two").await.expect("same connection"),
        200
    );

    instance.kill().await;
    assert!(!instance.is_running());
    let mut buf = [0_u8; 16];
    let err = conn
        .read(&mut buf)
        .await
        .expect_err("the idle connection was reset");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);

    let err = TcpStream::connect(instance.addr())
        .await
        .expect_err("nothing listens any more");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn kill_fails_pooled_client_calls_and_in_flight_requests() {
    let instance = start().await;
    let c = client();
    c.get(instance.url()).send().await.expect("warms the pool");

    instance.set_behavior(Behavior::mode(Mode::Hang));
    let in_flight = tokio::spawn({
        let c = c.clone();
        let url = instance.url();
        async move { c.get(url).send().await }
    });
    while instance.requests() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    instance.kill().await;
    let err = in_flight
        .await
        .expect("task joins")
        .expect_err("the in-flight request fails");
    assert!(!err.is_timeout(), "{err:?}");
    c.get(instance.url())
        .send()
        .await
        .expect_err("a killed instance fails new calls");
}

#[tokio::test]
async fn restart_listens_on_the_same_port_and_keeps_counters() {
    let instance = start().await;
    let c = client();
    let url = instance.url();
    c.get(&url).send().await.expect("first call");
    for _ in 0..3 {
        instance.kill().await;
        instance.kill().await; // idempotent
        c.get(&url).send().await.expect_err("killed");
        instance.restart().await.expect("restarts on the same port");
        instance.restart().await.expect("restart is idempotent");
        assert!(instance.is_running());
        assert_eq!(instance.url(), url);
        let response = c.get(&url).send().await.expect("serves again");
        assert_eq!(response.status(), 200);
    }
    assert_eq!(instance.requests(), 4);
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_server() {
    let instance = start().await;
    let addr = instance.addr();
    let clone = instance.clone();
    drop(instance);
    TcpStream::connect(addr)
        .await
        .expect("a clone keeps it alive");
    drop(clone);
    let mut refused = false;
    for _ in 0..200 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the listener closes once every handle is gone");
}

#[tokio::test]
async fn connections_are_counted_and_a_hung_request_is_released_when_the_client_leaves() {
    let instance = start().await;
    let c = client();
    c.get(instance.url()).send().await.expect("first call");
    assert_eq!(
        instance.connections(),
        1,
        "one pooled keep-alive connection"
    );

    instance.set_behavior(Behavior::mode(Mode::Hang));
    let mut stream = TcpStream::connect(instance.addr()).await.expect("connects");
    stream
        .write_all(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request written");
    while instance.requests() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(instance.connections(), 2);
    drop(stream);
    let mut released = false;
    for _ in 0..500 {
        if instance.connections() == 1 {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        released,
        "the hung connection ends when the client closes it"
    );

    instance.kill().await;
    assert_eq!(instance.connections(), 0);
}
