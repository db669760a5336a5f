// Package consulcompat drives the testkit's Consul double with HashiCorp's official Go client
// (github.com/hashicorp/consul/api), the client every Go service of the plan registers and
// discovers with. The double was only ever spoken to by the SDK's own code, so it accepted what
// the SDK sends and nothing else: the official client's "Checks": null made every Go
// registration fail with 400. These tests send what the real client sends and read back what
// it parses, and check that the SDK and the official client see each other's instances.
//
// This module is test-only: federation-go does not depend on it or on the Consul client.
// scripts/ffi-go-test.sh runs it (after `cargo build -p federation-ffi`).
package consulcompat
