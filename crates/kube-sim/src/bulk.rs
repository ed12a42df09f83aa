//! Bulk mode: clusters of 100,000 pods, filled and churned fast, for the benchmark harness
//! (`benches/scale.rs`).
//!
//! The controllers and the kubelet stand-in look at every object on every tick, which is what
//! makes the normal mode faithful and what a cluster of this size cannot afford. In bulk mode
//! they are off (`SimConfig { controllers: false, .. }`): [`SimCluster::populate`] writes the
//! steady state straight into the store (every Deployment with a current ReplicaSet holding its
//! pods, Running and Ready, and an old one scaled to 0), and [`SimCluster::churn`] runs a driver
//! thread that performs rollouts by writing the objects the real controllers and kubelet would
//! write, in the same order, with short drains:
//!
//! 1. the Deployment gets a new template and revision (Progressing `ReplicaSetUpdated`), the new
//!    ReplicaSet is created, the ReplicaSet two revisions back is deleted (history limit), the
//!    new pods are created (Pending, scheduled) and become Running and Ready, the new
//!    ReplicaSet's status counts them, the old ReplicaSet is scaled to 0, its pods get their
//!    `deletionTimestamp` (grace period from the pod spec), and the Deployment's status says
//!    every replica is updated and available (`NewReplicaSetAvailable`);
//! 2. after the drain time, each old pod turns `Succeeded`, gets the kubelet's grace-0 rewrite
//!    and is removed.
//!
//! [`BulkSpec::with_kinds`] adds StatefulSets and DaemonSets (over that many nodes) in their
//! steady state: each with its ControllerRevision, its pods Running and Ready and a status that
//! says so. The churn driver rolls out Deployments only; the other kinds stay steady.
//!
//! Objects carry what real ones carry (admission defaults, status, `managedFields` shaped like
//! the recorded ones), so watch and list bytes are realistic. The driver waits while any open
//! watch lags behind ([`ChurnConfig::max_backlog`]), so "as fast as possible" means as fast as
//! the slowest watcher reads.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{
    DaemonSetStatus, Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec, ReplicaSetStatus,
    StatefulSetStatus,
};
use k8s_openapi::api::core::v1::{Pod, PodStatus, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    FieldsV1, ManagedFieldsEntry, ObjectMeta, Time,
};
use serde_json::json;

use super::controllers::{
    self, DESIRED_REPLICAS, MAX_REPLICAS, POD_TEMPLATE_HASH, REVISION, World, name_suffix,
};
use super::store::{Key, Kind, Object};
use super::{SimCluster, SimDaemonSet, SimDeployment, SimError, SimStatefulSet, clock};

/// The shape of a bulk cluster.
#[derive(Clone, Debug)]
pub struct BulkSpec {
    pub deployments: usize,
    pub pods_per_deployment: usize,
    /// Deployments per namespace (`ns-0000`, `ns-0001`, ...).
    pub deployments_per_namespace: usize,
    /// `managedFields` on every object and a `last-applied-configuration` annotation on
    /// Deployments, as on a real cluster (about two thirds of a pod's metadata bytes).
    pub managed_fields: bool,
    /// `terminationGracePeriodSeconds` of every pod.
    pub grace_seconds: i64,
    /// StatefulSets, of `pods_per_deployment` pods each, in namespaces after the Deployments'.
    pub statefulsets: usize,
    /// DaemonSets, one pod per node each, in namespaces after the StatefulSets'.
    pub daemonsets: usize,
    /// Nodes (`node-0000`, ...); StatefulSet pods are spread over them, DaemonSets run on each.
    /// Deployment pods stay on [`crate::NODE_NAME`].
    pub nodes: usize,
}

impl BulkSpec {
    /// `pods` pods in Deployments of 10, 100 Deployments per namespace, realistic metadata.
    pub fn pods(pods: usize) -> Self {
        Self {
            deployments: pods.div_ceil(10),
            pods_per_deployment: 10,
            deployments_per_namespace: 100,
            managed_fields: true,
            grace_seconds: 30,
            statefulsets: 0,
            daemonsets: 0,
            nodes: 0,
        }
    }

    /// `pods` pods in a realistic mix: 80% in Deployments of 10, 10% in StatefulSets of 10, 10% in
    /// DaemonSets over one node per 1,000 pods (at least 10).
    pub fn mixed(pods: usize) -> Self {
        let nodes = (pods / 1000).max(10);
        let tenth = pods / 10;
        Self {
            deployments: (pods - 2 * tenth).div_ceil(10),
            ..Self::pods(pods)
        }
        .with_kinds(tenth.div_ceil(10), tenth.div_ceil(nodes), nodes)
    }

    /// Adds `statefulsets` StatefulSets and `daemonsets` DaemonSets over `nodes` nodes.
    pub fn with_kinds(mut self, statefulsets: usize, daemonsets: usize, nodes: usize) -> Self {
        self.statefulsets = statefulsets;
        self.daemonsets = daemonsets;
        self.nodes = nodes;
        self
    }

    pub fn total_pods(&self) -> usize {
        (self.deployments + self.statefulsets) * self.pods_per_deployment
            + self.daemonsets * self.nodes
    }
}

/// One ReplicaSet as the driver knows it.
#[derive(Clone, Debug)]
struct RsInfo {
    key: Key,
    pods: Vec<Key>,
}

/// One Deployment as the driver knows it.
#[derive(Clone, Debug)]
struct Workload {
    key: Key,
    revision: u64,
    current: RsInfo,
    /// The previous revision's ReplicaSet, scaled to 0; deleted at the next rollout.
    old: Option<RsInfo>,
    /// Old pods draining since the last rollout started.
    draining: Vec<Key>,
}

/// A filled bulk cluster's bookkeeping: what the churn driver needs to roll it out.
#[derive(Debug)]
pub struct Bulk {
    spec: BulkSpec,
    workloads: Vec<Workload>,
    names: u64,
    next: usize,
}

impl Bulk {
    pub fn spec(&self) -> &BulkSpec {
        &self.spec
    }

    /// A pod name suffix as generateName makes them.
    fn suffix(&mut self) -> String {
        self.names += 1;
        name_suffix(self.names)
    }
}

/// How the churn driver rolls the cluster out.
#[derive(Clone, Debug)]
pub struct ChurnConfig {
    /// Rollouts started per second; 0 starts them as fast as every watch keeps up.
    pub rollouts_per_second: f64,
    /// How long old pods drain before they finish.
    pub drain: Duration,
    /// Stop starting rollouts once this many pods have been created (each one a pod lifecycle
    /// once it is gone); `None` runs until [`Churn::stop`].
    pub lifecycles: Option<u64>,
    /// Start nothing while more than this many changes wait for some open watch.
    pub max_backlog: usize,
    /// Encode every change as it is written ([`super::store::Store::eager_encoding`]).
    pub eager_encoding: bool,
}

impl Default for ChurnConfig {
    fn default() -> Self {
        Self {
            rollouts_per_second: 0.0,
            drain: Duration::from_millis(500),
            lifecycles: None,
            max_backlog: 4096,
            eager_encoding: false,
        }
    }
}

/// Counts of what the churn driver wrote.
#[derive(Debug, Default)]
pub struct ChurnStats {
    pub rollouts: AtomicU64,
    pub pods_created: AtomicU64,
    /// Pods removed: completed lifecycles.
    pub pods_removed: AtomicU64,
    /// Every write (create, update, delete) of the driver.
    pub writes: AtomicU64,
    /// Times the driver waited because a watch lagged.
    pub backpressure_waits: AtomicU64,
}

/// A running churn driver. [`Churn::wait`] or [`Churn::stop`] ends it and gives the cluster's
/// bookkeeping back for another phase.
pub struct Churn {
    stop: Arc<AtomicBool>,
    stats: Arc<ChurnStats>,
    thread: Option<JoinHandle<Bulk>>,
}

impl Churn {
    pub fn stats(&self) -> &ChurnStats {
        &self.stats
    }

    /// Whether the driver finished by itself (its lifecycle count reached, every drain done).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits until the lifecycle count is reached and every drain is done.
    pub fn wait(mut self) -> Option<Bulk> {
        self.thread.take()?.join().ok()
    }

    /// Starts no more rollouts, lets the drains in progress finish, and waits for them.
    pub fn stop(self) -> Option<Bulk> {
        self.stop.store(true, Ordering::Relaxed);
        self.wait()
    }
}

impl Drop for Churn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl SimCluster {
    /// Fills the store with `spec`'s Deployments, ReplicaSets and pods in their steady state,
    /// without recording changes (nobody can be watching a cluster being filled), then compacts
    /// the history so no watch resumes from before the fill. Meant for a cluster started with
    /// `controllers: false`: the controllers would otherwise start reconciling every object.
    pub fn populate(&self, spec: &BulkSpec) -> Result<Bulk, SimError> {
        self.with_world(|w| populate(w, spec))
    }

    /// Starts the churn driver on a populated cluster. See the module documentation.
    pub fn churn(&self, bulk: Bulk, config: ChurnConfig) -> Churn {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ChurnStats::default());
        let world = self.world.clone();
        let thread = {
            let stop = stop.clone();
            let stats = stats.clone();
            std::thread::Builder::new()
                .name("sim-churn".into())
                .spawn(move || drive(world, bulk, config, &stop, &stats))
                .ok()
        };
        Churn {
            stop,
            stats,
            thread,
        }
    }
}

fn namespace_of(spec: &BulkSpec, i: usize) -> String {
    format!("ns-{:04}", i / spec.deployments_per_namespace.max(1))
}

fn image(revision: u64) -> String {
    format!("registry.local/app:v{revision}")
}

fn managed(manager: &str, fields: serde_json::Value, now: f64) -> ManagedFieldsEntry {
    ManagedFieldsEntry {
        manager: Some(manager.into()),
        operation: Some("Update".into()),
        api_version: Some("v1".into()),
        time: Some(Time(clock::now_timestamp(now))),
        fields_type: Some("FieldsV1".into()),
        fields_v1: Some(FieldsV1(fields)),
        subresource: None,
    }
}

/// The kube-controller-manager's fields of a pod, as recorded.
fn pod_controller_fields(owner_uid: &str, now: f64) -> ManagedFieldsEntry {
    let owner = format!("k:{{\"uid\":\"{owner_uid}\"}}");
    managed(
        "kube-controller-manager",
        json!({
            "f:metadata": {
                "f:annotations": {".": {}, "f:lab.example/drain-seconds": {}, "f:lab.example/start-seconds": {}},
                "f:generateName": {},
                "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}},
                "f:ownerReferences": {".": {}, owner: {}},
            },
            "f:spec": {
                "f:containers": {"k:{\"name\":\"app\"}": {
                    ".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {},
                    "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {},
                }},
                "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:restartPolicy": {},
                "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {},
            },
        }),
        now,
    )
}

/// The kubelet's status fields of a running pod, as recorded.
fn pod_kubelet_fields(ip: &str, now: f64) -> ManagedFieldsEntry {
    let condition = |reason: bool| {
        let mut c = json!({".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}});
        if reason {
            c["f:reason"] = json!({});
        }
        c
    };
    let mut entry = managed(
        "kubelet",
        json!({
            "f:status": {
                "f:conditions": {
                    "k:{\"type\":\"ContainersReady\"}": condition(true),
                    "k:{\"type\":\"Initialized\"}": condition(false),
                    "k:{\"type\":\"PodReadyToStartContainers\"}": condition(false),
                    "k:{\"type\":\"Ready\"}": condition(true),
                },
                "f:containerStatuses": {}, "f:hostIP": {}, "f:hostIPs": {}, "f:phase": {},
                "f:podIP": {},
                "f:podIPs": {".": {}, format!("k:{{\"ip\":\"{ip}\"}}"): {".": {}, "f:ip": {}}},
                "f:startTime": {},
            },
        }),
        now,
    );
    entry.subresource = Some("status".into());
    entry
}

fn pod_ip(n: u64) -> String {
    format!("10.{}.{}.{}", 64 + (n >> 16) % 64, (n >> 8) % 256, n % 256)
}

/// The pod template of `d` at `revision`, with its hash label, and the hash.
fn template_at(d: &Deployment, revision: u64) -> (PodTemplateSpec, String) {
    let mut template = d
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    if let Some(c) = template
        .spec
        .as_mut()
        .and_then(|s| s.containers.first_mut())
    {
        c.image = Some(image(revision));
    }
    let hash = controllers::template_hash(&template);
    template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_TEMPLATE_HASH.into(), hash.clone());
    (template, hash)
}

/// A ReplicaSet of `d` at `revision` with `replicas` pods, all of them ready.
fn replicaset(
    d: &Deployment,
    revision: u64,
    replicas: i32,
    ready: bool,
    managed_fields: bool,
    now: f64,
) -> ReplicaSet {
    let (template, hash) = template_at(d, revision);
    let spec = d.spec.clone().unwrap_or_default();
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_TEMPLATE_HASH.into(), hash.clone());
    let name = d.metadata.name.clone().unwrap_or_default();
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let want = spec.replicas.unwrap_or(1);
    let annotations = BTreeMap::from([
        (DESIRED_REPLICAS.to_string(), want.to_string()),
        (MAX_REPLICAS.to_string(), (want + 1).to_string()),
        (REVISION.to_string(), revision.to_string()),
    ]);
    let managed_fields = managed_fields.then(|| {
        let owner = format!(
            "k:{{\"uid\":\"{}\"}}",
            d.metadata.uid.as_deref().unwrap_or_default()
        );
        vec![
            managed(
                "kube-controller-manager",
                json!({
                    "f:metadata": {
                        "f:annotations": {".": {}, "f:deployment.kubernetes.io/desired-replicas": {},
                            "f:deployment.kubernetes.io/max-replicas": {}, "f:deployment.kubernetes.io/revision": {}},
                        "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}},
                        "f:ownerReferences": {".": {}, owner: {}},
                    },
                    "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {
                        "f:metadata": {"f:annotations": {".": {}, "f:lab.example/drain-seconds": {},
                            "f:lab.example/start-seconds": {}}, "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {},
                            "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {}, "f:terminationMessagePath": {},
                            "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {}, "f:restartPolicy": {},
                            "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}},
                    }},
                }),
                now,
            ),
            {
                let mut e = managed(
                    "kube-controller-manager",
                    json!({"f:status": {"f:availableReplicas": {}, "f:fullyLabeledReplicas": {},
                        "f:observedGeneration": {}, "f:readyReplicas": {}, "f:replicas": {},
                        "f:terminatingReplicas": {}}}),
                    now,
                );
                e.subresource = Some("status".into());
                e
            },
        ]
    });
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{hash}")),
            namespace: d.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![controllers::controller_ref(
                "apps/v1",
                "Deployment",
                &d.metadata,
            )]),
            generation: Some(if replicas == 0 { 2 } else { 1 }),
            managed_fields,
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: None,
            selector,
            template: Some(template),
        }),
        status: Some(rs_status(
            replicas,
            ready,
            if replicas == 0 { 2 } else { 1 },
        )),
    }
}

fn rs_status(replicas: i32, ready: bool, generation: i64) -> ReplicaSetStatus {
    let n = (replicas != 0).then_some(replicas);
    ReplicaSetStatus {
        replicas,
        fully_labeled_replicas: n,
        ready_replicas: n.filter(|_| ready),
        available_replicas: n.filter(|_| ready),
        terminating_replicas: Some(0),
        observed_generation: Some(generation),
        conditions: None,
    }
}

/// A new pod of `rs`, Pending and scheduled, as the ReplicaSet controller creates it and the
/// scheduler binds it.
fn pending_pod(rs: &ReplicaSet, name: String, managed_fields: bool, now: f64) -> Pod {
    let template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    let rs_name = rs.metadata.name.clone().unwrap_or_default();
    let mut meta = template.metadata.unwrap_or_default();
    meta.name = Some(name);
    meta.generate_name = Some(format!("{rs_name}-"));
    meta.namespace = rs.metadata.namespace.clone();
    meta.owner_references = Some(vec![controllers::controller_ref(
        "apps/v1",
        "ReplicaSet",
        &rs.metadata,
    )]);
    if managed_fields {
        meta.managed_fields = Some(vec![pod_controller_fields(
            rs.metadata.uid.as_deref().unwrap_or_default(),
            now,
        )]);
    }
    let pod = Pod {
        metadata: meta,
        spec: template.spec.map(controllers::admit),
        status: Some(PodStatus {
            phase: Some("Pending".into()),
            qos_class: Some("BestEffort".into()),
            ..Default::default()
        }),
    };
    controllers::scheduled_pod(pod, now)
}

/// `pod` Running and Ready, with the kubelet's status fields.
fn running_pod(pod: Pod, ip: String, managed_fields: bool, now: f64) -> Pod {
    let mut pod = controllers::running(pod, now, ip.clone());
    if managed_fields && let Some(m) = pod.metadata.managed_fields.as_mut() {
        m.push(pod_kubelet_fields(&ip, now));
    }
    pod
}

/// Deployment status with every replica updated and available (or, `progressing`, a rollout
/// that just began: nothing updated yet).
fn deployment_status(
    d: &Deployment,
    rs_name: &str,
    progressing: bool,
    now: f64,
) -> DeploymentStatus {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let mut st = d.status.clone().unwrap_or_default();
    st.observed_generation = d.metadata.generation;
    st.replicas = Some(want);
    st.ready_replicas = Some(want);
    st.available_replicas = Some(want);
    st.unavailable_replicas = None;
    st.terminating_replicas = Some(if progressing { 0 } else { want });
    st.updated_replicas = (!progressing).then_some(want);
    controllers::set_condition(
        &mut st,
        "Available",
        "True",
        "MinimumReplicasAvailable",
        "Deployment has minimum availability.",
        now,
        false,
    );
    let (reason, message) = if progressing {
        (
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{rs_name}\" is progressing."),
        )
    } else {
        (
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
        )
    };
    controllers::set_condition(&mut st, "Progressing", "True", reason, &message, now, true);
    st
}

fn deployment_managed_fields(d: &mut Deployment, now: f64) {
    let applied = serde_json::to_string(&json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"annotations": {}, "labels": d.metadata.labels, "name": d.metadata.name,
            "namespace": d.metadata.namespace},
        "spec": d.spec,
    }))
    .unwrap_or_default();
    d.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(
            "kubectl.kubernetes.io/last-applied-configuration".into(),
            applied,
        );
    let mut status = managed(
        "kube-controller-manager",
        json!({"f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}},
            "f:status": {"f:availableReplicas": {}, "f:conditions": {".": {},
                "k:{\"type\":\"Available\"}": {".": {}, "f:lastTransitionTime": {}, "f:lastUpdateTime": {},
                    "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {}},
                "k:{\"type\":\"Progressing\"}": {".": {}, "f:lastTransitionTime": {}, "f:lastUpdateTime": {},
                    "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {}}},
                "f:observedGeneration": {}, "f:readyReplicas": {}, "f:replicas": {},
                "f:terminatingReplicas": {}, "f:updatedReplicas": {}}}),
        now,
    );
    status.subresource = Some("status".into());
    d.metadata.managed_fields = Some(vec![
        managed(
            "kubectl-client-side-apply",
            json!({"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                "f:labels": {".": {}, "f:app": {}}},
                "f:spec": {"f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:revisionHistoryLimit": {},
                    "f:selector": {}, "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {},
                    "f:maxUnavailable": {}}, "f:type": {}}, "f:template": {"f:metadata": {"f:annotations": {},
                    "f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {
                    ".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {},
                    "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {},
                    "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {},
                    "f:terminationGracePeriodSeconds": {}}}}}),
            now,
        ),
        status,
    ]);
}

fn populate(w: &mut World, spec: &BulkSpec) -> Bulk {
    let now = clock::now();
    let replicas = spec.pods_per_deployment as i32;
    let mut bulk = Bulk {
        spec: spec.clone(),
        workloads: Vec::with_capacity(spec.deployments),
        names: 0,
        next: 0,
    };
    for i in 0..spec.deployments {
        let namespace = namespace_of(spec, i);
        let name = format!("app-{i:05}");
        let mut d = SimDeployment::new(&namespace, &name)
            .replicas(replicas)
            .grace_seconds(spec.grace_seconds)
            .image(&image(2))
            .build();
        d.metadata.generation = Some(2);
        d.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(REVISION.into(), "2".into());
        if spec.managed_fields {
            deployment_managed_fields(&mut d, now);
        }
        let stored = w.store.insert_quiet(Object::Deployment(d));
        let Object::Deployment(d) = &*stored else {
            continue;
        };
        let old = replicaset(d, 1, 0, true, spec.managed_fields, now);
        let old_key = (
            namespace.clone(),
            old.metadata.name.clone().unwrap_or_default(),
        );
        w.store.insert_quiet(Object::ReplicaSet(old));
        let current = replicaset(d, 2, replicas, true, spec.managed_fields, now);
        let stored_rs = w.store.insert_quiet(Object::ReplicaSet(current));
        let Object::ReplicaSet(rs) = &*stored_rs else {
            continue;
        };
        let rs_name = rs.metadata.name.clone().unwrap_or_default();
        let mut pods = Vec::with_capacity(spec.pods_per_deployment);
        for _ in 0..spec.pods_per_deployment {
            let pod_name = format!("{rs_name}-{}", bulk.suffix());
            let pod = pending_pod(rs, pod_name.clone(), spec.managed_fields, now);
            let pod = running_pod(pod, pod_ip(bulk.names), spec.managed_fields, now);
            w.store.insert_quiet(Object::Pod(pod));
            pods.push((namespace.clone(), pod_name));
        }
        let mut d = d.clone();
        d.status = Some(deployment_status(&d, &rs_name, false, now));
        w.store.insert_quiet(Object::Deployment(d.clone()));
        bulk.workloads.push(Workload {
            key: (namespace.clone(), name),
            revision: 2,
            current: RsInfo {
                key: (namespace.clone(), rs_name),
                pods,
            },
            old: Some(RsInfo {
                key: old_key,
                pods: Vec::new(),
            }),
            draining: Vec::new(),
        });
    }
    populate_other_kinds(w, spec, &mut bulk, now);
    w.store.compact();
    bulk
}

/// A pod of a StatefulSet or DaemonSet as the kubelet leaves it: bound, Running and Ready, with
/// the controller's and the kubelet's managed fields when asked for.
fn steady_pod(mut pod: Pod, node: &str, n: u64, managed_fields: bool, now: f64) -> Pod {
    if managed_fields {
        let owner = pod
            .metadata
            .owner_references
            .as_ref()
            .and_then(|o| o.first())
            .map(|o| o.uid.clone())
            .unwrap_or_default();
        pod.metadata.managed_fields = Some(vec![pod_controller_fields(&owner, now)]);
    }
    let pod = controllers::scheduled_pod_on(pod, node, now);
    running_pod(pod, pod_ip(n), managed_fields, now)
}

/// The nodes, StatefulSets and DaemonSets of [`BulkSpec::with_kinds`], steady.
fn populate_other_kinds(w: &mut World, spec: &BulkSpec, bulk: &mut Bulk, now: f64) {
    let nodes: Vec<String> = (0..spec.nodes).map(|i| format!("node-{i:04}")).collect();
    for name in &nodes {
        let node = controllers::node_object(name, &BTreeMap::new(), &[], now);
        w.store.insert_quiet(Object::Node(node));
    }
    let replicas = spec.pods_per_deployment as i32;
    for i in 0..spec.statefulsets {
        let namespace = namespace_of(spec, spec.deployments + i);
        let set = SimStatefulSet::new(&namespace, &format!("db-{i:05}"))
            .replicas(replicas)
            .grace_seconds(spec.grace_seconds)
            .build();
        let stored = w.store.insert_quiet(Object::StatefulSet(set));
        let Object::StatefulSet(set) = &*stored else {
            continue;
        };
        let Some(set_spec) = set.spec.clone() else {
            continue;
        };
        let revision = controllers::revision_object(
            &controllers::Owner {
                kind: "StatefulSet",
                meta: &set.metadata,
                template: &set_spec.template,
                history_limit: 10,
            },
            1,
        );
        let revision_name = revision.metadata.name.clone().unwrap_or_default();
        w.store.insert_quiet(Object::ControllerRevision(revision));
        for ord in 0..replicas {
            let pod = controllers::statefulset_pod(
                set,
                &set_spec,
                &set_spec.template,
                ord,
                &revision_name,
            );
            let node = nodes
                .get((i + ord as usize) % nodes.len().max(1))
                .map_or(controllers::NODE_NAME, String::as_str);
            bulk.names += 1;
            let pod = steady_pod(pod, node, bulk.names, spec.managed_fields, now);
            w.store.insert_quiet(Object::Pod(pod));
        }
        let mut set = set.clone();
        set.status = Some(StatefulSetStatus {
            observed_generation: Some(1),
            replicas,
            ready_replicas: (replicas > 0).then_some(replicas),
            current_replicas: (replicas > 0).then_some(replicas),
            updated_replicas: (replicas > 0).then_some(replicas),
            current_revision: Some(revision_name.clone()),
            update_revision: Some(revision_name),
            collision_count: Some(0),
            available_replicas: (replicas > 0).then_some(replicas),
            conditions: None,
        });
        w.store.insert_quiet(Object::StatefulSet(set));
    }
    for i in 0..spec.daemonsets {
        let namespace = namespace_of(spec, spec.deployments + spec.statefulsets + i);
        let ds = SimDaemonSet::new(&namespace, &format!("agent-{i:05}"))
            .grace_seconds(spec.grace_seconds)
            .build();
        let stored = w.store.insert_quiet(Object::DaemonSet(ds));
        let Object::DaemonSet(ds) = &*stored else {
            continue;
        };
        let Some(ds_spec) = ds.spec.clone() else {
            continue;
        };
        let revision = controllers::revision_object(
            &controllers::Owner {
                kind: "DaemonSet",
                meta: &ds.metadata,
                template: &ds_spec.template,
                history_limit: 10,
            },
            1,
        );
        let hash = revision
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(controllers::CONTROLLER_REVISION_HASH))
            .cloned()
            .unwrap_or_default();
        w.store.insert_quiet(Object::ControllerRevision(revision));
        let ds_name = ds.metadata.name.clone().unwrap_or_default();
        for node in &nodes {
            let name = format!("{ds_name}-{}", bulk.suffix());
            let pod = controllers::daemon_pod(ds, &ds_spec, node, &hash, "1", name);
            let pod = steady_pod(pod, node, bulk.names, spec.managed_fields, now);
            w.store.insert_quiet(Object::Pod(pod));
        }
        let n = nodes.len() as i32;
        let mut ds = ds.clone();
        ds.status = Some(DaemonSetStatus {
            current_number_scheduled: n,
            desired_number_scheduled: n,
            number_misscheduled: 0,
            number_ready: n,
            observed_generation: Some(1),
            updated_number_scheduled: (n > 0).then_some(n),
            number_available: (n > 0).then_some(n),
            number_unavailable: None,
            collision_count: None,
            conditions: None,
        });
        w.store.insert_quiet(Object::DaemonSet(ds));
    }
}

/// Runs the churn driver until its lifecycle count is reached (or it is stopped) and every
/// drain is done; gives the bookkeeping back.
fn drive(
    world: Arc<Mutex<World>>,
    bulk: Bulk,
    config: ChurnConfig,
    stop: &AtomicBool,
    stats: &ChurnStats,
) -> Bulk {
    let set_eager = |on: bool| {
        if let Ok(mut w) = world.lock() {
            w.store.eager_encoding = on;
        }
    };
    set_eager(config.eager_encoding);
    let bulk = drive_writes(&world, bulk, &config, stop, stats);
    set_eager(false);
    bulk
}

fn drive_writes(
    world: &Mutex<World>,
    mut bulk: Bulk,
    config: &ChurnConfig,
    stop: &AtomicBool,
    stats: &ChurnStats,
) -> Bulk {
    let started_at = Instant::now();
    let mut drains: VecDeque<(Instant, usize)> = VecDeque::new();
    let mut started: u64 = 0;
    let n = bulk.workloads.len();
    loop {
        let now = Instant::now();
        while let Some(&(due, i)) = drains.front() {
            if due > now {
                break;
            }
            drains.pop_front();
            let Ok(mut w) = world.lock() else {
                return bulk;
            };
            finish_drain(&mut w, &mut bulk.workloads[i], stats);
        }
        let done = stop.load(Ordering::Relaxed)
            || n == 0
            || config
                .lifecycles
                .is_some_and(|l| stats.pods_created.load(Ordering::Relaxed) >= l);
        if done {
            match drains.front() {
                None => return bulk,
                Some(&(due, _)) => {
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    continue;
                }
            }
        }
        if config.rollouts_per_second > 0.0 {
            let allowed = started_at.elapsed().as_secs_f64() * config.rollouts_per_second;
            if started as f64 >= allowed {
                std::thread::sleep(Duration::from_micros(500));
                continue;
            }
        }
        if drains.len() >= n {
            // Every Deployment is draining: wait for the first to finish.
            if let Some(&(due, _)) = drains.front() {
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
            continue;
        }
        let i = bulk.next;
        bulk.next = (bulk.next + 1) % n;
        if !bulk.workloads[i].draining.is_empty() {
            continue;
        }
        {
            let Ok(mut w) = world.lock() else {
                return bulk;
            };
            if w.store.backlog() > config.max_backlog {
                drop(w);
                stats.backpressure_waits.fetch_add(1, Ordering::Relaxed);
                bulk.next = i;
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            start_rollout(&mut w, &mut bulk, i, stats);
        }
        started += 1;
        stats.rollouts.fetch_add(1, Ordering::Relaxed);
        drains.push_back((Instant::now() + config.drain, i));
    }
}

fn get_deployment(w: &World, key: &Key) -> Option<Deployment> {
    match w.store.get(Kind::Deployment, key).as_deref() {
        Some(Object::Deployment(d)) => Some(d.clone()),
        _ => None,
    }
}

fn get_replicaset(w: &World, key: &Key) -> Option<ReplicaSet> {
    match w.store.get(Kind::ReplicaSet, key).as_deref() {
        Some(Object::ReplicaSet(r)) => Some(r.clone()),
        _ => None,
    }
}

fn get_pod(w: &World, key: &Key) -> Option<Pod> {
    match w.store.get(Kind::Pod, key).as_deref() {
        Some(Object::Pod(p)) => Some(p.clone()),
        _ => None,
    }
}

/// Step 1 of a rollout (see the module documentation).
fn start_rollout(w: &mut World, bulk: &mut Bulk, i: usize, stats: &ChurnStats) {
    let now = clock::now();
    let managed_fields = bulk.spec.managed_fields;
    let write = || {
        stats.writes.fetch_add(1, Ordering::Relaxed);
    };
    let key = bulk.workloads[i].key.clone();
    let Some(mut d) = get_deployment(w, &key) else {
        return;
    };
    let revision = bulk.workloads[i].revision + 1;
    // The new template and revision, and the controller's first status.
    if let Some(c) = d
        .spec
        .as_mut()
        .and_then(|s| s.template.spec.as_mut())
        .and_then(|s| s.containers.first_mut())
    {
        c.image = Some(image(revision));
    }
    d.metadata.generation = Some(d.metadata.generation.unwrap_or(1) + 1);
    d.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(REVISION.into(), revision.to_string());
    let rs = replicaset(
        &d,
        revision,
        bulk.spec.pods_per_deployment as i32,
        false,
        managed_fields,
        now,
    );
    let rs_name = rs.metadata.name.clone().unwrap_or_default();
    d.status = Some(deployment_status(&d, &rs_name, true, now));
    w.store.replace(Object::Deployment(d));
    write();
    let rs = w.store.create(Object::ReplicaSet(rs));
    write();
    let Object::ReplicaSet(rs) = &*rs else {
        return;
    };
    // The ReplicaSet two revisions back goes (revisionHistoryLimit, kept at one old one here).
    if let Some(old) = bulk.workloads[i].old.take() {
        w.store.remove(Kind::ReplicaSet, &old.key);
        write();
    }
    // The new pods: created Pending and bound, then Running and Ready.
    let mut pods = Vec::with_capacity(bulk.spec.pods_per_deployment);
    for _ in 0..bulk.spec.pods_per_deployment {
        let name = format!("{rs_name}-{}", bulk.suffix());
        let created = w.store.create(Object::Pod(pending_pod(
            rs,
            name.clone(),
            managed_fields,
            now,
        )));
        write();
        stats.pods_created.fetch_add(1, Ordering::Relaxed);
        if let Object::Pod(p) = &*created {
            let ip = pod_ip(bulk.names);
            w.store
                .replace(Object::Pod(running_pod(p.clone(), ip, managed_fields, now)));
            write();
        }
        pods.push((key.0.clone(), name));
    }
    let mut ready = rs.clone();
    ready.status = Some(rs_status(bulk.spec.pods_per_deployment as i32, true, 1));
    w.store.replace(Object::ReplicaSet(ready));
    write();
    // The old ReplicaSet scaled to 0, its pods deleted gracefully.
    let workload = &mut bulk.workloads[i];
    let previous = std::mem::replace(
        &mut workload.current,
        RsInfo {
            key: (key.0.clone(), rs_name.clone()),
            pods,
        },
    );
    if let Some(mut old) = get_replicaset(w, &previous.key) {
        if let Some(s) = old.spec.as_mut() {
            s.replicas = Some(0);
        }
        old.metadata.generation = Some(old.metadata.generation.unwrap_or(1) + 1);
        old.status = Some(rs_status(0, true, old.metadata.generation.unwrap_or(1)));
        w.store.replace(Object::ReplicaSet(old));
        write();
    }
    for pod_key in &previous.pods {
        let Some(mut p) = get_pod(w, pod_key) else {
            continue;
        };
        let grace = p
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        p.metadata.deletion_timestamp = Some(Time(clock::timestamp(clock::second(now) + grace)));
        p.metadata.deletion_grace_period_seconds = Some(grace);
        p.metadata.generation = Some(p.metadata.generation.unwrap_or(1) + 1);
        w.store.replace(Object::Pod(p));
        write();
    }
    workload.draining = previous.pods.clone();
    workload.old = Some(RsInfo {
        key: previous.key,
        pods: Vec::new(),
    });
    workload.revision = revision;
    // Every replica updated and available: kubectl's moment.
    if let Some(mut d) = get_deployment(w, &key) {
        d.status = Some(deployment_status(&d, &rs_name, false, now));
        w.store.replace(Object::Deployment(d));
        write();
    }
}

/// Step 2 of a rollout: the old pods finish, get the grace-0 rewrite and go.
fn finish_drain(w: &mut World, workload: &mut Workload, stats: &ChurnStats) {
    let now = clock::now();
    for key in std::mem::take(&mut workload.draining) {
        let Some(p) = get_pod(w, &key) else {
            continue;
        };
        let mut p = controllers::terminated(p, now);
        w.store.replace(Object::Pod(p.clone()));
        p.metadata.deletion_timestamp = Some(Time(clock::now_timestamp(now)));
        p.metadata.deletion_grace_period_seconds = Some(0);
        w.store.replace(Object::Pod(p));
        w.store.remove(Kind::Pod, &key);
        stats.writes.fetch_add(3, Ordering::Relaxed);
        stats.pods_removed.fetch_add(1, Ordering::Relaxed);
    }
}
