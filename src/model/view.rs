//! One workload as `wait` reads it: the live object's tests (kubectl's ready test with its
//! generation rule, the stalled condition), the rollout the model follows, and each of its pods
//! with what the model decides about it (at the update revision, blocking completion). Plain
//! values copied out, so the caller releases the model's lock before it prints anything.

use super::namespace::NO_ORDINAL;
use super::snapshot::phase_of;
use super::workload::Object;
use super::{Model, Phase, Rollout, Timestamp, Uid, UpdateStrategy, WorkloadKey, WorkloadKind};

/// What `wait` reads of one workload (see [`Model::view`]).
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadView {
    /// The object as last seen; `None` when it was never listed or was deleted.
    pub object: Option<ObjectView>,
    /// The most recent rollout (in flight, complete, superseded or abandoned); `None` when none
    /// started or was recovered since the model synced.
    pub rollout: Option<Rollout>,
    /// `kube_rollout_phase`.
    pub phase: Phase,
    /// `kube_rollout_revision`.
    pub revision: Option<u64>,
    /// Every pod of the workload the model keeps, sorted by revision then uid.
    pub pods: Vec<PodView>,
}

/// The live workload object's tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectView {
    /// kubectl's `rollout status` test of the kind, generation rule included.
    pub passes_ready_test: bool,
    /// `status.observedGeneration >= metadata.generation`: the controller saw the latest spec.
    pub observed: bool,
    /// Progressing=False with reason ProgressDeadlineExceeded (Deployments).
    pub stalled: bool,
    pub strategy: UpdateStrategy,
    /// A StatefulSet's `rollingUpdate.partition`, as written.
    pub partition: Option<i32>,
    /// Pods wanted: `spec.replicas`, or a DaemonSet's `desiredNumberScheduled`.
    pub desired: i32,
}

/// One pod of the workload, as the model attributes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    pub uid: Uid,
    /// Its revision: the ReplicaSet name of a Deployment's pod, the `controller-revision-hash`
    /// of a StatefulSet's or DaemonSet's.
    pub revision: String,
    /// At the update revision (false while the update revision is not known).
    pub current: bool,
    /// It keeps the rollout from completing: of another revision (or of one not known yet),
    /// terminating or still active, and not below a StatefulSet's partition.
    pub blocks: bool,
    /// The first `deletionTimestamp` seen: past it, the pod is overdue.
    pub deadline: Option<Timestamp>,
    /// When its deletion was requested (`None`: unknown, or not terminating).
    pub requested: Option<Timestamp>,
    /// Phase Succeeded or Failed (finished, but its object not removed).
    pub finished: bool,
    /// Its Ready condition, when the pod watch reads it (`wait`'s does).
    pub ready: Option<bool>,
}

impl PodView {
    /// A new pod that counts as up: not terminating, not finished, and Ready when readiness is
    /// known.
    pub fn up(&self) -> bool {
        !self.terminating() && !self.finished && self.ready != Some(false)
    }

    pub fn terminating(&self) -> bool {
        self.deadline.is_some()
    }
}

impl Model {
    /// Workload `key` as `wait` reads it at `now`; `None` until every resource has been listed
    /// (before that nothing is recovered and any answer would be a guess).
    pub fn view(&mut self, key: &WorkloadKey, now: Timestamp) -> Option<WorkloadView> {
        if !self.all_synced {
            return None;
        }
        let thresholds = self.cfg.slo_thresholds().to_vec();
        let Some(n) = self.namespaces.get_mut(key.namespace.as_str()) else {
            return Some(WorkloadView::absent());
        };
        if let Some(w) = n.workload_mut(key.kind, &key.name) {
            w.advance(now, &thresholds);
        }
        let Some(w) = n.workload(key.kind, &key.name) else {
            return Some(WorkloadView::absent());
        };
        let slots = n.slot_map();
        let update = super::milestones::update_slot(key.kind, &key.name, w, slots);
        let current = update.as_ref().and_then(|c| c.as_deref());
        let partition = w
            .object
            .as_ref()
            .and_then(Object::partition)
            .and_then(|p| u32::try_from(p).ok());
        let mut pods: Vec<PodView> = n
            .pods()
            .filter(|(_, p)| w.replicasets.contains(&p.rs))
            .map(|(uid, p)| {
                let is_current = update.is_some() && Some(&*p.rs) == current;
                let below_partition =
                    partition.is_some_and(|part| p.ordinal != NO_ORDINAL && p.ordinal < part);
                PodView {
                    uid,
                    revision: revision_of(key.kind, &p.rs),
                    current: is_current,
                    blocks: !is_current && p.blocks_completion() && !below_partition,
                    deadline: p.termination.as_ref().map(|t| t.first_deadline),
                    requested: p.termination.as_ref().and_then(|t| t.requested),
                    finished: p.finished,
                    ready: p.ready,
                }
            })
            .collect();
        pods.sort_by(|a, b| (&a.revision, a.uid).cmp(&(&b.revision, b.uid)));
        let terminating = pods.iter().filter(|p| p.terminating()).count() as u64;
        Some(WorkloadView {
            object: w.object.as_ref().map(object_view),
            rollout: w.rollout.clone(),
            phase: phase_of(w, terminating),
            revision: w.revision,
            pods,
        })
    }
}

impl WorkloadView {
    fn absent() -> Self {
        Self {
            object: None,
            rollout: None,
            phase: Phase::Complete,
            revision: None,
            pods: Vec::new(),
        }
    }
}

fn object_view(o: &Object) -> ObjectView {
    let (observed, desired) = match o {
        Object::Deployment(d) => (d.observed_generation >= d.generation, d.spec_replicas),
        Object::StatefulSet(s) => (
            s.observed_generation.is_some_and(|g| g >= s.generation),
            s.spec_replicas,
        ),
        Object::DaemonSet(d) => (
            d.observed_generation.is_some_and(|g| g >= d.generation),
            d.desired_number_scheduled,
        ),
    };
    ObjectView {
        passes_ready_test: o.passes_ready_test(),
        observed,
        stalled: o.stalled(),
        strategy: o.strategy(),
        partition: o.spec_partition(),
        desired,
    }
}

/// A slot's revision as people know it: a ReplicaSet's name, or the revision part of a
/// StatefulSet's or DaemonSet's slot (`kind/workload/revision`).
fn revision_of(kind: WorkloadKind, slot: &str) -> String {
    match kind {
        WorkloadKind::Deployment => slot.to_string(),
        WorkloadKind::StatefulSet | WorkloadKind::DaemonSet => slot
            .rsplit_once('/')
            .map_or(slot, |(_, revision)| revision)
            .to_string(),
    }
}
