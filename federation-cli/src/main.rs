//! The `federation` command (under construction: see README).

fn main() {
    eprintln!("federation: the CLI is under construction; see README.md");
    std::process::exit(2);
}
