//! Keeping every process's tiers coherent: invalidations sent (delete in Redis, publish),
//! received (drop from L1, remember as tombstones), queued while Redis is away and replayed
//! when it returns, and L1 dropped whenever the subscription was (re)established.
//!
//! The failure prevented: a process serving a record another process invalidated, for as long
//! as its L1 keeps it, because a message was lost or never sent.

use std::sync::{Arc, PoisonError};

use super::codec::{self, now_ms};
use super::conn::{Ended, bounded};
use super::stats::Event;
use super::{L2, MAX_PENDING, Scope, Shared, bus, purge};

impl L2 {
    /// Invalidates `scope` fleet-wide: remembered here at once (so this process never reads an
    /// older value back from Redis), then deleted in Redis and published in the background.
    pub(crate) fn invalidate(&self, scope: Scope) {
        let at = now_ms();
        self.shared.tombstones.add(&scope, at, at);
        self.start();
        match self.runtime() {
            Some(runtime) => {
                let this = self.clone();
                runtime.spawn(async move { this.deliver(scope, at).await });
            }
            None => self.shared.keep_pending(scope, at),
        }
    }

    async fn deliver(&self, scope: Scope, at: u64) {
        if !self.shared.deliver(&scope, at).await {
            self.shared.keep_pending(scope, at);
        }
    }
}

impl Shared {
    pub(super) fn keep_pending(&self, scope: Scope, at: u64) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.0.len() < MAX_PENDING {
            pending.0.push((scope, at));
        } else {
            pending.1 = true;
        }
    }

    /// Deletes what `scope` covers in Redis and publishes it. False when Redis was unreachable.
    pub(super) async fn deliver(&self, scope: &Scope, at: u64) -> bool {
        let Some(mut conn) = self.slot.get() else {
            return false;
        };
        let pattern = match scope {
            Scope::Path(p) => self.names.pattern(p, false),
            Scope::Prefix(p) => self.names.pattern(p, true),
            Scope::All => self.names.pattern("", true),
        };
        let message = bus::Message {
            origin: self.origin,
            sent_us: at.saturating_mul(1000).max(codec::now_us()),
            service: self.service.to_string(),
            scope: scope.clone(),
        };
        let channel = self.names.channel.clone();
        let endpoint = self.endpoint.clone();
        let work = async move {
            // Publish first: other processes stop serving as soon as possible.
            let _: i64 = conn
                .query(redis::cmd("PUBLISH").arg(channel).arg(message.encode()))
                .await?;
            purge::purge(&endpoint, &mut conn, &pattern).await
        };
        let delivered = matches!(bounded(purge::PURGE_TIMEOUT, work).await, Ended::Done(_));
        if delivered {
            self.stats.count(Event::InvalidationSent);
        }
        delivered
    }

    /// An invalidation message arrived.
    pub(super) fn receive(&self, payload: &[u8]) {
        let Some(msg) = std::str::from_utf8(payload)
            .ok()
            .and_then(bus::Message::decode)
        else {
            return;
        };
        if msg.origin == self.origin || *msg.service != *self.service {
            return;
        }
        let at = msg.sent_us / 1000;
        self.tombstones.add(&msg.scope, at, now_ms());
        if let Some(l1) = self.l1.get() {
            l1(&msg.scope);
        }
        self.stats.count(Event::InvalidationReceived);
        self.stats.propagation(bus::delay_since(msg.sent_us));
    }

    /// The subscription is (re)established: drop L1 (it may have missed invalidations) and
    /// deliver invalidations that could not be sent meanwhile.
    pub(super) fn subscribed(self: &Arc<Self>) {
        self.resync();
        self.stats.set_subscribed(true);
        let (pending, overflowed) =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if pending.is_empty() && !overflowed {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let work: Vec<(Scope, u64)> = if overflowed {
                vec![(Scope::All, now_ms())]
            } else {
                pending
            };
            for (scope, at) in work {
                let Some(shared) = weak.upgrade() else { return };
                if !shared.deliver(&scope, at).await {
                    shared.keep_pending(scope, at);
                }
            }
        });
    }

    pub(super) fn unsubscribed(&self) {
        self.stats.set_subscribed(false);
        self.resync();
    }

    fn resync(&self) {
        if let Some(l1) = self.l1.get() {
            l1(&Scope::All);
        }
        self.stats.count(Event::Resync);
    }
}
