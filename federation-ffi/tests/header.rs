//! The checked-in C header must match the Rust source.
//!
//! A stale header silently miscompiles C and Go callers (wrong struct layout, missing
//! functions). This test regenerates `include/federation.h` with cbindgen and fails when it
//! differs from the checked-in file. Regenerate with
//! `FEDERATION_BLESS_HEADER=1 cargo test -p federation-ffi --test header`.

use std::path::Path;

#[test]
fn checked_in_header_matches_the_source() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen can parse the crate");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("header is UTF-8");
    let path = crate_dir.join("include/federation.h");
    if std::env::var_os("FEDERATION_BLESS_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write include/federation.h");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/federation.h is out of date; regenerate it with \
         `FEDERATION_BLESS_HEADER=1 cargo test -p federation-ffi --test header` and commit it"
    );
}
