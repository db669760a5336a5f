//! Structure checks of `federation-core`'s sources: no import cycles, no overlong functions.
//!
//! **Failure prevented.** Modules that import each other in a loop cannot be read, tested or
//! moved one at a time (issue 17: eighteen files of `client/` had grown into one loop, and the
//! base error type depended on client internals); a function of several hundred lines hides
//! which concern each line serves. Both creep back one import or one branch at a time, so they
//! are checked on every test run instead of by review.
//!
//! **How.** Every `.rs` file under `src/` is a module (`a/b.rs` and `a/b/mod.rs` are `a::b`).
//! Comments, string and character literals and `#[cfg(test)]` items are blanked out (test files,
//! `tests.rs` and `*_tests.rs`, are skipped), then each `use` tree and each path starting with
//! `crate::`, `super::` or `self::` is resolved to the module that *defines* the name, following
//! re-exports (`pub use x::Y`, `pub use x::*`), so a folder's `mod.rs` that only re-exports is
//! a facade, not a hub. Two graphs must be free of cycles: the files, except for the pairs in
//! [`ALLOWED_PAIRS`], and the top-level modules (`client`, `cache`, `telemetry`, ...), with no
//! exception.

mod module_graph_support;

use module_graph_support::{Crate, cycles, long_functions};

/// File pairs that may import each other: each pair is one concern split in two files.
const ALLOWED_PAIRS: &[(&str, &str)] = &[
    // The breaker's state machine and its recovery (probe) bookkeeping share one state word.
    ("breaker::recover", "breaker::state"),
    // The cache store and its fill path (single flight writes back into the store).
    ("cache::store", "cache::store::fill"),
    // Validation of the whole config and of one cluster call each other for nested sections.
    ("config::validate", "config::validate_cluster"),
    // The client handle builds request builders, which hold a client.
    ("client::front", "client::request_builder"),
];

/// The longest function body allowed, in lines (signature to closing brace).
const MAX_FN_LINES: usize = 120;

fn source() -> Crate {
    Crate::read(concat!(env!("CARGO_MANIFEST_DIR"), "/src")).expect("read federation-core/src")
}

#[test]
fn no_module_imports_itself_through_a_loop() {
    let krate = source();
    let edges = krate.edges();
    let mut problems = Vec::new();
    for cycle in cycles(&edges) {
        let allowed = cycle.len() == 2
            && ALLOWED_PAIRS.iter().any(|(a, b)| {
                (cycle[0] == *a && cycle[1] == *b) || (cycle[0] == *b && cycle[1] == *a)
            });
        if !allowed {
            problems.push(describe(&cycle, &edges));
        }
    }
    assert!(
        problems.is_empty(),
        "module import cycles (each line: a module and what it imports inside the cycle):\n{}",
        problems.join("\n")
    );
}

#[test]
fn top_level_modules_form_no_loop() {
    let krate = source();
    let top = krate.top_level_edges();
    let problems: Vec<String> = cycles(&top).iter().map(|c| describe(c, &top)).collect();
    assert!(
        problems.is_empty(),
        "cycles between the top-level modules of federation-core:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_function_is_longer_than_the_limit() {
    let krate = source();
    let long = long_functions(&krate, MAX_FN_LINES);
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines (file:line name lines):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_checker_sees_a_loop_and_a_long_function() {
    // The checks above are only worth something if they can fail: a two-file loop through a
    // re-export and an overlong function, written as sources, must be reported.
    let krate = Crate::from_files(&[
        ("lib.rs", "mod a; mod b; mod c;"),
        ("a.rs", "use crate::c::Thing; pub struct A;"),
        (
            "b.rs",
            "pub struct Thing; fn f() -> crate::a::A { crate::a::A }",
        ),
        ("c.rs", "pub use super::b::*; // re-export only\n"),
        (
            "d.rs",
            &format!("fn long() {{\n{}}}\n", "    let _ = 1;\n".repeat(130)),
        ),
    ]);
    let edges = krate.edges();
    let found = cycles(&edges);
    assert_eq!(
        found,
        vec![vec!["a".to_owned(), "b".to_owned()]],
        "{edges:?}"
    );
    assert_eq!(long_functions(&krate, MAX_FN_LINES).len(), 1);
    // A string, a comment or a test module mentioning a path is no import.
    let quiet = Crate::from_files(&[
        ("lib.rs", "mod a; mod b;"),
        (
            "a.rs",
            "const S: &str = \"crate::b::B\"; // crate::b::B\npub struct A;",
        ),
        (
            "b.rs",
            "pub struct B; fn g() -> crate::a::A { crate::a::A }\n#[cfg(test)]\nmod tests { use crate::b::B; }",
        ),
    ]);
    assert!(cycles(&quiet.edges()).is_empty());
}

fn describe(cycle: &[String], edges: &module_graph_support::Edges) -> String {
    let members: std::collections::BTreeSet<&String> = cycle.iter().collect();
    let mut lines = Vec::new();
    for module in cycle {
        let targets: Vec<&str> = edges
            .get(module)
            .into_iter()
            .flatten()
            .filter(|t| members.contains(t))
            .map(String::as_str)
            .collect();
        lines.push(format!("  {module} -> {}", targets.join(", ")));
    }
    format!("cycle of {}:\n{}", cycle.len(), lines.join("\n"))
}
