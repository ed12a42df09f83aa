//! What the adapters share: the model behind one lock, per-resource watch statistics, and the
//! readiness computed from both. A scrape reads all of it in one [`Snapshot`].
//!
//! The lock is held only to apply one event or to take one snapshot; nothing writes to a socket
//! or waits on the network while holding it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::model::{
    Event, Model, ModelStats, NodeHealth, PodInspection, PodRef, Resource, StuckWork, Timestamp,
    WorkloadKey, WorkloadMetrics, WorkloadView,
};
use crate::shard::Sharding;
use thiserror::Error;

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

    /// The counters as they are now.
    pub fn counts(&self) -> WatchCounts {
        WatchCounts {
            events: self.events.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            requests: self
                .requests
                .lock()
                .map(|r| r.iter().map(|(k, v)| (*k, *v)).collect())
                .unwrap_or_default(),
        }
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
    watches: [WatchStats; Resource::ALL.len()],
    /// Indexed by [`Resource`]: watched with the model's workload kinds.
    watched: [bool; Resource::ALL.len()],
    started: Instant,
    /// This exporter's shard, once known (automatic sharding asks the API server first).
    pub sharding: OnceLock<Sharding>,
    /// How long a watch may fail before the exporter is not ready.
    failure_timeout: Duration,
    /// Sees every event handed to the model (see [`Tap`]).
    tap: Option<Tap>,
}

/// Sees every event handed to the model, with its receive time, under the model's lock: `wait`
/// keeps the names of pods from it, which the model does not keep. It must be quick, as it holds
/// up the watches.
pub struct Tap(Box<TapFn>);

/// What a [`Tap`] calls.
type TapFn = dyn Fn(&Event, Timestamp) + Send + Sync;

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tap")
    }
}

/// Everything a scrape reads, copied out at one instant so the encoder touches no lock.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub workloads: Vec<WorkloadMetrics>,
    pub stats: ModelStats,
    /// Indexed by [`Resource`].
    pub watches: [WatchCounts; Resource::ALL.len()],
    pub readiness: Readiness,
    pub sharding: Option<Sharding>,
}

/// One resource's watch counters at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchCounts {
    pub events: u64,
    pub errors: u64,
    pub restarts: u64,
    /// API answers, by (verb, HTTP status or 0 when none came), in that order.
    pub requests: Vec<((&'static str, u16), u64)>,
}

/// Whether each resource can be trusted, at one instant: computed once, read by `/readyz` and by
/// the `synced` self-metric alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// Indexed by [`Resource`]: watched with the configured workload kinds (`--kinds`); the
    /// others are neither waited for nor reported.
    pub watched: [bool; Resource::ALL.len()],
    /// Indexed by [`Resource`]: the first list finished.
    pub synced: [bool; Resource::ALL.len()],
    /// Indexed by [`Resource`]: the watch has been failing for over `failure_timeout`.
    pub failing: [bool; Resource::ALL.len()],
    pub failure_timeout: Duration,
}

/// Why the exporter is not ready, as `/readyz` says it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NotReady {
    #[error("waiting for the first list of: {}", .0.join(", "))]
    NotSynced(Vec<&'static str>),
    #[error(
        "watches failing for over {} s: {}",
        .timeout.as_secs_f64(),
        .resources.join(", ")
    )]
    Failing {
        timeout: Duration,
        resources: Vec<&'static str>,
    },
}

impl Readiness {
    /// `resource` is usable: its first list finished and its watch is not failing.
    pub fn of(&self, resource: Resource) -> bool {
        self.synced[resource as usize] && !self.failing[resource as usize]
    }

    /// Ready: every resource finished its first list and no watch is failing. Unsynced resources
    /// are named first: a watch that never listed has nothing to fail yet.
    pub fn check(&self) -> Result<(), NotReady> {
        let names = |flags: [bool; Resource::ALL.len()]| -> Vec<&'static str> {
            self.resources()
                .filter(|r| flags[*r as usize])
                .map(Resource::as_str)
                .collect()
        };
        let not_synced = names(self.synced.map(|s| !s));
        if !not_synced.is_empty() {
            return Err(NotReady::NotSynced(not_synced));
        }
        let failing = names(self.failing);
        if !failing.is_empty() {
            return Err(NotReady::Failing {
                timeout: self.failure_timeout,
                resources: failing,
            });
        }
        Ok(())
    }

    /// The watched resources, in order.
    pub fn resources(&self) -> impl Iterator<Item = Resource> + '_ {
        Resource::ALL
            .into_iter()
            .filter(|r| self.watched[*r as usize])
    }
}

impl Shared {
    pub fn new(model: Model) -> Self {
        Self::with_failure_timeout(model, DEFAULT_FAILURE_TIMEOUT)
    }

    pub fn with_failure_timeout(model: Model, failure_timeout: Duration) -> Self {
        Self {
            watched: Resource::ALL.map(|r| model.config().watches(r)),
            model: Mutex::new(model),
            watches: Default::default(),
            started: Instant::now(),
            sharding: OnceLock::new(),
            failure_timeout,
            tap: None,
        }
    }

    /// The same, with `tap` seeing every event (see [`Tap`]).
    pub fn with_tap(mut self, tap: impl Fn(&Event, Timestamp) + Send + Sync + 'static) -> Self {
        self.tap = Some(Tap(Box::new(tap)));
        self
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
            if let Some(Tap(tap)) = &self.tap {
                tap(&event, now);
            }
            model.handle(event, now);
        }
    }

    /// What the stuck-reason inspector should do now (see [`Model::stuck_work`]).
    pub fn stuck_work(&self) -> StuckWork {
        self.model().stuck_work(now())
    }

    /// The answer to a pod GET of [`Self::stuck_work`].
    pub fn pod_inspected(&self, pod: &PodRef, inspection: PodInspection) {
        self.model().pod_inspected(pod, inspection, now());
    }

    /// The answer to a node GET of [`Self::stuck_work`].
    pub fn node_inspected(&self, node: &str, health: NodeHealth) {
        self.model().node_inspected(node, health);
    }

    /// Workload `key` as `wait` reads it now (see [`Model::view`]).
    pub fn view(&self, key: &WorkloadKey) -> Option<WorkloadView> {
        self.model().view(key, now())
    }

    /// The counters and health of `resource`'s watches, which its watch loop updates.
    pub fn watch_stats(&self, resource: Resource) -> &WatchStats {
        &self.watches[resource as usize]
    }

    /// Everything a scrape reads. The model's part is copied under its lock in one go; the watch
    /// statistics and readiness are read after it is released.
    pub fn snapshot(&self) -> Snapshot {
        let now = now();
        let (workloads, stats, synced) = {
            let mut model = self.model();
            (model.snapshot(now), model.stats(), Self::synced(&model))
        };
        Snapshot {
            workloads,
            stats,
            watches: Resource::ALL.map(|r| self.watch_stats(r).counts()),
            readiness: self.readiness_of(synced),
            sharding: self.sharding.get().copied(),
        }
    }

    /// Readiness alone (`/readyz`), without copying the model's values.
    pub fn readiness(&self) -> Readiness {
        let synced = Self::synced(&self.model());
        self.readiness_of(synced)
    }

    fn synced(model: &Model) -> [bool; Resource::ALL.len()] {
        Resource::ALL.map(|r| model.is_synced(r))
    }

    fn readiness_of(&self, synced: [bool; Resource::ALL.len()]) -> Readiness {
        let now = Instant::now();
        Readiness {
            watched: self.watched,
            synced,
            failing: Resource::ALL.map(|r| {
                self.watch_stats(r)
                    .failing(now, self.started, self.failure_timeout)
            }),
            failure_timeout: self.failure_timeout,
        }
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

    #[test]
    fn readiness_names_unsynced_resources_first_then_failing_watches() {
        let readiness = Readiness {
            // The StatefulSet kind is not watched: never waited for.
            watched: [true, true, true, true, false, true, true],
            synced: [true, false, true, false, false, true, true],
            failing: [true, false, false, false, false, false, false],
            failure_timeout: Duration::from_millis(1500),
        };
        let err = readiness.check().expect_err("two resources not synced");
        assert_eq!(
            err.to_string(),
            "waiting for the first list of: replicasets, finished_pods"
        );
        let readiness = Readiness {
            synced: [true; Resource::ALL.len()],
            ..readiness
        };
        let err = readiness.check().expect_err("deployments failing");
        assert_eq!(
            err.to_string(),
            "watches failing for over 1.5 s: deployments"
        );
        assert!(!readiness.of(Resource::Deployments) && readiness.of(Resource::Pods));
        let readiness = Readiness {
            failing: [false; Resource::ALL.len()],
            ..readiness
        };
        assert_eq!(readiness.check(), Ok(()));
    }

    #[test]
    fn a_snapshot_holds_the_watch_counts_readiness_and_sharding() {
        let shared = Shared::with_failure_timeout(
            Model::new(crate::model::ModelConfig::default()),
            Duration::ZERO,
        );
        let pods = shared.watch_stats(Resource::Pods);
        pods.events.fetch_add(3, Ordering::Relaxed);
        pods.request("watch", 410);
        pods.request("list", 200);
        pods.error(Instant::now() + Duration::from_millis(1));
        shared
            .sharding
            .set(Sharding { shard: 1, total: 2 })
            .expect("unset");
        let snap = shared.snapshot();
        assert_eq!(
            snap.watches[Resource::Pods as usize],
            WatchCounts {
                events: 3,
                errors: 1,
                restarts: 0,
                requests: vec![(("list", 200), 1), (("watch", 410), 1)],
            }
        );
        assert_eq!(
            snap.watches[Resource::Deployments as usize],
            WatchCounts::default()
        );
        assert_eq!(snap.sharding, Some(Sharding { shard: 1, total: 2 }));
        assert_eq!(snap.readiness, shared.readiness());
        assert_eq!(
            snap.readiness.synced,
            [false; Resource::ALL.len()],
            "nothing listed yet"
        );
    }
}
