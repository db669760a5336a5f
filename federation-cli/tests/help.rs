//! `--help` documents every subcommand and every exit code; bad usage exits 2.

use std::process::Command;

fn federation(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_federation"))
        .args(args)
        .env_remove("FEDERATION_CONFIG")
        .output()
        .expect("the federation binary runs")
}

#[test]
fn help_lists_every_subcommand_and_exit_code() {
    let out = federation(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["demo", "sandbox", "call", "discover", "health", "config"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(sub)),
            "--help does not list `{sub}`:\n{text}"
        );
    }
    for code in [
        "0  success",
        "1  failure",
        "2  usage",
        "3  invalid configuration",
        "4  discovery",
    ] {
        assert!(
            text.contains(code),
            "--help lacks exit code `{code}`:\n{text}"
        );
    }
    assert!(
        text.contains("FEDERATION_CONFIG"),
        "--help names the config variable"
    );
}

#[test]
fn every_subcommand_documents_json_and_exit_codes() {
    for sub in [
        vec!["demo"],
        vec!["sandbox"],
        vec!["call"],
        vec!["discover"],
        vec!["health"],
        vec!["config", "check"],
    ] {
        let mut args = sub.clone();
        args.push("--help");
        let out = federation(&args);
        assert_eq!(out.status.code(), Some(0), "{sub:?} --help");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("--json"),
            "{sub:?} --help lacks --json:\n{text}"
        );
        assert!(
            text.contains("Exit codes:"),
            "{sub:?} --help lacks exit codes"
        );
    }
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(federation(&["no-such-command"]).status.code(), Some(2));
    assert_eq!(
        federation(&["demo", "--duration", "soon"]).status.code(),
        Some(2)
    );
    assert_eq!(
        federation(&["demo", "--min-success", "120"]).status.code(),
        Some(2)
    );
    assert_eq!(federation(&["call", "user"]).status.code(), Some(2));
}

#[test]
fn missing_configuration_exits_3_and_says_where_it_looked() {
    let dir = std::env::temp_dir().join(format!("federation-cli-noconf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_federation"))
        .args(["discover"])
        .current_dir(&dir)
        .env_remove("FEDERATION_CONFIG")
        .output()
        .expect("the federation binary runs");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("FEDERATION_CONFIG") && err.contains("federation.yaml"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
