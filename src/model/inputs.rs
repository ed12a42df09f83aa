//! The model's inputs: one [`Event`] per change a watch reports ([`Change`]: applied, deleted, or
//! part of a list), carrying the lean state of one object: only the fields of Deployments,
//! ReplicaSets and Pods that the rollout definitions read, already decoded. The watch adapters
//! build these from API objects (see `crate::decode`); tests build them directly.

use super::Timestamp;

/// Namespace and name of an object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// The kind of workload a rollout belongs to. Only Deployments today; the model keys everything by
/// [`WorkloadKey`] so StatefulSets and DaemonSets can join without changing its outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkloadKind {
    Deployment,
}

impl WorkloadKind {
    /// The value of the `workload_type` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
        }
    }
}

/// The identity of a workload: the label set `namespace`, `workload`, `workload_type`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkloadKey {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
}

impl WorkloadKey {
    pub fn deployment(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind: WorkloadKind::Deployment,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// An object's uid, kept as a 64-bit hash: the model asks whether a name now holds another object
/// than before, and keeps pods by uid; two uids collide with a probability of 2^-64 per pair (for
/// 100k pods in one namespace, about 3 in 10^9). Hashing it when the event is decoded spares a
/// string per event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uid(u64);

impl From<&str> for Uid {
    fn from(uid: &str) -> Self {
        use std::hash::BuildHasher;
        Uid(foldhash::fast::FixedState::with_seed(0x6b72_655f_7569_6473).hash_one(uid))
    }
}

impl From<&String> for Uid {
    fn from(uid: &String) -> Self {
        Uid::from(uid.as_str())
    }
}

impl From<String> for Uid {
    fn from(uid: String) -> Self {
        Uid::from(uid.as_str())
    }
}

/// The kind of a controller, as far as the model tells kinds apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerKind {
    Deployment,
    ReplicaSet,
    /// Any other kind (a Job, a StatefulSet...): not part of a Deployment's rollout.
    Other,
}

impl From<&str> for OwnerKind {
    fn from(kind: &str) -> Self {
        match kind {
            "Deployment" => OwnerKind::Deployment,
            "ReplicaSet" => OwnerKind::ReplicaSet,
            _ => OwnerKind::Other,
        }
    }
}

/// The owner reference marked `controller: true`, the only one that decides attribution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerRef {
    pub kind: OwnerKind,
    pub name: String,
}

/// Status of a Deployment condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// The Deployment's `Progressing` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressingCondition {
    pub status: ConditionStatus,
    pub reason: String,
    /// `lastUpdateTime` (server clock, 1 s resolution).
    pub last_update: Option<Timestamp>,
}

/// Reason of the Progressing condition once the new ReplicaSet is available.
pub const REASON_NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
/// Reason of the Progressing condition (status False) once the progress deadline passed.
pub const REASON_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
/// Reason of the Progressing condition (status Unknown) while the Deployment is paused.
pub const REASON_PAUSED: &str = "DeploymentPaused";

/// What the model reads of a Deployment. Absent status counters are 0 (the API server omits
/// zeros); absent `spec.replicas` is 1 (the API default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentState {
    pub key: ObjectKey,
    pub uid: Uid,
    /// `deployment.kubernetes.io/revision`, when present and an integer.
    pub revision: Option<u64>,
    pub generation: i64,
    pub observed_generation: i64,
    pub spec_replicas: i32,
    pub paused: bool,
    pub replicas: i32,
    pub updated_replicas: i32,
    pub available_replicas: i32,
    pub progressing: Option<ProgressingCondition>,
}

impl DeploymentState {
    /// kubectl's `rollout status` success test: the controller has seen the current spec, every
    /// desired replica is updated, no old replica is counted any more, and all updated replicas are
    /// available. `status.replicas` excludes pods that already have a deletionTimestamp, which is why
    /// this passes while old pods are still Terminating.
    pub fn passes_ready_test(&self) -> bool {
        self.observed_generation >= self.generation
            && self.is_fully_updated()
            && self.available_replicas >= self.updated_replicas
    }

    /// The part of the ready test that does not depend on availability: every desired replica runs
    /// the current template. A crashlooping but fully updated Deployment passes it.
    pub fn is_fully_updated(&self) -> bool {
        self.observed_generation >= self.generation
            && self.updated_replicas >= self.spec_replicas
            && self.replicas <= self.updated_replicas
    }

    /// Progressing=False with reason ProgressDeadlineExceeded.
    pub fn is_stalled(&self) -> bool {
        self.progressing.as_ref().is_some_and(|c| {
            c.status == ConditionStatus::False && c.reason == REASON_DEADLINE_EXCEEDED
        })
    }
}

/// What the model reads of a ReplicaSet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaSetState {
    pub key: ObjectKey,
    pub owner: Option<ControllerRef>,
    /// `deployment.kubernetes.io/revision`, when present and an integer.
    pub revision: Option<u64>,
    /// `creationTimestamp` (server clock, 1 s resolution).
    pub created: Option<Timestamp>,
}

/// `deletionTimestamp` and `deletionGracePeriodSeconds` of a pod being deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deletion {
    /// `deletionTimestamp`: the deadline of the termination, not the moment it was requested.
    pub deadline: Timestamp,
    /// `deletionGracePeriodSeconds`; absent is read as unknown.
    pub grace_seconds: Option<i64>,
}

impl Deletion {
    /// When deletion was requested: deadline minus grace period. `None` when the grace is absent,
    /// or 0, which is the kubelet's final grace-0 rewrite (or a force delete): neither tells when
    /// the termination began.
    pub fn requested_at(&self) -> Option<Timestamp> {
        match self.grace_seconds {
            Some(grace) if grace > 0 => Some(self.deadline.minus_secs(grace)),
            _ => None,
        }
    }
}

/// What the model reads of a Pod (metadata only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodState {
    pub key: ObjectKey,
    pub uid: Uid,
    pub owner: Option<ControllerRef>,
    pub deletion: Option<Deletion>,
}

/// A pod in phase Succeeded or Failed, from the cheap phase source (a metadata-only watch with a
/// `status.phase` field selector). Its disappearance from that source says nothing about the pod
/// object being gone: only the unfiltered pod watch says that.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedPod {
    pub key: ObjectKey,
    pub uid: Uid,
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
    /// The list of this namespace (`None`: cluster-wide) is done: exactly the objects it listed
    /// exist there; other namespaces are untouched. Milestones it moved are evaluated now, on all
    /// of it.
    ListDone(Option<String>),
    /// Tests only: a whole cluster-wide list at once, as `ListStarted(None)`, a `Listed` per
    /// object and `ListDone(None)` would deliver it.
    #[cfg(any(test, feature = "test-support"))]
    Relisted(Vec<T>),
    /// Tests only: a whole list of one namespace at once.
    #[cfg(any(test, feature = "test-support"))]
    RelistedNamespace(String, Vec<T>),
}

/// One input of the model.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Deployment(Change<DeploymentState>),
    ReplicaSet(Change<ReplicaSetState>),
    Pod(Change<PodState>),
    /// The finished-pod watch: pods in phase Succeeded or Failed.
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

    pub(super) const fn index(self) -> usize {
        self as usize
    }
}
