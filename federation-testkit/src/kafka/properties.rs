//! The single-node KRaft `server.properties` and the random cluster id.
//!
//! A broker left with defaults meant for a cluster (replication factor 3 for the offsets topic,
//! a 3 s delay before the first consumer group forms) never becomes usable on one node, or makes
//! every test wait. This file writes the settings that make one node a whole cluster, on the
//! loopback ports chosen by the caller.

use std::fmt::Write as _;
use std::path::Path;

/// The two loopback ports of one broker; kept across restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ports {
    /// Clients connect here (`PLAINTEXT`).
    pub(crate) broker: u16,
    /// The KRaft controller listener.
    pub(crate) controller: u16,
}

/// `server.properties` for a combined broker + controller (node id 1) storing its log in
/// `log_dir`. `extra` lines are appended last, so they override.
pub(crate) fn server_properties(
    ports: Ports,
    log_dir: &Path,
    extra: &[(String, String)],
) -> String {
    let Ports { broker, controller } = ports;
    let mut text = format!(
        "process.roles=broker,controller\n\
         node.id=1\n\
         controller.quorum.voters=1@127.0.0.1:{controller}\n\
         listeners=PLAINTEXT://127.0.0.1:{broker},CONTROLLER://127.0.0.1:{controller}\n\
         advertised.listeners=PLAINTEXT://127.0.0.1:{broker}\n\
         controller.listener.names=CONTROLLER\n\
         inter.broker.listener.name=PLAINTEXT\n\
         listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
         log.dirs={}\n\
         num.partitions=1\n\
         offsets.topic.replication.factor=1\n\
         offsets.topic.num.partitions=4\n\
         transaction.state.log.replication.factor=1\n\
         transaction.state.log.min.isr=1\n\
         share.coordinator.state.topic.replication.factor=1\n\
         share.coordinator.state.topic.min.isr=1\n\
         group.initial.rebalance.delay.ms=0\n\
         auto.create.topics.enable=true\n",
        log_dir.display()
    );
    for (key, value) in extra {
        let _ = writeln!(text, "{key}={value}");
    }
    text
}

/// A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters), never
/// starting with `-` (the storage tool's argument parser would take it for an option; Kafka's own
/// `Uuid.randomUuid` redraws such ids too).
pub(crate) fn random_cluster_id() -> String {
    loop {
        let id = base64_url(&rand::random::<[u8; 16]>());
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// URL-safe base64 without padding (RFC 4648 §5).
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_url_matches_rfc_4648_vectors_without_padding() {
        assert_eq!(base64_url(b""), "");
        assert_eq!(base64_url(b"f"), "Zg");
        assert_eq!(base64_url(b"fo"), "Zm8");
        assert_eq!(base64_url(b"foo"), "Zm9v");
        assert_eq!(base64_url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn cluster_ids_are_22_characters_and_differ() {
        let a = random_cluster_id();
        assert_eq!(a.len(), 22);
        assert_ne!(a, random_cluster_id());
    }

    #[test]
    fn cluster_ids_never_start_with_a_dash() {
        // One id in 64 would without the redraw: 5,000 draws miss that with odds of ~1e-34.
        for _ in 0..5_000 {
            assert!(!random_cluster_id().starts_with('-'));
        }
    }

    #[test]
    fn extra_properties_come_last_and_ports_are_used() {
        let ports = Ports {
            broker: 19092,
            controller: 19093,
        };
        let text = server_properties(
            ports,
            Path::new("/tmp/x"),
            &[("num.partitions".into(), "3".into())],
        );
        assert!(
            text.contains("listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093")
        );
        assert!(text.contains("controller.quorum.voters=1@127.0.0.1:19093"));
        assert!(text.trim_end().ends_with("num.partitions=3"));
    }
}
