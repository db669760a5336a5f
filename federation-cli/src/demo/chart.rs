//! A terminal chart of traffic share per cluster over time.
//!
//! A table says "looma served 98 % of user calls during the failover"; the chart shows the
//! shape: when traffic moved, how fast, and that it came back only after the dwell time. One
//! row per cluster, one column per time bucket (1 s, or wider for long runs so the chart stays
//! under ~72 columns); each cell is an eighth-block bar of that cluster's share of the bucket's
//! upstream calls. A last row marks the phases by number.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::report::{Bucket, DemoReport};

/// Widest chart in columns.
const MAX_COLUMNS: usize = 72;
/// Bars from empty to full in eighths.
const LEVELS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Renders the user-service chart and the all-traffic chart with a phase legend.
pub fn render(report: &DemoReport) -> String {
    let buckets = &report.timeline;
    let width = buckets.len().div_ceil(MAX_COLUMNS).max(1);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\ntraffic share per cluster over time (1 column = {width} s)"
    );
    let label_width = report
        .clusters
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0)
        .max(7);
    for (title, pick) in [
        (
            "user service",
            (|b: &Bucket| &b.user) as fn(&Bucket) -> &BTreeMap<String, u64>,
        ),
        ("all services", |b: &Bucket| &b.all),
    ] {
        let _ = writeln!(out, "  {title}");
        for cluster in &report.clusters {
            let row: String = buckets
                .chunks(width)
                .map(|chunk| bar(chunk, cluster, pick))
                .collect();
            let _ = writeln!(out, "  {cluster:>label_width$} │{row}│");
        }
    }
    let phases: String = buckets
        .chunks(width)
        .map(|chunk| {
            let phase = chunk.first().map_or(0, |b| b.phase);
            char::from_digit((phase as u32 + 1) % 36, 36).unwrap_or('?')
        })
        .collect();
    let _ = writeln!(out, "  {:>label_width$}  {phases}", "phase");
    let legend: Vec<String> = report
        .phases
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{} {}", i + 1, p.name))
        .collect();
    let _ = writeln!(out, "  {:>label_width$}  {}", "", legend.join("  "));
    out
}

/// The bar for `cluster` over a chunk of buckets.
fn bar(chunk: &[Bucket], cluster: &str, pick: fn(&Bucket) -> &BTreeMap<String, u64>) -> char {
    let mine: u64 = chunk
        .iter()
        .map(|b| pick(b).get(cluster).copied().unwrap_or(0))
        .sum();
    let total: u64 = chunk.iter().map(|b| pick(b).values().sum::<u64>()).sum();
    if total == 0 {
        return '·';
    }
    let level = ((mine as f64 / total as f64) * 8.0).round() as usize;
    // A cluster that served anything gets at least the lowest bar, so a trickle is visible.
    let level = if mine > 0 { level.max(1) } else { 0 };
    LEVELS[level.min(8)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(z: u64, l: u64) -> Bucket {
        let counts = BTreeMap::from([("zervigo".to_owned(), z), ("looma".to_owned(), l)]);
        Bucket {
            second: 0,
            phase: 0,
            user: counts.clone(),
            all: counts,
        }
    }

    #[test]
    fn bars_follow_the_share() {
        let pick: fn(&Bucket) -> &BTreeMap<String, u64> = |b| &b.user;
        assert_eq!(bar(&[bucket(10, 0)], "zervigo", pick), '█');
        assert_eq!(bar(&[bucket(10, 0)], "looma", pick), ' ');
        assert_eq!(bar(&[bucket(5, 5)], "looma", pick), '▄');
        assert_eq!(bar(&[bucket(99, 1)], "looma", pick), '▁');
        assert_eq!(bar(&[bucket(0, 0)], "looma", pick), '·');
    }
}
