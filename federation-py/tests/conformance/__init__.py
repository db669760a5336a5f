"""The Python conformance runner: tests/scenarios/*.yaml through the `federation` package.

A scenario must mean the same in Rust, Python and Go, or "passes in all three" proves nothing.
So this package re-implements federation-conformance (Rust) literally: `scenario` reads a file
strictly (unknown keys are errors), `world` is the World seam over `federation.testing`,
`driver` is the Driver seam over `FederatedServiceClient`, `runner` keeps the step order and
counter reads of runner.rs, and `expect` the arithmetic of expect.rs. See docs/conformance.md.
"""
