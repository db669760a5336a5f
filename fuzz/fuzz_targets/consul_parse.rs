//! Fuzzes the Consul `/v1/health/service` answer path: each input is served as the body of a
//! loopback "agent" and read by a real discovery watcher (the parser itself is private to
//! federation-core). A panic, a hung watcher (`Timeout`) or an unroutable accepted instance is
//! a finding. Slower than an in-process parser (one HTTP exchange per input).
#![no_main]

use std::sync::OnceLock;

use federation_conformance::consul_probe::{BodyServer, discover};
use federation_core::discovery::DiscoveryErrorKind;
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

fn server() -> &'static BodyServer {
    static SERVER: OnceLock<BodyServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        runtime()
            .block_on(BodyServer::start())
            .expect("loopback server")
    })
}

fuzz_target!(|data: &[u8]| {
    let server = server();
    match runtime().block_on(discover(server, data.to_vec(), Some("7".to_owned()))) {
        Ok(set) => {
            for instance in set.instances.iter() {
                assert!(
                    !instance.host.trim().is_empty() && instance.port != 0,
                    "{instance:?}"
                );
            }
        }
        Err(error) => assert!(*error.kind() != DiscoveryErrorKind::Timeout, "{error}"),
    }
});
