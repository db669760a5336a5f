//! Helpers shared by the `consul_*` integration tests: a started double, an HTTP client,
//! registration builders and a tiny scriptable HTTP target for checks.
#![allow(dead_code, reason = "each test file uses a different subset")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use federation_testkit::consul::{
    CheckDefinition, ConsulDouble, ConsulOptions, ServiceRegistration,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Generous bound for "eventually" conditions on a loaded 2-core machine.
pub const EVENTUALLY: Duration = Duration::from_secs(10);

pub async fn start(datacenter: &str) -> ConsulDouble {
    start_with(ConsulOptions::new(datacenter)).await
}

pub async fn start_with(options: ConsulOptions) -> ConsulDouble {
    ConsulDouble::start(options).await.expect("double starts")
}

pub fn client() -> reqwest::Client {
    let _already = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client builds")
}

/// A finished response: status, headers, body text.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn index(&self) -> u64 {
        self.header("x-consul-index")
            .expect("X-Consul-Index present")
            .parse()
            .expect("index is a u64")
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("body is JSON")
    }
}

pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("request succeeds");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.expect("body reads");
    Answer {
        status,
        headers,
        body,
    }
}

pub async fn get(consul: &ConsulDouble, path_and_query: &str) -> Answer {
    send(client().get(format!("{}{path_and_query}", consul.url()))).await
}

pub async fn put(consul: &ConsulDouble, path_and_query: &str, body: Option<Value>) -> Answer {
    let mut request = client().put(format!("{}{path_and_query}", consul.url()));
    if let Some(body) = body {
        request = request.json(&body);
    }
    send(request).await
}

pub fn service(name: &str, id: &str, port: u16) -> ServiceRegistration {
    ServiceRegistration {
        id: Some(id.to_owned()),
        name: name.to_owned(),
        address: "127.0.0.1".to_owned(),
        port,
        ..ServiceRegistration::default()
    }
}

pub fn ttl_check(id: &str, ttl: &str, status: Option<&str>) -> CheckDefinition {
    CheckDefinition {
        check_id: Some(id.to_owned()),
        ttl: Some(ttl.to_owned()),
        status: status.map(str::to_owned),
        ..CheckDefinition::default()
    }
}

/// Statuses of the service checks (node check excluded) of every entry.
pub fn check_statuses(entries: &Value) -> Vec<String> {
    entries
        .as_array()
        .expect("array")
        .iter()
        .flat_map(|entry| entry["Checks"].as_array().cloned().unwrap_or_default())
        .filter(|check| check["CheckID"] != "serfHealth")
        .map(|check| check["Status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Polls `path` until `accept` holds on the JSON body, or panics after [`EVENTUALLY`].
pub async fn eventually(
    consul: &ConsulDouble,
    path: &str,
    accept: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        let answer = get(consul, path).await;
        let body = answer.json();
        if accept(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in time; last body: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A minimal HTTP target for checks: answers every request with `status`, once `open`.
pub struct Target {
    pub url: String,
    pub status: Arc<AtomicU16>,
    pub hits: Arc<AtomicU64>,
    pub open: tokio::sync::watch::Sender<bool>,
}

pub async fn target(status: u16, open: bool) -> Target {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("target binds");
    let url = format!("http://{}/health", listener.local_addr().expect("addr"));
    let status = Arc::new(AtomicU16::new(status));
    let hits = Arc::new(AtomicU64::new(0));
    let (gate, _) = tokio::sync::watch::channel(open);
    let (task_status, task_hits, task_gate) = (status.clone(), hits.clone(), gate.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (status, hits, mut gate) = (
                task_status.clone(),
                task_hits.clone(),
                task_gate.subscribe(),
            );
            tokio::spawn(async move {
                let mut buffer = vec![0_u8; 4096];
                let mut read = 0;
                while !buffer[..read]
                    .windows(4)
                    .any(|window| window == b"\r\n\r\n")
                {
                    match stream.read(&mut buffer[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                }
                if gate.wait_for(|open| *open).await.is_err() {
                    return;
                }
                hits.fetch_add(1, Ordering::SeqCst);
                let code = status.load(Ordering::SeqCst);
                let response = format!(
                    "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    Target {
        url,
        status,
        hits,
        open: gate,
    }
}
