//! What the model is configured with: SLO thresholds, histogram buckets, the namespaces the
//! watches cover and the workload kinds watched.

use std::sync::Arc;

use super::histogram::{DEFAULT_BUCKETS, bucket_bounds};
use super::{Resource, WorkloadKind};

/// Default SLO threshold: "rollouts complete within 15 minutes".
pub const DEFAULT_SLO_THRESHOLD_SECS: u64 = 900;

/// What the model is configured with.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// Sorted, deduplicated SLO thresholds in seconds, one `kube_rollout_slow_total` series each.
    slo_thresholds: Vec<u64>,
    /// Bucket bounds of every histogram.
    buckets: Arc<[f64]>,
    /// The namespaces the watches cover, each relisted on its own; empty means cluster-wide.
    namespaces: Vec<String>,
    /// The workload kinds watched (`--kinds`): the model waits for the lists of these only.
    kinds: Vec<WorkloadKind>,
    /// Overdue pods are inspected (a GET of each, and of its node) to tell why they are stuck.
    stuck_reasons: bool,
}

impl ModelConfig {
    /// The default buckets plus each SLO threshold.
    pub fn new(slo_thresholds_secs: &[u64]) -> Self {
        Self::with_buckets(&DEFAULT_BUCKETS, slo_thresholds_secs)
    }

    /// Custom base buckets; each SLO threshold is still added.
    pub fn with_buckets(base_buckets: &[f64], slo_thresholds_secs: &[u64]) -> Self {
        let mut slo_thresholds = slo_thresholds_secs.to_vec();
        slo_thresholds.sort_unstable();
        slo_thresholds.dedup();
        Self {
            buckets: bucket_bounds(base_buckets, &slo_thresholds),
            slo_thresholds,
            namespaces: Vec::new(),
            kinds: WorkloadKind::ALL.to_vec(),
            stuck_reasons: true,
        }
    }

    /// Watches limited to these namespaces: a resource is synced once each has been listed
    /// (a `Change::ListDone` of each).
    pub fn with_namespaces(mut self, namespaces: &[String]) -> Self {
        let mut namespaces = namespaces.to_vec();
        namespaces.sort();
        namespaces.dedup();
        self.namespaces = namespaces;
        self
    }

    /// Only these workload kinds are watched: the resources the others need are not waited for.
    pub fn with_kinds(mut self, kinds: &[WorkloadKind]) -> Self {
        let mut kinds = kinds.to_vec();
        kinds.sort();
        kinds.dedup();
        self.kinds = kinds;
        self
    }

    /// Whether overdue pods are inspected to tell why they are stuck (`--stuck-reasons`); without
    /// it, the model asks for no GET and only the watches' facts give a reason.
    pub fn with_stuck_reasons(mut self, on: bool) -> Self {
        self.stuck_reasons = on;
        self
    }

    pub fn stuck_reasons(&self) -> bool {
        self.stuck_reasons
    }

    pub fn kinds(&self) -> &[WorkloadKind] {
        &self.kinds
    }

    /// Whether `resource` is watched with these kinds (see [`Resource::needed_by`]).
    pub fn watches(&self, resource: Resource) -> bool {
        resource.needed_by(&self.kinds)
    }

    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    pub fn slo_thresholds(&self) -> &[u64] {
        &self.slo_thresholds
    }

    pub fn buckets(&self) -> &Arc<[f64]> {
        &self.buckets
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self::new(&[DEFAULT_SLO_THRESHOLD_SECS])
    }
}
