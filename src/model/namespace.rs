//! The per-namespace index: a namespace's workloads, ReplicaSet slots and pods, and the counts
//! that tie them together.
//!
//! Everything the model relates lives in one namespace (owner references never cross one), so
//! the state is split by namespace and every lookup inside is by plain `&str`: an event costs no
//! key allocation. Names are interned as `Arc<str>`: a ReplicaSet's name is shared by its slot,
//! its workload's set and each of its pods' records; a workload's by its map and its slots'
//! owners. Pods sit in one map per namespace with a compact record (about 100 bytes with the
//! table's share), and each slot counts its pods instead of holding them: at 100k pods this is
//! the bulk of the exporter's memory (BENCHMARKS.md).
//!
//! The index owns its invariants: its maps are private, and every change to a pod goes through a
//! method that keeps its slot's counts ([`RsSlot::pods`], [`RsSlot::blocking`]) equal to a
//! recount, and every slot removal keeps the owning workload's set of slots in step.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::histogram::Histogram;
use super::stuck::Inspection;
use super::workload::Workload;
use super::{Timestamp, Uid, WorkloadKind};

/// An interned name.
pub(super) type Name = Arc<str>;

/// A hash map with a fast, randomly seeded hasher: every key comes from the API server, so it
/// stays seeded (not a fixed hash), but SipHash's cost per event is not needed.
pub(super) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Who a slot's pods belong to, as far as the model knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum RsOwner {
    /// Pods point at this ReplicaSet but it has not been seen yet.
    Unknown,
    /// The workload of this kind and name (interned as its workload's key): the Deployment that
    /// controls the ReplicaSet, or the StatefulSet or DaemonSet whose pods of one revision the
    /// slot counts.
    Workload(WorkloadKind, Name),
    /// A bare ReplicaSet or one owned by something else: its pods are ignored.
    Other,
}

impl RsOwner {
    /// The workload this owner names, if any.
    pub fn workload(&self) -> Option<(WorkloadKind, &Name)> {
        match self {
            RsOwner::Workload(kind, name) => Some((*kind, name)),
            _ => None,
        }
    }
}

/// A termination in progress. Boxed in its pod's record: most pods are not terminating, so what
/// only a termination needs (the name to GET, the finalizers to report) costs nothing for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Termination {
    /// The earliest deletion request time seen (`deletionTimestamp - deletionGracePeriodSeconds`,
    /// server clock); `None` when the first state seen was already the final grace-0 rewrite.
    pub requested: Option<Timestamp>,
    /// The first `deletionTimestamp` seen: the pod is overdue once it is past.
    pub first_deadline: Timestamp,
    /// Receive time of the first state with a deletionTimestamp.
    pub first_seen: Timestamp,
    /// The `deletionGracePeriodSeconds` of the first deletion seen (`None` when that was the
    /// grace-0 rewrite): a drain at least this long used up its grace.
    pub grace: Option<i64>,
    /// The pod's name, to GET it once overdue.
    pub name: Box<str>,
    /// `metadata.finalizers` as last seen.
    pub finalizers: Box<[Box<str>]>,
    /// What a GET told once it was overdue (see [`super::stuck`]).
    pub inspection: Inspection,
    /// Its overdue notice was handed out (one log line per pod).
    pub announced: bool,
}

impl Termination {
    /// The earliest known moment this termination was under way, for the oldest-termination gauge.
    pub fn since(&self) -> Timestamp {
        self.requested.unwrap_or(self.first_seen)
    }
}

/// One pod attributed to a ReplicaSet slot, kept under its uid: a StatefulSet reuses pod names,
/// and the watch may report the new `pg-2` before the old one's deletion, so a name never
/// identifies a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PodRecord {
    /// The ReplicaSet slot (same namespace) that holds it.
    pub rs: Name,
    /// Boxed: most pods are not terminating, and the record stays small.
    pub termination: Option<Box<Termination>>,
    /// Phase Succeeded or Failed, according to the finished-pod watch.
    pub finished: bool,
    /// Its Ready condition, when known (see [`super::PodState::ready`]).
    pub ready: Option<bool>,
    /// A StatefulSet pod's ordinal ([`NO_ORDINAL`] for other pods): a partition keeps the pods
    /// below it at the old revision.
    pub ordinal: u32,
    /// The epoch of the pod list that last listed it (0: none).
    pub listed: u32,
    /// The epoch of the finished-pod list that last listed it (0: none).
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

/// One termination's end: how long it took, and whether it used up its grace period.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Drained {
    pub seconds: f64,
    pub grace_exhausted: bool,
}

/// A group of one workload's pods at one revision. For a Deployment, a ReplicaSet name that a pod
/// or a watch event mentioned: the ReplicaSet itself once it has been seen, or a placeholder for
/// one that pods point at but that has not arrived yet. For a StatefulSet or DaemonSet, the pods
/// of one `controller-revision-hash` ([`revision_slot`]): no object of its own, so never
/// `exists`, dropped with its last pod.
#[derive(Clone, Debug)]
pub(super) struct RsSlot {
    pub owner: RsOwner,
    /// The ReplicaSet object currently exists (a placeholder's does not, yet).
    pub exists: bool,
    pub revision: Option<u64>,
    pub created: Option<Timestamp>,
    /// Pod records pointing at this slot; kept by [`Namespace`].
    pods: u32,
    /// Of those, the ones that block completion ([`PodRecord::blocks_completion`]); kept by
    /// [`Namespace`].
    blocking: u32,
    /// Terminations observed while the ReplicaSet was still unknown, handed to its workload
    /// when it arrives.
    pub early_observations: Vec<Drained>,
    /// The epoch of the ReplicaSet list that last listed it (0: none).
    pub listed: u32,
}

impl RsSlot {
    fn placeholder() -> Self {
        Self {
            owner: RsOwner::Unknown,
            exists: false,
            revision: None,
            created: None,
            pods: 0,
            blocking: 0,
            early_observations: Vec::new(),
            listed: 0,
        }
    }

    pub fn blocking(&self) -> u32 {
        self.blocking
    }

    /// Nothing refers to this slot any more.
    fn is_garbage(&self) -> bool {
        !self.exists && self.pods == 0 && self.early_observations.is_empty()
    }

    /// The current ReplicaSet of a Deployment at `revision`.
    pub fn is_current(&self, revision: Option<u64>) -> bool {
        self.exists && self.revision.is_some() && self.revision == revision
    }

    /// Placeholder slots and revision slots carry their owner from the start.
    fn owned_by(owner: RsOwner) -> Self {
        Self {
            owner,
            ..Self::placeholder()
        }
    }
}

/// [`PodRecord::ordinal`] of a pod that has none.
pub(super) const NO_ORDINAL: u32 = u32::MAX;

/// A finished pod reported before the pod itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PendingFinish {
    /// The epoch of the finished-pod list that reported it (0: a watch event).
    pub listed: u32,
}

/// A namespace's workloads of every kind, by name, in order: the snapshot lists workloads sorted.
pub(super) type Workloads = [BTreeMap<Name, Workload>; WorkloadKind::ALL.len()];

/// A namespace's workloads to change, with its slots and pods to read.
pub(super) struct Parts<'a> {
    pub workloads: &'a mut Workloads,
    pub slots: &'a Map<Name, RsSlot>,
    pub pods: &'a Map<Uid, PodRecord>,
}

/// The state of one namespace.
#[derive(Clone, Debug, Default)]
pub(super) struct Namespace {
    workloads: Workloads,
    replicasets: Map<Name, RsSlot>,
    /// By uid (see [`PodRecord`]).
    pods: Map<Uid, PodRecord>,
    finished_pending: Map<Uid, PendingFinish>,
}

impl Namespace {
    pub fn is_empty(&self) -> bool {
        self.workloads.iter().all(BTreeMap::is_empty)
            && self.replicasets.is_empty()
            && self.pods.is_empty()
            && self.finished_pending.is_empty()
    }

    // ----- Workloads ---------------------------------------------------------------------------

    pub fn workload(&self, kind: WorkloadKind, name: &str) -> Option<&Workload> {
        self.workloads[kind.index()].get(name)
    }

    pub fn workload_mut(&mut self, kind: WorkloadKind, name: &str) -> Option<&mut Workload> {
        self.workloads[kind.index()].get_mut(name)
    }

    /// The workload `name` of `kind`, created when missing, with its interned name.
    pub fn workload_entry(
        &mut self,
        kind: WorkloadKind,
        name: &str,
        thresholds: usize,
    ) -> (Name, &mut Workload) {
        let map = &mut self.workloads[kind.index()];
        let key = interned(map.get_key_value(name), name);
        let w = map
            .entry(key.clone())
            .or_insert_with(|| Workload::new(thresholds));
        (key, w)
    }

    /// Every workload, by kind, then name.
    pub fn workloads(&self) -> impl Iterator<Item = (WorkloadKind, &Name, &Workload)> {
        WorkloadKind::ALL.into_iter().flat_map(|kind| {
            self.workloads[kind.index()]
                .iter()
                .map(move |(n, w)| (kind, n, w))
        })
    }

    /// The workloads of one kind.
    pub fn workloads_of(&self, kind: WorkloadKind) -> &BTreeMap<Name, Workload> {
        &self.workloads[kind.index()]
    }

    /// The slots, read-only (their counts are the index's to keep).
    pub fn slot_map(&self) -> &Map<Name, RsSlot> {
        &self.replicasets
    }

    /// Every workload, mutable, beside the slots and pods, read-only: their counts stay the
    /// index's to keep.
    pub fn parts_mut(&mut self) -> Parts<'_> {
        Parts {
            workloads: &mut self.workloads,
            slots: &self.replicasets,
            pods: &self.pods,
        }
    }

    /// Drops a workload whose object is gone (or was never seen) once nothing of it remains.
    pub fn remove_workload_if_gone(&mut self, kind: WorkloadKind, name: &str, thresholds: usize) {
        let Some(w) = self.workloads[kind.index()].get(name) else {
            return;
        };
        if w.object.is_some() || self.has_pods(w) {
            return;
        }
        let unreferenced = w.replicasets.is_empty() && w.revisions.is_empty();
        let map = &mut self.workloads[kind.index()];
        if unreferenced {
            map.remove(name);
        } else if let Some(w) = map.get_mut(name)
            && w.deleted
        {
            // Its last pod is gone, so its series go, but ReplicaSets naming it remain (the
            // garbage collector's deletions to come, or pods still unseen): it starts over as a
            // workload whose Deployment was never seen, still indexing them, so that a Deployment
            // created again under the same name sees them and their pods. ControllerRevisions
            // naming it stay for the same reason.
            let replicasets = std::mem::take(&mut w.replicasets);
            let revisions = std::mem::take(&mut w.revisions);
            *w = Workload {
                replicasets,
                revisions,
                ..Workload::new(thresholds)
            };
        }
    }

    /// Whether any of `w`'s ReplicaSet slots still holds a pod.
    fn has_pods(&self, w: &Workload) -> bool {
        w.replicasets
            .iter()
            .any(|rs| self.replicasets.get(rs).is_some_and(|s| s.pods > 0))
    }

    // ----- ReplicaSet slots --------------------------------------------------------------------

    pub fn slot(&self, name: &str) -> Option<&RsSlot> {
        self.replicasets.get(name)
    }

    pub fn slot_mut(&mut self, name: &str) -> Option<&mut RsSlot> {
        self.replicasets.get_mut(name)
    }

    /// The slot of ReplicaSet `name`, a placeholder when missing, with its interned name.
    pub fn slot_entry(&mut self, name: &str) -> (Name, &mut RsSlot) {
        let key = interned(self.replicasets.get_key_value(name), name);
        let slot = self
            .replicasets
            .entry(key.clone())
            .or_insert_with(RsSlot::placeholder);
        (key, slot)
    }

    pub fn slots(&self) -> impl Iterator<Item = (&Name, &RsSlot)> {
        self.replicasets.iter()
    }

    /// The slot of a StatefulSet's or DaemonSet's pods at one revision (see [`revision_slot`]),
    /// owned by that workload from the start, which is created when missing.
    pub fn revision_slot_entry(
        &mut self,
        kind: WorkloadKind,
        workload: &str,
        key: &str,
        thresholds: usize,
    ) -> Name {
        let (w, _) = self.workload_entry(kind, workload, thresholds);
        let name = interned(self.replicasets.get_key_value(key), key);
        let slot = self
            .replicasets
            .entry(name.clone())
            .or_insert_with(|| RsSlot::owned_by(RsOwner::Workload(kind, w.clone())));
        if let Some((kind, w)) = slot.owner.workload()
            && let Some(w) = self.workloads[kind.index()].get_mut(w)
        {
            w.replicasets.insert(name.clone());
        }
        name
    }

    /// The owner's workload takes slot `rs`: it joins the workload's set, and the termination
    /// durations observed before the ReplicaSet arrived are observed for the workload now.
    pub fn adopt_slot(
        &mut self,
        rs: &Name,
        kind: WorkloadKind,
        workload: &str,
        buckets: &Arc<[f64]>,
    ) {
        let (Some(w), Some(slot)) = (
            self.workloads[kind.index()].get_mut(workload),
            self.replicasets.get_mut(rs),
        ) else {
            return;
        };
        w.replicasets.insert(rs.clone());
        for drained in slot.early_observations.drain(..) {
            w.drained(buckets, drained);
        }
    }

    /// Removes slot `rs` once nothing refers to it (see [`RsSlot::is_garbage`]), and from its
    /// owning workload's set.
    pub fn drop_slot_if_garbage(&mut self, rs: &str) {
        if !self.replicasets.get(rs).is_some_and(RsSlot::is_garbage) {
            return;
        }
        if let Some(slot) = self.replicasets.remove(rs)
            && let Some((kind, w)) = slot.owner.workload()
            && let Some(w) = self.workloads[kind.index()].get_mut(w)
        {
            w.replicasets.remove(rs);
        }
    }

    // ----- Pods --------------------------------------------------------------------------------

    pub fn pod(&self, uid: Uid) -> Option<&PodRecord> {
        self.pods.get(&uid)
    }

    pub fn pods(&self) -> impl Iterator<Item = (Uid, &PodRecord)> {
        self.pods.iter().map(|(&uid, record)| (uid, record))
    }

    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// Records a pod; its slot must exist.
    pub fn insert_pod(&mut self, uid: Uid, record: PodRecord) {
        if let Some(slot) = self.replicasets.get_mut(&record.rs) {
            slot.pods += 1;
            slot.blocking += u32::from(record.blocks_completion());
        }
        self.pods.insert(uid, record);
    }

    /// Forgets a pod, keeping its slot's counts.
    pub fn remove_pod(&mut self, uid: Uid) -> Option<PodRecord> {
        let record = self.pods.remove(&uid)?;
        if let Some(slot) = self.replicasets.get_mut(&record.rs) {
            slot.pods = slot.pods.saturating_sub(1);
            slot.blocking = slot
                .blocking
                .saturating_sub(u32::from(record.blocks_completion()));
        }
        Some(record)
    }

    /// Changes a pod's record, keeping its slot's count of blocking pods.
    pub fn update_pod<R>(&mut self, uid: Uid, f: impl FnOnce(&mut PodRecord) -> R) -> Option<R> {
        let record = self.pods.get_mut(&uid)?;
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

    // ----- Finished pods reported before the pod -----------------------------------------------

    pub fn take_pending_finish(&mut self, uid: Uid) -> Option<PendingFinish> {
        self.finished_pending.remove(&uid)
    }

    pub fn add_pending_finish(&mut self, uid: Uid, pending: PendingFinish) {
        self.finished_pending.insert(uid, pending);
    }

    /// Keeps the pending finishes the finished-pod list of `epoch` reported.
    pub fn keep_pending_finishes_of(&mut self, epoch: u32) {
        self.finished_pending.retain(|_, f| f.listed == epoch);
    }

    pub fn pending_finish_count(&self) -> usize {
        self.finished_pending.len()
    }

    /// The counts each slot keeps as pods come and go equal a recount of the pod records, and
    /// every record's slot exists.
    #[cfg(test)]
    #[track_caller]
    pub fn assert_counts(&self) {
        for (name, slot) in &self.replicasets {
            let pods: Vec<&PodRecord> = self.pods.values().filter(|p| p.rs == *name).collect();
            assert_eq!(slot.pods as usize, pods.len(), "pods of slot {name}");
            let blocking = pods.iter().filter(|p| p.blocks_completion()).count();
            assert_eq!(
                slot.blocking as usize, blocking,
                "blocking pods of slot {name}"
            );
        }
        for (pod, record) in &self.pods {
            assert!(
                self.replicasets.contains_key(&record.rs),
                "{pod:?}: its slot exists"
            );
        }
    }
}

/// The slot name of a StatefulSet's or DaemonSet's pods at `revision` (their
/// `controller-revision-hash` label): `/` appears in no object name, so it never meets a
/// ReplicaSet's slot or another workload's.
pub(super) fn revision_slot(kind: WorkloadKind, workload: &str, revision: &str) -> String {
    format!("{}/{workload}/{revision}", kind.as_str())
}

/// The key already in a map for `name`, shared, or a new one.
fn interned<V>(existing: Option<(&Name, V)>, name: &str) -> Name {
    existing.map_or_else(|| Name::from(name), |(k, _)| k.clone())
}

/// Observes `value` in a histogram created on first use.
pub(super) fn observe(slot: &mut Option<Box<Histogram>>, buckets: &Arc<[f64]>, value: f64) {
    slot.get_or_insert_with(|| Box::new(Histogram::new(buckets.clone())))
        .observe(value);
}
