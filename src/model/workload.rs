//! Everything the model keeps about one workload: its Deployment as last seen, the ReplicaSet
//! slots it controls, its rollout in flight (or last one), its counters and histograms.

use std::collections::BTreeSet;

use super::namespace::Name;
use super::{DeploymentState, Histogram, Rollout, Timestamp};

/// Everything the model keeps about one workload.
#[derive(Clone, Debug)]
pub(super) struct Workload {
    /// The Deployment as last seen; `None` before it is seen and after it is deleted.
    pub deployment: Option<DeploymentState>,
    /// It was seen and then deleted: its series stay until its last pod is gone.
    pub deleted: bool,
    /// Names of the ReplicaSet slots this workload controls (live or still holding pods).
    pub replicasets: BTreeSet<Name>,
    /// The Deployment's revision as last seen.
    pub revision: Option<u64>,
    pub rollout: Option<Rollout>,
    pub last_started: Option<Timestamp>,
    pub last_completed: Option<Timestamp>,
    pub started_total: u64,
    pub superseded_total: u64,
    /// One count per configured SLO threshold.
    pub slow_total: Vec<u64>,
    /// Boxed: a workload has none until its first observation, and 10k workloads are common.
    pub termination: Option<Box<Histogram>>,
    pub ready: Option<Box<Histogram>>,
    pub complete: Option<Box<Histogram>>,
    pub drain_tail: Option<Box<Histogram>>,
    /// The Deployment list that last listed it.
    pub listed: u32,
}

impl Workload {
    pub fn new(thresholds: usize) -> Self {
        Self {
            deployment: None,
            deleted: false,
            replicasets: BTreeSet::new(),
            revision: None,
            rollout: None,
            last_started: None,
            last_completed: None,
            started_total: 0,
            superseded_total: 0,
            slow_total: vec![0; thresholds],
            termination: None,
            ready: None,
            complete: None,
            drain_tail: None,
            listed: 0,
        }
    }

    /// Series exist for workloads whose Deployment was seen (ReplicaSets of Deployments outside
    /// the exporter's scope create workloads that are never exported).
    pub fn exported(&self) -> bool {
        self.deployment.is_some() || self.deleted
    }

    pub fn in_flight(&mut self) -> Option<&mut Rollout> {
        self.rollout.as_mut().filter(|r| r.in_flight())
    }

    /// Counts the rollout in flight as slow for each threshold its age has reached. With an
    /// unknown start the age is a lower bound, so a count is still certain.
    pub fn advance(&mut self, now: Timestamp, thresholds: &[u64]) {
        let Some(rollout) = self.rollout.as_mut().filter(|r| r.in_flight()) else {
            return;
        };
        let age = rollout.age(now);
        for (i, &threshold) in thresholds.iter().enumerate() {
            if !rollout.slow_counted[i] && age >= threshold as f64 {
                rollout.slow_counted[i] = true;
                self.slow_total[i] += 1;
            }
        }
    }
}
