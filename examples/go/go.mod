module github.com/federation/examples-go

go 1.26

require github.com/federation/federation-go v0.0.0

// The SDK from this checkout (it links ../../target/debug/libfederation.a: build it first with
// `cargo build -p federation-ffi`).
replace github.com/federation/federation-go => ../../federation-go
