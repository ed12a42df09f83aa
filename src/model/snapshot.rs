//! What the model answers at scrape time: plain values copied out, so the caller can release the
//! model's lock before it encodes or writes anything.

use super::{Histogram, Phase, WorkloadKey};

/// Every metric value of one workload at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadMetrics {
    pub key: WorkloadKey,
    /// Pods of the workload that have a deletionTimestamp and still exist (any ReplicaSet).
    pub terminating_pods: u64,
    /// Terminating pods still present after their first observed deletionTimestamp.
    pub terminating_pods_overdue: u64,
    /// Scrape time minus the earliest deletion request among terminating pods; 0 when none.
    pub oldest_termination_seconds: f64,
    /// Age of the rollout in flight; 0 when none.
    pub in_progress_seconds: f64,
    pub phase: Phase,
    /// The Deployment's revision annotation, when known.
    pub revision: Option<u64>,
    /// Unix seconds of the last rollout start, when known.
    pub last_started_timestamp: Option<f64>,
    /// Unix seconds of the last rollout completion observed by this exporter process.
    pub last_completed_timestamp: Option<f64>,
    pub started_total: u64,
    pub superseded_total: u64,
    /// `(threshold seconds, count)` for each configured SLO threshold.
    pub slow_total: Vec<(u64, u64)>,
    /// Present from the workload's first observation on.
    pub pod_termination_duration: Option<Histogram>,
    pub ready_duration: Option<Histogram>,
    pub complete_duration: Option<Histogram>,
    pub drain_tail: Option<Histogram>,
}

/// Counts that tell an operator how much the exporter itself could see.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Terminations whose end fell in a watch gap and were observed at the relist time.
    pub imprecise_gap_terminations: u64,
    /// Terminations first seen as the kubelet's final grace-0 rewrite: request time unknown, not
    /// observed.
    pub imprecise_unknown_request: u64,
    /// Ready or complete milestones reached during a relist, timed at the relist.
    pub imprecise_gap_milestones: u64,
    /// Rollouts recovered after an exporter restart whose start cannot be known (a reused
    /// ReplicaSet): their durations are not observed.
    pub unknown_start_rollouts: u64,
    pub deployments: u64,
    pub replicasets: u64,
    pub pods: u64,
    pub finished_pods: u64,
}
