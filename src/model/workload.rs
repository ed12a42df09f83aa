//! Everything the model keeps about one workload: its object as last seen, the slots of its pods
//! (ReplicaSets, or revisions), its ControllerRevisions, its rollout in flight (or last one), its
//! counters and histograms; and what a rollout needs to know of each kind's object.

use std::collections::{BTreeMap, BTreeSet};

use std::sync::Arc;

use super::namespace::{Drained, Name, observe};
use super::{
    DaemonSetState, DeploymentState, Histogram, Rollout, StatefulSetState, TemplateHash, Timestamp,
    Uid, UpdateStrategy,
};

/// `terminationGracePeriodSeconds` when a pod spec leaves it unset.
pub(super) const DEFAULT_GRACE_SECONDS: i64 = 30;

/// A workload object as last seen, of any kind.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Object {
    Deployment(DeploymentState),
    StatefulSet(StatefulSetState),
    DaemonSet(DaemonSetState),
}

impl Object {
    pub fn uid(&self) -> Uid {
        match self {
            Object::Deployment(d) => d.uid,
            Object::StatefulSet(s) => s.uid,
            Object::DaemonSet(d) => d.uid,
        }
    }

    pub fn generation(&self) -> i64 {
        match self {
            Object::Deployment(d) => d.generation,
            Object::StatefulSet(s) => s.generation,
            Object::DaemonSet(d) => d.generation,
        }
    }

    pub fn template(&self) -> TemplateHash {
        match self {
            Object::Deployment(d) => d.template,
            Object::StatefulSet(s) => s.template,
            Object::DaemonSet(d) => d.template,
        }
    }

    pub fn created(&self) -> Option<Timestamp> {
        match self {
            Object::Deployment(d) => d.created,
            Object::StatefulSet(s) => s.created,
            Object::DaemonSet(d) => d.created,
        }
    }

    pub fn strategy(&self) -> UpdateStrategy {
        match self {
            Object::Deployment(d) => d.strategy,
            Object::StatefulSet(s) => s.strategy,
            Object::DaemonSet(d) => d.strategy,
        }
    }

    /// The pod template's `terminationGracePeriodSeconds`, 30 when unset (the API default).
    pub fn grace_seconds(&self) -> i64 {
        let grace = match self {
            Object::Deployment(d) => d.termination_grace_seconds,
            Object::StatefulSet(s) => s.termination_grace_seconds,
            Object::DaemonSet(d) => d.termination_grace_seconds,
        };
        grace.unwrap_or(DEFAULT_GRACE_SECONDS)
    }

    /// The pod template's container images, comma-separated and capped.
    pub fn images(&self) -> &str {
        match self {
            Object::Deployment(d) => &d.images,
            Object::StatefulSet(s) => &s.images,
            Object::DaemonSet(d) => &d.images,
        }
    }

    /// New pods ready, of those wanted, from the object's status as kubectl reads it: a
    /// Deployment's updated replicas that are available of `spec.replicas`; a StatefulSet's
    /// updated replicas (ready in order) of the replicas above its partition; a DaemonSet's
    /// updated pods that are available of the desired ones.
    pub fn new_pods(&self) -> (i32, i32) {
        match self {
            Object::Deployment(d) => (
                d.updated_replicas.min(d.available_replicas),
                d.spec_replicas,
            ),
            Object::StatefulSet(s) => (
                s.updated_replicas.min(s.ready_replicas),
                (s.spec_replicas - self.partition().unwrap_or(0)).max(0),
            ),
            Object::DaemonSet(d) => (
                d.updated_number_scheduled.min(d.number_available),
                d.desired_number_scheduled,
            ),
        }
    }

    /// A paused Deployment starts nothing until it is resumed.
    pub fn paused(&self) -> bool {
        matches!(self, Object::Deployment(d) if d.paused)
    }

    pub fn stalled(&self) -> bool {
        matches!(self, Object::Deployment(d) if d.is_stalled())
    }

    /// kubectl's `rollout status` test of this kind (see each state's `passes_ready_test`).
    pub fn passes_ready_test(&self) -> bool {
        match self {
            Object::Deployment(d) => d.passes_ready_test(),
            Object::StatefulSet(s) => s.passes_ready_test(),
            Object::DaemonSet(d) => d.passes_ready_test(),
        }
    }

    /// A partitioned StatefulSet: pods at ordinals below it keep the old revision.
    pub fn partition(&self) -> Option<i32> {
        match self {
            Object::StatefulSet(s) if s.strategy == UpdateStrategy::RollingUpdate => {
                s.partition.filter(|&p| p > 0)
            }
            _ => None,
        }
    }

    /// A StatefulSet's `rollingUpdate.partition` as written (absent: `None`).
    pub fn spec_partition(&self) -> Option<i32> {
        match self {
            Object::StatefulSet(s) => s.partition,
            _ => None,
        }
    }

    /// Its rollouts replace pods only when people delete them (OnDelete).
    pub fn waits_for_people(&self) -> bool {
        self.strategy() == UpdateStrategy::OnDelete
    }

    /// Every desired pod is ready (a StatefulSet or DaemonSet rollout that is neither terminating
    /// nor unready waits for people: phase `waiting`).
    pub fn all_ready(&self) -> bool {
        match self {
            Object::Deployment(d) => d.available_replicas >= d.spec_replicas,
            Object::StatefulSet(s) => s.ready_replicas >= s.spec_replicas,
            Object::DaemonSet(d) => d.number_available >= d.desired_number_scheduled,
        }
    }
}

/// A ControllerRevision of a StatefulSet or DaemonSet, as the model keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RevisionRecord {
    pub revision: i64,
    /// Its hash label (see [`super::ControllerRevisionState::hash`]).
    pub hash: Option<Box<str>>,
    pub created: Option<Timestamp>,
    /// The ControllerRevision list that last listed it.
    pub listed: u32,
}

/// A generation increase of the workload object, and whether a rollout started since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct GenerationRise {
    /// Receive time of the event that showed it; `None` when it was not seen live (it happened
    /// before the sync).
    pub at: Option<Timestamp>,
    /// A rollout started at or after it.
    pub started: bool,
}

/// Everything the model keeps about one workload.
#[derive(Clone, Debug)]
pub(super) struct Workload {
    /// The object as last seen; `None` before it is seen and after it is deleted.
    pub object: Option<Object>,
    /// It was seen and then deleted: its series stay until its last pod is gone.
    pub deleted: bool,
    /// Names of the slots of its pods: the ReplicaSets a Deployment controls (live or still
    /// holding pods), the revisions of a StatefulSet's or DaemonSet's pods.
    pub replicasets: BTreeSet<Name>,
    /// A StatefulSet's or DaemonSet's ControllerRevisions, by name.
    pub revisions: BTreeMap<Name, RevisionRecord>,
    /// `kube_rollout_revision`: the Deployment's revision annotation, or the `revision` of a
    /// StatefulSet's or DaemonSet's update revision.
    pub revision: Option<u64>,
    /// The pod template's images when [`Self::revision`] last changed, so that
    /// `kube_rollout_revision_info` pairs a revision with its own images: the template changes
    /// before the controller writes its revision (a Recreate rollout's drain, a paused
    /// Deployment), and for that time the info still names the previous revision's.
    pub revision_images: Option<Box<str>>,
    /// What identifies the update revision the controller wrote last (see
    /// [`super::milestones::update_revision`]): its change without a rollout is the fallback start.
    pub update: Option<u64>,
    /// The pod template of the most recently started rollout; at sync, the listed one.
    pub baseline: Option<TemplateHash>,
    /// The last generation increase seen.
    pub rise: Option<GenerationRise>,
    pub rollout: Option<Rollout>,
    pub last_started: Option<Timestamp>,
    pub last_completed: Option<Timestamp>,
    pub started_total: u64,
    pub superseded_total: u64,
    /// Rollouts started with an unknown start (counted in `unknown_start_rollouts` too).
    pub unknown_starts: u64,
    /// One count per configured SLO threshold.
    pub slow_total: Vec<u64>,
    /// Boxed: a workload has none until its first observation, and 10k workloads are common.
    pub termination: Option<Box<Histogram>>,
    /// Terminations that used up their grace period (`kube_rollout_pod_termination_grace_exhausted_total`).
    pub grace_exhausted: u64,
    pub ready: Option<Box<Histogram>>,
    pub complete: Option<Box<Histogram>>,
    pub drain_tail: Option<Box<Histogram>>,
    /// The workload list that last listed it.
    pub listed: u32,
}

impl Workload {
    pub fn new(thresholds: usize) -> Self {
        Self {
            object: None,
            deleted: false,
            replicasets: BTreeSet::new(),
            revisions: BTreeMap::new(),
            revision: None,
            revision_images: None,
            update: None,
            baseline: None,
            rise: None,
            rollout: None,
            last_started: None,
            last_completed: None,
            started_total: 0,
            superseded_total: 0,
            unknown_starts: 0,
            slow_total: vec![0; thresholds],
            termination: None,
            grace_exhausted: 0,
            ready: None,
            complete: None,
            drain_tail: None,
            listed: 0,
        }
    }

    /// Series exist for workloads whose object was seen (ReplicaSets of Deployments outside the
    /// exporter's scope create workloads that are never exported).
    pub fn exported(&self) -> bool {
        self.object.is_some() || self.deleted
    }

    pub fn in_flight(&mut self) -> Option<&mut Rollout> {
        self.rollout.as_mut().filter(|r| r.in_flight())
    }

    /// The update revision's number as the controller wrote it; a new one takes the images of
    /// the template as it is now (see [`Self::revision_images`]).
    pub fn set_revision(&mut self, revision: Option<u64>) {
        if revision != self.revision || self.revision_images.is_none() {
            self.revision_images = self.object.as_ref().map(|o| o.images().into());
        }
        self.revision = revision;
    }

    /// A termination of one of its pods ended.
    pub fn drained(&mut self, buckets: &Arc<[f64]>, drained: Drained) {
        observe(&mut self.termination, buckets, drained.seconds);
        self.grace_exhausted += u64::from(drained.grace_exhausted);
    }

    /// Counts the rollout in flight as slow for each threshold its age has reached. With an
    /// unknown start the age is a lower bound, so a count is still certain. A rollout that waits
    /// for people (OnDelete) is never slow: its pace is theirs.
    pub fn advance(&mut self, now: Timestamp, thresholds: &[u64]) {
        let Some(rollout) = self
            .rollout
            .as_mut()
            .filter(|r| r.in_flight() && !r.waits_for_people)
        else {
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
