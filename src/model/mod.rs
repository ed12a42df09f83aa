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
//! All of it is kept per namespace ([`namespace`]), the only scope owner references relate.

mod histogram;
mod namespace;
mod objects;
mod rollout;
mod snapshot;
mod time;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use histogram::{DEFAULT_BUCKETS, Histogram, bucket_bounds};
pub use objects::{
    ConditionStatus, ControllerRef, Deletion, DeploymentState, FinishedPod, ObjectKey, OwnerKind,
    PodState, ProgressingCondition, REASON_DEADLINE_EXCEEDED, REASON_NEW_RS_AVAILABLE,
    REASON_PAUSED, ReplicaSetState, Uid, WorkloadKey, WorkloadKind,
};
pub use rollout::{Milestone, Phase, Rollout, RolloutState};
pub use snapshot::{ModelStats, WorkloadMetrics};
pub use time::Timestamp;

use namespace::{
    Name, Namespace, PendingFinish, PodRecord, RsOwner, RsSlot, Termination, Workload,
};

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
    /// (a [`Change::ListDone`] or [`Change::RelistedNamespace`] of each).
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
    /// A list (initial or after a watch gap) starts: cluster-wide (`None`) or of one namespace.
    /// Its objects follow as [`Change::Listed`], then [`Change::ListDone`]. A list that starts
    /// again before it is done (the watch failed part way) keeps what it applied so far.
    ListStarted(Option<String>),
    /// One object of the list in progress, applied as it arrives: the watch adapters stream a list
    /// of 100k pods through the model instead of holding a second copy of it.
    Listed(T),
    /// The list of this scope is done: exactly the objects it listed exist there; other
    /// namespaces are untouched. Milestones it moved are judged now, on all of it.
    ListDone(Option<String>),
    /// A whole cluster-wide list at once: `ListStarted(None)`, a `Listed` per object, `ListDone`.
    Relisted(Vec<T>),
    /// A whole list of one namespace at once.
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

/// The watched resources, each synced by its first finished list.
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

/// A list in progress: its objects are applied as they arrive and stamped with its epoch; at its
/// end, whatever in its scope was not stamped is gone.
#[derive(Clone, Debug)]
struct List {
    resource: Resource,
    /// `None`: cluster-wide.
    scope: Option<String>,
    epoch: u32,
    /// Workloads whose milestones wait for the end of the list.
    deferred: BTreeSet<(Name, Name)>,
}

/// Whether a namespace is inside a list's scope (`None`: cluster-wide).
fn in_scope(scope: &Option<String>, namespace: &str) -> bool {
    scope.as_deref().is_none_or(|s| s == namespace)
}

fn observe(slot: &mut Option<Box<Histogram>>, buckets: &Arc<[f64]>, value: f64) {
    slot.get_or_insert_with(|| Box::new(Histogram::new(buckets.clone())))
        .observe(value);
}

/// The rollout model. See the module documentation.
#[derive(Clone, Debug)]
pub struct Model {
    cfg: ModelConfig,
    namespaces: BTreeMap<Name, Namespace>,
    synced: [bool; 4],
    /// Namespaces listed so far, per resource, when the watches are per namespace.
    synced_namespaces: [BTreeSet<String>; 4],
    /// Every resource finished its first list: events now start rollouts and reach milestones.
    live: bool,
    /// Lists in progress (one per resource, or per resource and namespace).
    lists: Vec<List>,
    /// The last list epoch handed out.
    epoch: u32,
    /// While a list's objects are applied: the workloads to evaluate once all of it is.
    deferred: Option<BTreeSet<(Name, Name)>>,
    stats: ModelStats,
}

impl Model {
    pub fn new(cfg: ModelConfig) -> Self {
        Self {
            cfg,
            namespaces: BTreeMap::new(),
            synced: [false; 4],
            synced_namespaces: Default::default(),
            live: false,
            lists: Vec::new(),
            epoch: 0,
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
            Event::Deployment(change) => self.change(Resource::Deployments, change, now),
            Event::ReplicaSet(change) => self.change(Resource::ReplicaSets, change, now),
            Event::Pod(change) => self.change(Resource::Pods, change, now),
            Event::FinishedPod(change) => self.change(Resource::FinishedPods, change, now),
        }
    }

    fn change<T: Item>(&mut self, resource: Resource, change: Change<T>, now: Timestamp) {
        match change {
            Change::Applied(item) => {
                let ns = self.intern(item.namespace());
                item.apply(self, &ns, now, Timing::Live, 0);
                self.prune(&ns);
            }
            Change::Deleted(item) => {
                let ns = self.intern(item.namespace());
                item.delete(self, &ns, now);
                self.prune(&ns);
            }
            Change::ListStarted(scope) => self.list_started(resource, scope),
            Change::Listed(item) => self.listed(resource, item, now),
            Change::ListDone(scope) => self.list_done(resource, scope, now),
            Change::Relisted(items) => self.relist(resource, None, items, now),
            Change::RelistedNamespace(ns, items) => self.relist(resource, Some(ns), items, now),
        }
    }

    /// The namespace's interned name; its state exists from here on (pruned when empty).
    fn intern(&mut self, namespace: &str) -> Name {
        if let Some((name, _)) = self.namespaces.get_key_value(namespace) {
            return name.clone();
        }
        let name = Name::from(namespace);
        self.namespaces.insert(name.clone(), Namespace::default());
        name
    }

    /// Drops a namespace's state once nothing is left in it.
    fn prune(&mut self, ns: &str) {
        if self.namespaces.get(ns).is_some_and(Namespace::is_empty) {
            self.namespaces.remove(ns);
        }
    }

    // ----- Lists -------------------------------------------------------------------------------

    fn relist<T: Item>(
        &mut self,
        resource: Resource,
        scope: Option<String>,
        items: Vec<T>,
        now: Timestamp,
    ) {
        self.list_started(resource, scope.clone());
        for item in items {
            self.listed(resource, item, now);
        }
        self.list_done(resource, scope, now);
    }

    fn list_started(&mut self, resource: Resource, scope: Option<String>) {
        self.epoch = self.epoch.wrapping_add(1).max(1);
        let epoch = self.epoch;
        match self
            .lists
            .iter_mut()
            .find(|l| l.resource == resource && l.scope == scope)
        {
            // A list that restarts (an error part way): the objects it applied stay applied, and
            // what it deferred is still evaluated at the end.
            Some(list) => list.epoch = epoch,
            None => self.lists.push(List {
                resource,
                scope,
                epoch,
                deferred: BTreeSet::new(),
            }),
        }
    }

    fn list_index(&self, resource: Resource, namespace: &str) -> Option<usize> {
        self.lists
            .iter()
            .position(|l| l.resource == resource && in_scope(&l.scope, namespace))
    }

    /// One object of a list in progress: applied now, its milestones judged at the list's end.
    fn listed<T: Item>(&mut self, resource: Resource, item: T, now: Timestamp) {
        let ns = self.intern(item.namespace());
        let Some(i) = self.list_index(resource, &ns) else {
            // No list in progress (not sent by the watch adapters): an ordinary change.
            item.apply(self, &ns, now, Timing::Relist, 0);
            self.prune(&ns);
            return;
        };
        let epoch = self.lists[i].epoch;
        self.deferred = Some(std::mem::take(&mut self.lists[i].deferred));
        item.apply(self, &ns, now, Timing::Relist, epoch);
        self.lists[i].deferred = self.deferred.take().unwrap_or_default();
        self.prune(&ns);
    }

    /// A list finished: what was in its scope and not listed is gone, milestones are judged on
    /// the whole of it (never on a half-applied one), and the resource may now be synced.
    fn list_done(&mut self, resource: Resource, scope: Option<String>, now: Timestamp) {
        let position = self
            .lists
            .iter()
            .position(|l| l.resource == resource && l.scope == scope);
        let i = match position {
            Some(i) => i,
            None => {
                // Done without a start: an empty list.
                self.list_started(resource, scope.clone());
                self.lists.len() - 1
            }
        };
        let epoch = self.lists[i].epoch;
        self.deferred = Some(std::mem::take(&mut self.lists[i].deferred));
        match resource {
            Resource::Deployments => self.sweep_deployments(&scope, epoch, now),
            Resource::ReplicaSets => self.sweep_replicasets(&scope, epoch, now),
            Resource::Pods => self.sweep_pods(&scope, epoch, now),
            Resource::FinishedPods => self.sweep_finished(&scope, epoch),
        }
        self.lists.remove(i);
        for (ns, w) in self.deferred.take().unwrap_or_default() {
            self.evaluate(&ns, &w, now, Timing::Relist);
        }
        self.namespaces.retain(|_, n| !n.is_empty());
        self.mark_synced(resource, scope.clone(), now);
        if resource == Resource::FinishedPods {
            for (ns, w) in self.workload_names(&scope) {
                self.evaluate(&ns, &w, now, Timing::Relist);
            }
        }
    }

    /// Every workload in scope, in order.
    fn workload_names(&self, scope: &Option<String>) -> Vec<(Name, Name)> {
        self.namespaces
            .iter()
            .filter(|(ns, _)| in_scope(scope, ns))
            .flat_map(|(ns, n)| n.workloads.keys().map(|w| (ns.clone(), w.clone())))
            .collect()
    }

    /// What in scope was not listed (`gone` picks it from a namespace), in a fixed order (not the
    /// maps'), so replays give the same observations in the same order.
    fn unlisted(
        &self,
        scope: &Option<String>,
        gone: impl Fn(&Namespace) -> Vec<String>,
    ) -> Vec<(Name, String)> {
        let mut out: Vec<(Name, String)> = self
            .namespaces
            .iter()
            .filter(|(ns, _)| in_scope(scope, ns))
            .flat_map(|(ns, n)| gone(n).into_iter().map(|name| (ns.clone(), name)))
            .collect();
        out.sort();
        out
    }

    fn sweep_deployments(&mut self, scope: &Option<String>, epoch: u32, now: Timestamp) {
        let gone = self.unlisted(scope, |n| {
            n.workloads
                .iter()
                .filter(|(_, w)| w.deployment.is_some() && w.listed != epoch)
                .map(|(name, _)| name.to_string())
                .collect()
        });
        for (ns, name) in gone {
            self.delete_deployment(&ns, &name, now);
        }
    }

    fn sweep_replicasets(&mut self, scope: &Option<String>, epoch: u32, now: Timestamp) {
        let gone = self.unlisted(scope, |n| {
            n.replicasets
                .iter()
                .filter(|(_, s)| s.listed != epoch && (s.live || s.owner == RsOwner::Unknown))
                .map(|(name, _)| name.to_string())
                .collect()
        });
        for (ns, name) in gone {
            // A held slot whose ReplicaSet is not listed never arrives: drop what it held.
            if let Some(slot) = self
                .namespaces
                .get_mut(&ns)
                .and_then(|n| n.replicasets.get_mut(&*name))
            {
                slot.held_observations.clear();
            }
            self.delete_replicaset(&ns, &name, now, Timing::Relist);
        }
    }

    fn sweep_pods(&mut self, scope: &Option<String>, epoch: u32, now: Timestamp) {
        let gone = self.unlisted(scope, |n| {
            n.pods
                .iter()
                .filter(|(_, p)| p.listed != epoch)
                .map(|(name, _)| name.to_string())
                .collect()
        });
        for (ns, name) in gone {
            self.finish_pod(&ns, &name, now, Timing::Relist);
        }
    }

    /// Pods not listed as finished are not finished (any more).
    fn sweep_finished(&mut self, scope: &Option<String>, epoch: u32) {
        let unfinished = self.unlisted(scope, |n| {
            n.pods
                .iter()
                .filter(|(_, p)| p.finished && p.finished_listed != epoch)
                .map(|(name, _)| name.to_string())
                .collect()
        });
        for (ns, name) in unfinished {
            if let Some(n) = self.namespaces.get_mut(&ns) {
                n.update_pod(&name, |r| r.finished = false);
            }
        }
        for (ns, n) in self.namespaces.iter_mut() {
            if in_scope(scope, ns) {
                n.finished_pending.retain(|_, f| f.listed == epoch);
            }
        }
    }

    // ----- Deployments -------------------------------------------------------------------------

    fn apply_deployment(
        &mut self,
        ns: &Name,
        d: DeploymentState,
        now: Timestamp,
        timing: Timing,
        epoch: u32,
    ) {
        let thresholds = self.cfg.slo_thresholds.len();
        let replaced = self
            .namespaces
            .get_mut(ns)
            .and_then(|n| n.workloads.get(d.key.name.as_str()))
            .and_then(|w| w.deployment.as_ref())
            .is_some_and(|old| old.uid != d.uid);
        if replaced {
            // Deleted and created again under the same name while we were not looking.
            self.delete_deployment(ns, &d.key.name, now);
        }
        let Some(n) = self.namespaces.get_mut(ns) else {
            return;
        };
        let (name, w) = n.workload(&d.key.name, thresholds);
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
        if epoch != 0 {
            w.listed = epoch;
        }
        if self.live && revision_changed {
            self.start_rollout(ns, &name, now, timing);
        }
        self.evaluate(ns, &name, now, timing);
    }

    /// A new revision: the rollout in flight, if any, is superseded.
    fn start_rollout(&mut self, ns: &str, name: &str, now: Timestamp, timing: Timing) {
        let thresholds = &self.cfg.slo_thresholds;
        let Some(w) = self
            .namespaces
            .get_mut(ns)
            .and_then(|n| n.workloads.get_mut(name))
        else {
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

    fn delete_deployment(&mut self, ns: &str, name: &str, now: Timestamp) {
        let thresholds = &self.cfg.slo_thresholds;
        let Some(w) = self
            .namespaces
            .get_mut(ns)
            .and_then(|n| n.workloads.get_mut(name))
        else {
            return;
        };
        if w.deployment.is_none() {
            return;
        }
        w.advance(now, thresholds);
        if let Some(r) = w.in_flight() {
            r.state = RolloutState::Abandoned(now);
        }
        w.deployment = None;
        w.deleted = true;
        self.remove_if_gone(ns, name);
    }

    // ----- ReplicaSets -------------------------------------------------------------------------

    fn apply_replicaset(
        &mut self,
        ns: &Name,
        rs: ReplicaSetState,
        now: Timestamp,
        timing: Timing,
        epoch: u32,
    ) {
        let thresholds = self.cfg.slo_thresholds.len();
        let Some(n) = self.namespaces.get_mut(ns) else {
            return;
        };
        let owner = match &rs.owner {
            Some(o) if o.kind == OwnerKind::Deployment => {
                RsOwner::Deployment(n.workload(&o.name, thresholds).0)
            }
            _ => RsOwner::Other,
        };
        let (rs_name, slot) = n.slot(&rs.key.name);
        slot.live = true;
        if epoch != 0 {
            slot.listed = epoch;
        }
        slot.revision = rs.revision;
        slot.created = rs.created;
        let previous = std::mem::replace(&mut slot.owner, owner.clone());
        if let RsOwner::Deployment(old) = &previous
            && previous != owner
        {
            // Orphaned or adopted by another Deployment.
            if let Some(w) = n.workloads.get_mut(old) {
                w.replicasets.remove(&rs_name);
            }
            self.evaluate(ns, old, now, timing);
            self.remove_if_gone(ns, old);
        }
        let buckets = self.cfg.buckets.clone();
        let Some(n) = self.namespaces.get_mut(ns) else {
            return;
        };
        let Namespace {
            workloads,
            replicasets,
            ..
        } = n;
        let Some(slot) = replicasets.get_mut(&rs_name) else {
            return;
        };
        match owner {
            RsOwner::Deployment(name) => {
                let Some(w) = workloads.get_mut(&name) else {
                    return;
                };
                w.replicasets.insert(rs_name);
                for value in slot.held_observations.drain(..) {
                    observe(&mut w.termination, &buckets, value);
                }
                self.evaluate(ns, &name, now, timing);
            }
            RsOwner::Other | RsOwner::Unknown => {
                slot.held_observations.clear();
                n.drop_pods_of(&rs_name);
            }
        }
    }

    fn delete_replicaset(&mut self, ns: &Name, name: &str, now: Timestamp, timing: Timing) {
        let Some(n) = self.namespaces.get_mut(ns) else {
            return;
        };
        let Some(slot) = n.replicasets.get_mut(name) else {
            return;
        };
        slot.live = false;
        let owner = slot.owner.clone();
        if slot.is_garbage() {
            n.replicasets.remove(name);
            if let RsOwner::Deployment(w) = &owner
                && let Some(w) = n.workloads.get_mut(w)
            {
                w.replicasets.remove(name);
            }
        }
        if let RsOwner::Deployment(w) = owner {
            self.evaluate(ns, &w, now, timing);
            self.remove_if_gone(ns, &w);
        }
    }

    // ----- Pods --------------------------------------------------------------------------------

    fn apply_pod(&mut self, ns: &Name, p: &PodState, now: Timestamp, timing: Timing, epoch: u32) {
        let name = p.key.name.as_str();
        let rs_name = match &p.owner {
            Some(o) if o.kind == OwnerKind::ReplicaSet => o.name.as_str(),
            _ => {
                // Not (or no longer) controlled by a ReplicaSet: not part of any rollout.
                self.forget_pod(ns, name, now, timing);
                return;
            }
        };
        let moved = self
            .namespaces
            .get_mut(ns)
            .and_then(|n| n.pods.get(name))
            .is_some_and(|r| &*r.rs != rs_name);
        if moved {
            self.forget_pod(ns, name, now, timing);
        }
        let uid = p.uid;
        let Some(n) = self.namespaces.get_mut(ns) else {
            return;
        };
        if n.slot(rs_name).1.owner == RsOwner::Other {
            return;
        }
        if n.pods.get(name).is_some_and(|r| r.uid != uid) {
            // Same name, new object: the old one is gone.
            self.finish_pod(ns, name, now, timing);
        }
        let Some(n) = self.namespaces.get_mut(ns) else {
            return;
        };
        let (rs, slot) = n.slot(rs_name);
        let owner = slot.owner.clone();
        if !n.pods.contains_key(name) {
            let pending = n.finished_pending.remove(name).filter(|f| f.uid == uid);
            let record = PodRecord {
                rs,
                uid,
                termination: None,
                finished: pending.is_some(),
                listed: 0,
                // A finished-pod list in progress listed it before the pod came.
                finished_listed: pending.map_or(0, |f| f.listed),
            };
            n.insert_pod(name, record);
        }
        if epoch != 0
            && let Some(record) = n.pods.get_mut(name)
        {
            record.listed = epoch;
        }
        if let Some(deletion) = p.deletion {
            let requested = deletion.requested_at();
            let first = n.update_pod(name, |record| match &mut record.termination {
                None => {
                    record.termination = Some(Box::new(Termination {
                        requested,
                        first_deadline: deletion.deadline,
                        first_seen: now,
                    }));
                    true
                }
                Some(t) => {
                    // The kubelet's final grace-0 delete, or a second shorter delete, rewrites both
                    // fields: keep the earliest request.
                    if let (Some(known), Some(new)) = (t.requested, requested) {
                        t.requested = Some(known.min(new));
                    }
                    false
                }
            });
            if first == Some(true) && requested.is_none() {
                self.stats.imprecise_unknown_request += 1;
            }
        }
        if let RsOwner::Deployment(w) = owner {
            self.evaluate(ns, &w, now, timing);
        }
    }

    /// The pod object is gone: a termination in progress is observed.
    fn finish_pod(&mut self, ns: &Name, name: &str, now: Timestamp, timing: Timing) {
        let Some(n) = self.namespaces.get_mut(ns) else {
            return;
        };
        let Some(record) = n.remove_pod(name) else {
            return;
        };
        let Some(slot) = n.replicasets.get_mut(&record.rs) else {
            return;
        };
        let duration = record
            .termination
            .and_then(|t| t.requested)
            .map(|requested| now.seconds_since(requested).max(0.0));
        let owner = slot.owner.clone();
        match (&owner, duration) {
            (RsOwner::Unknown, Some(d)) => slot.held_observations.push(d),
            (RsOwner::Deployment(w), Some(d)) => {
                if let Some(w) = n.workloads.get_mut(w) {
                    observe(&mut w.termination, &self.cfg.buckets, d);
                }
            }
            _ => {}
        }
        if duration.is_some() && timing == Timing::Relist {
            self.stats.imprecise_gap_terminations += 1;
        }
        self.after_pod_left(ns, &record.rs, &owner, now, timing);
    }

    /// The pod stopped counting for its workload without being gone (its controller changed).
    fn forget_pod(&mut self, ns: &Name, name: &str, now: Timestamp, timing: Timing) {
        let Some(n) = self.namespaces.get_mut(ns) else {
            return;
        };
        let Some(record) = n.remove_pod(name) else {
            return;
        };
        let owner = n
            .replicasets
            .get(&record.rs)
            .map_or(RsOwner::Unknown, |s| s.owner.clone());
        self.after_pod_left(ns, &record.rs, &owner, now, timing);
    }

    fn after_pod_left(
        &mut self,
        ns: &Name,
        rs: &str,
        owner: &RsOwner,
        now: Timestamp,
        timing: Timing,
    ) {
        let Some(n) = self.namespaces.get_mut(ns) else {
            return;
        };
        if n.replicasets.get(rs).is_some_and(RsSlot::is_garbage) {
            n.replicasets.remove(rs);
            if let RsOwner::Deployment(w) = owner
                && let Some(w) = n.workloads.get_mut(w)
            {
                w.replicasets.remove(rs);
            }
        }
        if let RsOwner::Deployment(w) = owner {
            self.evaluate(ns, w, now, timing);
            self.remove_if_gone(ns, w);
        }
    }

    // ----- Phase source ------------------------------------------------------------------------

    fn set_finished(
        &mut self,
        ns: &Name,
        f: &FinishedPod,
        finished: bool,
        now: Timestamp,
        (timing, epoch): (Timing, u32),
    ) {
        let uid = f.uid;
        let name = f.key.name.as_str();
        let Some(n) = self.namespaces.get_mut(ns) else {
            return;
        };
        n.finished_pending.remove(name);
        let Some(rs) = n.pods.get(name).map(|r| r.rs.clone()) else {
            if finished {
                n.finished_pending
                    .insert(Box::from(name), PendingFinish { uid, listed: epoch });
            }
            return;
        };
        n.update_pod(name, |record| {
            if record.uid == uid {
                record.finished = finished;
                if epoch != 0 {
                    record.finished_listed = epoch;
                }
            }
        });
        if let Some(RsOwner::Deployment(w)) = n.replicasets.get(&rs).map(|s| s.owner.clone()) {
            // A completion found while a list is applied is timed at its end: imprecise.
            self.evaluate(ns, &w, now, timing);
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
            for (ns, w) in self.workload_names(&None) {
                self.evaluate(&ns, &w, now, Timing::Live);
            }
        }
    }

    /// Rebuilds the rollout in flight of every Deployment from the initial lists after an exporter
    /// (re)start. Nothing that happened before is counted or observed: counters start at 0,
    /// slow thresholds already passed are marked counted.
    fn recover(&mut self, now: Timestamp) {
        let thresholds = &self.cfg.slo_thresholds;
        for n in self.namespaces.values_mut() {
            let Namespace {
                workloads,
                replicasets,
                ..
            } = n;
            for w in workloads.values_mut() {
                let Some(dep) = &w.deployment else {
                    continue;
                };
                w.revision = dep.revision;
                let mut current_created = None;
                let mut others_newest: Option<Timestamp> = None;
                let mut old_pods_remain = false;
                for slot in w.replicasets.iter().filter_map(|rs| replicasets.get(rs)) {
                    if slot.is_current(dep.revision) {
                        current_created = slot.created;
                    } else {
                        old_pods_remain |= slot.blocking > 0;
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
    }

    // ----- Milestones --------------------------------------------------------------------------

    /// Checks the milestones of workload `name`'s rollout in flight after anything that may have
    /// moved them.
    fn evaluate(&mut self, ns: &Name, name: &Name, now: Timestamp, timing: Timing) {
        if let Some(deferred) = self.deferred.as_mut() {
            deferred.insert((ns.clone(), name.clone()));
            return;
        }
        let Model {
            cfg,
            namespaces,
            live,
            stats,
            ..
        } = self;
        let Some(Namespace {
            workloads,
            replicasets,
            ..
        }) = namespaces.get_mut(&**ns)
        else {
            return;
        };
        let Some(w) = workloads.get_mut(&**name) else {
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
        for slot in w.replicasets.iter().filter_map(|rs| replicasets.get(rs)) {
            if slot.is_current(rollout.revision) {
                current_known = true;
            } else if slot.blocking > 0 {
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
    fn remove_if_gone(&mut self, ns: &str, name: &str) {
        let thresholds = self.cfg.slo_thresholds.len();
        let Some(n) = self.namespaces.get_mut(ns) else {
            return;
        };
        let Some(w) = n.workloads.get(name) else {
            return;
        };
        if w.deployment.is_some() || n.has_pods(w) {
            return;
        }
        if w.replicasets.is_empty() {
            n.workloads.remove(name);
        } else if let Some(w) = n.workloads.get_mut(name)
            && w.deleted
        {
            // Its last pod is gone, so its series go, but ReplicaSets naming it remain (the
            // garbage collector's deletions to come, or pods still unseen): it starts over as a
            // workload whose Deployment was never seen, still indexing them, so that a Deployment
            // created again under the same name sees them and their pods.
            let replicasets = std::mem::take(&mut w.replicasets);
            *w = Workload {
                replicasets,
                ..Workload::new(thresholds)
            };
        }
    }

    // ----- Queries -----------------------------------------------------------------------------

    /// Every exported workload's metric values at `now`, sorted by workload. Takes `&mut self`
    /// because rollouts age: a rollout in flight that passed an SLO threshold is counted slow
    /// here if no event did it.
    pub fn snapshot(&mut self, now: Timestamp) -> Vec<WorkloadMetrics> {
        // Until every resource has been listed, rollouts are not recovered yet: a phase or a
        // gauge would be a guess. Nothing is exported before the first full sync.
        if !self.live {
            return Vec::new();
        }
        let thresholds = &self.cfg.slo_thresholds;
        let mut out = Vec::new();
        for (ns, n) in self.namespaces.iter_mut() {
            let Namespace {
                workloads,
                replicasets,
                pods,
                ..
            } = n;
            // Terminating pods, per workload: one pass over the namespace's pods.
            let mut terminations: BTreeMap<&str, Terminating> = BTreeMap::new();
            for record in pods.values() {
                let Some(t) = record.termination.as_deref() else {
                    continue;
                };
                if let Some(RsOwner::Deployment(w)) = replicasets.get(&record.rs).map(|s| &s.owner)
                {
                    terminations.entry(w).or_default().add(t, now);
                }
            }
            out.reserve(workloads.len());
            for (name, w) in workloads.iter_mut() {
                w.advance(now, thresholds);
                if !w.exported() {
                    continue;
                }
                let t = terminations.get(&**name).copied().unwrap_or_default();
                let in_flight = w.rollout.as_ref().filter(|r| r.in_flight());
                let phase = match (&w.deployment, in_flight) {
                    (Some(d), _) if d.is_stalled() => Phase::Stalled,
                    (Some(d), _) if d.paused => Phase::Paused,
                    (_, Some(r)) if r.ready.is_reached() => Phase::Draining,
                    (_, Some(_)) => Phase::Progressing,
                    (_, None) => Phase::Complete,
                };
                out.push(WorkloadMetrics {
                    key: WorkloadKey::deployment(&**ns, &**name),
                    terminating_pods: t.count,
                    terminating_pods_overdue: t.overdue,
                    oldest_termination_seconds: t
                        .oldest
                        .map_or(0.0, |o| now.seconds_since(o).max(0.0)),
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
                    pod_termination_duration: w.termination.as_deref().cloned(),
                    ready_duration: w.ready.as_deref().cloned(),
                    complete_duration: w.complete.as_deref().cloned(),
                    drain_tail: w.drain_tail.as_deref().cloned(),
                });
            }
        }
        out
    }

    /// The exporter's view of itself: imprecise observations and objects tracked.
    pub fn stats(&self) -> ModelStats {
        let mut stats = self.stats;
        for n in self.namespaces.values() {
            stats.deployments += n
                .workloads
                .values()
                .filter(|w| w.deployment.is_some())
                .count() as u64;
            stats.replicasets += n.replicasets.values().filter(|s| s.live).count() as u64;
            stats.pods += n.pods.len() as u64;
            stats.finished_pods += n.pods.values().filter(|p| p.finished).count() as u64
                + n.finished_pending.len() as u64;
        }
        stats
    }

    /// Whether the model holds nothing at all (every object gone). A namespace's state is
    /// dropped as soon as nothing is left in it, so nothing at all means no namespace.
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
    }
}

/// The terminating pods of one workload at one instant.
#[derive(Clone, Copy, Debug, Default)]
struct Terminating {
    count: u64,
    overdue: u64,
    oldest: Option<Timestamp>,
}

impl Terminating {
    fn add(&mut self, t: &Termination, now: Timestamp) {
        self.count += 1;
        if now > t.first_deadline {
            self.overdue += 1;
        }
        self.oldest = Some(self.oldest.map_or(t.since(), |o| o.min(t.since())));
    }
}

/// What the four kinds of input have in common, so changes and lists are handled once.
trait Item {
    fn namespace(&self) -> &str;
    /// Applies an added or modified object; `epoch` is the list that listed it (0: a watch event).
    fn apply(self, model: &mut Model, ns: &Name, now: Timestamp, timing: Timing, epoch: u32);
    fn delete(self, model: &mut Model, ns: &Name, now: Timestamp);
}

impl Item for DeploymentState {
    fn namespace(&self) -> &str {
        &self.key.namespace
    }
    fn apply(self, model: &mut Model, ns: &Name, now: Timestamp, timing: Timing, epoch: u32) {
        model.apply_deployment(ns, self, now, timing, epoch);
    }
    fn delete(self, model: &mut Model, ns: &Name, now: Timestamp) {
        model.delete_deployment(ns, &self.key.name, now);
    }
}

impl Item for ReplicaSetState {
    fn namespace(&self) -> &str {
        &self.key.namespace
    }
    fn apply(self, model: &mut Model, ns: &Name, now: Timestamp, timing: Timing, epoch: u32) {
        model.apply_replicaset(ns, self, now, timing, epoch);
    }
    fn delete(self, model: &mut Model, ns: &Name, now: Timestamp) {
        model.delete_replicaset(ns, &self.key.name, now, Timing::Live);
    }
}

impl Item for PodState {
    fn namespace(&self) -> &str {
        &self.key.namespace
    }
    fn apply(self, model: &mut Model, ns: &Name, now: Timestamp, timing: Timing, epoch: u32) {
        model.apply_pod(ns, &self, now, timing, epoch);
    }
    fn delete(self, model: &mut Model, ns: &Name, now: Timestamp) {
        model.apply_pod(ns, &self, now, Timing::Live, 0);
        model.finish_pod(ns, &self.key.name, now, Timing::Live);
    }
}

impl Item for FinishedPod {
    fn namespace(&self) -> &str {
        &self.key.namespace
    }
    fn apply(self, model: &mut Model, ns: &Name, now: Timestamp, timing: Timing, epoch: u32) {
        model.set_finished(ns, &self, true, now, (timing, epoch));
    }
    fn delete(self, model: &mut Model, ns: &Name, now: Timestamp) {
        model.set_finished(ns, &self, false, now, (Timing::Live, 0));
    }
}
