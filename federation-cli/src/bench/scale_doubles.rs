//! The scale scenario's Consul doubles in a process of their own.
//!
//! A fleet's reconnect after a Consul restart is a race between 200 clients and the registry
//! answering them; with the doubles in the bench process the clients, the doubles and the
//! bench's own health poller share one process's CPU, and what was measured was that CPU, not
//! the reconnect (BENCHMARKS.md, "S6: what limits it"). So the bench starts itself again with
//! [`DOUBLES_ENV`] set: the child registers the scale world in two doubles, prints their URLs,
//! and then answers one-line commands on stdin (`down`, `up`, `requests <services>`). It exits
//! when its stdin closes (the bench ended, however it ended), and the bench kills it by its pid
//! when the handle is dropped (also while unwinding from a panic).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

use federation_testkit::consul::{ConsulDouble, Fault};

use super::scale_fixture::{self, Shape};
use crate::exit::{CliError, Exit};

/// Environment variable that turns `federation bench` into the doubles' process:
/// `"<services> <instances> <real> <wait> <port>,<port>,…"` (the live servers' ports).
const DOUBLES_ENV: &str = "FEDERATION_BENCH_SCALE_DOUBLES";

/// The child's pipes: one command line out, one answer line back.
struct Pipes {
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Pipes {
    fn ask(&mut self, command: &str) -> Result<String, String> {
        writeln!(self.input, "{command}").map_err(|e| format!("write {command:?}: {e}"))?;
        self.input
            .flush()
            .map_err(|e| format!("write {command:?}: {e}"))?;
        let mut line = String::new();
        match self.output.read_line(&mut line) {
            Ok(0) => Err(format!("{command:?}: the doubles' process exited")),
            Ok(_) => Ok(line.trim_end().to_owned()),
            Err(e) => Err(format!("{command:?}: read: {e}")),
        }
    }
}

/// The doubles' process; killed by its pid and reaped when dropped.
pub struct DoublesProcess {
    child: Child,
    pipes: Arc<Mutex<Pipes>>,
    /// The doubles' base URLs, one per cluster.
    pub urls: Vec<String>,
    /// The doubles' ports, one per cluster.
    pub ports: Vec<u16>,
}

impl Drop for DoublesProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DoublesProcess {
    /// Starts the doubles' process for `shape` (the live services point at `server_ports`)
    /// and waits until every instance is registered.
    ///
    /// # Errors
    /// When it cannot start, or prints something other than its URLs.
    pub async fn spawn(shape: &Shape, server_ports: &[u16]) -> Result<Self, CliError> {
        let exe = std::env::current_exe().map_err(|e| fail(format!("own path: {e}")))?;
        let ports: Vec<String> = server_ports.iter().map(u16::to_string).collect();
        let spec = format!(
            "{} {} {} {} {}",
            shape.services,
            shape.instances,
            shape.real,
            shape.wait_secs,
            ports.join(",")
        );
        let mut child = Command::new(exe)
            .args(["bench", "--scenario", "scale"])
            .env(DOUBLES_ENV, spec)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| fail(format!("spawn: {e}")))?;
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail("no pipes".into()));
        };
        let mut process = Self {
            child,
            pipes: Arc::new(Mutex::new(Pipes {
                input,
                output: BufReader::new(output),
            })),
            urls: Vec::new(),
            ports: Vec::new(),
        };
        let first = process.ask("urls").await?;
        process.urls = first.split_whitespace().map(str::to_owned).collect();
        process.ports = process
            .urls
            .iter()
            .filter_map(|u| u.rsplit(':').next()?.parse().ok())
            .collect();
        if process.urls.len() != scale_fixture::CLUSTERS.len()
            || process.ports.len() != process.urls.len()
        {
            return Err(fail(format!("unexpected URLs {first:?}")));
        }
        Ok(process)
    }

    /// Sends one command and returns the answer line; the pipes are read off the runtime's
    /// workers (the child may be slow to answer while it serves a reconnecting fleet).
    async fn ask(&self, command: &str) -> Result<String, CliError> {
        let pipes = Arc::clone(&self.pipes);
        let command = command.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut pipes = pipes.lock().map_err(|_| "pipes poisoned".to_owned())?;
            pipes.ask(&command)
        })
        .await
        .map_err(|e| fail(format!("command task: {e}")))?
        .map_err(fail)
    }

    /// CPU seconds the doubles' process used so far.
    pub fn cpu_seconds(&self) -> f64 {
        scale_fixture::cpu_seconds_of(&self.child.id().to_string()).unwrap_or(0.0)
    }

    /// Seconds the doubles' threads waited for a CPU so far.
    pub fn run_queue_seconds(&self) -> f64 {
        scale_fixture::run_queue_seconds_of(&self.child.id().to_string())
    }

    /// Takes both doubles down (`true`: listeners closed, connections dropped) or up again.
    ///
    /// # Errors
    /// When the child does not confirm.
    pub async fn set_down(&self, down: bool) -> Result<(), CliError> {
        let answer = self.ask(if down { "down" } else { "up" }).await?;
        if answer == "ok" {
            Ok(())
        } else {
            Err(fail(format!("down={down}: answered {answer:?}")))
        }
    }

    /// Health requests both doubles received for the first `services` services.
    ///
    /// # Errors
    /// When the child does not answer with a number.
    pub async fn health_requests(&self, services: usize) -> Result<u64, CliError> {
        let answer = self.ask(&format!("requests {services}")).await?;
        answer
            .parse()
            .map_err(|_| fail(format!("requests: answered {answer:?}")))
    }
}

fn fail(what: String) -> CliError {
    CliError::failure(format!("bench: scale doubles' process: {what}"))
}

/// When [`DOUBLES_ENV`] is set: runs the doubles until stdin closes.
pub async fn doubles_mode() -> Option<Result<Exit, CliError>> {
    let spec = std::env::var(DOUBLES_ENV).ok()?;
    Some(serve(&spec).await)
}

/// Parses the child's specification.
fn parse_spec(spec: &str) -> Option<(Shape, Vec<u16>)> {
    let parts: Vec<&str> = spec.split_whitespace().collect();
    let [services, instances, real, wait, ports] = parts[..] else {
        return None;
    };
    let shape = Shape {
        services: services.parse().ok()?,
        instances: instances.parse().ok()?,
        real: real.parse().ok()?,
        wait_secs: wait.parse().ok()?,
    };
    let ports = ports
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<u16>, _>>()
        .ok()?;
    Some((shape, ports))
}

async fn serve(spec: &str) -> Result<Exit, CliError> {
    let (shape, ports) = parse_spec(spec).ok_or_else(|| {
        CliError::usage(format!(
            "{DOUBLES_ENV}: expected `<services> <instances> <real> <wait> <port>,…`, got {spec:?}"
        ))
    })?;
    let doubles = scale_fixture::start_doubles(&shape, &ports).await?;
    let (send, mut commands) = tokio::sync::mpsc::unbounded_channel::<String>();
    // stdin is read on a plain thread; its end (the bench gone) ends this process.
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let mut out = std::io::stdout().lock();
    while let Some(command) = commands.recv().await {
        let answer = answer(&doubles, &shape, command.trim());
        if writeln!(out, "{answer}")
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
    }
    Ok(Exit::Ok)
}

/// The answer to one command.
fn answer(doubles: &[ConsulDouble], shape: &Shape, command: &str) -> String {
    match command.split_once(' ').unwrap_or((command, "")) {
        ("urls", _) => doubles
            .iter()
            .map(ConsulDouble::url)
            .collect::<Vec<_>>()
            .join(" "),
        ("down", _) => {
            doubles.iter().for_each(|d| d.set_fault(Fault::Down));
            "ok".into()
        }
        ("up", _) => {
            doubles.iter().for_each(ConsulDouble::clear_fault);
            "ok".into()
        }
        ("requests", n) => match n.parse::<usize>() {
            Ok(n) => scale_fixture::health_requests(doubles, n.min(shape.services)).to_string(),
            Err(_) => format!("error: `requests {n}`: not a number of services"),
        },
        _ => format!("error: unknown command {command:?} (urls, down, up, requests <n>)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_is_parsed_and_bad_ones_are_refused() {
        let (shape, ports) = parse_spec("20 10 4 1 81,82,83").expect("valid");
        assert_eq!(
            (shape.services, shape.instances, shape.real, shape.wait_secs),
            (20, 10, 4, 1)
        );
        assert_eq!(ports, [81, 82, 83]);
        assert!(parse_spec("20 10 4 1").is_none());
        assert!(parse_spec("20 10 4 1 81,x").is_none());
        assert!(parse_spec("twenty 10 4 1 81").is_none());
    }
}
