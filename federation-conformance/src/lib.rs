//! # federation-conformance
//!
//! One resilience behaviour, proven identical in Rust, Python and Go. A behaviour that is only
//! tested in the language it was written in drifts in the bindings unnoticed (a default that is
//! different, an error kind mapped wrongly, a retry that the wrapper adds). So the behaviours are
//! written once as **scenario files** (`tests/scenarios/*.yaml`, format in [`schema`] and
//! `docs/conformance.md`), and each language runs them through its own public API against its
//! testkit: this crate holds the format, the language-neutral runner ([`runner`], [`expect`])
//! with its two seams ([`driver::World`], [`driver::Driver`]), and the Rust implementations of
//! both ([`testkit_world`], [`sdk_driver`]).
//!
//! [`chaos`] is the seeded random fault run whose invariants are checked after every step.
//!
//! ```no_run
//! use federation_conformance::{run_rust, schema::Scenario};
//! # async fn demo() -> Result<(), String> {
//! let scenario = Scenario::load(std::path::Path::new("tests/scenarios/kill-one-of-three.yaml"))
//!     .map_err(|e| e.to_string())?;
//! let report = run_rust(&scenario).await?;
//! println!("{}", report.render());
//! # Ok(()) }
//! ```

pub mod chaos;
pub mod consul_probe;
pub mod driver;
pub mod expect;
pub mod load;
pub mod runner;
pub mod schema;
pub mod sdk_driver;
pub mod target;
pub mod testkit_world;

use runner::ScenarioReport;
use schema::Scenario;

/// Runs `scenario` against a fresh testkit world with the Rust SDK. `Err` means the world or
/// the client could not be set up (itself a failure of the scenario).
pub async fn run_rust(scenario: &Scenario) -> Result<ScenarioReport, String> {
    let world = testkit_world::TestkitWorld::start(&scenario.topology).await?;
    let result = match runner::client_config(scenario, &world)
        .and_then(|config| sdk_driver::SdkDriver::from_json(&config))
    {
        Ok(driver) => Ok(runner::run(scenario, &world, &driver).await),
        Err(e) => Err(e),
    };
    world.shutdown().await;
    result
}
