//! The watch adapters: kube runtime watchers that turn API objects into model events.
//!
//! One task per resource (and namespace, when scoped): Deployments as full objects (the model
//! reads their spec and status) decoded sparsely through [`LeanDeployment`], ReplicaSets and Pods
//! metadata-only through [`Lean`], and the phase source, a second metadata-only pod watch that
//! sees only finished pods (`status.phase` Succeeded or Failed). A list (initial, or after a watch
//! gap) is streamed through the model as it arrives, `Init` to `InitDone`, so deletions missed
//! during a gap are reconciled at its end without holding a second copy of every object (objects
//! go to the model in batches of [`LIST_BATCH`] under one lock, so the four lists do not queue on
//! it). Errors are logged, counted and survived (the watcher retries with backoff); a line that
//! fails to decode is a lost event, so that watch is restarted from a fresh list.

mod health;
mod lean;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource as KubeResource};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, warn};

pub use health::{ApiHealthLayer, resource_of};
pub use lean::{Lean, LeanDeployment};

use crate::convert;
use crate::error::ConvertError;
use crate::model::{Change, Event, Resource};
use crate::selection::Selection;
use crate::state::Shared;

/// Objects of a list handed to the model under one lock.
const LIST_BATCH: usize = 256;

/// The field selector of the phase source: pods that finished.
pub const FINISHED_PODS: &str = "status.phase!=Pending,status.phase!=Running,status.phase!=Unknown";

/// What the exporter watches. RBAC rules are derived from [`WATCHED`] too, so a new watch cannot
/// ship without its permission.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Namespaces to watch; empty watches the whole cluster.
    pub namespaces: Vec<String>,
    /// Label selector for Deployments; their ReplicaSets and pods follow by ownership.
    pub selector: Option<String>,
    /// Which workloads this exporter keeps (its shard, the allow and deny lists).
    pub selection: Selection,
    /// Objects per list page.
    pub page_size: u32,
}

/// Every API resource the exporter reads: (API group, resource, verbs). The deploy manifests'
/// RBAC rules must grant exactly these.
pub const WATCHED: &[(&str, &str, &[&str])] = &[
    ("apps", "deployments", &["list", "watch"]),
    ("apps", "replicasets", &["list", "watch"]),
    ("", "pods", &["list", "watch"]),
];

/// How one watch stream decodes and delivers its objects.
struct Spec<K, T> {
    resource: Resource,
    namespace: Option<String>,
    api: Api<K>,
    config: watcher::Config,
    /// Takes the object: the model's input is moved out of it, not copied.
    convert: fn(K) -> Result<T, ConvertError>,
    wrap: fn(Change<T>) -> Event,
    selection: Selection,
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: KubeResource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Starts every watch; they run until the process stops.
pub fn spawn(client: Client, scope: &Scope, shared: Arc<Shared>) -> Vec<JoinHandle<()>> {
    let namespaces: Vec<Option<String>> = if scope.namespaces.is_empty() {
        vec![None]
    } else {
        scope.namespaces.iter().cloned().map(Some).collect()
    };
    let mut tasks = Vec::new();
    for ns in namespaces {
        let base = watcher::Config::default().page_size(scope.page_size);
        let mut deployments = base.clone();
        if let Some(selector) = &scope.selector {
            deployments = deployments.labels(selector);
        }
        tasks.push(start(
            Spec {
                resource: Resource::Deployments,
                namespace: ns.clone(),
                api: api::<LeanDeployment>(&client, ns.as_deref()),
                config: deployments,
                convert: |d| convert::deployment(d.into_deployment()),
                wrap: Event::Deployment,
                selection: scope.selection.clone(),
            },
            shared.clone(),
        ));
        tasks.push(start(
            Spec {
                resource: Resource::ReplicaSets,
                namespace: ns.clone(),
                api: api::<Lean<ReplicaSet>>(&client, ns.as_deref()),
                config: base.clone(),
                convert: |rs| convert::replicaset(rs.into_metadata()),
                wrap: Event::ReplicaSet,
                selection: scope.selection.clone(),
            },
            shared.clone(),
        ));
        tasks.push(start(
            Spec {
                resource: Resource::Pods,
                namespace: ns.clone(),
                api: api::<Lean<Pod>>(&client, ns.as_deref()),
                config: base.clone(),
                convert: |p| convert::pod(p.into_metadata()),
                wrap: Event::Pod,
                selection: scope.selection.clone(),
            },
            shared.clone(),
        ));
        tasks.push(start(
            Spec {
                resource: Resource::FinishedPods,
                namespace: ns.clone(),
                api: api::<Lean<Pod>>(&client, ns.as_deref()),
                config: base.clone().fields(FINISHED_PODS),
                convert: |p| convert::finished_pod(p.into_metadata()),
                wrap: Event::FinishedPod,
                selection: scope.selection.clone(),
            },
            shared.clone(),
        ));
    }
    tasks
}

fn start<K, T>(spec: Spec<K, T>, shared: Arc<Shared>) -> JoinHandle<()>
where
    K: KubeResource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    T: Send + 'static,
{
    let span = info_span!(
        "watch",
        resource = spec.resource.as_str(),
        namespace = spec.namespace.as_deref().unwrap_or("*")
    );
    tokio::spawn(run(spec, shared).instrument(span))
}

/// Whether a watch error means a line was lost (it did not decode): kube skips it and goes on,
/// so the object it carried would stay stale until the next relist.
fn is_lost_event(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::WatchFailed(kube::Error::SerdeError(_)))
}

async fn run<K, T>(spec: Spec<K, T>, shared: Arc<Shared>)
where
    K: KubeResource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    T: Send + 'static,
{
    let stats = shared.watch(spec.resource);
    let mut lists = 0u64;
    let mut listed = 0u64;
    let mut batch: Vec<Event> = Vec::with_capacity(LIST_BATCH);
    loop {
        let mut stream = watcher(spec.api.clone(), spec.config.clone())
            .default_backoff()
            .boxed();
        while let Some(item) = stream.next().await {
            let now = Instant::now();
            match item {
                Ok(watcher::Event::Init) => {
                    batch.push((spec.wrap)(Change::ListStarted(spec.namespace.clone())));
                    shared.handle_all(batch.drain(..));
                    if lists > 0 {
                        stats.restarts.fetch_add(1, Ordering::Relaxed);
                        debug!("relisting");
                    }
                    lists += 1;
                    listed = 0u64;
                    stats.success(now);
                }
                Ok(watcher::Event::InitApply(obj)) => {
                    stats.events.fetch_add(1, Ordering::Relaxed);
                    if !spec.selection.keeps_object(obj.meta()) {
                        continue;
                    }
                    match (spec.convert)(obj) {
                        Ok(t) => {
                            listed += 1;
                            batch.push((spec.wrap)(Change::Listed(t)));
                            if batch.len() >= LIST_BATCH {
                                shared.handle_all(batch.drain(..));
                            }
                        }
                        Err(e) => skip(stats, &e),
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    batch.push((spec.wrap)(Change::ListDone(spec.namespace.clone())));
                    shared.handle_all(batch.drain(..));
                    stats.success(now);
                    info!(objects = listed, "list complete");
                }
                Ok(watcher::Event::Apply(obj)) => {
                    stats.events.fetch_add(1, Ordering::Relaxed);
                    stats.success(now);
                    if !spec.selection.keeps_object(obj.meta()) {
                        continue;
                    }
                    match (spec.convert)(obj) {
                        Ok(t) => shared.handle((spec.wrap)(Change::Applied(t))),
                        Err(e) => skip(stats, &e),
                    }
                }
                Ok(watcher::Event::Delete(obj)) => {
                    stats.events.fetch_add(1, Ordering::Relaxed);
                    stats.success(now);
                    if !spec.selection.keeps_object(obj.meta()) {
                        continue;
                    }
                    match (spec.convert)(obj) {
                        Ok(t) => shared.handle((spec.wrap)(Change::Deleted(t))),
                        Err(e) => skip(stats, &e),
                    }
                }
                Err(e) => {
                    // What a failed list applied so far stays applied (it starts again).
                    shared.handle_all(batch.drain(..));
                    stats.error(now);
                    warn!(error = %e, "watch error; retrying with backoff");
                    if is_lost_event(&e) {
                        warn!("an event did not decode and was lost: relisting");
                        break;
                    }
                }
            }
        }
        // The stream ended (lost event): start again from a fresh list, after a short pause so
        // a server that keeps sending garbage is not hammered.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn skip(stats: &crate::state::WatchStats, e: &ConvertError) {
    stats.error(Instant::now());
    warn!(error = %e, "object skipped");
}
