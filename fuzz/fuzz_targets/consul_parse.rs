//! Fuzzes the Consul `/v1/health/service` answer parser in-process
//! (`federation_core::discovery::parse_health_answer`, the function the discovery watcher
//! calls on every answer). A panic or an accepted instance that cannot be routed to (empty host,
//! port 0) is a finding. The end-to-end path (HTTP exchange, index header, watcher) is covered
//! by the property tests in federation-conformance/tests/consul_props.rs.
#![no_main]

use federation_core::discovery::parse_health_answer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((instances, _datacenter)) = parse_health_answer("user-service", data) {
        for instance in &instances {
            assert!(
                !instance.host.trim().is_empty() && instance.port != 0,
                "{instance:?}"
            );
        }
    }
});
