//! The model's inputs: one [`Event`] per change a watch reports ([`Change`]: applied, deleted, or
//! part of a list), carrying the lean state of one object: only the fields of Deployments,
//! StatefulSets, DaemonSets, their ReplicaSets and ControllerRevisions, and Pods that the rollout
//! definitions read, already decoded. The watch adapters
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

/// The kind of workload a rollout belongs to: the three kinds that roll out a pod template. The
/// model keys everything by [`WorkloadKey`], so a kind is one more value of `workload_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl WorkloadKind {
    /// Every kind, in the order the model keeps and lists them.
    pub const ALL: [WorkloadKind; 3] = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
    ];

    pub(super) const fn index(self) -> usize {
        self as usize
    }

    /// The value of the `workload_type` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
            WorkloadKind::DaemonSet => "daemonset",
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
    pub fn new(kind: WorkloadKind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

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

/// A hash of a workload's pod template (`spec.template`) exactly as the API server serves it: the
/// model only asks whether the template differs from the one its last rollout started with (the
/// user's change), which needs no field of it; hashing the bytes at decode time keeps the
/// template, most of a workload object, out of memory. Two templates collide with a probability
/// of 2^-64. The same template served with other bytes (new server defaults after an upgrade)
/// hashes differently, which is why a rollout also needs a generation increase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TemplateHash(pub u64);

impl TemplateHash {
    /// The hash of a template's JSON bytes.
    pub fn of(template: &[u8]) -> Self {
        use std::hash::BuildHasher;
        TemplateHash(
            foldhash::fast::FixedState::with_seed(0x6b72_655f_746d_706c).hash_one(template),
        )
    }
}

/// The longest list of images kept for a workload (`kube_rollout_revision_info`'s `images`
/// label): longer lists are cut at a comma or a character boundary and end in `...`.
pub const IMAGES_MAX_LEN: usize = 256;

/// Container images joined for a workload's `images` (comma-separated, in order), capped at
/// [`IMAGES_MAX_LEN`] bytes: a list cut short ends in `...`.
pub fn joined_images<'a>(images: impl IntoIterator<Item = &'a str>) -> String {
    const MORE: &str = "...";
    let mut out = String::new();
    for image in images {
        let sep = usize::from(!out.is_empty());
        if out.len() + sep + image.len() <= IMAGES_MAX_LEN {
            if sep == 1 {
                out.push(',');
            }
            out.push_str(image);
            continue;
        }
        let room = IMAGES_MAX_LEN.saturating_sub(out.len() + sep + MORE.len());
        if room > 0 {
            if sep == 1 {
                out.push(',');
            }
            let mut cut = room.min(image.len());
            while !image.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push_str(&image[..cut]);
        }
        out.push_str(MORE);
        break;
    }
    out
}

/// How a workload replaces its pods (`spec.strategy.type` of a Deployment,
/// `spec.updateStrategy.type` of a StatefulSet or DaemonSet). An absent type is `RollingUpdate`,
/// the API default of every kind; the API rejects other values, and they are read as the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum UpdateStrategy {
    #[default]
    RollingUpdate,
    /// StatefulSets and DaemonSets: pods are replaced only when someone deletes them, so a rollout
    /// waits for people.
    OnDelete,
    /// Deployments only: every old pod stops before any new one starts.
    Recreate,
}

impl UpdateStrategy {
    /// The value as the API writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            UpdateStrategy::RollingUpdate => "RollingUpdate",
            UpdateStrategy::OnDelete => "OnDelete",
            UpdateStrategy::Recreate => "Recreate",
        }
    }
}

/// The kind of a controller, as far as the model tells kinds apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerKind {
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    /// Any other kind (a Job, a CronJob...): part of no rollout.
    Other,
}

impl From<&str> for OwnerKind {
    fn from(kind: &str) -> Self {
        match kind {
            "Deployment" => OwnerKind::Deployment,
            "ReplicaSet" => OwnerKind::ReplicaSet,
            "StatefulSet" => OwnerKind::StatefulSet,
            "DaemonSet" => OwnerKind::DaemonSet,
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
    /// `creationTimestamp`: a workload created after the sync is a new rollout, one that merely
    /// appears (a label now matching) is not.
    pub created: Option<Timestamp>,
    pub generation: i64,
    pub observed_generation: i64,
    /// `spec.template`: a rollout starts when it changes with the generation.
    pub template: TemplateHash,
    pub strategy: UpdateStrategy,
    pub spec_replicas: i32,
    pub paused: bool,
    /// `spec.template.spec.terminationGracePeriodSeconds`: how long an old pod may drain. The
    /// API server writes its default (30 s) into stored objects, so `None` is only a hand-made
    /// object's.
    pub termination_grace_seconds: Option<i64>,
    /// The template's container images (`spec.containers[].image`), comma-separated in order,
    /// at most [`IMAGES_MAX_LEN`] bytes.
    pub images: String,
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

/// What the model reads of a StatefulSet: what kubectl's `rollout status` test reads, the
/// template and strategy a rollout starts from, and the partition that bounds it. Absent status
/// counters are 0 (the API server omits zeros); absent `spec.replicas` is 1 (the API default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatefulSetState {
    pub key: ObjectKey,
    pub uid: Uid,
    /// `creationTimestamp`.
    pub created: Option<Timestamp>,
    pub generation: i64,
    /// `status.observedGeneration`; its presence is part of kubectl's test for this kind.
    pub observed_generation: Option<i64>,
    pub template: TemplateHash,
    pub spec_replicas: i32,
    pub strategy: UpdateStrategy,
    /// `spec.updateStrategy.rollingUpdate.partition`: `None` when absent, as the API stores no
    /// default and kubectl's test differs between an absent partition and a partition of 0.
    pub partition: Option<i32>,
    pub replicas: i32,
    pub ready_replicas: i32,
    pub updated_replicas: i32,
    /// `status.currentRevision`: the ControllerRevision name of the pods below the update.
    pub current_revision: Option<String>,
    /// `status.updateRevision`: the ControllerRevision name the pods are updated to, equal to
    /// their `controller-revision-hash` label.
    pub update_revision: Option<String>,
    /// `spec.template.spec.terminationGracePeriodSeconds`: how long an old pod may drain.
    pub termination_grace_seconds: Option<i64>,
    /// The template's container images (`spec.containers[].image`), comma-separated in order,
    /// at most [`IMAGES_MAX_LEN`] bytes.
    pub images: String,
}

/// What the model reads of a DaemonSet: what kubectl's `rollout status` test reads, and the
/// template and strategy a rollout starts from. Its status names no revision: the update revision
/// is its ControllerRevision with the highest `revision`. Absent status counters are 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonSetState {
    pub key: ObjectKey,
    pub uid: Uid,
    /// `creationTimestamp`.
    pub created: Option<Timestamp>,
    pub generation: i64,
    /// `status.observedGeneration`, `None` when absent.
    pub observed_generation: Option<i64>,
    pub template: TemplateHash,
    pub strategy: UpdateStrategy,
    pub desired_number_scheduled: i32,
    pub updated_number_scheduled: i32,
    pub number_available: i32,
    pub number_ready: i32,
    /// `spec.template.spec.terminationGracePeriodSeconds`: how long an old pod may drain.
    pub termination_grace_seconds: Option<i64>,
    /// The template's container images (`spec.containers[].image`), comma-separated in order,
    /// at most [`IMAGES_MAX_LEN`] bytes.
    pub images: String,
}

/// What the model reads of a ControllerRevision (a StatefulSet's or DaemonSet's revision of its
/// template): never its `data`, the template itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerRevisionState {
    pub key: ObjectKey,
    pub uid: Uid,
    /// The StatefulSet or DaemonSet that owns it.
    pub owner: Option<ControllerRef>,
    /// `revision`: the highest of a DaemonSet's is its update revision; a rollback raises an old
    /// one's number (absent: 0).
    pub revision: i64,
    /// The hash label: `controller-revision-hash` on DaemonSet revisions (what their pods'
    /// label of the same name holds), else `controller.kubernetes.io/hash` (StatefulSet revisions,
    /// whose pods hold the whole revision name instead).
    pub hash: Option<String>,
    /// `creationTimestamp`: a rollback keeps the old revision's.
    pub created: Option<Timestamp>,
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
    /// The `controller-revision-hash` label of a StatefulSet's or DaemonSet's pod: its revision.
    /// A StatefulSet pod's holds the whole ControllerRevision name (as `status.updateRevision`),
    /// a DaemonSet pod's only the hash (as the ControllerRevision's label). `None` on other pods.
    pub revision_hash: Option<String>,
    /// `metadata.finalizers`: what keeps the object once its containers finished.
    pub finalizers: Vec<String>,
    /// Its Ready condition, when it was read as a full object (`wait`'s pod watch); `None` from
    /// the exporter's metadata-only watch, which cannot see it.
    pub ready: Option<bool>,
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
    StatefulSet(Change<StatefulSetState>),
    DaemonSet(Change<DaemonSetState>),
    ReplicaSet(Change<ReplicaSetState>),
    ControllerRevision(Change<ControllerRevisionState>),
    Pod(Change<PodState>),
    /// The finished-pod watch: pods in phase Succeeded or Failed.
    FinishedPod(Change<FinishedPod>),
}

impl Event {
    /// The resource whose watch delivers this event.
    pub fn resource(&self) -> Resource {
        match self {
            Event::Deployment(_) => Resource::Deployments,
            Event::StatefulSet(_) => Resource::StatefulSets,
            Event::DaemonSet(_) => Resource::DaemonSets,
            Event::ReplicaSet(_) => Resource::ReplicaSets,
            Event::ControllerRevision(_) => Resource::ControllerRevisions,
            Event::Pod(_) => Resource::Pods,
            Event::FinishedPod(_) => Resource::FinishedPods,
        }
    }
}

/// The watched resources, each synced by its first finished list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Deployments,
    ReplicaSets,
    Pods,
    FinishedPods,
    StatefulSets,
    DaemonSets,
    ControllerRevisions,
}

impl Resource {
    pub const ALL: [Resource; 7] = [
        Resource::Deployments,
        Resource::ReplicaSets,
        Resource::Pods,
        Resource::FinishedPods,
        Resource::StatefulSets,
        Resource::DaemonSets,
        Resource::ControllerRevisions,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Resource::Deployments => "deployments",
            Resource::StatefulSets => "statefulsets",
            Resource::DaemonSets => "daemonsets",
            Resource::ControllerRevisions => "controllerrevisions",
            Resource::ReplicaSets => "replicasets",
            Resource::Pods => "pods",
            Resource::FinishedPods => "finished_pods",
        }
    }

    /// The workload kind whose objects this resource lists, if it lists workloads.
    pub fn workload_kind(self) -> Option<WorkloadKind> {
        match self {
            Resource::Deployments => Some(WorkloadKind::Deployment),
            Resource::StatefulSets => Some(WorkloadKind::StatefulSet),
            Resource::DaemonSets => Some(WorkloadKind::DaemonSet),
            _ => None,
        }
    }

    /// Whether a watch of this resource is needed when these workload kinds are watched: pods
    /// always; ReplicaSets for Deployments; ControllerRevisions for StatefulSets and DaemonSets.
    pub fn needed_by(self, kinds: &[WorkloadKind]) -> bool {
        let has = |kind| kinds.contains(&kind);
        match self {
            Resource::Deployments | Resource::ReplicaSets => has(WorkloadKind::Deployment),
            Resource::StatefulSets => has(WorkloadKind::StatefulSet),
            Resource::DaemonSets => has(WorkloadKind::DaemonSet),
            Resource::ControllerRevisions => {
                has(WorkloadKind::StatefulSet) || has(WorkloadKind::DaemonSet)
            }
            Resource::Pods | Resource::FinishedPods => true,
        }
    }

    pub(super) const fn index(self) -> usize {
        self as usize
    }
}
