//! Invalidation messages between processes: Redis pub/sub on `<key_prefix>invalidate`.
//!
//! Without them a process keeps serving from its L1 an entry another process invalidated, for
//! up to the L1 TTL. Every process subscribes; `invalidate` publishes what it dropped; receivers
//! drop the same from their L1 and remember it (tombstones). A subscription is a TCP connection
//! that can break unnoticed by the sender, and messages published meanwhile are lost for good, so
//! whenever the subscription is (re)established the process drops its whole L1: it cannot vouch
//! for entries that may have missed an invalidation.
//!
//! Why pub/sub and not RESP3 client-side caching (`CLIENT TRACKING`): L1 keys are not Redis keys
//! (an L1 entry may never have been in Redis: oversized, or Redis was down), invalidation is by
//! logical path *prefix* across many keys, a message carries its send time (the propagation-delay
//! metric) and one channel works identically on a standalone server and on Redis Cluster, where
//! tracking would need a redirect connection per node.

use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;

use super::Shared;
use super::codec::now_us;
use super::conn::CONNECT_TIMEOUT;
use super::tombstones::Scope;

/// One invalidation as sent on the channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Message {
    /// The sending tier (a process ignores its own messages).
    pub(crate) origin: u64,
    /// Wall clock of the send, microseconds since the epoch.
    pub(crate) sent_us: u64,
    pub(crate) service: String,
    pub(crate) scope: Scope,
}

impl Message {
    /// `1|<origin hex>|<sent µs>|<service>|<p|x|a>|<path>` (the path last: it may contain `|`).
    pub(crate) fn encode(&self) -> String {
        let (kind, path) = match &self.scope {
            Scope::Path(p) => ('p', p.as_str()),
            Scope::Prefix(p) => ('x', p.as_str()),
            Scope::All => ('a', ""),
        };
        format!(
            "1|{:x}|{}|{}|{kind}|{path}",
            self.origin, self.sent_us, self.service
        )
    }

    pub(crate) fn decode(text: &str) -> Option<Self> {
        let mut parts = text.splitn(6, '|');
        if parts.next()? != "1" {
            return None;
        }
        let origin = u64::from_str_radix(parts.next()?, 16).ok()?;
        let sent_us = parts.next()?.parse().ok()?;
        let service = parts.next()?.to_owned();
        let kind = parts.next()?;
        let path = parts.next()?.to_owned();
        let scope = match kind {
            "p" => Scope::Path(path),
            "x" => Scope::Prefix(path),
            "a" => Scope::All,
            _ => return None,
        };
        Some(Self {
            origin,
            sent_us,
            service,
            scope,
        })
    }
}

/// Keeps the subscription up until the tier is dropped (`stop` closes).
pub(crate) async fn subscribe_loop(weak: Weak<Shared>, mut stop: watch::Receiver<()>) {
    let mut backoff = Duration::from_millis(20);
    let mut next_server = 0usize;
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let servers = shared.endpoint.servers();
        let Some(addr) = servers.get(next_server % servers.len().max(1)).cloned() else {
            return;
        };
        next_server += 1;
        let channel = shared.names.channel.clone();
        let endpoint = shared.endpoint.clone();
        drop(shared);
        let attempt = async move {
            let client = endpoint.client(addr)?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::select! {
            r = tokio::time::timeout(CONNECT_TIMEOUT, attempt) => r.ok().and_then(Result::ok),
            _ = stop.changed() => return,
        };
        let Some(pubsub) = pubsub else {
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(1));
            continue;
        };
        backoff = Duration::from_millis(20);
        let Some(shared) = weak.upgrade() else { return };
        shared.subscribed();
        drop(shared);
        let mut messages = pubsub.into_on_message();
        loop {
            tokio::select! {
                msg = messages.next() => match msg {
                    Some(msg) => match weak.upgrade() {
                        Some(shared) => shared.receive(msg.get_payload_bytes()),
                        None => return,
                    },
                    None => break,
                },
                _ = stop.changed() => return,
            }
        }
        let Some(shared) = weak.upgrade() else { return };
        shared.unsubscribed();
    }
}

/// The propagation delay of a message sent at `sent_us`, as seen now.
pub(crate) fn delay_since(sent_us: u64) -> Duration {
    Duration::from_micros(now_us().saturating_sub(sent_us))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_with_any_path() {
        for scope in [
            Scope::Path("/a|b/c".into()),
            Scope::Prefix("/api/".into()),
            Scope::All,
        ] {
            let m = Message {
                origin: 0xabc,
                sent_us: 42,
                service: "user".into(),
                scope,
            };
            assert_eq!(Message::decode(&m.encode()), Some(m));
        }
        assert_eq!(Message::decode("2|1|1|user|p|/x"), None);
        assert_eq!(Message::decode("1|zz|1|user|p|/x"), None);
        assert_eq!(Message::decode("1|1|1|user|q|/x"), None);
    }
}
