//! A simulated Kubernetes cluster that speaks the real API over HTTP on 127.0.0.1: the
//! end-to-end tests and `--demo` run the exporter's real code path (kube client, watchers,
//! relists) against it.
//!
//! [`SimCluster::start`] binds an ephemeral loopback port, serves the API (`api.rs`) over a store
//! (`store.rs`) that simulated controllers and a kubelet stand-in (`controllers.rs`) drive on the
//! real clock, and writes a kubeconfig pointing at it. Tests change the cluster through the small
//! API here (create Deployments, StatefulSets and DaemonSets, add and remove nodes, make a node
//! NotReady or lost, set an image, scale, pause, set a partition, roll back, delete, make a pod
//! stuck or unkillable) and wait for conditions with deadlines. Each endpoint keeps a log of the
//! requests it served ([`Endpoint::requests`]), so a test can prove what a client asked for.
//! Dropping the cluster stops every task it started.

#![forbid(unsafe_code)]

mod api;
mod bulk;
mod clock;
mod controllers;
mod endpoint;
mod faults;
mod requests;
mod select;
mod store;
mod workloads;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::apps::v1::{RollingUpdateStatefulSetStrategy, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{Container, Node, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use thiserror::Error;
use tokio::task::JoinHandle;

pub use api::ApiConfig;
pub use bulk::{Bulk, BulkSpec, Churn, ChurnConfig, ChurnStats};
pub use controllers::{
    Behaviour, CONTROLLER_REVISION_HASH, DRAIN_SECONDS, NODE_NAME, NodeReadiness, POD_INDEX,
    POD_TEMPLATE_GENERATION, POD_TEMPLATE_HASH, REVISION, START_SECONDS, STATEFULSET_POD_NAME,
    STATEFULSET_REVISION_HASH, UNKILLABLE, revision_hash, revision_template,
};
pub use endpoint::Endpoint;
pub use faults::{ErrorFault, FaultSwitch, Faults, KindFault};
pub use requests::{ApiRequest, Verb};
pub use store::{Key, Kind, Object, TEMPLATE_GENERATION};
pub use workloads::{SimDaemonSet, SimNode, SimStatefulSet};

pub use controllers::World;
use store::Store;

/// Errors of the simulated cluster.
#[derive(Debug, Error)]
pub enum SimError {
    #[error("cannot listen on 127.0.0.1: {0}")]
    Bind(std::io::Error),
    #[error("cannot write the kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("no {kind:?} {namespace}/{name} in the simulated cluster")]
    NotFound {
        kind: Kind,
        namespace: String,
        name: String,
    },
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout { what: String, waited: Duration },
    #[error("the simulated cluster's state lock is poisoned")]
    Poisoned,
}

/// How to build a simulated cluster.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub api: ApiConfig,
    pub behaviour: Behaviour,
    /// Changes kept for watches to resume from; older resourceVersions are Expired.
    pub history: usize,
    /// How often the controllers and the kubelet run.
    pub tick: Duration,
    /// Whether the controllers and the kubelet run at all. Off for bulk mode
    /// ([`SimCluster::populate`], [`SimCluster::churn`]), where they could not keep up.
    pub controllers: bool,
    /// Live changes an open watch may lag behind before it is ended (its client resumes).
    pub broadcast: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            api: ApiConfig::default(),
            behaviour: Behaviour::default(),
            history: 10_000,
            tick: Duration::from_millis(10),
            controllers: true,
            broadcast: 65_536,
        }
    }
}

/// A running simulated cluster. See the module documentation.
pub struct SimCluster {
    world: Arc<Mutex<World>>,
    config: SimConfig,
    /// The endpoint tests and the demo use; more can be added.
    main: Endpoint,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for SimCluster {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Decodes `%XX` escapes and `+` in a query component.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() + 1 && i + 2 <= bytes.len() - 1 + 1 => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl SimCluster {
    /// Starts the API server on `127.0.0.1` (ephemeral port) and the simulated components.
    pub async fn start(config: SimConfig) -> Result<Self, SimError> {
        Self::start_on(
            "127.0.0.1:0".parse().map_err(|_| SimError::Poisoned)?,
            config,
        )
        .await
    }

    /// Starts on a given loopback address (a test that restarts the API server on the same port).
    pub async fn start_on(addr: SocketAddr, config: SimConfig) -> Result<Self, SimError> {
        let world = Arc::new(Mutex::new(World::new(
            Store::with_capacity(config.history, config.broadcast),
            config.behaviour.clone(),
        )));
        let main = Endpoint::start(world.clone(), config.api.clone(), addr).await?;
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        if config.controllers {
            let world = world.clone();
            let mut shutdown = shutdown_rx;
            let tick = config.tick;
            tasks.push(tokio::spawn(async move {
                let mut interval = tokio::time::interval(tick);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = interval.tick() => {
                            let Ok(mut w) = world.lock() else { return };
                            w.tick(clock::now());
                        }
                        _ = shutdown.changed() => return,
                    }
                }
            }));
        }
        Ok(Self {
            world,
            config,
            main,
            shutdown,
            tasks,
        })
    }

    /// Another listener of the same cluster on an ephemeral loopback port, with its own faults.
    pub async fn add_endpoint(&self) -> Result<Endpoint, SimError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        Endpoint::start(self.world.clone(), self.config.api.clone(), addr).await
    }

    /// The main endpoint (faults, offline periods).
    pub fn endpoint(&self) -> &Endpoint {
        &self.main
    }

    /// The API server's address.
    pub fn addr(&self) -> SocketAddr {
        self.main.addr()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.main.url()
    }

    /// A kubeconfig that points at this cluster.
    pub fn kubeconfig(&self) -> String {
        self.main.kubeconfig()
    }

    /// Writes [`Self::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), SimError> {
        self.main.write_kubeconfig(path)
    }

    /// Runs `f` on the cluster's state.
    pub fn with_world<T>(&self, f: impl FnOnce(&mut World) -> T) -> Result<T, SimError> {
        let mut w = self.world.lock().map_err(|_| SimError::Poisoned)?;
        Ok(f(&mut w))
    }

    /// A copy of one object.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Object, SimError> {
        self.with_world(|w| w.store.get(kind, &(namespace.into(), name.into())))?
            .map(|o| (*o).clone())
            .ok_or_else(|| SimError::NotFound {
                kind,
                namespace: namespace.into(),
                name: name.into(),
            })
    }

    /// Copies of every pod.
    pub fn pods(&self) -> Result<Vec<Pod>, SimError> {
        self.with_world(|w| w.store.pods().cloned().collect())
    }

    fn edit_deployment(
        &self,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut Deployment),
    ) -> Result<(), SimError> {
        // Read, change and write under one lock, so no controller write slips in between.
        let key = (namespace.to_string(), name.to_string());
        self.with_world(|w| match w.store.get(Kind::Deployment, &key).as_deref() {
            Some(Object::Deployment(d)) => {
                let mut d = d.clone();
                f(&mut d);
                w.store.update(Object::Deployment(d));
                Ok(())
            }
            _ => Err(SimError::NotFound {
                kind: Kind::Deployment,
                namespace: namespace.into(),
                name: name.into(),
            }),
        })?
    }

    /// Creates a Deployment.
    pub fn create_deployment(&self, d: &SimDeployment) -> Result<(), SimError> {
        let d = d.build();
        self.with_world(|w| {
            w.store.create(Object::Deployment(d));
        })
    }

    /// Changes the image of the first container: a new template, so a new rollout.
    pub fn set_image(&self, namespace: &str, name: &str, image: &str) -> Result<(), SimError> {
        self.edit_deployment(namespace, name, |d| {
            if let Some(c) = d
                .spec
                .as_mut()
                .and_then(|s| s.template.spec.as_mut())
                .and_then(|s| s.containers.first_mut())
            {
                c.image = Some(image.into());
            }
        })
    }

    /// Sets a template annotation (for example the drain time of the pods to come).
    pub fn set_template_annotation(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
        value: &str,
    ) -> Result<(), SimError> {
        self.edit_deployment(namespace, name, |d| {
            if let Some(spec) = d.spec.as_mut() {
                spec.template
                    .metadata
                    .get_or_insert_with(Default::default)
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(key.into(), value.into());
            }
        })
    }

    pub fn scale(&self, namespace: &str, name: &str, replicas: i32) -> Result<(), SimError> {
        self.edit_deployment(namespace, name, |d| {
            if let Some(s) = d.spec.as_mut() {
                s.replicas = Some(replicas);
            }
        })
    }

    pub fn set_paused(&self, namespace: &str, name: &str, paused: bool) -> Result<(), SimError> {
        self.edit_deployment(namespace, name, |d| {
            if let Some(s) = d.spec.as_mut() {
                s.paused = paused.then_some(true);
            }
        })
    }

    /// `kubectl rollout undo --to-revision`: the template of the ReplicaSet at `revision`.
    pub fn rollback(&self, namespace: &str, name: &str, revision: u64) -> Result<(), SimError> {
        let template = self.with_world(|w| {
            w.store.replicasets().find_map(|rs| {
                let owned = rs.metadata.owner_references.as_ref().is_some_and(|o| {
                    o.iter()
                        .any(|r| r.controller == Some(true) && r.name == name)
                });
                let rev = rs
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(REVISION))
                    .and_then(|r| r.parse::<u64>().ok());
                (owned
                    && rs.metadata.namespace.as_deref() == Some(namespace)
                    && rev == Some(revision))
                .then(|| rs.spec.as_ref().and_then(|s| s.template.clone()))
                .flatten()
            })
        })?;
        let Some(mut template) = template else {
            return Err(SimError::NotFound {
                kind: Kind::ReplicaSet,
                namespace: namespace.into(),
                name: format!("{name} revision {revision}"),
            });
        };
        if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH);
        }
        self.edit_deployment(namespace, name, |d| {
            if let Some(s) = d.spec.as_mut() {
                s.template = template;
            }
        })
    }

    /// Deletes a Deployment; the garbage collector cascades to its ReplicaSets and pods.
    pub fn delete_deployment(&self, namespace: &str, name: &str) -> Result<(), SimError> {
        self.with_world(|w| {
            w.store
                .remove(Kind::Deployment, &(namespace.into(), name.into()));
        })
    }

    /// Reads, changes and writes one object under one lock, so no controller write slips in
    /// between; the store bumps the generation when the spec changed.
    fn edit_object(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut Object) -> Result<(), SimError>,
    ) -> Result<(), SimError> {
        let key = (namespace.to_string(), name.to_string());
        let not_found = || SimError::NotFound {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        };
        self.with_world(|w| {
            let mut object = w
                .store
                .get(kind, &key)
                .map(|o| (*o).clone())
                .ok_or_else(not_found)?;
            f(&mut object)?;
            w.store.update(object).map(|_| ()).ok_or_else(not_found)
        })?
    }

    /// Edits the pod template of a Deployment, StatefulSet or DaemonSet.
    fn edit_template(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut PodTemplateSpec),
    ) -> Result<(), SimError> {
        self.edit_object(kind, namespace, name, |o| {
            let template = match o {
                Object::Deployment(d) => d.spec.as_mut().map(|s| &mut s.template),
                Object::StatefulSet(s) => s.spec.as_mut().map(|s| &mut s.template),
                Object::DaemonSet(d) => d.spec.as_mut().map(|s| &mut s.template),
                _ => {
                    return Err(SimError::BadRequest(format!(
                        "{kind:?} is not a workload with a pod template"
                    )));
                }
            };
            if let Some(t) = template {
                f(t);
            }
            Ok(())
        })
    }

    /// Creates a StatefulSet.
    pub fn create_statefulset(&self, s: &SimStatefulSet) -> Result<(), SimError> {
        let s = s.build();
        self.with_world(|w| {
            w.store.create(Object::StatefulSet(s));
        })
    }

    /// Creates a DaemonSet; it runs a pod on every node that should run one.
    pub fn create_daemonset(&self, d: &SimDaemonSet) -> Result<(), SimError> {
        let d = d.build();
        self.with_world(|w| {
            w.store.create(Object::DaemonSet(d));
        })
    }

    /// Adds a node (Ready), or changes the labels and taints of an existing one.
    pub fn add_node(&self, node: &SimNode) -> Result<(), SimError> {
        let now = clock::now();
        self.with_world(|w| {
            w.add_node(controllers::node_object(
                &node.name,
                &node.labels,
                &node.taints,
                now,
            ))
        })
    }

    /// Deletes a node (or the implicit node [`NODE_NAME`]); the pod garbage collector removes the
    /// pods bound to it (marked Failed, deleted at once), and DaemonSets stop counting it.
    pub fn remove_node(&self, name: &str) -> Result<(), SimError> {
        if self.with_world(|w| w.remove_node(name))? {
            Ok(())
        } else {
            Err(node_not_found(name))
        }
    }

    /// Sets a node's `Ready` condition, on a Node object or on the implicit node [`NODE_NAME`]:
    /// while it is not Ready, the pods bound to it neither start nor finish terminating (a
    /// deleted one stays Running past its deadline), they are marked not Ready, and nothing new
    /// is scheduled there. See `controllers/nodes.rs` for the conditions written.
    pub fn set_node_ready(&self, name: &str, readiness: NodeReadiness) -> Result<(), SimError> {
        let now = clock::now();
        if self.with_world(|w| w.set_node_ready(name, readiness, now))? {
            Ok(())
        } else {
            Err(node_not_found(name))
        }
    }

    /// A node as `GET /api/v1/nodes/{name}` answers it: the Node object or the implicit node.
    pub fn node(&self, name: &str) -> Result<Node, SimError> {
        self.with_world(|w| w.node(name))?
            .ok_or_else(|| node_not_found(name))
    }

    /// Changes the image of the first container of a Deployment, StatefulSet or DaemonSet: a new
    /// template, so a new rollout.
    pub fn set_workload_image(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        image: &str,
    ) -> Result<(), SimError> {
        self.edit_template(kind, namespace, name, |t| {
            if let Some(c) = t.spec.as_mut().and_then(|s| s.containers.first_mut()) {
                c.image = Some(image.into());
            }
        })
    }

    /// Sets a StatefulSet's `rollingUpdate.partition` (`None` removes `rollingUpdate`): a new
    /// generation, no new revision.
    pub fn set_partition(
        &self,
        namespace: &str,
        name: &str,
        partition: Option<i32>,
    ) -> Result<(), SimError> {
        self.edit_object(Kind::StatefulSet, namespace, name, |o| {
            if let Object::StatefulSet(s) = o
                && let Some(spec) = s.spec.as_mut()
            {
                let strategy = spec
                    .update_strategy
                    .get_or_insert_with(StatefulSetUpdateStrategy::default);
                strategy.type_ = Some("RollingUpdate".into());
                strategy.rolling_update = partition.map(|p| RollingUpdateStatefulSetStrategy {
                    partition: Some(p),
                    max_unavailable: None,
                });
            }
            Ok(())
        })
    }

    /// Scales a StatefulSet: pods are added from the lowest missing ordinal, removed from the
    /// highest.
    pub fn scale_statefulset(
        &self,
        namespace: &str,
        name: &str,
        replicas: i32,
    ) -> Result<(), SimError> {
        self.edit_object(Kind::StatefulSet, namespace, name, |o| {
            if let Object::StatefulSet(s) = o
                && let Some(spec) = s.spec.as_mut()
            {
                spec.replicas = Some(replicas);
            }
            Ok(())
        })
    }

    /// `kubectl rollout undo --to-revision`: a Deployment gets the template of its ReplicaSet at
    /// `revision` (see [`Self::rollback`]); a StatefulSet or DaemonSet the template of its
    /// ControllerRevision numbered `revision`, whose number the controller then raises above the
    /// others.
    pub fn rollback_workload(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        revision: i64,
    ) -> Result<(), SimError> {
        if kind == Kind::Deployment {
            let revision = u64::try_from(revision)
                .map_err(|_| SimError::BadRequest(format!("revision {revision}")))?;
            return self.rollback(namespace, name, revision);
        }
        let owner_uid = self
            .get(kind, namespace, name)?
            .meta()
            .uid
            .clone()
            .unwrap_or_default();
        let template = self.with_world(|w| {
            w.store
                .controller_revisions()
                .find(|r| {
                    r.revision == revision
                        && r.metadata.owner_references.as_ref().is_some_and(|o| {
                            o.iter()
                                .any(|o| o.controller == Some(true) && o.uid == owner_uid)
                        })
                })
                .and_then(revision_template)
        })?;
        let Some(template) = template else {
            return Err(SimError::NotFound {
                kind: Kind::ControllerRevision,
                namespace: namespace.into(),
                name: format!("{name} revision {revision}"),
            });
        };
        self.edit_template(kind, namespace, name, |t| *t = template)
    }

    /// Deletes a workload (or any object); the garbage collector cascades to what it owns.
    pub fn delete_workload(&self, kind: Kind, namespace: &str, name: &str) -> Result<(), SimError> {
        let namespace = if kind.namespaced() { namespace } else { "" };
        let removed = self.with_world(|w| {
            w.store
                .remove(kind, &(namespace.into(), name.into()))
                .is_some()
        })?;
        if removed {
            Ok(())
        } else {
            Err(SimError::NotFound {
                kind,
                namespace: namespace.into(),
                name: name.into(),
            })
        }
    }

    /// Deletes a pod gracefully, as `kubectl delete pod` does.
    pub fn delete_pod(
        &self,
        namespace: &str,
        name: &str,
        grace: Option<i64>,
    ) -> Result<(), SimError> {
        self.with_world(|w| w.delete_pod(&(namespace.into(), name.into()), grace, clock::now()))
    }

    /// Edits one pod as stored.
    pub fn edit_pod(
        &self,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut Pod),
    ) -> Result<(), SimError> {
        // Read, change and write under one lock, so the kubelet cannot undo the edit.
        let key = (namespace.to_string(), name.to_string());
        self.with_world(|w| match w.store.get(Kind::Pod, &key).as_deref() {
            Some(Object::Pod(p)) => {
                let mut pod = p.clone();
                f(&mut pod);
                w.store.update(Object::Pod(pod));
                Ok(())
            }
            _ => Err(SimError::NotFound {
                kind: Kind::Pod,
                namespace: namespace.into(),
                name: name.into(),
            }),
        })?
    }

    /// Makes a pod never finish draining once deleted (it is then killed at its deadline).
    pub fn make_pod_stuck(&self, namespace: &str, name: &str) -> Result<(), SimError> {
        self.set_drain(namespace, name, "never")
    }

    /// Makes a pod ignore its grace period and resist the kill ([`UNKILLABLE`]): once deleted it
    /// stays Running, its containers running, past its deadline, for as long as it stays so.
    /// [`Self::make_pod_killable`] or a delete with grace 0 ends it.
    pub fn make_pod_unkillable(&self, namespace: &str, name: &str) -> Result<(), SimError> {
        self.set_drain(namespace, name, UNKILLABLE)
    }

    /// Lets the kubelet kill a pod made unkillable: it is killed at its deadline, at once when
    /// that has passed (the same as [`Self::make_pod_stuck`]).
    pub fn make_pod_killable(&self, namespace: &str, name: &str) -> Result<(), SimError> {
        self.set_drain(namespace, name, "never")
    }

    /// Sets a pod's [`DRAIN_SECONDS`] annotation.
    fn set_drain(&self, namespace: &str, name: &str, value: &str) -> Result<(), SimError> {
        self.edit_pod(namespace, name, |p| {
            p.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(DRAIN_SECONDS.into(), value.into());
        })
    }

    /// The requests the main endpoint served, oldest first (see [`Endpoint::requests`]).
    pub fn requests(&self) -> Vec<ApiRequest> {
        self.main.requests()
    }

    /// The single-object GETs of `kind` the main endpoint served, oldest first, whatever their
    /// answer: (namespace, name), the namespace `None` for a cluster-scoped kind.
    pub fn gets(&self, kind: Kind) -> Vec<(Option<String>, String)> {
        self.main
            .requests()
            .into_iter()
            .filter(|r| r.verb == Some(Verb::Get) && r.kind == Some(kind))
            .filter_map(|r| Some((r.namespace, r.name?)))
            .collect()
    }

    /// Adds a finalizer that holds the pod object until [`Self::remove_finalizers`].
    pub fn add_finalizer(
        &self,
        namespace: &str,
        name: &str,
        finalizer: &str,
    ) -> Result<(), SimError> {
        self.edit_pod(namespace, name, |p| {
            p.metadata
                .finalizers
                .get_or_insert_with(Vec::new)
                .push(finalizer.into());
        })
    }

    pub fn remove_finalizers(&self, namespace: &str, name: &str) -> Result<(), SimError> {
        self.edit_pod(namespace, name, |p| p.metadata.finalizers = None)
    }

    /// Evicts a pod: phase Failed, reason Evicted, no deletionTimestamp; the ReplicaSet replaces it.
    pub fn evict_pod(&self, namespace: &str, name: &str) -> Result<(), SimError> {
        self.edit_pod(namespace, name, |p| {
            *p = controllers::evicted(p.clone(), clock::now());
        })
    }

    /// Holds (or releases) every controller and the kubelet: while held, a change is stored
    /// but nobody acts on it (no observedGeneration, no new ReplicaSet, no pod started or gone).
    pub fn pause_controllers(&self, paused: bool) -> Result<(), SimError> {
        self.with_world(|w| w.paused = paused)
    }

    /// Drops the change history: every watch resuming from an older resourceVersion gets the 410
    /// `ERROR` event and must relist.
    pub fn compact(&self) -> Result<(), SimError> {
        self.with_world(|w| w.store.compact())
    }

    /// Waits until `condition` holds on the cluster's state, checking every 20 ms, for at most
    /// `deadline`.
    pub async fn wait_for(
        &self,
        what: &str,
        deadline: Duration,
        condition: impl Fn(&World) -> bool,
    ) -> Result<(), SimError> {
        let start = tokio::time::Instant::now();
        loop {
            if self.with_world(|w| condition(w))? {
                return Ok(());
            }
            if start.elapsed() >= deadline {
                return Err(SimError::Timeout {
                    what: what.into(),
                    waited: deadline,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops serving: open watches end and the port closes.
    pub fn stop(self) {
        drop(self);
    }
}

fn node_not_found(name: &str) -> SimError {
    SimError::NotFound {
        kind: Kind::Node,
        namespace: String::new(),
        name: name.into(),
    }
}

/// A Deployment for the simulated cluster, built up by its tests.
#[derive(Clone, Debug)]
pub struct SimDeployment {
    pub namespace: String,
    pub name: String,
    pub replicas: i32,
    pub image: String,
    /// `None` is Recreate; otherwise RollingUpdate with maxSurge and maxUnavailable.
    pub rolling: Option<(IntOrString, IntOrString)>,
    pub grace_seconds: i64,
    pub start_seconds: f64,
    pub drain_seconds: f64,
    pub progress_deadline_seconds: i32,
    pub labels: BTreeMap<String, String>,
}

impl SimDeployment {
    /// 3 replicas, RollingUpdate maxSurge 1 / maxUnavailable 0, grace 60 s, 1 s start, 5 s drain.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            replicas: 3,
            image: "registry.local/app:v1".into(),
            rolling: Some((IntOrString::Int(1), IntOrString::Int(0))),
            grace_seconds: 60,
            start_seconds: 1.0,
            drain_seconds: 5.0,
            progress_deadline_seconds: 600,
            labels: BTreeMap::from([("app".to_string(), name.to_string())]),
        }
    }

    pub fn replicas(mut self, n: i32) -> Self {
        self.replicas = n;
        self
    }

    pub fn image(mut self, image: &str) -> Self {
        self.image = image.into();
        self
    }

    pub fn rolling(mut self, max_surge: IntOrString, max_unavailable: IntOrString) -> Self {
        self.rolling = Some((max_surge, max_unavailable));
        self
    }

    pub fn recreate(mut self) -> Self {
        self.rolling = None;
        self
    }

    pub fn drain_seconds(mut self, s: f64) -> Self {
        self.drain_seconds = s;
        self
    }

    pub fn start_seconds(mut self, s: f64) -> Self {
        self.start_seconds = s;
        self
    }

    pub fn grace_seconds(mut self, s: i64) -> Self {
        self.grace_seconds = s;
        self
    }

    pub fn progress_deadline_seconds(mut self, s: i32) -> Self {
        self.progress_deadline_seconds = s;
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    fn build(&self) -> Deployment {
        let strategy = match &self.rolling {
            Some((surge, unavailable)) => DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(surge.clone()),
                    max_unavailable: Some(unavailable.clone()),
                }),
            },
            None => DeploymentStrategy {
                type_: Some("Recreate".into()),
                rolling_update: None,
            },
        };
        let selector = BTreeMap::from([("app".to_string(), self.name.clone())]);
        let mut labels = self.labels.clone();
        labels.insert("app".into(), self.name.clone());
        Deployment {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(self.replicas),
                selector: LabelSelector {
                    match_labels: Some(selector.clone()),
                    match_expressions: None,
                },
                strategy: Some(strategy),
                revision_history_limit: Some(10),
                progress_deadline_seconds: Some(self.progress_deadline_seconds),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(selector),
                        annotations: Some(BTreeMap::from([
                            (DRAIN_SECONDS.to_string(), self.drain_seconds.to_string()),
                            (START_SECONDS.to_string(), self.start_seconds.to_string()),
                        ])),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "app".into(),
                            image: Some(self.image.clone()),
                            image_pull_policy: Some("IfNotPresent".into()),
                            termination_message_path: Some("/dev/termination-log".into()),
                            termination_message_policy: Some("File".into()),
                            resources: Some(Default::default()),
                            ..Default::default()
                        }],
                        restart_policy: Some("Always".into()),
                        termination_grace_period_seconds: Some(self.grace_seconds),
                        dns_policy: Some("ClusterFirst".into()),
                        scheduler_name: Some("default-scheduler".into()),
                        security_context: Some(Default::default()),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        }
    }
}
