//! What the model answers at scrape time: plain values copied out, so the caller can release the
//! model's lock before it encodes or writes anything.

use super::{Histogram, Phase, WorkloadKey};

/// Every metric value of one workload at one instant (the `kube_rollout_*` families).
///
/// Each field is the value of the metric family named on it; what a family means is written
/// once, in its help text in the metrics tables (`src/metrics/rollout.rs`, and
/// `src/metrics/exporter.rs` for [`ModelStats`]). The comments here add only what the model
/// decides.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadMetrics {
    pub key: WorkloadKey,
    /// `kube_rollout_terminating_pods`, counting the pods of every ReplicaSet of the workload.
    pub terminating_pods: u64,
    /// `kube_rollout_terminating_pods_overdue`.
    pub terminating_pods_overdue: u64,
    /// `kube_rollout_oldest_termination_seconds`, at the snapshot's time.
    pub oldest_termination_seconds: f64,
    /// `kube_rollout_in_progress_seconds`, at the snapshot's time.
    pub in_progress_seconds: f64,
    /// `kube_rollout_phase`.
    pub phase: Phase,
    /// `kube_rollout_revision`, when the annotation is known.
    pub revision: Option<u64>,
    /// `kube_rollout_last_started_timestamp_seconds`, when known.
    pub last_started_timestamp: Option<f64>,
    /// `kube_rollout_last_completed_timestamp_seconds`, once this process saw one.
    pub last_completed_timestamp: Option<f64>,
    /// `kube_rollout_started_total`.
    pub started_total: u64,
    /// `kube_rollout_superseded_total`.
    pub superseded_total: u64,
    /// `kube_rollout_slow_total`: `(threshold seconds, count)` for each configured SLO threshold.
    pub slow_total: Vec<(u64, u64)>,
    /// `kube_rollout_pod_termination_duration_seconds`, present from the workload's first
    /// observation on.
    pub pod_termination_duration: Option<Histogram>,
    /// `kube_rollout_duration_seconds{milestone="ready"}`.
    pub ready_duration: Option<Histogram>,
    /// `kube_rollout_duration_seconds{milestone="complete"}`.
    pub complete_duration: Option<Histogram>,
    /// `kube_rollout_drain_tail_seconds`.
    pub drain_tail: Option<Histogram>,
}

/// Counts that tell an operator how much the exporter itself could see (`kube_rollout_exporter_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// `..._imprecise_observations_total{reason="gap_termination"}`: terminations whose end fell
    /// in a watch gap.
    pub imprecise_gap_terminations: u64,
    /// `..._imprecise_observations_total{reason="unknown_request"}`: terminations first seen as
    /// the kubelet's final grace-0 rewrite.
    pub imprecise_unknown_request: u64,
    /// `..._imprecise_observations_total{reason="gap_milestone"}`: ready or complete milestones
    /// reached during a relist.
    pub imprecise_gap_milestones: u64,
    /// `kube_rollout_exporter_unknown_start_rollouts_total`; the start is unknown when the
    /// rollout's ReplicaSet was reused.
    pub unknown_start_rollouts: u64,
    /// `kube_rollout_exporter_objects{resource=...}`, the four counts below.
    pub deployments: u64,
    pub replicasets: u64,
    pub pods: u64,
    pub finished_pods: u64,
}
