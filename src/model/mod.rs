//! The pure core: rollout and termination semantics over plain data, with time passed in.
//!
//! The watch adapters feed [`Model::handle`] one [`Event`] at a time, each with the time it was
//! received; the metrics adapter asks [`Model::snapshot`] for the values at scrape time. Nothing
//! here performs I/O, reads a clock or knows a Kubernetes client type. The definitions implemented
//! here are the contract stated in the README ("What every number means"); each is pinned by a
//! table-driven test in `tests.rs` and by replays of real recorded traffic in `tests/recordings.rs`.
//!
//! Data layout. Attribution runs Pod → ReplicaSet (controller owner) → Deployment (controller
//! owner). Watches are independent streams, so either link may arrive before its target: every
//! ReplicaSet name a pod points at gets a slot, created empty ("held") when the pod comes first and
//! filled when the ReplicaSet arrives; every Deployment name a ReplicaSet points at gets a
//! [`Workload`], which is exported only once the Deployment itself has been seen. Slots and
//! workloads outlive their objects while pods remain, so cascade deletions are still observed.

mod histogram;
mod objects;
mod rollout;
mod snapshot;
mod time;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

pub use histogram::{DEFAULT_BUCKETS, Histogram, bucket_bounds};
pub use objects::{
    ConditionStatus, ControllerRef, Deletion, DeploymentState, FinishedPod, ObjectKey, PodState,
    ProgressingCondition, REASON_DEADLINE_EXCEEDED, REASON_NEW_RS_AVAILABLE, REASON_PAUSED,
    ReplicaSetState, WorkloadKey, WorkloadKind,
};
pub use rollout::{Milestone, Phase, Rollout, RolloutState};
pub use snapshot::{ModelStats, WorkloadMetrics};
pub use time::Timestamp;

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
        }
    }

    /// Watches limited to these namespaces: a resource is synced once each has been listed
    /// ([`Change::RelistedNamespace`]).
    pub fn with_namespaces(mut self, namespaces: &[String]) -> Self {
        let mut namespaces = namespaces.to_vec();
        namespaces.sort();
        namespaces.dedup();
        self.namespaces = namespaces;
        self
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

/// A change to one kind of object, as a watch reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum Change<T> {
    /// Added or modified.
    Applied(T),
    /// Deleted; carries the object's last state.
    Deleted(T),
    /// A cluster-wide list (initial or after a watch gap) finished: exactly these objects exist.
    Relisted(Vec<T>),
    /// A list of one namespace finished: exactly these objects exist in it; other namespaces are
    /// untouched.
    RelistedNamespace(String, Vec<T>),
}

/// One input of the model.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Deployment(Change<DeploymentState>),
    ReplicaSet(Change<ReplicaSetState>),
    Pod(Change<PodState>),
    /// The phase source: pods in phase Succeeded or Failed.
    FinishedPod(Change<FinishedPod>),
}

/// The watched resources, each synced by its first [`Change::Relisted`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Deployments,
    ReplicaSets,
    Pods,
    FinishedPods,
}

impl Resource {
    pub const ALL: [Resource; 4] = [
        Resource::Deployments,
        Resource::ReplicaSets,
        Resource::Pods,
        Resource::FinishedPods,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Resource::Deployments => "deployments",
            Resource::ReplicaSets => "replicasets",
            Resource::Pods => "pods",
            Resource::FinishedPods => "finished_pods",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Whether an observation comes straight from a watch event (precise) or from the difference a
/// relist revealed (timed at the relist: an upper bound).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timing {
    Live,
    Relist,
}

/// Who controls a ReplicaSet, as far as the model knows.
#[derive(Clone, Debug, PartialEq, Eq)]
enum RsOwner {
    /// Pods point at this ReplicaSet but it has not been seen yet.
    Unknown,
    Deployment(String),
    /// A bare ReplicaSet or one owned by something else: its pods are ignored.
    Other,
}

/// A termination in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Termination {
    /// The earliest deletion request time seen (`deletionTimestamp - deletionGracePeriodSeconds`,
    /// server clock); `None` when the first state seen was already the final grace-0 rewrite.
    requested: Option<Timestamp>,
    /// The first `deletionTimestamp` seen: the pod is overdue once it is past.
    first_deadline: Timestamp,
    /// Receive time of the first state with a deletionTimestamp.
    first_seen: Timestamp,
}

impl Termination {
    /// The earliest known moment this termination was under way, for the oldest-termination gauge.
    fn since(&self) -> Timestamp {
        self.requested.unwrap_or(self.first_seen)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct PodRecord {
    uid: String,
    termination: Option<Termination>,
    /// Phase Succeeded or Failed, according to the phase source.
    finished: bool,
}

impl PodRecord {
    /// Whether this pod, in a non-current ReplicaSet, keeps its rollout from completing: it is
    /// terminating (any phase) or still active. Finished leftovers without a deletionTimestamp
    /// (evicted pods) do not block.
    fn blocks_completion(&self) -> bool {
        self.termination.is_some() || !self.finished
    }
}

/// A ReplicaSet name that a pod or a watch event mentioned.
#[derive(Clone, Debug)]
struct RsSlot {
    owner: RsOwner,
    /// The ReplicaSet object currently exists.
    live: bool,
    revision: Option<u64>,
    created: Option<Timestamp>,
    pods: HashMap<String, PodRecord>,
    /// Termination durations observed while the ReplicaSet was still unknown, handed to its
    /// workload when it arrives.
    held_observations: Vec<f64>,
}

impl RsSlot {
    fn held() -> Self {
        Self {
            owner: RsOwner::Unknown,
            live: false,
            revision: None,
            created: None,
            pods: HashMap::new(),
            held_observations: Vec::new(),
        }
    }

    /// Nothing refers to this slot any more.
    fn is_garbage(&self) -> bool {
        !self.live && self.pods.is_empty() && self.held_observations.is_empty()
    }
}

/// Everything the model keeps about one workload.
#[derive(Clone, Debug)]
struct Workload {
    /// The Deployment as last seen; `None` before it is seen and after it is deleted.
    deployment: Option<DeploymentState>,
    /// It was seen and then deleted: its series stay until its last pod is gone.
    deleted: bool,
    /// Names of the ReplicaSet slots this workload controls (live or still holding pods).
    replicasets: BTreeSet<String>,
    /// The Deployment's revision as last seen.
    revision: Option<u64>,
    rollout: Option<Rollout>,
    last_started: Option<Timestamp>,
    last_completed: Option<Timestamp>,
    started_total: u64,
    superseded_total: u64,
    /// One count per configured SLO threshold.
    slow_total: Vec<u64>,
    termination: Option<Histogram>,
    ready: Option<Histogram>,
    complete: Option<Histogram>,
    drain_tail: Option<Histogram>,
}

impl Workload {
    fn new(thresholds: usize) -> Self {
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
        }
    }

    /// Series exist for workloads whose Deployment was seen (ReplicaSets of Deployments outside
    /// the exporter's scope create workloads that are never exported).
    fn exported(&self) -> bool {
        self.deployment.is_some() || self.deleted
    }

    fn in_flight(&mut self) -> Option<&mut Rollout> {
        self.rollout.as_mut().filter(|r| r.in_flight())
    }

    /// Counts the rollout in flight as slow for each threshold its age has reached. With an
    /// unknown start the age is a lower bound, so a count is still certain.
    fn advance(&mut self, now: Timestamp, thresholds: &[u64]) {
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

/// Whether a namespace is inside a relist's scope (`None`: cluster-wide).
fn in_scope(scope: &Option<String>, namespace: &str) -> bool {
    scope.as_deref().is_none_or(|s| s == namespace)
}

fn observe(slot: &mut Option<Histogram>, buckets: &Arc<[f64]>, value: f64) {
    slot.get_or_insert_with(|| Histogram::new(buckets.clone()))
        .observe(value);
}

/// The rollout model. See the module documentation.
#[derive(Clone, Debug)]
pub struct Model {
    cfg: ModelConfig,
    workloads: BTreeMap<WorkloadKey, Workload>,
    replicasets: HashMap<ObjectKey, RsSlot>,
    /// Pod → the ReplicaSet name (same namespace) whose slot holds it.
    pod_slots: HashMap<ObjectKey, String>,
    /// Finished pods reported before the pod itself: key → uid.
    finished_pending: HashMap<ObjectKey, String>,
    synced: [bool; 4],
    /// Namespaces listed so far, per resource, when the watches are per namespace.
    synced_namespaces: [BTreeSet<String>; 4],
    /// Every resource finished its first list: events now start rollouts and reach milestones.
    live: bool,
    /// While a relist is applied: the workloads to evaluate once all of it is.
    deferred: Option<BTreeSet<WorkloadKey>>,
    stats: ModelStats,
}

impl Model {
    pub fn new(cfg: ModelConfig) -> Self {
        Self {
            cfg,
            workloads: BTreeMap::new(),
            replicasets: HashMap::new(),
            pod_slots: HashMap::new(),
            finished_pending: HashMap::new(),
            synced: [false; 4],
            synced_namespaces: Default::default(),
            live: false,
            deferred: None,
            stats: ModelStats::default(),
        }
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Whether `resource` finished its first list.
    pub fn is_synced(&self, resource: Resource) -> bool {
        self.synced[resource.index()]
    }

    /// Whether every resource finished its first list.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Applies one event received at `now`.
    pub fn handle(&mut self, event: Event, now: Timestamp) {
        match event {
            Event::Deployment(Change::Applied(d)) => self.apply_deployment(d, now, Timing::Live),
            Event::Deployment(Change::Deleted(d)) => self.delete_deployment(&d.key, now),
            Event::Deployment(Change::Relisted(items)) => self.relist_deployments(None, items, now),
            Event::Deployment(Change::RelistedNamespace(ns, items)) => {
                self.relist_deployments(Some(ns), items, now)
            }
            Event::ReplicaSet(Change::Applied(rs)) => self.apply_replicaset(rs, now, Timing::Live),
            Event::ReplicaSet(Change::Deleted(rs)) => {
                self.delete_replicaset(&rs.key, now, Timing::Live)
            }
            Event::ReplicaSet(Change::Relisted(items)) => self.relist_replicasets(None, items, now),
            Event::ReplicaSet(Change::RelistedNamespace(ns, items)) => {
                self.relist_replicasets(Some(ns), items, now)
            }
            Event::Pod(Change::Applied(p)) => self.apply_pod(p, now, Timing::Live),
            Event::Pod(Change::Deleted(p)) => {
                let key = p.key.clone();
                self.apply_pod(p, now, Timing::Live);
                self.finish_pod(&key, now, Timing::Live);
            }
            Event::Pod(Change::Relisted(items)) => self.relist_pods(None, items, now),
            Event::Pod(Change::RelistedNamespace(ns, items)) => {
                self.relist_pods(Some(ns), items, now)
            }
            Event::FinishedPod(Change::Applied(f)) => self.set_finished(f, true, now, Timing::Live),
            Event::FinishedPod(Change::Deleted(f)) => {
                self.set_finished(f, false, now, Timing::Live)
            }
            Event::FinishedPod(Change::Relisted(items)) => self.relist_finished(None, items, now),
            Event::FinishedPod(Change::RelistedNamespace(ns, items)) => {
                self.relist_finished(Some(ns), items, now)
            }
        }
    }

    // ----- Deployments -------------------------------------------------------------------------

    fn apply_deployment(&mut self, d: DeploymentState, now: Timestamp, timing: Timing) {
        let wk = WorkloadKey::deployment(d.key.namespace.clone(), d.key.name.clone());
        let thresholds = self.cfg.slo_thresholds.len();
        let w = self
            .workloads
            .entry(wk.clone())
            .or_insert_with(|| Workload::new(thresholds));
        let replaced = w.deployment.as_ref().is_some_and(|old| old.uid != d.uid);
        if replaced {
            // Deleted and created again under the same name while we were not looking.
            self.delete_deployment(&d.key, now);
        }
        let w = self
            .workloads
            .entry(wk.clone())
            .or_insert_with(|| Workload::new(thresholds));
        let recreated = w.deployment.is_none() && w.deleted;
        if recreated {
            w.revision = None;
        }
        let revision_changed = d.revision.is_some() && d.revision != w.revision;
        if d.revision.is_some() {
            w.revision = d.revision;
        }
        w.deployment = Some(d);
        w.deleted = false;
        if self.live && revision_changed {
            self.start_rollout(&wk, now, timing);
        }
        self.evaluate(&wk, now, timing);
    }

    /// A new revision: the rollout in flight, if any, is superseded.
    fn start_rollout(&mut self, wk: &WorkloadKey, now: Timestamp, timing: Timing) {
        let thresholds = &self.cfg.slo_thresholds;
        let Some(w) = self.workloads.get_mut(wk) else {
            return;
        };
        w.advance(now, thresholds);
        if let Some(old) = w.in_flight() {
            old.state = RolloutState::Superseded(now);
            w.superseded_total += 1;
        }
        w.started_total += 1;
        w.last_started = Some(now);
        w.rollout = Some(Rollout {
            revision: w.revision,
            start: Some(now),
            known_since: now,
            ready: Milestone::NotReached,
            state: RolloutState::InFlight,
            slow_counted: vec![false; thresholds.len()],
        });
        if timing == Timing::Relist {
            self.stats.imprecise_gap_milestones += 1;
        }
    }

    fn delete_deployment(&mut self, key: &ObjectKey, now: Timestamp) {
        let wk = WorkloadKey::deployment(key.namespace.clone(), key.name.clone());
        let Some(w) = self.workloads.get_mut(&wk) else {
            return;
        };
        if w.deployment.is_none() {
            return;
        }
        w.advance(now, &self.cfg.slo_thresholds);
        if let Some(r) = w.in_flight() {
            r.state = RolloutState::Abandoned(now);
        }
        w.deployment = None;
        w.deleted = true;
        self.remove_if_gone(&wk);
    }

    fn relist_deployments(
        &mut self,
        scope: Option<String>,
        items: Vec<DeploymentState>,
        now: Timestamp,
    ) {
        let listed: HashSet<&ObjectKey> = items.iter().map(|d| &d.key).collect();
        let gone: Vec<ObjectKey> = self
            .workloads
            .iter()
            .filter(|(wk, w)| w.deployment.is_some() && in_scope(&scope, &wk.namespace))
            .map(|(wk, _)| ObjectKey::new(wk.namespace.clone(), wk.name.clone()))
            .filter(|k| !listed.contains(k))
            .collect();
        self.relisting(now, |m| {
            for key in gone {
                m.delete_deployment(&key, now);
            }
            for d in items {
                m.apply_deployment(d, now, Timing::Relist);
            }
        });
        self.mark_synced(Resource::Deployments, scope, now);
    }

    // ----- ReplicaSets -------------------------------------------------------------------------

    fn apply_replicaset(&mut self, rs: ReplicaSetState, now: Timestamp, timing: Timing) {
        let owner = match &rs.owner {
            Some(o) if o.kind == "Deployment" => RsOwner::Deployment(o.name.clone()),
            _ => RsOwner::Other,
        };
        let slot = self
            .replicasets
            .entry(rs.key.clone())
            .or_insert_with(RsSlot::held);
        slot.live = true;
        slot.revision = rs.revision;
        slot.created = rs.created;
        let previous = std::mem::replace(&mut slot.owner, owner.clone());
        if let RsOwner::Deployment(old) = &previous
            && previous != owner
        {
            // Orphaned or adopted by another Deployment.
            let old_wk = WorkloadKey::deployment(rs.key.namespace.clone(), old.clone());
            if let Some(w) = self.workloads.get_mut(&old_wk) {
                w.replicasets.remove(&rs.key.name);
            }
            self.evaluate(&old_wk, now, timing);
            self.remove_if_gone(&old_wk);
        }
        let Some(slot) = self.replicasets.get_mut(&rs.key) else {
            return;
        };
        match owner {
            RsOwner::Deployment(name) => {
                let wk = WorkloadKey::deployment(rs.key.namespace.clone(), name);
                let thresholds = self.cfg.slo_thresholds.len();
                let w = self
                    .workloads
                    .entry(wk.clone())
                    .or_insert_with(|| Workload::new(thresholds));
                w.replicasets.insert(rs.key.name.clone());
                for value in slot.held_observations.drain(..) {
                    observe(&mut w.termination, &self.cfg.buckets, value);
                }
                self.evaluate(&wk, now, timing);
            }
            RsOwner::Other | RsOwner::Unknown => {
                slot.held_observations.clear();
                for name in slot.pods.drain().map(|(name, _)| name) {
                    self.pod_slots.remove(&rs.key.sibling(&name));
                }
            }
        }
    }

    fn delete_replicaset(&mut self, key: &ObjectKey, now: Timestamp, timing: Timing) {
        let Some(slot) = self.replicasets.get_mut(key) else {
            return;
        };
        slot.live = false;
        let owner = slot.owner.clone();
        if slot.is_garbage() {
            self.replicasets.remove(key);
            if let RsOwner::Deployment(name) = &owner {
                let wk = WorkloadKey::deployment(key.namespace.clone(), name.clone());
                if let Some(w) = self.workloads.get_mut(&wk) {
                    w.replicasets.remove(&key.name);
                }
            }
        }
        if let RsOwner::Deployment(name) = owner {
            let wk = WorkloadKey::deployment(key.namespace.clone(), name);
            self.evaluate(&wk, now, timing);
            self.remove_if_gone(&wk);
        }
    }

    fn relist_replicasets(
        &mut self,
        scope: Option<String>,
        items: Vec<ReplicaSetState>,
        now: Timestamp,
    ) {
        let listed: HashSet<&ObjectKey> = items.iter().map(|rs| &rs.key).collect();
        let mut gone: Vec<ObjectKey> = self
            .replicasets
            .iter()
            .filter(|(k, slot)| {
                in_scope(&scope, &k.namespace)
                    && !listed.contains(k)
                    && (slot.live || slot.owner == RsOwner::Unknown)
            })
            .map(|(k, _)| k.clone())
            .collect();
        // In a fixed order, not the map's: replays give the same observations in the same order.
        gone.sort();
        self.relisting(now, |m| {
            for key in gone {
                // A held slot whose ReplicaSet is not listed never arrives: drop what it held.
                if let Some(slot) = m.replicasets.get_mut(&key) {
                    slot.held_observations.clear();
                }
                m.delete_replicaset(&key, now, Timing::Relist);
            }
            for rs in items {
                m.apply_replicaset(rs, now, Timing::Relist);
            }
        });
        self.mark_synced(Resource::ReplicaSets, scope, now);
    }

    // ----- Pods --------------------------------------------------------------------------------

    fn apply_pod(&mut self, p: PodState, now: Timestamp, timing: Timing) {
        let rs_name = match &p.owner {
            Some(o) if o.kind == "ReplicaSet" => o.name.clone(),
            _ => {
                // Not (or no longer) controlled by a ReplicaSet: not part of any rollout.
                self.forget_pod(&p.key, now, timing);
                return;
            }
        };
        if self
            .pod_slots
            .get(&p.key)
            .is_some_and(|current| *current != rs_name)
        {
            self.forget_pod(&p.key, now, timing);
        }
        let rs_key = p.key.sibling(&rs_name);
        let slot = self
            .replicasets
            .entry(rs_key.clone())
            .or_insert_with(RsSlot::held);
        if slot.owner == RsOwner::Other {
            return;
        }
        let replaced = slot
            .pods
            .get(&p.key.name)
            .is_some_and(|record| record.uid != p.uid);
        if replaced {
            // Same name, new object: the old one is gone.
            self.finish_pod(&p.key, now, timing);
        }
        let slot = self
            .replicasets
            .entry(rs_key.clone())
            .or_insert_with(RsSlot::held);
        let record = slot.pods.entry(p.key.name.clone()).or_insert_with(|| {
            let finished = self
                .finished_pending
                .remove(&p.key)
                .is_some_and(|uid| uid == p.uid);
            PodRecord {
                uid: p.uid.clone(),
                termination: None,
                finished,
            }
        });
        if let Some(deletion) = p.deletion {
            let requested = deletion.requested_at();
            match &mut record.termination {
                None => {
                    if requested.is_none() {
                        self.stats.imprecise_unknown_request += 1;
                    }
                    record.termination = Some(Termination {
                        requested,
                        first_deadline: deletion.deadline,
                        first_seen: now,
                    });
                }
                Some(t) => {
                    // The kubelet's final grace-0 delete, or a second shorter delete, rewrites both
                    // fields: keep the earliest request.
                    if let (Some(known), Some(new)) = (t.requested, requested) {
                        t.requested = Some(known.min(new));
                    }
                }
            }
        }
        let owner = slot.owner.clone();
        self.pod_slots.insert(p.key, rs_name);
        if let RsOwner::Deployment(name) = owner {
            let wk = WorkloadKey::deployment(rs_key.namespace, name);
            self.evaluate(&wk, now, timing);
        }
    }

    /// The pod object is gone: a termination in progress is observed.
    fn finish_pod(&mut self, key: &ObjectKey, now: Timestamp, timing: Timing) {
        let Some(record) = self.take_pod(key) else {
            return;
        };
        let (rs_key, record) = record;
        let Some(slot) = self.replicasets.get_mut(&rs_key) else {
            return;
        };
        let duration = record
            .termination
            .and_then(|t| t.requested)
            .map(|requested| now.seconds_since(requested).max(0.0));
        if duration.is_some() && timing == Timing::Relist {
            self.stats.imprecise_gap_terminations += 1;
        }
        let owner = slot.owner.clone();
        match (&owner, duration) {
            (RsOwner::Unknown, Some(d)) => slot.held_observations.push(d),
            (RsOwner::Deployment(name), Some(d)) => {
                let wk = WorkloadKey::deployment(rs_key.namespace.clone(), name.clone());
                if let Some(w) = self.workloads.get_mut(&wk) {
                    observe(&mut w.termination, &self.cfg.buckets, d);
                }
            }
            _ => {}
        }
        self.after_pod_left(&rs_key, &owner, now, timing);
    }

    /// The pod stopped counting for its workload without being gone (its controller changed).
    fn forget_pod(&mut self, key: &ObjectKey, now: Timestamp, timing: Timing) {
        let Some((rs_key, _)) = self.take_pod(key) else {
            return;
        };
        let owner = self
            .replicasets
            .get(&rs_key)
            .map(|s| s.owner.clone())
            .unwrap_or(RsOwner::Unknown);
        self.after_pod_left(&rs_key, &owner, now, timing);
    }

    fn take_pod(&mut self, key: &ObjectKey) -> Option<(ObjectKey, PodRecord)> {
        let rs_name = self.pod_slots.remove(key)?;
        let rs_key = key.sibling(&rs_name);
        let record = self.replicasets.get_mut(&rs_key)?.pods.remove(&key.name)?;
        Some((rs_key, record))
    }

    fn after_pod_left(
        &mut self,
        rs_key: &ObjectKey,
        owner: &RsOwner,
        now: Timestamp,
        timing: Timing,
    ) {
        if self.replicasets.get(rs_key).is_some_and(RsSlot::is_garbage) {
            self.replicasets.remove(rs_key);
            if let RsOwner::Deployment(name) = owner {
                let wk = WorkloadKey::deployment(rs_key.namespace.clone(), name.clone());
                if let Some(w) = self.workloads.get_mut(&wk) {
                    w.replicasets.remove(&rs_key.name);
                }
            }
        }
        if let RsOwner::Deployment(name) = owner {
            let wk = WorkloadKey::deployment(rs_key.namespace.clone(), name.clone());
            self.evaluate(&wk, now, timing);
            self.remove_if_gone(&wk);
        }
    }

    fn relist_pods(&mut self, scope: Option<String>, items: Vec<PodState>, now: Timestamp) {
        let listed: HashSet<&ObjectKey> = items.iter().map(|p| &p.key).collect();
        let mut gone: Vec<ObjectKey> = self
            .pod_slots
            .keys()
            .filter(|k| in_scope(&scope, &k.namespace) && !listed.contains(k))
            .cloned()
            .collect();
        // In a fixed order, not the map's: replays give the same observations in the same order.
        gone.sort();
        self.relisting(now, |m| {
            for key in gone {
                m.finish_pod(&key, now, Timing::Relist);
            }
            for p in items {
                m.apply_pod(p, now, Timing::Relist);
            }
        });
        self.mark_synced(Resource::Pods, scope, now);
    }

    // ----- Phase source ------------------------------------------------------------------------

    fn set_finished(&mut self, f: FinishedPod, finished: bool, now: Timestamp, timing: Timing) {
        self.finished_pending.remove(&f.key);
        let Some(rs_name) = self.pod_slots.get(&f.key) else {
            if finished {
                self.finished_pending.insert(f.key, f.uid);
            }
            return;
        };
        let rs_key = f.key.sibling(rs_name);
        let Some(slot) = self.replicasets.get_mut(&rs_key) else {
            return;
        };
        if let Some(record) = slot.pods.get_mut(&f.key.name)
            && record.uid == f.uid
        {
            record.finished = finished;
        }
        if let RsOwner::Deployment(name) = &slot.owner {
            let wk = WorkloadKey::deployment(rs_key.namespace.clone(), name.clone());
            // A completion found while a relist is applied is timed at the relist: imprecise.
            self.evaluate(&wk, now, timing);
        }
    }

    fn relist_finished(&mut self, scope: Option<String>, items: Vec<FinishedPod>, now: Timestamp) {
        self.finished_pending
            .retain(|k, _| !in_scope(&scope, &k.namespace));
        for (key, slot) in self.replicasets.iter_mut() {
            if in_scope(&scope, &key.namespace) {
                for record in slot.pods.values_mut() {
                    record.finished = false;
                }
            }
        }
        self.relisting(now, |m| {
            for f in items {
                m.set_finished(f, true, now, Timing::Relist);
            }
        });
        self.mark_synced(Resource::FinishedPods, scope, now);
        let keys: Vec<WorkloadKey> = self.workloads.keys().cloned().collect();
        for wk in keys {
            self.evaluate(&wk, now, Timing::Relist);
        }
    }

    // ----- Sync and restart --------------------------------------------------------------------

    fn mark_synced(&mut self, resource: Resource, scope: Option<String>, now: Timestamp) {
        let i = resource.index();
        match scope {
            None => self.synced[i] = true,
            Some(ns) => {
                self.synced_namespaces[i].insert(ns);
                let all = &self.cfg.namespaces;
                if !all.is_empty() && all.iter().all(|n| self.synced_namespaces[i].contains(n)) {
                    self.synced[i] = true;
                }
            }
        }
        if !self.live && self.synced.iter().all(|&s| s) {
            self.recover(now);
            self.live = true;
            let keys: Vec<WorkloadKey> = self.workloads.keys().cloned().collect();
            for wk in keys {
                self.evaluate(&wk, now, Timing::Live);
            }
        }
    }

    /// Rebuilds the rollout in flight of every Deployment from the initial lists after an exporter
    /// (re)start. Nothing that happened before is counted or observed: counters start at 0,
    /// slow thresholds already passed are marked counted.
    fn recover(&mut self, now: Timestamp) {
        let thresholds = &self.cfg.slo_thresholds;
        for (wk, w) in self.workloads.iter_mut() {
            let Some(dep) = &w.deployment else {
                continue;
            };
            w.revision = dep.revision;
            let mut current_created = None;
            let mut others_newest: Option<Timestamp> = None;
            let mut old_pods_remain = false;
            for rs_name in &w.replicasets {
                let Some(slot) = self
                    .replicasets
                    .get(&ObjectKey::new(wk.namespace.clone(), rs_name.clone()))
                else {
                    continue;
                };
                if slot.live && slot.revision.is_some() && slot.revision == dep.revision {
                    current_created = slot.created;
                } else {
                    old_pods_remain |= slot.pods.values().any(PodRecord::blocks_completion);
                    if slot.live {
                        others_newest = others_newest.max(slot.created);
                    }
                }
            }
            let in_flight = old_pods_remain
                || match &dep.progressing {
                    Some(c) if c.reason == REASON_NEW_RS_AVAILABLE => false,
                    Some(c) if c.reason == REASON_PAUSED => !dep.is_fully_updated(),
                    None => !dep.is_fully_updated(),
                    Some(_) => true,
                };
            // The current ReplicaSet's creation is the rollout start only when it is newer than
            // every other: a reused (rolled back) ReplicaSet was created long before.
            let start = current_created.filter(|&c| others_newest.is_none_or(|o| c > o));
            w.last_started = start;
            if !in_flight {
                continue;
            }
            if start.is_none() {
                self.stats.unknown_start_rollouts += 1;
            }
            let ready = if dep.passes_ready_test() {
                Milestone::Reached(
                    dep.progressing
                        .as_ref()
                        .filter(|c| c.reason == REASON_NEW_RS_AVAILABLE)
                        .and_then(|c| c.last_update),
                )
            } else {
                Milestone::NotReached
            };
            let mut rollout = Rollout {
                revision: dep.revision,
                start,
                known_since: now,
                ready,
                state: RolloutState::InFlight,
                slow_counted: Vec::new(),
            };
            let age = rollout.age(now);
            rollout.slow_counted = thresholds.iter().map(|&t| age >= t as f64).collect();
            w.rollout = Some(rollout);
        }
    }

    // ----- Milestones --------------------------------------------------------------------------

    /// Applies a relist as one state: milestones are judged once all of it is applied, never on
    /// a half-applied one (gone pods finished but the listed ones not in yet could look
    /// complete). Everything it moves is timed at the relist.
    fn relisting(&mut self, now: Timestamp, apply: impl FnOnce(&mut Self)) {
        self.deferred = Some(BTreeSet::new());
        apply(self);
        for wk in self.deferred.take().unwrap_or_default() {
            self.evaluate(&wk, now, Timing::Relist);
        }
    }

    /// Checks the milestones of `wk`'s rollout in flight after anything that may have moved them.
    fn evaluate(&mut self, wk: &WorkloadKey, now: Timestamp, timing: Timing) {
        if let Some(deferred) = self.deferred.as_mut() {
            deferred.insert(wk.clone());
            return;
        }
        let Model {
            cfg,
            workloads,
            replicasets,
            live,
            stats,
            ..
        } = self;
        let Some(w) = workloads.get_mut(wk) else {
            return;
        };
        w.advance(now, &cfg.slo_thresholds);
        if !*live {
            return;
        }
        let Some(dep) = w.deployment.as_ref() else {
            return;
        };
        let Some(rollout) = w.rollout.as_mut().filter(|r| r.in_flight()) else {
            return;
        };
        if !rollout.ready.is_reached()
            && dep.revision == rollout.revision
            && dep.passes_ready_test()
        {
            rollout.ready = Milestone::Reached(Some(now));
            if let Some(start) = rollout.start {
                observe(
                    &mut w.ready,
                    &cfg.buckets,
                    now.seconds_since(start).max(0.0),
                );
            }
            if timing == Timing::Relist {
                stats.imprecise_gap_milestones += 1;
            }
        }
        if !rollout.ready.is_reached() {
            return;
        }
        // Never conclude from one watch alone: the current ReplicaSet must be known, and every
        // pod of every other ReplicaSet must be gone or a finished leftover.
        let mut current_known = false;
        for rs_name in &w.replicasets {
            let Some(slot) =
                replicasets.get(&ObjectKey::new(wk.namespace.clone(), rs_name.clone()))
            else {
                continue;
            };
            if slot.live && slot.revision.is_some() && slot.revision == rollout.revision {
                current_known = true;
            } else if slot.pods.values().any(PodRecord::blocks_completion) {
                return;
            }
        }
        if !current_known {
            return;
        }
        rollout.state = RolloutState::Complete(now);
        w.last_completed = Some(now);
        if let Some(start) = rollout.start {
            observe(
                &mut w.complete,
                &cfg.buckets,
                now.seconds_since(start).max(0.0),
            );
        }
        if let Some(ready) = rollout.ready.time() {
            observe(
                &mut w.drain_tail,
                &cfg.buckets,
                now.seconds_since(ready).max(0.0),
            );
        }
        if timing == Timing::Relist {
            stats.imprecise_gap_milestones += 1;
        }
    }

    /// Drops a workload whose Deployment is gone (or was never seen) once nothing of it remains.
    fn remove_if_gone(&mut self, wk: &WorkloadKey) {
        let Some(w) = self.workloads.get_mut(wk) else {
            return;
        };
        if w.deployment.is_some() {
            return;
        }
        let has_pods = w.replicasets.iter().any(|rs| {
            self.replicasets
                .get(&ObjectKey::new(wk.namespace.clone(), rs.clone()))
                .is_some_and(|s| !s.pods.is_empty())
        });
        if has_pods {
            return;
        }
        if w.replicasets.is_empty() {
            self.workloads.remove(wk);
        } else if w.deleted {
            // Its last pod is gone, so its series go, but ReplicaSets naming it remain (the
            // garbage collector's deletions to come, or pods still unseen): it starts over as a
            // workload whose Deployment was never seen, still indexing them, so that a Deployment
            // created again under the same name sees them and their pods.
            let replicasets = std::mem::take(&mut w.replicasets);
            *w = Workload {
                replicasets,
                ..Workload::new(self.cfg.slo_thresholds.len())
            };
        }
    }

    // ----- Queries -----------------------------------------------------------------------------

    /// Every exported workload's metric values at `now`. Takes `&mut self` because rollouts age:
    /// a rollout in flight that passed an SLO threshold is counted slow here if no event did it.
    pub fn snapshot(&mut self, now: Timestamp) -> Vec<WorkloadMetrics> {
        // Until every resource has been listed, rollouts are not recovered yet: a phase or a
        // gauge would be a guess. Nothing is exported before the first full sync.
        if !self.live {
            return Vec::new();
        }
        let thresholds = &self.cfg.slo_thresholds;
        let mut out = Vec::with_capacity(self.workloads.len());
        for (wk, w) in self.workloads.iter_mut() {
            w.advance(now, thresholds);
            if !w.exported() {
                continue;
            }
            let mut terminating = 0;
            let mut overdue = 0;
            let mut oldest: Option<Timestamp> = None;
            for rs_name in &w.replicasets {
                let Some(slot) = self
                    .replicasets
                    .get(&ObjectKey::new(wk.namespace.clone(), rs_name.clone()))
                else {
                    continue;
                };
                for t in slot.pods.values().filter_map(|p| p.termination.as_ref()) {
                    terminating += 1;
                    if now > t.first_deadline {
                        overdue += 1;
                    }
                    oldest = Some(oldest.map_or(t.since(), |o| o.min(t.since())));
                }
            }
            let in_flight = w.rollout.as_ref().filter(|r| r.in_flight());
            let phase = match (&w.deployment, in_flight) {
                (Some(d), _) if d.is_stalled() => Phase::Stalled,
                (Some(d), _) if d.paused => Phase::Paused,
                (_, Some(r)) if r.ready.is_reached() => Phase::Draining,
                (_, Some(_)) => Phase::Progressing,
                (_, None) => Phase::Complete,
            };
            out.push(WorkloadMetrics {
                key: wk.clone(),
                terminating_pods: terminating,
                terminating_pods_overdue: overdue,
                oldest_termination_seconds: oldest.map_or(0.0, |o| now.seconds_since(o).max(0.0)),
                in_progress_seconds: in_flight.map_or(0.0, |r| r.age(now)),
                phase,
                revision: w.revision,
                last_started_timestamp: w.last_started.map(Timestamp::as_secs_f64),
                last_completed_timestamp: w.last_completed.map(Timestamp::as_secs_f64),
                started_total: w.started_total,
                superseded_total: w.superseded_total,
                slow_total: thresholds
                    .iter()
                    .copied()
                    .zip(w.slow_total.iter().copied())
                    .collect(),
                pod_termination_duration: w.termination.clone(),
                ready_duration: w.ready.clone(),
                complete_duration: w.complete.clone(),
                drain_tail: w.drain_tail.clone(),
            });
        }
        out
    }

    /// The exporter's view of itself: imprecise observations and objects tracked.
    pub fn stats(&self) -> ModelStats {
        let mut stats = self.stats;
        stats.deployments = self
            .workloads
            .values()
            .filter(|w| w.deployment.is_some())
            .count() as u64;
        stats.replicasets = self.replicasets.values().filter(|s| s.live).count() as u64;
        stats.pods = self.pod_slots.len() as u64;
        stats.finished_pods = self
            .replicasets
            .values()
            .flat_map(|s| s.pods.values())
            .filter(|p| p.finished)
            .count() as u64
            + self.finished_pending.len() as u64;
        stats
    }

    /// Whether the model holds nothing at all (every object gone).
    pub fn is_empty(&self) -> bool {
        self.workloads.is_empty()
            && self.replicasets.is_empty()
            && self.pod_slots.is_empty()
            && self.finished_pending.is_empty()
    }
}
