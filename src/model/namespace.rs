//! What the model keeps per namespace: its workloads, ReplicaSet slots and pods.
//!
//! Everything the model relates lives in one namespace (owner references never cross one), so
//! the state is split by namespace and every lookup inside is by plain `&str`: an event costs no
//! key allocation. Names are interned as `Arc<str>`: a ReplicaSet's name is shared by its slot,
//! its workload's set and each of its pods' records; a workload's by its map and its slots'
//! owners. Pods sit in one map per namespace with a compact record (about 100 bytes with the
//! table's share), and each slot counts its pods instead of holding them: at 100k pods this is
//! the bulk of the exporter's memory (BENCHMARKS.md).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Histogram, Rollout, Timestamp, Uid};
use crate::model::DeploymentState;

/// An interned name.
pub(super) type Name = Arc<str>;

/// A hash map with a fast, randomly seeded hasher: every key comes from the API server, so it
/// stays seeded (not a fixed hash), but SipHash's cost per event is not needed.
pub(super) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Who controls a ReplicaSet, as far as the model knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum RsOwner {
    /// Pods point at this ReplicaSet but it has not been seen yet.
    Unknown,
    /// The Deployment of this name (interned as its workload's key).
    Deployment(Name),
    /// A bare ReplicaSet or one owned by something else: its pods are ignored.
    Other,
}

/// A termination in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Termination {
    /// The earliest deletion request time seen (`deletionTimestamp - deletionGracePeriodSeconds`,
    /// server clock); `None` when the first state seen was already the final grace-0 rewrite.
    pub requested: Option<Timestamp>,
    /// The first `deletionTimestamp` seen: the pod is overdue once it is past.
    pub first_deadline: Timestamp,
    /// Receive time of the first state with a deletionTimestamp.
    pub first_seen: Timestamp,
}

impl Termination {
    /// The earliest known moment this termination was under way, for the oldest-termination gauge.
    pub fn since(&self) -> Timestamp {
        self.requested.unwrap_or(self.first_seen)
    }
}

/// One pod attributed to a ReplicaSet slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PodRecord {
    /// The ReplicaSet slot (same namespace) that holds it.
    pub rs: Name,
    pub uid: Uid,
    /// Boxed: most pods are not terminating, and the record stays small.
    pub termination: Option<Box<Termination>>,
    /// Phase Succeeded or Failed, according to the phase source.
    pub finished: bool,
    /// The pod list that last listed it (see `Model::list_done`).
    pub listed: u32,
    /// The finished-pod list that last listed it.
    pub finished_listed: u32,
}

impl PodRecord {
    /// Whether this pod, in a non-current ReplicaSet, keeps its rollout from completing: it is
    /// terminating (any phase) or still active. Finished leftovers without a deletionTimestamp
    /// (evicted pods) do not block.
    pub fn blocks_completion(&self) -> bool {
        self.termination.is_some() || !self.finished
    }
}

/// A ReplicaSet name that a pod or a watch event mentioned.
#[derive(Clone, Debug)]
pub(super) struct RsSlot {
    pub owner: RsOwner,
    /// The ReplicaSet object currently exists.
    pub live: bool,
    pub revision: Option<u64>,
    pub created: Option<Timestamp>,
    /// Pod records pointing at this slot.
    pub pods: u32,
    /// Of those, the ones that block completion ([`PodRecord::blocks_completion`]).
    pub blocking: u32,
    /// Termination durations observed while the ReplicaSet was still unknown, handed to its
    /// workload when it arrives.
    pub held_observations: Vec<f64>,
    /// The ReplicaSet list that last listed it.
    pub listed: u32,
}

impl RsSlot {
    pub fn held() -> Self {
        Self {
            owner: RsOwner::Unknown,
            live: false,
            revision: None,
            created: None,
            pods: 0,
            blocking: 0,
            held_observations: Vec::new(),
            listed: 0,
        }
    }

    /// Nothing refers to this slot any more.
    pub fn is_garbage(&self) -> bool {
        !self.live && self.pods == 0 && self.held_observations.is_empty()
    }

    /// The current ReplicaSet of a rollout at `revision`.
    pub fn is_current(&self, revision: Option<u64>) -> bool {
        self.live && self.revision.is_some() && self.revision == revision
    }
}

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

/// A finished pod reported before the pod itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PendingFinish {
    pub uid: Uid,
    /// The finished-pod list that reported it (0: a watch event).
    pub listed: u32,
}

/// The state of one namespace.
#[derive(Clone, Debug, Default)]
pub(super) struct Namespace {
    /// By Deployment name, in order: the snapshot lists workloads sorted.
    pub workloads: BTreeMap<Name, Workload>,
    pub replicasets: Map<Name, RsSlot>,
    pub pods: Map<Box<str>, PodRecord>,
    pub finished_pending: Map<Box<str>, PendingFinish>,
}

impl Namespace {
    pub fn is_empty(&self) -> bool {
        self.workloads.is_empty()
            && self.replicasets.is_empty()
            && self.pods.is_empty()
            && self.finished_pending.is_empty()
    }

    /// The workload `name`, created when missing, with its interned name.
    pub fn workload(&mut self, name: &str, thresholds: usize) -> (Name, &mut Workload) {
        let key = match self.workloads.get_key_value(name) {
            Some((k, _)) => k.clone(),
            None => Name::from(name),
        };
        let w = self
            .workloads
            .entry(key.clone())
            .or_insert_with(|| Workload::new(thresholds));
        (key, w)
    }

    /// The slot of ReplicaSet `name`, created held when missing, with its interned name.
    pub fn slot(&mut self, name: &str) -> (Name, &mut RsSlot) {
        let key = match self.replicasets.get_key_value(name) {
            Some((k, _)) => k.clone(),
            None => Name::from(name),
        };
        let slot = self
            .replicasets
            .entry(key.clone())
            .or_insert_with(RsSlot::held);
        (key, slot)
    }

    /// Records a pod; its slot must exist.
    pub fn insert_pod(&mut self, name: &str, record: PodRecord) {
        if let Some(slot) = self.replicasets.get_mut(&record.rs) {
            slot.pods += 1;
            slot.blocking += u32::from(record.blocks_completion());
        }
        self.pods.insert(Box::from(name), record);
    }

    /// Forgets a pod, keeping its slot's counts.
    pub fn remove_pod(&mut self, name: &str) -> Option<PodRecord> {
        let record = self.pods.remove(name)?;
        if let Some(slot) = self.replicasets.get_mut(&record.rs) {
            slot.pods = slot.pods.saturating_sub(1);
            slot.blocking = slot
                .blocking
                .saturating_sub(u32::from(record.blocks_completion()));
        }
        Some(record)
    }

    /// Changes a pod's record, keeping its slot's count of blocking pods.
    pub fn update_pod<R>(&mut self, name: &str, f: impl FnOnce(&mut PodRecord) -> R) -> Option<R> {
        let record = self.pods.get_mut(name)?;
        let before = record.blocks_completion();
        let out = f(record);
        let after = record.blocks_completion();
        if before != after
            && let Some(slot) = self.replicasets.get_mut(&record.rs)
        {
            if after {
                slot.blocking += 1;
            } else {
                slot.blocking = slot.blocking.saturating_sub(1);
            }
        }
        Some(out)
    }

    /// Forgets every pod held by slot `rs` (its owner turned out not to be a Deployment).
    pub fn drop_pods_of(&mut self, rs: &str) {
        let Some(slot) = self.replicasets.get_mut(rs) else {
            return;
        };
        if slot.pods == 0 {
            return;
        }
        slot.pods = 0;
        slot.blocking = 0;
        self.pods.retain(|_, record| &*record.rs != rs);
    }

    /// Whether any of `w`'s ReplicaSet slots still holds a pod.
    pub fn has_pods(&self, w: &Workload) -> bool {
        w.replicasets
            .iter()
            .any(|rs| self.replicasets.get(rs).is_some_and(|s| s.pods > 0))
    }
}
