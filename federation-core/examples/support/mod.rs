//! What the profiling examples (`call_cost`, `scale_call_cost`) share: the process's CPU time
//! and their positional arguments, read strictly.
//!
//! A profiling run that silently measures something else is worse than none: a mistyped
//! variant or count used to fall back to a default (an old `call_cost` run as `floor` measured
//! reqwest). Every argument here is either absent (its default) or valid; anything else ends
//! the program with a message naming the argument, the value and what is allowed.
#![allow(dead_code, reason = "each example uses a different subset")]

/// User + system CPU time of this process in clock ticks, from `/proc/self/stat` (0 where the
/// file is missing, e.g. not on Linux).
pub fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name.
    field(11) + field(12)
}

/// User and system CPU time of this process in clock ticks, apart (see [`cpu_ticks`]).
pub fn cpu_ticks_split() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    (
        fields.first().copied().unwrap_or(0),
        fields.get(1).copied().unwrap_or(0),
    )
}

/// Voluntary and involuntary context switches of all this process's threads so far, from
/// `/proc/self/task/*/status` (threads that already ended are not counted).
pub fn context_switches() -> (u64, u64) {
    let mut total = (0, 0);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return total;
    };
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            let count = |prefix: &str| {
                line.strip_prefix(prefix)
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            total.0 += count("voluntary_ctxt_switches:");
            total.1 += count("nonvoluntary_ctxt_switches:");
        }
    }
    total
}

/// Time since this was first called (the examples call it at the start of `main`).
pub fn since_start() -> std::time::Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

/// Positional argument `i` (1-based) named `name` as a whole number, `default` when absent.
pub fn number(args: &[String], i: usize, name: &str, default: u64) -> u64 {
    match args.get(i) {
        None => default,
        Some(text) => text.parse().unwrap_or_else(|_| {
            usage_error(&format!(
                "argument {i} ({name}) is `{text}`: expected a whole number, e.g. {default}"
            ))
        }),
    }
}

/// Positional argument `i` named `name`, one of `allowed`; the first one when absent.
pub fn choice(args: &[String], i: usize, name: &str, allowed: &[&str]) -> String {
    match args.get(i) {
        None => allowed.first().copied().unwrap_or_default().to_owned(),
        Some(text) if allowed.contains(&text.as_str()) => text.clone(),
        Some(text) => usage_error(&format!(
            "argument {i} ({name}) is `{text}`: expected one of {}",
            allowed.join(", ")
        )),
    }
}

fn usage_error(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(2)
}
