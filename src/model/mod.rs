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
//! ReplicaSet name a pod points at gets a slot, a placeholder when the pod comes first, filled
//! when the ReplicaSet arrives; every Deployment name a ReplicaSet points at gets a workload,
//! which is exported only once the Deployment itself has been seen. Slots and workloads outlive
//! their objects while pods remain, so cascade deletions are still observed. All of it is kept
//! per namespace ([`namespace`]), the only scope owner references relate.
//!
//! Where each part lives: the inputs (`inputs.rs`); lists, their epochs and the sweep of what a
//! list did not list (`list.rs`); one module per kind with its apply, delete and sweep
//! (`deployment.rs`, `replicaset.rs`, `pod.rs`, `finished.rs`); rollout starts, milestone
//! evaluation and restart recovery (`milestones.rs`); what a scrape reads (`snapshot.rs`).

mod config;
mod finished;
mod histogram;
mod inputs;
mod list;
mod milestones;
mod namespace;
mod objects;
mod pod;
mod replicaset;
mod revisions;
mod rollout;
mod snapshot;
mod stuck;
mod time;
mod view;
mod workload;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

pub use config::{DEFAULT_SLO_THRESHOLD_SECS, ModelConfig};
pub use histogram::{DEFAULT_BUCKETS, Histogram, bucket_bounds};
pub use inputs::{
    Change, ConditionStatus, ControllerRef, ControllerRevisionState, DaemonSetState, Deletion,
    DeploymentState, Event, FinishedPod, IMAGES_MAX_LEN, ObjectKey, OwnerKind, PodState,
    ProgressingCondition, REASON_DEADLINE_EXCEEDED, REASON_NEW_RS_AVAILABLE, REASON_PAUSED,
    ReplicaSetState, Resource, StatefulSetState, TemplateHash, Uid, UpdateStrategy, WorkloadKey,
    WorkloadKind, joined_images,
};
pub use rollout::{Milestone, Phase, Rollout, RolloutState};
pub use snapshot::{CompletedRollout, ModelStats, RevisionInfo, WorkloadMetrics};
pub use stuck::{
    NodeHealth, OverdueNotice, PodInspection, PodRef, REFRESH_SECS, StuckReason, StuckWork,
};
pub use time::Timestamp;
pub use view::{ObjectView, PodView, WorkloadView};

use list::List;
use namespace::{Name, Namespace};
use stuck::Stuck;

/// Whether an observation comes straight from a watch event (precise) or from the difference a
/// relist revealed (timed at the relist: an upper bound).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timing {
    Watch,
    Relist,
}

/// Workloads (namespace, kind, name) whose milestones wait for the end of a list.
type Deferred = BTreeSet<(Name, WorkloadKind, Name)>;

/// The rollout model. See the module documentation.
#[derive(Clone, Debug)]
pub struct Model {
    cfg: ModelConfig,
    namespaces: BTreeMap<Name, Namespace>,
    /// Per resource: its first list is done.
    synced: [bool; Resource::ALL.len()],
    /// Namespaces listed so far, per resource, when the watches are per namespace.
    synced_namespaces: [BTreeSet<String>; Resource::ALL.len()],
    /// Every watched resource finished its first list: events now start rollouts and reach
    /// milestones.
    all_synced: bool,
    /// When that happened: a workload created since is a new rollout.
    synced_at: Option<Timestamp>,
    /// Lists in progress (one per resource, or per resource and namespace).
    lists: Vec<List>,
    /// The last list epoch handed out; epochs start at 1, so 0 in a record means "never listed".
    epoch: u32,
    stats: ModelStats,
    /// Terminations on their way to overdue, overdue pods and their nodes (see [`stuck`]).
    stuck: Stuck,
}

/// What a change to one namespace needs from the rest of the model: the per-kind modules work on
/// one [`Namespace`] and this, so each change finds its namespace once.
struct Ctx<'a> {
    cfg: &'a ModelConfig,
    stats: &'a mut ModelStats,
    stuck: &'a mut Stuck,
    /// Every resource finished its first list (see [`Model::is_live`]).
    all_synced: bool,
    /// When that happened.
    synced_at: Option<Timestamp>,
    /// While a list is applied: the workloads to evaluate at its end, instead of now.
    deferred: Option<&'a mut Deferred>,
    /// The namespace's interned name.
    ns: &'a Name,
    now: Timestamp,
    timing: Timing,
}

impl Ctx<'_> {
    fn thresholds(&self) -> &[u64] {
        self.cfg.slo_thresholds()
    }
}

/// One kind of input: how a change of it applies to its namespace, and how a list sweeps what it
/// did not list. One module per kind implements it; changes and lists are handled once for all.
trait Item {
    /// What identifies an object of this kind inside its namespace: its name, or a pod's uid.
    type Key: Ord;
    fn namespace(&self) -> &str;
    /// Applies an added or modified object; `listed` is the epoch of the list that listed it.
    fn apply(self, n: &mut Namespace, cx: &mut Ctx<'_>, listed: Option<u32>);
    fn delete(self, n: &mut Namespace, cx: &mut Ctx<'_>);
    /// The objects of this kind in `n` that the list of `epoch` did not list.
    fn unlisted(n: &Namespace, epoch: u32) -> Vec<Self::Key>;
    /// Removes one object a list did not list: it went away during the watch gap.
    fn sweep(n: &mut Namespace, cx: &mut Ctx<'_>, key: &Self::Key);
    /// After the sweep, for each namespace in the list's scope.
    fn swept(_n: &mut Namespace, _epoch: u32) {}
}

impl Model {
    pub fn new(cfg: ModelConfig) -> Self {
        Self {
            cfg,
            namespaces: BTreeMap::new(),
            synced: [false; Resource::ALL.len()],
            synced_namespaces: Default::default(),
            all_synced: false,
            synced_at: None,
            lists: Vec::new(),
            epoch: 0,
            stats: ModelStats::default(),
            stuck: Stuck::default(),
        }
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Whether `resource` finished its first list.
    pub fn is_synced(&self, resource: Resource) -> bool {
        self.synced[resource.index()]
    }

    /// Whether every resource finished its first list, so events start rollouts and reach
    /// milestones (before, they only build state).
    pub fn is_live(&self) -> bool {
        self.all_synced
    }

    /// Applies one event received at `now`.
    pub fn handle(&mut self, event: Event, now: Timestamp) {
        match event {
            // A kind not watched has no lists: events of it would be held forever.
            e if !self.cfg.watches(e.resource()) => {}
            Event::Deployment(change) => self.change(Resource::Deployments, change, now),
            Event::StatefulSet(change) => self.change(Resource::StatefulSets, change, now),
            Event::DaemonSet(change) => self.change(Resource::DaemonSets, change, now),
            Event::ReplicaSet(change) => self.change(Resource::ReplicaSets, change, now),
            Event::ControllerRevision(change) => {
                self.change(Resource::ControllerRevisions, change, now)
            }
            Event::Pod(change) => self.change(Resource::Pods, change, now),
            Event::FinishedPod(change) => self.change(Resource::FinishedPods, change, now),
        }
    }

    fn change<T: Item>(&mut self, resource: Resource, change: Change<T>, now: Timestamp) {
        match change {
            Change::Applied(item) => {
                let ns = self.intern(item.namespace());
                self.in_namespace(&ns, now, Timing::Watch, None, |n, cx| {
                    item.apply(n, cx, None)
                });
                self.prune(&ns);
            }
            Change::Deleted(item) => {
                let ns = self.intern(item.namespace());
                self.in_namespace(&ns, now, Timing::Watch, None, |n, cx| item.delete(n, cx));
                self.prune(&ns);
            }
            Change::ListStarted(namespace) => self.list_started(resource, namespace),
            Change::Listed(item) => self.listed(resource, item, now),
            Change::ListDone(namespace) => self.list_done::<T>(resource, namespace, now),
            #[cfg(any(test, feature = "test-support"))]
            Change::Relisted(items) => self.relist(resource, None, items, now),
            #[cfg(any(test, feature = "test-support"))]
            Change::RelistedNamespace(ns, items) => self.relist(resource, Some(ns), items, now),
        }
    }

    /// Runs `f` on namespace `ns`, found once, with what a change needs.
    fn in_namespace<R>(
        &mut self,
        ns: &Name,
        now: Timestamp,
        timing: Timing,
        deferred: Option<&mut Deferred>,
        f: impl FnOnce(&mut Namespace, &mut Ctx<'_>) -> R,
    ) -> Option<R> {
        let Model {
            cfg,
            namespaces,
            all_synced,
            synced_at,
            stats,
            stuck,
            ..
        } = self;
        let n = namespaces.get_mut(&**ns)?;
        let mut cx = Ctx {
            cfg,
            stats,
            stuck,
            all_synced: *all_synced,
            synced_at: *synced_at,
            deferred,
            ns,
            now,
            timing,
        };
        Some(f(n, &mut cx))
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
}
