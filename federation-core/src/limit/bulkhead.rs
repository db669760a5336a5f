//! A concurrency limit (bulkhead): at most `max` calls of a service in flight.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug)]
struct Inner {
    in_use: AtomicU32,
    max: u32,
}

/// A non-waiting concurrency limit. Cheap to clone (shared count).
#[derive(Clone)]
pub struct Bulkhead {
    inner: Arc<Inner>,
}

impl Bulkhead {
    /// A bulkhead admitting `max` concurrent calls (`0` admits none).
    pub fn new(max: u32) -> Self {
        Self {
            inner: Arc::new(Inner {
                in_use: AtomicU32::new(0),
                max,
            }),
        }
    }

    /// A slot for one call, or `None` at once when all `max` are taken (fail fast with
    /// `overloaded`). The slot is released when the permit drops.
    pub fn try_acquire(&self) -> Option<BulkheadPermit> {
        self.inner
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.inner.max).then_some(n + 1)
            })
            .ok()
            .map(|_| BulkheadPermit {
                inner: Arc::clone(&self.inner),
            })
    }

    /// Calls currently holding a slot.
    pub fn in_use(&self) -> u32 {
        self.inner.in_use.load(Ordering::Acquire)
    }
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bulkhead({}/{})", self.in_use(), self.inner.max)
    }
}

/// One occupied bulkhead slot; dropping it frees the slot.
#[must_use = "the slot is released as soon as the permit is dropped"]
pub struct BulkheadPermit {
    inner: Arc<Inner>,
}

impl Drop for BulkheadPermit {
    fn drop(&mut self) {
        self.inner.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

impl fmt::Debug for BulkheadPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BulkheadPermit")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_max_and_frees_on_drop() {
        let bulkhead = Bulkhead::new(2);
        let a = bulkhead.try_acquire().expect("first slot");
        let b = bulkhead.try_acquire().expect("second slot");
        assert!(
            bulkhead.try_acquire().is_none(),
            "third call must be refused"
        );
        assert_eq!(bulkhead.in_use(), 2);
        drop(a);
        let c = bulkhead
            .clone()
            .try_acquire()
            .expect("freed slot is reusable");
        drop((b, c));
        assert_eq!(bulkhead.in_use(), 0);
        assert!(Bulkhead::new(0).try_acquire().is_none());
    }

    #[test]
    fn never_exceeds_max_under_concurrency() {
        let bulkhead = Bulkhead::new(3);
        let peak = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..2000 {
                        if let Some(p) = bulkhead.try_acquire() {
                            peak.fetch_max(bulkhead.in_use(), Ordering::Relaxed);
                            drop(p);
                        }
                    }
                });
            }
        });
        assert!(peak.load(Ordering::Relaxed) <= 3);
        assert_eq!(bulkhead.in_use(), 0);
    }
}
