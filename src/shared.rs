//! What the adapters share: the model behind one lock, and per-resource watch statistics.
//!
//! The lock is held only to apply one event or to take one snapshot; nothing writes to a socket
//! or waits on the network while holding it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::model::{Event, Model, ModelStats, Resource, Timestamp, WorkloadMetrics};
use crate::shard::Sharding;

/// The exporter's clock: receive times and scrape times for the model.
pub fn now() -> Timestamp {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    Timestamp::from_micros(micros)
}

/// By default, a watch that has failed for this long without a success makes the exporter not
/// ready (`--watch.failure-timeout`).
pub const DEFAULT_FAILURE_TIMEOUT: Duration = Duration::from_secs(60);

/// Counters and health of the watches of one resource (all namespaces together).
#[derive(Debug, Default)]
pub struct WatchStats {
    pub events: AtomicU64,
    pub errors: AtomicU64,
    pub restarts: AtomicU64,
    health: Mutex<Health>,
    /// Answers of the API server to lists and watches: (verb, HTTP status or 0 when none came)
    /// → count.
    requests: Mutex<std::collections::BTreeMap<(&'static str, u16), u64>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Health {
    last_success: Option<Instant>,
    last_error: Option<Instant>,
}

impl WatchStats {
    /// Counts one API answer (`code` 0: no answer, the connection failed).
    pub fn request(&self, verb: &'static str, code: u16) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((verb, code)).or_default() += 1;
        }
    }

    /// The API answers counted so far.
    pub fn requests(&self) -> Vec<((&'static str, u16), u64)> {
        self.requests
            .lock()
            .map(|r| r.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default()
    }

    pub fn success(&self, at: Instant) {
        if let Ok(mut h) = self.health.lock() {
            h.last_success = Some(at);
        }
    }

    pub fn error(&self, at: Instant) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut h) = self.health.lock() {
            h.last_error = Some(at);
        }
    }

    /// Failing: the latest outcome is an error and nothing succeeded for `timeout`. Successes are
    /// watch events and every 2xx answer to a list or
    /// watch (a quiet, resumed watch included), so routine 410 relists and one-off drops do not
    /// flap readiness, and an API server that stays away does.
    pub fn failing(&self, now: Instant, started: Instant, timeout: Duration) -> bool {
        let Ok(h) = self.health.lock() else {
            return true;
        };
        let Some(error) = h.last_error else {
            return false;
        };
        let success = h.last_success.unwrap_or(started);
        error > success && now.duration_since(success) > timeout
    }
}

/// State shared by the watches, the HTTP server and the metrics.
#[derive(Debug)]
pub struct Shared {
    model: Mutex<Model>,
    watches: [WatchStats; 4],
    pub started: Instant,
    /// This exporter's shard, once known (automatic sharding asks the API server first).
    pub sharding: OnceLock<Sharding>,
    /// How long a watch may fail before the exporter is not ready.
    pub failure_timeout: Duration,
}

/// What a scrape reads, copied out under the lock.
pub struct Snapshot {
    pub workloads: Vec<WorkloadMetrics>,
    pub stats: ModelStats,
    pub synced: [bool; 4],
    pub slo_thresholds: Vec<u64>,
}

impl Shared {
    pub fn new(model: Model) -> Self {
        Self::with_failure_timeout(model, DEFAULT_FAILURE_TIMEOUT)
    }

    pub fn with_failure_timeout(model: Model, failure_timeout: Duration) -> Self {
        Self {
            model: Mutex::new(model),
            watches: Default::default(),
            started: Instant::now(),
            sharding: OnceLock::new(),
            failure_timeout,
        }
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        // A panic while applying one event must not stop every later scrape: the model's
        // invariants hold between events, so its state is still usable.
        self.model
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies events received now, under one lock: a batch of a list page, or the events of
    /// one read of a watch, so the watches do not queue on the lock for every object.
    pub fn handle_all(&self, events: impl IntoIterator<Item = Event>) {
        let now = now();
        let mut model = self.model();
        for event in events {
            model.handle(event, now);
        }
    }

    /// The counters and health of `resource`'s watches, which its watch loop updates.
    pub fn watch_stats(&self, resource: Resource) -> &WatchStats {
        &self.watches[resource as usize]
    }

    /// Everything a scrape needs, taken under the lock in one go.
    pub fn snapshot(&self) -> Snapshot {
        let now = now();
        let mut model = self.model();
        Snapshot {
            workloads: model.snapshot(now),
            stats: model.stats(),
            synced: Resource::ALL.map(|r| model.is_synced(r)),
            slo_thresholds: model.config().slo_thresholds().to_vec(),
        }
    }

    /// Ready: every resource finished its first list and no watch is failing.
    pub fn readiness(&self) -> Result<(), String> {
        let synced = {
            let model = self.model();
            Resource::ALL.map(|r| (r, model.is_synced(r)))
        };
        let now = Instant::now();
        let not_synced: Vec<&str> = synced
            .iter()
            .filter(|(_, s)| !s)
            .map(|(r, _)| r.as_str())
            .collect();
        if !not_synced.is_empty() {
            return Err(format!(
                "waiting for the first list of: {}",
                not_synced.join(", ")
            ));
        }
        let failing: Vec<&str> = Resource::ALL
            .iter()
            .filter(|r| {
                self.watch_stats(**r)
                    .failing(now, self.started, self.failure_timeout)
            })
            .map(|r| r.as_str())
            .collect();
        if !failing.is_empty() {
            return Err(format!(
                "watches failing for over {} s: {}",
                self.failure_timeout.as_secs_f64(),
                failing.join(", ")
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_fails_only_after_a_minute_of_errors_without_success() {
        let start = Instant::now();
        let s = WatchStats::default();
        let at = |secs| start + Duration::from_secs(secs);
        let minute = DEFAULT_FAILURE_TIMEOUT;
        s.success(at(0));
        assert!(!s.failing(at(10), start, minute));
        s.error(at(10));
        assert!(
            !s.failing(at(30), start, minute),
            "a fresh error: not yet a minute"
        );
        s.error(at(59));
        assert!(s.failing(at(61), start, minute), "errors for over a minute");
        s.success(at(62));
        assert!(
            !s.failing(at(63), start, minute),
            "recovered: a relist or a resumed watch"
        );
        s.error(at(70));
        assert!(!s.failing(at(100), start, minute));
        assert!(s.failing(at(140), start, minute), "no success since 62 s");
    }
}
