//! G2: the in-process SDK against a proxy hop (nginx standing in for a sidecar).
//!
//! The alternative to an SDK is a sidecar proxy; it costs one more loopback hop and a process
//! that competes for the same cores. This scenario starts nginx (single process, keep-alive
//! upstream pool to the same 3 instances) from a generated configuration in a temporary
//! directory, and compares the SDK with plain reqwest sending through it. Goal: SDK p50 ≤ 0.6x
//! at c = 1, throughput ≥ 1.6x at c = 64. Without an `nginx` binary the scenario is skipped with
//! a message (scripts/bench.sh installs it from Debian packages).

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use federation_core::client::FederatedServiceClient;
use federation_testkit::instance::ServiceInstance;

use super::Settings;
use super::fixture;
use super::interleave::interleave;
use super::report::{GoalRow, Report, Verdict, comparison_table, fmt_ratio};
use super::runner::Load;
use super::target::{RoundRobin, Sdk, Variant, plain_reqwest};
use crate::exit::CliError;

/// Runs the proxy comparison, or records it as skipped when nginx is missing.
///
/// # Errors
/// When the instances, clients or nginx cannot be set up.
pub async fn run(settings: &Settings, report: &mut Report) -> Result<(), CliError> {
    let Some(binary) = find_nginx() else {
        eprintln!("  proxy: no `nginx` binary found; skipped (scripts/bench.sh installs it)");
        report.section(
            "### proxy (G2)\n\nSkipped: no `nginx` binary on PATH or in /usr/sbin.\n".into(),
        );
        report.goal(GoalRow {
            id: "G2",
            what: "SDK vs reqwest through nginx".into(),
            measured: "nginx not installed".into(),
            goal: "p50 ≤ 0.6x at c = 1; throughput ≥ 1.6x at c = 64".into(),
            verdict: Verdict::Skipped,
        });
        return Ok(());
    };
    let instances = fixture::start_instances(3).await?;
    let nginx = Nginx::start(&binary, &instances).await?;
    let client = FederatedServiceClient::from_config(fixture::static_config(&instances)?)?;
    let variants = [
        (
            "sdk",
            Variant::Sdk(Sdk {
                client,
                service: Arc::from(fixture::SERVICE),
                path: Arc::from(fixture::PATH),
            }),
        ),
        (
            "nginx",
            Variant::Reqwest(RoundRobin::new(
                plain_reqwest()?,
                vec![format!("http://{}{}", nginx.addr, fixture::PATH)],
            )),
        ),
    ];
    let mut section =
        String::from("### proxy (G2): SDK vs plain reqwest through a local nginx\n\n");
    let c1 = interleave(
        "proxy",
        &variants,
        Load::Closed { concurrency: 1 },
        settings.plan,
    )
    .await;
    let c64 = interleave(
        "proxy",
        &variants,
        Load::Closed { concurrency: 64 },
        settings.plan,
    )
    .await;
    drop(nginx);
    section.push_str(&comparison_table("c = 1", &c1));
    section.push('\n');
    section.push_str(&comparison_table("c = 64", &c64));
    report.section(section);
    let (p50, p50_reps) = c1.ratio(0, 1, |s| s.p50.as_secs_f64());
    report.goal(GoalRow {
        id: "G2",
        what: "SDK p50 vs reqwest→nginx, c = 1".into(),
        measured: fmt_ratio(p50, &p50_reps),
        goal: "≤ 0.6x".into(),
        verdict: Verdict::of(p50 <= 0.6),
    });
    let (thr, thr_reps) = c64.ratio(0, 1, |s| s.throughput);
    report.goal(GoalRow {
        id: "G2",
        what: "SDK throughput vs reqwest→nginx, c = 64".into(),
        measured: fmt_ratio(thr, &thr_reps),
        goal: "≥ 1.6x".into(),
        verdict: Verdict::of(thr >= 1.6),
    });
    Ok(())
}

fn find_nginx() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
}

/// A running nginx, stopped (and its directory removed) on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Nginx {
    async fn start(binary: &Path, upstreams: &[ServiceInstance]) -> Result<Self, CliError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            CliError::failure(format!("bench: proxy: {what}: {e}"))
        };
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| fail("no free port", &e))?
            .port();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let dir =
            std::env::temp_dir().join(format!("federation-bench-nginx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| fail("cannot create its directory", &e))?;
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config(&dir, addr, upstreams))
            .map_err(|e| fail("cannot write its configuration", &e))?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| fail(&format!("cannot run {}", binary.display()), &e))?;
        let mut nginx = Self { child, dir, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            if Instant::now() > deadline || nginx.child.try_wait().ok().flatten().is_some() {
                return Err(fail(
                    "did not start listening",
                    &format!("see {}", nginx.dir.join("error.log").display()),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        nginx.addr = addr;
        Ok(nginx)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // `master_process off`: this one process is all of nginx, so killing it stops it.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One process (like a per-pod sidecar on a small node), keep-alive to the upstreams.
fn config(dir: &Path, addr: SocketAddr, upstreams: &[ServiceInstance]) -> String {
    let d = dir.display();
    let servers: String = upstreams
        .iter()
        .map(|u| format!("    server 127.0.0.1:{};\n", u.port()))
        .collect();
    format!(
        "master_process off;\ndaemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           upstream bench {{\n{servers}    keepalive 256;\n  }}\n\
           server {{\n    listen {addr};\n    location / {{\n      proxy_pass http://bench;\n\
               proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n"
    )
}
