//! CPU time per stored event, of the bench process and of the broker, for each sync run.
//!
//! A throughput ratio says that one pipe is slower, not where the time goes; on a machine whose
//! two cores are shared by the broker's JVM and the bench process, the gap is CPU, so G9 also
//! reports how many microseconds of CPU each side spent per event that arrived (user + system
//! time from `/proc/<pid>/stat`, in clock ticks of 10 ms, over runs of seconds). Where `/proc`
//! cannot be read (not Linux), the figures are left out and the report says so.

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, 100 on every Linux architecture
/// the bench runs on).
const TICKS_PER_SECOND: u64 = 100;

/// CPU time used so far by this process and by the broker.
#[derive(Clone, Copy, Debug)]
pub struct CpuMark {
    bench: Duration,
    broker: Duration,
}

/// CPU spent during one run, per arrived event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuPerEvent {
    /// Microseconds of the bench process (both ends of the pipe, and the load generator).
    pub bench_us: f64,
    /// Microseconds of the broker's JVM.
    pub broker_us: f64,
}

impl CpuMark {
    /// Now, for this process and the broker `broker_pid` (`None` where unreadable).
    pub fn now(broker_pid: Option<u32>) -> Option<Self> {
        Some(Self {
            bench: cpu_of("self")?,
            broker: cpu_of(&broker_pid?.to_string())?,
        })
    }

    /// The CPU spent from `self` to `later`, per event of `events`.
    pub fn per_event(&self, later: &CpuMark, events: u64) -> Option<CpuPerEvent> {
        if events == 0 {
            return None;
        }
        let per = |from: Duration, to: Duration| {
            to.saturating_sub(from).as_secs_f64() * 1e6 / events as f64
        };
        Some(CpuPerEvent {
            bench_us: per(self.bench, later.bench),
            broker_us: per(self.broker, later.broker),
        })
    }
}

/// User + system time of process `pid` (`self` for this one).
fn cpu_of(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// Fields 14 and 15 (utime, stime) of a `/proc/<pid>/stat` line; the command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat(stat: &str) -> Option<Duration> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    let ticks = user + system;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// The median of each figure over runs (`None` when no run has figures).
pub fn median(runs: &[Option<CpuPerEvent>]) -> Option<CpuPerEvent> {
    let runs: Vec<CpuPerEvent> = runs.iter().flatten().copied().collect();
    let mid = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    Some(CpuPerEvent {
        bench_us: mid(runs.iter().map(|c| c.bench_us).collect())?,
        broker_us: mid(runs.iter().map(|c| c.broker_us).collect())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_system_ticks_are_read_after_the_command_name() {
        let line = "4242 (java (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 60";
        assert_eq!(parse_stat(line), Some(Duration::from_secs(3)));
        assert_eq!(parse_stat("4242 (java) S 1"), None, "too few fields");
        assert!(
            cpu_of("self").is_some(),
            "this process can read its own stat"
        );
    }

    #[test]
    fn per_event_figures_divide_the_difference_by_the_events() {
        let from = CpuMark {
            bench: Duration::from_secs(1),
            broker: Duration::from_secs(2),
        };
        let to = CpuMark {
            bench: Duration::from_secs(2),
            broker: Duration::from_secs(5),
        };
        let cpu = from.per_event(&to, 1_000_000).expect("events");
        assert_eq!((cpu.bench_us, cpu.broker_us), (1.0, 3.0));
        assert_eq!(from.per_event(&to, 0), None);
        let runs = [
            Some(cpu),
            None,
            Some(CpuPerEvent {
                bench_us: 5.0,
                broker_us: 0.5,
            }),
        ];
        assert_eq!(median(&runs).map(|c| c.bench_us), Some(5.0));
        assert_eq!(median(&[None]), None);
    }
}
