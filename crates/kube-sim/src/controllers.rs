//! The cluster behind the simulated API server: a Deployment controller, a ReplicaSet controller,
//! a StatefulSet controller (`statefulset.rs`), a DaemonSet controller (`daemonset.rs`) with the
//! ControllerRevisions both keep (`revision.rs`), the garbage collector, a scheduler over the
//! nodes (`nodes.rs`) and a kubelet stand-in, each a function over the store run on every tick
//! of a real clock. They write the same objects, fields and event sequences the recordings in
//! `tests/fixtures/k8s-recordings/` show a v1.36 control plane writing.

mod daemonset;
mod nodes;
mod revision;
mod statefulset;

use std::collections::{BTreeMap, HashMap, HashSet};

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec, ReplicaSetStatus,
};
use k8s_openapi::api::core::v1::{
    ConfigMapProjection, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStatus, DownwardAPIProjection, DownwardAPIVolumeFile, HostIP, KeyToPath, Node,
    ObjectFieldSelector, Pod, PodCondition, PodIP, PodSpec, PodStatus, PodTemplateSpec,
    ProjectedVolumeSource, ServiceAccountTokenProjection, Toleration, Volume, VolumeMount,
    VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::clock;
use super::store::{Key, Kind, Object, Store};

/// The revision annotation on Deployments and their ReplicaSets.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions a reused ReplicaSet had, comma-separated.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub(super) const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub(super) const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// The label that ties a ReplicaSet and its pods to one pod template.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// Seconds from a pod's creation to Running and Ready (pod annotation, copied from the template).
/// The names are those of the stand-in kubelet that produced the recordings.
pub const START_SECONDS: &str = "lab.example/start-seconds";
/// Seconds a deleted pod keeps draining before its containers exit; `never` for a pod that never
/// finishes on its own (the kubelet kills it at its deadline: the end of its grace period), or
/// [`UNKILLABLE`].
pub const DRAIN_SECONDS: &str = "lab.example/drain-seconds";
/// The [`DRAIN_SECONDS`] value of a pod that ignores its grace period and that the kubelet cannot
/// kill either (a process stuck in uninterruptible sleep, a hung runtime): once deleted it stays
/// Running, its containers running, past its deadline, until the value changes or the pod is
/// force-deleted (grace 0).
pub const UNKILLABLE: &str = "unkillable";
/// The node every pod is bound to in a cluster without Node objects: the implicit node, no object
/// but answered by a GET (see `controllers/nodes.rs`).
pub const NODE_NAME: &str = "sim-node";

pub use daemonset::POD_TEMPLATE_GENERATION;
pub(crate) use daemonset::daemon_pod;
pub use nodes::{NodeReadiness, node_object};
pub use revision::{
    CONTROLLER_REVISION_HASH, STATEFULSET_REVISION_HASH, revision_hash, revision_template,
};
pub(crate) use revision::{Owner, revision_object};
pub(crate) use statefulset::statefulset_pod;
pub use statefulset::{POD_INDEX, STATEFULSET_POD_NAME};

/// Defaults of the kubelet stand-in and the controllers.
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// Seconds from creation to Ready when a pod has no start annotation.
    pub start_seconds: f64,
    /// Seconds a deleted pod drains when it has no drain annotation.
    pub drain_seconds: f64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            start_seconds: 1.0,
            drain_seconds: 5.0,
        }
    }
}

/// The store plus the little state the simulated components keep outside it.
pub struct World {
    pub store: Store,
    pub behaviour: Behaviour,
    /// When each pod's deletion was requested (uid → Unix seconds, exact): drains count from it.
    deletion_requested: HashMap<String, f64>,
    /// When each pod was created (uid → Unix seconds, exact).
    created_at: HashMap<String, f64>,
    name_counter: u64,
    /// Nodes removed from the cluster (and not added back): the pod garbage collector removes
    /// the pods bound to them.
    removed_nodes: HashSet<String>,
    /// [`NODE_NAME`] as a GET answers it while no Node object has that name; `None` once removed
    /// or replaced by an object (see `controllers/nodes.rs`).
    implicit_node: Option<Node>,
    /// The controllers and the kubelet skip their ticks: the moment after `kubectl apply` and
    /// before any controller has observed the change, held for as long as a test needs.
    pub paused: bool,
}

impl World {
    pub fn new(store: Store, behaviour: Behaviour) -> Self {
        let implicit_node = nodes::implicit_node(clock::now(), store.resource_version());
        Self {
            store,
            behaviour,
            deletion_requested: HashMap::new(),
            created_at: HashMap::new(),
            name_counter: 0,
            removed_nodes: HashSet::new(),
            implicit_node: Some(implicit_node),
            paused: false,
        }
    }

    /// Runs every component once.
    pub fn tick(&mut self, now: f64) {
        if self.paused {
            return;
        }
        self.collect_garbage(now);
        self.collect_orphaned_pods(now);
        self.kubelet(now);
        self.replicaset_controller(now);
        self.deployment_controller(now);
        self.statefulset_controller(now);
        self.daemonset_controller(now);
    }

    /// Registers a node (or replaces its labels and taints), as a kubelet joining does.
    pub fn add_node(&mut self, node: k8s_openapi::api::core::v1::Node) {
        let key = (
            String::new(),
            node.metadata.name.clone().unwrap_or_default(),
        );
        self.removed_nodes.remove(&key.1);
        if key.1 == NODE_NAME {
            self.implicit_node = None;
        }
        match self.store.get(Kind::Node, &key).as_deref() {
            Some(Object::Node(old)) => {
                let mut n = old.clone();
                n.metadata.labels = node.metadata.labels;
                n.spec = node.spec;
                self.store.update(Object::Node(n));
            }
            _ => {
                self.store.create(Object::Node(node));
            }
        }
    }

    /// Deletes a node object (or the implicit node); the pod garbage collector then removes the
    /// pods bound to it. Answers whether it existed.
    pub fn remove_node(&mut self, name: &str) -> bool {
        let removed = self
            .store
            .remove(Kind::Node, &(String::new(), name.to_string()))
            .is_some()
            || (name == NODE_NAME && self.implicit_node.take().is_some());
        if removed {
            self.removed_nodes.insert(name.to_string());
        }
        removed
    }

    fn suffix(&mut self) -> String {
        self.name_counter += 1;
        name_suffix(self.name_counter)
    }

    /// The pods whose controller is the ReplicaSet with this uid.
    fn owned_pods(&self, uid: &str) -> Vec<Pod> {
        self.store
            .pods()
            .filter(|p| controller_uid(&p.metadata).as_deref() == Some(uid))
            .cloned()
            .collect()
    }

    /// A graceful pod delete, as `DELETE /api/v1/namespaces/{ns}/pods/{name}` does it: the pod gets
    /// `deletionTimestamp = now + grace` and `deletionGracePeriodSeconds`; a second delete may only
    /// shorten it. An unscheduled pod, or grace 0, goes at once.
    pub fn delete_pod(&mut self, key: &Key, grace: Option<i64>, now: f64) {
        let Some(Object::Pod(pod)) = self.store.get(Kind::Pod, key).as_deref().cloned() else {
            return;
        };
        let grace = grace
            .or_else(|| {
                pod.spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30)
            .max(0);
        let scheduled = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some();
        if !scheduled || (grace == 0 && pod.metadata.finalizers.as_ref().is_none_or(Vec::is_empty))
        {
            self.remove_pod(key);
            return;
        }
        let deadline = clock::second(now) + grace;
        let mut pod = pod;
        let m = &mut pod.metadata;
        let current = m.deletion_timestamp.as_ref().map(|t| t.0.as_second());
        if current.is_some_and(|c| c <= deadline) {
            return;
        }
        m.deletion_timestamp = Some(Time(clock::timestamp(deadline)));
        m.deletion_grace_period_seconds = Some(grace);
        if current.is_none() {
            m.generation = Some(m.generation.unwrap_or(1) + 1);
            if let Some(uid) = &m.uid {
                self.deletion_requested.insert(uid.clone(), now);
            }
        }
        self.store.update(Object::Pod(pod));
    }

    fn remove_pod(&mut self, key: &Key) {
        if let Some(obj) = self.store.remove(Kind::Pod, key)
            && let Some(uid) = &obj.meta().uid
        {
            self.deletion_requested.remove(uid);
            self.created_at.remove(uid);
        }
    }

    // ----- Garbage collector -------------------------------------------------------------------

    /// Background cascading deletion: ReplicaSets whose Deployment is gone and ControllerRevisions
    /// whose StatefulSet or DaemonSet is gone are deleted, then pods whose ReplicaSet, StatefulSet
    /// or DaemonSet is gone are deleted gracefully.
    fn collect_garbage(&mut self, now: f64) {
        let deployments: Vec<String> = self
            .store
            .deployments()
            .filter_map(|d| d.metadata.uid.clone())
            .collect();
        let orphan_rs: Vec<Key> = self
            .store
            .replicasets()
            .filter(|rs| {
                controller_uid(&rs.metadata).is_some_and(|u| {
                    controller_kind(&rs.metadata) == Some("Deployment") && !deployments.contains(&u)
                })
            })
            .map(|rs| key_of(&rs.metadata))
            .collect();
        for key in orphan_rs {
            self.store.remove(Kind::ReplicaSet, &key);
        }
        // ControllerRevisions whose StatefulSet or DaemonSet is gone.
        let workloads: HashSet<String> = self
            .store
            .statefulsets()
            .map(|s| &s.metadata)
            .chain(self.store.daemonsets().map(|d| &d.metadata))
            .filter_map(|m| m.uid.clone())
            .collect();
        let orphan_revisions: Vec<Key> = self
            .store
            .controller_revisions()
            .filter(|r| controller_uid(&r.metadata).is_some_and(|u| !workloads.contains(&u)))
            .map(|r| key_of(&r.metadata))
            .collect();
        for key in orphan_revisions {
            self.store.remove(Kind::ControllerRevision, &key);
        }
        let owners: HashSet<String> = self
            .store
            .replicasets()
            .filter_map(|r| r.metadata.uid.clone())
            .chain(workloads)
            .collect();
        let orphan_pods: Vec<Key> = self
            .store
            .pods()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| {
                controller_uid(&p.metadata).is_some_and(|u| {
                    matches!(
                        controller_kind(&p.metadata),
                        Some("ReplicaSet" | "StatefulSet" | "DaemonSet")
                    ) && !owners.contains(&u)
                })
            })
            .map(|p| key_of(&p.metadata))
            .collect();
        for key in orphan_pods {
            self.delete_pod(&key, None, now);
        }
    }

    // ----- Kubelet -----------------------------------------------------------------------------

    /// The kubelets of every Ready node: start scheduled pods, drain deleted ones and make the
    /// final delete. A node that is not Ready runs nothing; only the API server's part goes on
    /// there (a pod given grace 0 goes once its finalizers are gone).
    fn kubelet(&mut self, now: f64) {
        let pods: Vec<Pod> = self.store.pods().cloned().collect();
        let not_ready = self.not_ready_nodes();
        for pod in pods {
            let key = key_of(&pod.metadata);
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let phase = phase(&pod).to_string();
            let created = *self.created_at.entry(uid.clone()).or_insert(now);
            let node = pod.spec.as_ref().and_then(|s| s.node_name.as_ref());
            let scheduled = node.is_some();
            if node.is_some_and(|n| not_ready.contains(n)) {
                if pod.metadata.deletion_timestamp.is_some()
                    && pod.metadata.deletion_grace_period_seconds == Some(0)
                {
                    self.remove_if_no_finalizers(&key);
                }
                continue;
            }
            if let Some(deletion) = &pod.metadata.deletion_timestamp {
                let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
                let finished = phase == "Succeeded" || phase == "Failed";
                if !finished {
                    let requested = *self
                        .deletion_requested
                        .entry(uid.clone())
                        .or_insert((deletion.0.as_second() - grace) as f64);
                    let done_at = match drain(&pod, self.behaviour.drain_seconds) {
                        Drain::Seconds(d) => Some(requested + d.min(grace as f64)),
                        Drain::Never => Some(requested + grace as f64),
                        Drain::Unkillable => None,
                    };
                    if done_at.is_some_and(|t| now >= t) {
                        self.store.update(Object::Pod(terminated(pod, now)));
                    }
                } else if grace > 0 {
                    // The kubelet's final delete: grace 0 rewrites deletionTimestamp to now.
                    let mut pod = pod;
                    pod.metadata.deletion_timestamp = Some(Time(clock::now_timestamp(now)));
                    pod.metadata.deletion_grace_period_seconds = Some(0);
                    self.store.update(Object::Pod(pod));
                    self.remove_if_no_finalizers(&key);
                } else {
                    self.remove_if_no_finalizers(&key);
                }
                continue;
            }
            if !scheduled {
                if let Some(node) = self.pick_node(&pod) {
                    self.store
                        .update(Object::Pod(scheduled_pod_on(pod, &node, now)));
                }
            } else if phase == "Pending" {
                let start = annotation_seconds(&pod, START_SECONDS)
                    .flatten()
                    .unwrap_or(self.behaviour.start_seconds);
                if now >= created + start {
                    let ip = format!("10.244.0.{}", 2 + self.name_counter % 250);
                    self.name_counter += 1;
                    self.store.update(Object::Pod(running(pod, now, ip)));
                }
            }
        }
    }

    fn remove_if_no_finalizers(&mut self, key: &Key) {
        let has_finalizers = self
            .store
            .get(Kind::Pod, key)
            .is_some_and(|o| o.meta().finalizers.as_ref().is_some_and(|f| !f.is_empty()));
        if !has_finalizers {
            self.remove_pod(key);
        }
    }

    // ----- ReplicaSet controller ---------------------------------------------------------------

    fn replicaset_controller(&mut self, now: f64) {
        let replicasets: Vec<ReplicaSet> = self.store.replicasets().cloned().collect();
        for rs in replicasets {
            let uid = rs.metadata.uid.clone().unwrap_or_default();
            let owned = self.owned_pods(&uid);
            let active: Vec<&Pod> = owned
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none() && !is_finished(p))
                .collect();
            let want = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let have = active.len() as i32;
            if have < want {
                for _ in have..want {
                    let pod = self.new_pod(&rs);
                    self.store.create(Object::Pod(pod));
                }
            } else if have > want {
                // Not-ready pods go first, then the newest.
                let mut victims: Vec<&Pod> = active.clone();
                victims.sort_by_key(|p| {
                    (
                        is_ready(p),
                        std::cmp::Reverse(
                            p.metadata
                                .creation_timestamp
                                .as_ref()
                                .map(|t| t.0.as_second()),
                        ),
                    )
                });
                let keys: Vec<Key> = victims
                    .iter()
                    .take((have - want) as usize)
                    .map(|p| key_of(&p.metadata))
                    .collect();
                for key in keys {
                    self.delete_pod(&key, None, now);
                }
            }
            // Status from the pods as they stand now.
            let owned = self.owned_pods(&uid);
            let counting: Vec<&Pod> = owned
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none() && !is_finished(p))
                .collect();
            let ready = counting.iter().filter(|p| is_ready(p)).count() as i32;
            let terminating = owned
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_some() && !is_finished(p))
                .count() as i32;
            let status = ReplicaSetStatus {
                replicas: counting.len() as i32,
                fully_labeled_replicas: nonzero(counting.len() as i32),
                ready_replicas: nonzero(ready),
                available_replicas: nonzero(ready),
                terminating_replicas: Some(terminating),
                observed_generation: rs.metadata.generation,
                conditions: None,
            };
            if rs.status.as_ref() != Some(&status) {
                let mut rs = rs;
                rs.status = Some(status);
                self.store.update(Object::ReplicaSet(rs));
            }
        }
    }

    fn new_pod(&mut self, rs: &ReplicaSet) -> Pod {
        let template = rs
            .spec
            .as_ref()
            .and_then(|s| s.template.clone())
            .unwrap_or_default();
        let rs_name = rs.metadata.name.clone().unwrap_or_default();
        let name = format!("{rs_name}-{}", self.suffix());
        let mut meta = template.metadata.unwrap_or_default();
        meta.name = Some(name);
        meta.generate_name = Some(format!("{rs_name}-"));
        meta.namespace = rs.metadata.namespace.clone();
        meta.owner_references = Some(vec![controller_ref("apps/v1", "ReplicaSet", &rs.metadata)]);
        Pod {
            metadata: meta,
            spec: template.spec.map(admit),
            status: Some(PodStatus {
                phase: Some("Pending".into()),
                qos_class: Some("BestEffort".into()),
                ..Default::default()
            }),
        }
    }

    // ----- Deployment controller ---------------------------------------------------------------

    fn deployment_controller(&mut self, now: f64) {
        let deployments: Vec<Deployment> = self.store.deployments().cloned().collect();
        for d in deployments {
            self.sync_deployment(d, now);
        }
    }

    fn owned_replicasets(&self, d: &Deployment) -> Vec<ReplicaSet> {
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let mut v: Vec<ReplicaSet> = self
            .store
            .replicasets()
            .filter(|rs| controller_uid(&rs.metadata).as_deref() == Some(uid.as_str()))
            .cloned()
            .collect();
        v.sort_by_key(|rs| {
            (
                rs.metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.as_second()),
                rs.metadata.name.clone(),
            )
        });
        v
    }

    fn sync_deployment(&mut self, d: Deployment, now: f64) {
        let (d, pause_written) = self.check_paused_conditions(d, now);
        let spec = d.spec.clone().unwrap_or_default();
        let replicas = spec.replicas.unwrap_or(1);
        let paused = spec.paused.unwrap_or(false);
        let recreate = spec
            .strategy
            .as_ref()
            .and_then(|s| s.type_.as_deref())
            .is_some_and(|t| t == "Recreate");
        let (max_surge, max_unavailable) = if recreate {
            (0, 0)
        } else {
            surge_and_unavailable(&d, replicas)
        };
        let hash = template_hash(&spec.template);
        let all = self.owned_replicasets(&d);
        let new_rs = all
            .iter()
            .find(|rs| label(&rs.metadata, POD_TEMPLATE_HASH) == Some(&hash))
            .cloned();
        let olds: Vec<ReplicaSet> = all
            .iter()
            .filter(|rs| label(&rs.metadata, POD_TEMPLATE_HASH) != Some(&hash))
            .cloned()
            .collect();
        let max_old_revision = olds
            .iter()
            .filter_map(|rs| revision(&rs.metadata))
            .max()
            .unwrap_or(0);

        // 1. The new ReplicaSet and the revision.
        match &new_rs {
            Some(rs) => {
                let rs_revision = revision(&rs.metadata).unwrap_or(0);
                if rs_revision <= max_old_revision {
                    // A reused ReplicaSet (rollback, or a re-applied template) becomes newest.
                    let mut rs = rs.clone();
                    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
                    let mut history: Vec<String> = annotations
                        .get(REVISION_HISTORY)
                        .map(|h| h.split(',').map(str::to_string).collect())
                        .unwrap_or_default();
                    history.push(rs_revision.to_string());
                    annotations.insert(REVISION_HISTORY.into(), history.join(","));
                    annotations.insert(REVISION.into(), (max_old_revision + 1).to_string());
                    self.store.update(Object::ReplicaSet(rs));
                    return;
                }
                if revision(&d.metadata) != Some(rs_revision) {
                    let mut d = d;
                    d.metadata
                        .annotations
                        .get_or_insert_with(BTreeMap::new)
                        .insert(REVISION.into(), rs_revision.to_string());
                    self.store.update(Object::Deployment(d));
                    return;
                }
            }
            None if !paused => {
                let old_total: i32 = olds.iter().map(spec_replicas).sum();
                let initial = if recreate {
                    if old_total > 0 {
                        for rs in &olds {
                            self.scale(rs, 0);
                        }
                        self.update_status(&d, None, &olds, now, true);
                        return;
                    }
                    if self.any_pod_running(&olds) {
                        self.update_status(&d, None, &olds, now, true);
                        return;
                    }
                    replicas
                } else {
                    replicas.min((replicas + max_surge - old_total).max(0))
                };
                let rs = self.new_replicaset(
                    &d,
                    &hash,
                    max_old_revision + 1,
                    initial,
                    replicas + max_surge,
                );
                self.store.create(Object::ReplicaSet(rs));
                let mut d = d;
                d.metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(REVISION.into(), (max_old_revision + 1).to_string());
                // After a resume the real controller's "Created new replica set" write goes out
                // with the copy it read before writing DeploymentResumed, and fails on the
                // conflict: the pause recording goes from DeploymentResumed to ReplicaSetUpdated.
                if let Some(d) = self.store.update(Object::Deployment(d))
                    && let Object::Deployment(d) = &*d
                    && !pause_written
                {
                    self.set_progressing(d.clone(), "True", "NewReplicaSetCreated", now);
                }
                return;
            }
            None => {}
        }

        // 2. Scaling, unless paused.
        if !paused && let Some(new_rs) = &new_rs {
            if recreate {
                for rs in &olds {
                    self.scale(rs, 0);
                }
                if spec_replicas(new_rs) != replicas && !self.any_pod_running(&olds) {
                    self.scale(new_rs, replicas);
                }
            } else {
                self.rolling_update(new_rs, &olds, replicas, max_surge, max_unavailable);
            }
        }

        // 3. Status.
        let d = match self
            .store
            .get(Kind::Deployment, &key_of(&d.metadata))
            .as_deref()
        {
            Some(Object::Deployment(d)) => d.clone(),
            _ => return,
        };
        let all = self.owned_replicasets(&d);
        let new_rs = all
            .iter()
            .find(|rs| label(&rs.metadata, POD_TEMPLATE_HASH) == Some(&hash))
            .cloned();
        let olds: Vec<ReplicaSet> = all
            .into_iter()
            .filter(|rs| label(&rs.metadata, POD_TEMPLATE_HASH) != Some(&hash))
            .collect();
        self.update_status(&d, new_rs.as_ref(), &olds, now, false);
    }

    /// The real controller's checkPausedConditions, the first step of every sync: a status write
    /// of its own saying the Deployment is paused (Progressing Unknown/DeploymentPaused) or, on
    /// the first sync after the resume, resumed (DeploymentResumed), before anything rolls; a
    /// ProgressDeadlineExceeded is never overwritten. Answers the Deployment as now stored and
    /// whether it wrote.
    fn check_paused_conditions(&mut self, mut d: Deployment, now: f64) -> (Deployment, bool) {
        let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        let reason = d
            .status
            .as_ref()
            .and_then(|st| condition(st, "Progressing"))
            .and_then(|c| c.reason.clone())
            .unwrap_or_default();
        if reason == "ProgressDeadlineExceeded" {
            return (d, false);
        }
        let (reason, message) = match (paused, reason == "DeploymentPaused") {
            (true, false) => ("DeploymentPaused", "Deployment is paused"),
            (false, true) => ("DeploymentResumed", "Deployment is resumed"),
            _ => return (d, false),
        };
        let st = d.status.get_or_insert_with(Default::default);
        set_condition(st, "Progressing", "Unknown", reason, message, now, true);
        match self.store.update(Object::Deployment(d.clone())).as_deref() {
            Some(Object::Deployment(stored)) => (stored.clone(), true),
            _ => (d, true),
        }
    }

    fn any_pod_running(&self, olds: &[ReplicaSet]) -> bool {
        let uids: Vec<String> = olds.iter().filter_map(|r| r.metadata.uid.clone()).collect();
        self.store.pods().any(|p| {
            controller_uid(&p.metadata).is_some_and(|u| uids.contains(&u)) && !is_finished(p)
        })
    }

    fn scale(&mut self, rs: &ReplicaSet, replicas: i32) {
        if spec_replicas(rs) == replicas {
            return;
        }
        let mut rs = rs.clone();
        if let Some(spec) = rs.spec.as_mut() {
            spec.replicas = Some(replicas);
        }
        self.store.update(Object::ReplicaSet(rs));
    }

    /// One step of a rolling update, as the real controller's reconcileNewReplicaSet and
    /// reconcileOldReplicaSets compute it.
    fn rolling_update(
        &mut self,
        new_rs: &ReplicaSet,
        olds: &[ReplicaSet],
        replicas: i32,
        max_surge: i32,
        max_unavailable: i32,
    ) {
        let old_total: i32 = olds.iter().map(spec_replicas).sum();
        let new_now = spec_replicas(new_rs);
        let new_target = if new_now > replicas {
            replicas
        } else {
            let room = (replicas + max_surge - old_total - new_now).max(0);
            replicas.min(new_now + room)
        };
        if new_target != new_now {
            self.scale(new_rs, new_target);
            return;
        }
        let new_available = new_rs
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0);
        let new_unavailable = (new_now - new_available).max(0);
        let min_available = replicas - max_unavailable;
        let mut can_remove = old_total + new_now - min_available - new_unavailable;
        for rs in olds {
            if can_remove <= 0 {
                break;
            }
            let n = spec_replicas(rs);
            if n == 0 {
                continue;
            }
            let down = n.min(can_remove);
            self.scale(rs, n - down);
            can_remove -= down;
        }
    }

    fn new_replicaset(
        &mut self,
        d: &Deployment,
        hash: &str,
        revision: u64,
        replicas: i32,
        max_replicas: i32,
    ) -> ReplicaSet {
        let spec = d.spec.clone().unwrap_or_default();
        let mut template: PodTemplateSpec = spec.template.clone();
        let tmeta = template.metadata.get_or_insert_with(Default::default);
        tmeta
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.into());
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.into());
        let name = d.metadata.name.clone().unwrap_or_default();
        let mut labels = tmeta.labels.clone().unwrap_or_default();
        labels.insert(POD_TEMPLATE_HASH.into(), hash.into());
        let annotations = BTreeMap::from([
            (
                DESIRED_REPLICAS.to_string(),
                spec.replicas.unwrap_or(1).to_string(),
            ),
            (MAX_REPLICAS.to_string(), max_replicas.to_string()),
            (REVISION.to_string(), revision.to_string()),
        ]);
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{name}-{hash}")),
                namespace: d.metadata.namespace.clone(),
                labels: Some(labels),
                annotations: Some(annotations),
                owner_references: Some(vec![controller_ref("apps/v1", "Deployment", &d.metadata)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                min_ready_seconds: None,
                selector,
                template: Some(template),
            }),
            status: Some(ReplicaSetStatus {
                replicas: 0,
                ..Default::default()
            }),
        }
    }

    fn set_progressing(&mut self, mut d: Deployment, status: &str, reason: &str, now: f64) {
        let st = d.status.get_or_insert_with(Default::default);
        let message = progress_message(reason, &d.metadata);
        set_condition(st, "Progressing", status, reason, &message, now, true);
        self.store.update(Object::Deployment(d));
    }

    /// Writes the Deployment's status as the controller computes it from its ReplicaSets.
    fn update_status(
        &mut self,
        d: &Deployment,
        new_rs: Option<&ReplicaSet>,
        olds: &[ReplicaSet],
        now: f64,
        scaling_down_for_recreate: bool,
    ) {
        let spec = d.spec.clone().unwrap_or_default();
        let want = spec.replicas.unwrap_or(1);
        let all: Vec<&ReplicaSet> = new_rs.into_iter().chain(olds.iter()).collect();
        let sum = |f: fn(&ReplicaSetStatus) -> i32| -> i32 {
            all.iter().filter_map(|r| r.status.as_ref()).map(f).sum()
        };
        let replicas = sum(|s| s.replicas);
        let ready = sum(|s| s.ready_replicas.unwrap_or(0));
        let available = sum(|s| s.available_replicas.unwrap_or(0));
        let terminating = sum(|s| s.terminating_replicas.unwrap_or(0));
        let updated = new_rs
            .and_then(|r| r.status.as_ref())
            .map_or(0, |s| s.replicas);
        let old = d.status.clone().unwrap_or_default();
        let (_, max_unavailable) = surge_and_unavailable(d, want);
        let mut st = DeploymentStatus {
            observed_generation: d.metadata.generation,
            replicas: nonzero(replicas),
            updated_replicas: nonzero(updated),
            ready_replicas: nonzero(ready),
            available_replicas: nonzero(available),
            unavailable_replicas: nonzero((want - available).max(0)),
            terminating_replicas: Some(terminating),
            conditions: old.conditions.clone(),
            collision_count: None,
        };
        let min_available = want - max_unavailable;
        if available >= min_available {
            set_condition(
                &mut st,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                now,
                false,
            );
        } else {
            set_condition(
                &mut st,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                now,
                false,
            );
        }
        let paused = spec.paused.unwrap_or(false);
        let current = condition(&old, "Progressing");
        let complete = updated == want
            && replicas == want
            && available == want
            && new_rs.is_some()
            && d.metadata.generation <= st.observed_generation;
        let progressed = updated > old.updated_replicas.unwrap_or(0)
            || available > old.available_replicas.unwrap_or(0)
            || replicas != old.replicas.unwrap_or(0)
            || ready > old.ready_replicas.unwrap_or(0)
            || scaling_down_for_recreate && terminating != old.terminating_replicas.unwrap_or(0);
        let reason_now = current.and_then(|c| c.reason.clone()).unwrap_or_default();
        if paused {
            // A paused Deployment's Progressing condition is only ever the one
            // `check_paused_conditions` wrote: the real controller syncs a paused Deployment
            // without evaluating progress (`dc.sync`, not `syncRolloutStatus`).
        } else if complete {
            if reason_now != "NewReplicaSetAvailable" {
                let msg = progress_message(
                    "NewReplicaSetAvailable",
                    &new_rs.map(|r| r.metadata.clone()).unwrap_or_default(),
                );
                set_condition(
                    &mut st,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    &msg,
                    now,
                    true,
                );
            }
        } else if progressed {
            // Progress after the deadline turns the condition True again: the real
            // syncRolloutStatus tests for progress before it tests for a timeout.
            let msg = progress_message(
                "ReplicaSetUpdated",
                &new_rs.map(|r| r.metadata.clone()).unwrap_or_default(),
            );
            set_condition(
                &mut st,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                &msg,
                now,
                true,
            );
        } else if let (Some(deadline), Some(c)) = (spec.progress_deadline_seconds, current)
            && c.status == "True"
            && reason_now != "NewReplicaSetAvailable"
            && c.last_update_time
                .as_ref()
                .is_some_and(|t| (t.0.as_second() + i64::from(deadline)) as f64 <= now)
        {
            let msg = format!(
                "ReplicaSet \"{}\" has timed out progressing.",
                new_rs
                    .and_then(|r| r.metadata.name.clone())
                    .unwrap_or_default()
            );
            set_condition(
                &mut st,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &msg,
                now,
                true,
            );
        }
        if d.status.as_ref() != Some(&st) {
            let mut d = d.clone();
            d.status = Some(st);
            self.store.update(Object::Deployment(d));
        }
    }
}

fn progress_message(reason: &str, rs_meta: &ObjectMeta) -> String {
    let name = rs_meta.name.clone().unwrap_or_default();
    match reason {
        "NewReplicaSetCreated" => format!("Created new replica set \"{name}\""),
        "NewReplicaSetAvailable" => format!("ReplicaSet \"{name}\" has successfully progressed."),
        _ => format!("ReplicaSet \"{name}\" is progressing."),
    }
}

fn condition<'a>(st: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    st.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// Sets a condition; `lastTransitionTime` moves only when the status changes, `lastUpdateTime`
/// whenever anything changes (Progressing) or the status changes (Available).
pub(super) fn set_condition(
    st: &mut DeploymentStatus,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: f64,
    touch_update: bool,
) {
    let t = Time(clock::now_timestamp(now));
    let conditions = st.conditions.get_or_insert_with(Vec::new);
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status == status
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(message)
            {
                return;
            }
            if c.status != status {
                c.last_transition_time = Some(t.clone());
            }
            if touch_update || c.status != status {
                c.last_update_time = Some(t);
            }
            c.status = status.into();
            c.reason = Some(reason.into());
            c.message = Some(message.into());
        }
        None => conditions.push(DeploymentCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_update_time: Some(t.clone()),
            last_transition_time: Some(t),
        }),
    }
    conditions.sort_by_key(|c| if c.type_ == "Available" { 0 } else { 1 });
}

fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn key_of(meta: &ObjectMeta) -> Key {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a String> {
    meta.labels.as_ref()?.get(key)
}

fn revision(meta: &ObjectMeta) -> Option<u64> {
    meta.annotations.as_ref()?.get(REVISION)?.parse().ok()
}

/// The `n`th name suffix, as the API server's generateName makes them: five characters of its
/// alphabet, spread by a mixing function so that consecutive names differ everywhere.
pub(super) fn name_suffix(n: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..5)
        .map(|_| {
            x ^= x >> 29;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

fn controller_uid(meta: &ObjectMeta) -> Option<String> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.clone())
}

fn controller_kind(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
        .map(|r| r.kind.as_str())
}

pub(super) fn controller_ref(api_version: &str, kind: &str, owner: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: owner.name.clone().unwrap_or_default(),
        uid: owner.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn is_finished(p: &Pod) -> bool {
    matches!(phase(p), "Succeeded" | "Failed")
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// How a deleted pod's drain ends, from its [`DRAIN_SECONDS`] annotation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Drain {
    /// Its containers exit this many seconds after the delete (at the deadline at the latest).
    Seconds(f64),
    /// `never`: they do not exit on their own; the kubelet kills them at the deadline.
    Never,
    /// [`UNKILLABLE`]: they do not exit and cannot be killed.
    Unkillable,
}

/// A pod's drain; `default` seconds when it has no readable annotation.
fn drain(p: &Pod, default: f64) -> Drain {
    let value = p
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DRAIN_SECONDS));
    match value.map(String::as_str) {
        Some(UNKILLABLE) => Drain::Unkillable,
        Some("never") => Drain::Never,
        Some(v) => Drain::Seconds(v.parse().unwrap_or(default)),
        None => Drain::Seconds(default),
    }
}

/// A pod annotation in seconds: `Some(Some(s))`, `Some(None)` for `never`, `None` when absent or
/// unreadable.
fn annotation_seconds(p: &Pod, key: &str) -> Option<Option<f64>> {
    let v = p.metadata.annotations.as_ref()?.get(key)?;
    if v == "never" {
        return Some(None);
    }
    v.parse().ok().map(Some)
}

/// maxSurge (rounded up) and maxUnavailable (rounded down) resolved against the replica count;
/// both 0 would deadlock, so maxUnavailable is then 1, as in the real controller.
pub fn surge_and_unavailable(d: &Deployment, replicas: i32) -> (i32, i32) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let resolve = |v: Option<&IntOrString>, default_pct: i32, round_up: bool| -> i32 {
        match v {
            Some(IntOrString::Int(n)) => *n,
            Some(IntOrString::String(s)) => {
                let pct: i32 = s.trim_end_matches('%').parse().unwrap_or(default_pct);
                let exact = replicas * pct;
                if round_up {
                    (exact + 99) / 100
                } else {
                    exact / 100
                }
            }
            None => {
                let exact = replicas * default_pct;
                if round_up {
                    (exact + 99) / 100
                } else {
                    exact / 100
                }
            }
        }
    };
    let surge = resolve(ru.and_then(|r| r.max_surge.as_ref()), 25, true);
    let unavailable = resolve(ru.and_then(|r| r.max_unavailable.as_ref()), 25, false);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// The pod-template-hash of a template: FNV-1a over its JSON, written in the API server's
/// "safe" alphabet (no vowels, no look-alike digits).
pub fn template_hash(template: &PodTemplateSpec) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut t = template.clone();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH);
    }
    let bytes = serde_json::to_vec(&t).unwrap_or_default();
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.to_string()
        .bytes()
        .map(|d| ALPHABET[(d as usize * 7 + h as usize) % ALPHABET.len()] as char)
        .collect()
}

/// What admission adds to every pod: the service account, its token volume, default tolerations
/// and scheduling fields.
pub(super) fn admit(mut spec: PodSpec) -> PodSpec {
    const VOLUME: &str = "kube-api-access";
    spec.service_account_name = Some("default".into());
    spec.service_account = Some("default".into());
    spec.enable_service_links = Some(true);
    spec.priority = Some(0);
    spec.preemption_policy = Some("PreemptLowerPriority".into());
    // DefaultTolerationSeconds: 300 s for not-ready and unreachable, unless the pod already
    // tolerates them (a DaemonSet's pods do, without a limit).
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let present = tolerations.iter().any(|t| {
            t.key.as_deref() == Some(key) && t.effect.as_deref().is_none_or(|e| e == "NoExecute")
        });
        if !present {
            tolerations.push(Toleration {
                key: Some(key.into()),
                operator: Some("Exists".into()),
                effect: Some("NoExecute".into()),
                toleration_seconds: Some(300),
                value: None,
            });
        }
    }
    spec.volumes = Some(vec![Volume {
        name: VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(420),
            sources: Some(vec![
                VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        expiration_seconds: Some(3607),
                        path: "token".into(),
                        audience: None,
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: "kube-root-ca.crt".into(),
                        items: Some(vec![KeyToPath {
                            key: "ca.crt".into(),
                            path: "ca.crt".into(),
                            mode: None,
                        }]),
                        optional: None,
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    downward_api: Some(DownwardAPIProjection {
                        items: Some(vec![DownwardAPIVolumeFile {
                            path: "namespace".into(),
                            field_ref: Some(ObjectFieldSelector {
                                api_version: Some("v1".into()),
                                field_path: "metadata.namespace".into(),
                            }),
                            ..Default::default()
                        }]),
                    }),
                    ..Default::default()
                },
            ]),
        }),
        ..Default::default()
    }]);
    for c in &mut spec.containers {
        c.volume_mounts = Some(vec![VolumeMount {
            name: VOLUME.into(),
            read_only: Some(true),
            mount_path: "/var/run/secrets/kubernetes.io/serviceaccount".into(),
            ..Default::default()
        }]);
    }
    spec
}

pub(super) fn scheduled_pod(pod: Pod, now: f64) -> Pod {
    scheduled_pod_on(pod, NODE_NAME, now)
}

/// The pod bound to `node` by the scheduler.
pub(super) fn scheduled_pod_on(mut pod: Pod, node: &str, now: f64) -> Pod {
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_name = Some(node.into());
    }
    let st = pod.status.get_or_insert_with(Default::default);
    st.conditions = Some(vec![pod_condition("PodScheduled", "True", now)]);
    pod
}

pub(super) fn running(mut pod: Pod, now: f64, ip: String) -> Pod {
    let uid: String = pod
        .metadata
        .uid
        .clone()
        .unwrap_or_default()
        .chars()
        .take(8)
        .collect();
    let containers: Vec<String> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let images: Vec<String> = pod
        .spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .map(|c| c.image.clone().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    let st = pod.status.get_or_insert_with(Default::default);
    st.phase = Some("Running".into());
    st.conditions = Some(
        [
            "PodReadyToStartContainers",
            "Initialized",
            "ContainersReady",
            "Ready",
            "PodScheduled",
        ]
        .iter()
        .map(|t| pod_condition(t, "True", now))
        .collect(),
    );
    st.host_ip = Some("127.0.0.1".into());
    st.host_ips = Some(vec![HostIP {
        ip: "127.0.0.1".into(),
    }]);
    st.pod_ips = Some(vec![PodIP { ip: ip.clone() }]);
    st.pod_ip = Some(ip);
    st.start_time = Some(Time(clock::now_timestamp(now)));
    st.container_statuses = Some(
        containers
            .into_iter()
            .zip(images)
            .map(|(name, image)| ContainerStatus {
                container_id: Some(format!("sim://{}-{name}", uid)),
                last_state: Some(Default::default()),
                name,
                image: image.clone(),
                image_id: format!("sim://{image}"),
                ready: true,
                started: Some(true),
                restart_count: 0,
                state: Some(ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: Some(Time(clock::now_timestamp(now))),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect(),
    );
    pod
}

pub(super) fn terminated(mut pod: Pod, now: f64) -> Pod {
    let st = pod.status.get_or_insert_with(Default::default);
    st.phase = Some("Succeeded".into());
    if let Some(conditions) = st.conditions.as_mut() {
        for c in conditions.iter_mut() {
            if c.type_ == "Ready" || c.type_ == "ContainersReady" {
                c.status = "False".into();
                c.reason = Some("PodCompleted".into());
                c.last_transition_time = Some(Time(clock::now_timestamp(now)));
            }
        }
    }
    if let Some(statuses) = st.container_statuses.as_mut() {
        for cs in statuses.iter_mut() {
            let started = cs
                .state
                .as_ref()
                .and_then(|s| s.running.as_ref())
                .and_then(|r| r.started_at.clone());
            cs.ready = false;
            cs.started = Some(false);
            cs.state = Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 0,
                    reason: Some("Completed".into()),
                    started_at: started,
                    finished_at: Some(Time(clock::now_timestamp(now))),
                    // The kubelet names the container that exited, as in every recording.
                    container_id: cs.container_id.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
    }
    pod
}

fn pod_condition(type_: &str, status: &str, now: f64) -> PodCondition {
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        last_transition_time: Some(Time(clock::now_timestamp(now))),
        ..Default::default()
    }
}

/// Marks a pod Failed with reason Evicted, without a deletionTimestamp: the leftover an eviction
/// under node pressure leaves behind.
pub fn evicted(mut pod: Pod, now: f64) -> Pod {
    let pod_terminated = terminated(pod.clone(), now);
    pod.status = pod_terminated.status;
    if let Some(st) = pod.status.as_mut() {
        st.phase = Some("Failed".into());
        st.reason = Some("Evicted".into());
        st.message = Some("The node was low on resource: memory.".into());
    }
    pod
}
