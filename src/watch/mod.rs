//! The watch adapters: one list-and-watch loop per resource (and per namespace, when namespaces
//! are given) that turns the API server's bytes into model events.
//!
//! The workloads of the kinds chosen (`--kinds`: Deployments, StatefulSets, DaemonSets) are
//! watched as full objects (the model reads their spec and status) and ControllerRevisions too
//! (their `revision` is not metadata; their `data` is skipped unread); ReplicaSets and Pods
//! metadata-only; and the phase source is a second metadata-only pod watch that sees only
//! finished pods (`status.phase` Succeeded or Failed).
//!
//! Each loop does what client-go's reflector does: list in pages (`limit`, `continue`), then watch
//! from the list's resourceVersion with bookmarks, resume every watch that ends from the last
//! version seen, relist after 410 Gone (an `ERROR` event, or an expired continue token), and back
//! off ([`backoff`], and at least an answer's `Retry-After`) after every failure. A list is
//! streamed through the model as it arrives (`ListStarted`, `Listed` per object, `ListDone`), so
//! deletions missed during a gap are reconciled at its end without a second copy of every object. Errors are logged, counted and
//! survived; a line that does not decode is a lost event, so that watch relists.
//!
//! It is built on kube's [`Client`] (authentication, TLS) rather than
//! kube's watcher because of CPU per event: the response body is split into lines in place
//! ([`lines`]) and each line decoded from those bytes into borrowed fields ([`crate::decode`]),
//! and the events of one read go to the model under one lock. See BENCHMARKS.md.

mod backoff;
mod lines;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, WatchParams};
use kube::client::Body;
use kube::core::Request;
use kube::{Client, Resource as KubeResource};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::decode::{self, EventType, Meta, Object, ObjectSeed, Str};
use crate::error::ConvertError;
use crate::model::{Change, Event, Resource, WorkloadKind};
use crate::selection::Selection;
use crate::shared::{Shared, WatchStats};
use backoff::{Backoff, jitter};
use lines::{Lines, TooLong};

/// Objects of a list handed to the model under one lock.
const LIST_BATCH: usize = 256;

/// The field selector of the phase source: pods that finished.
pub const FINISHED_PODS: &str = "status.phase!=Pending,status.phase!=Running,status.phase!=Unknown";

/// `timeoutSeconds` of every watch (the server ends it then, and it is resumed).
const WATCH_TIMEOUT_SECS: u32 = 290;

/// A watch that sends nothing, not even a bookmark, for this long is presumed dead and resumed.
const WATCH_IDLE: Duration = Duration::from_secs(WATCH_TIMEOUT_SECS as u64 + 5);

/// A watch that ends cleanly without a line this soon after it started is [`Ended::Empty`].
const QUICK_END: Duration = Duration::from_secs(1);

/// A watch whose connection breaks without a line this soon after it started is
/// [`Ended::Empty`].
const QUICK_BREAK: Duration = Duration::from_millis(100);

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The pause before relisting after a lost event, so a server that keeps sending garbage is not
/// hammered.
const LOST_EVENT_PAUSE: Duration = Duration::from_secs(1);

/// How the watches run: what they select (namespaces, label selector, shard, allow and deny
/// lists), shared by all of them, and the size of their list pages. What they read is
/// [`WATCHED`], from which the RBAC rules are derived too, so a new watch cannot ship without its
/// permission.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Which workloads the exporter watches and keeps.
    pub selection: Arc<Selection>,
    /// Objects per list page.
    pub page_size: u32,
    /// The workload kinds watched (`--kinds`): each brings its own watches.
    pub kinds: Vec<WorkloadKind>,
}

/// Every API resource the exporter reads: (API group, resource, verbs). The deploy manifests'
/// RBAC rules must grant exactly these. The two `get`s are the stuck-reason inspector's
/// (`crate::inspect`): an overdue pod, and its node (cluster-scoped, so a namespaced install
/// cannot grant it: its node-based reasons are then `unknown`).
pub const WATCHED: &[(&str, &str, &[&str])] = &[
    ("apps", "deployments", &["list", "watch"]),
    ("apps", "replicasets", &["list", "watch"]),
    ("apps", "statefulsets", &["list", "watch"]),
    ("apps", "daemonsets", &["list", "watch"]),
    ("apps", "controllerrevisions", &["list", "watch"]),
    ("", "pods", &["get", "list", "watch"]),
    ("", "nodes", &["get"]),
];

/// One list-and-watch: what it requests and how its objects reach the model.
struct Spec<T> {
    resource: Resource,
    namespace: Option<String>,
    /// The collection's URL path.
    path: String,
    labels: Option<String>,
    fields: Option<String>,
    page_size: u32,
    convert: fn(&mut Object<'_>) -> Result<T, ConvertError>,
    wrap: fn(Change<T>) -> Event,
    selection: Arc<Selection>,
    /// Pods read whole (their Ready condition) rather than metadata-only: `wait`'s pod watch.
    full_pods: bool,
}

impl<T> Spec<T> {
    fn new(
        resource: Resource,
        namespace: Option<&str>,
        path: String,
        config: &Config,
        convert: fn(&mut Object<'_>) -> Result<T, ConvertError>,
        wrap: fn(Change<T>) -> Event,
    ) -> Self {
        Self {
            resource,
            namespace: namespace.map(str::to_string),
            path,
            labels: None,
            fields: None,
            page_size: config.page_size,
            convert,
            wrap,
            selection: config.selection.clone(),
            full_pods: false,
        }
    }

    /// Metadata-only (`PartialObjectMetadata`): everything but the workloads, whose spec and
    /// status the model reads, and ControllerRevisions, whose `revision` is not metadata (their
    /// `data`, the template, is skipped unread).
    fn metadata(&self) -> bool {
        self.seed() == ObjectSeed::Meta
    }

    /// What the decoder reads of each object.
    fn seed(&self) -> ObjectSeed {
        match self.resource {
            Resource::Deployments => ObjectSeed::Deployment,
            Resource::StatefulSets => ObjectSeed::StatefulSet,
            Resource::DaemonSets => ObjectSeed::DaemonSet,
            Resource::ControllerRevisions => ObjectSeed::ControllerRevision,
            Resource::Pods if self.full_pods => ObjectSeed::Pod,
            Resource::ReplicaSets | Resource::Pods | Resource::FinishedPods => ObjectSeed::Meta,
        }
    }
}

/// Starts every watch; they run until the process stops.
pub fn spawn(client: Client, config: &Config, shared: Arc<Shared>) -> Vec<JoinHandle<()>> {
    let selection = &config.selection;
    let namespaces: Vec<Option<&str>> = if selection.namespaces.is_empty() {
        vec![None]
    } else {
        selection
            .namespaces
            .iter()
            .map(|ns| Some(ns.as_str()))
            .collect()
    };
    let mut tasks = Vec::new();
    for ns in namespaces {
        for resource in Resource::ALL {
            if !resource.needed_by(&config.kinds) {
                continue;
            }
            // The label selector picks workloads; what they own follows by ownership.
            let select = Select {
                labels: resource.workload_kind().and(selection.selector.clone()),
                ..Select::default()
            };
            tasks.push(start_resource(
                resource, ns, select, config, &client, &shared,
            ));
        }
    }
    tasks
}

/// What one watch selects besides its resource and namespace.
#[derive(Clone, Debug, Default)]
struct Select {
    labels: Option<String>,
    /// The phase source adds its own field selector to these.
    fields: Option<String>,
    /// Pods read whole (their Ready condition), as only `wait` does.
    full_pods: bool,
}

/// Starts the list-and-watch of `resource` in namespace `ns` (all when `None`).
fn start_resource(
    resource: Resource,
    ns: Option<&str>,
    mut select: Select,
    config: &Config,
    client: &Client,
    shared: &Arc<Shared>,
) -> JoinHandle<()> {
    if resource == Resource::FinishedPods {
        select.fields = Some(match select.fields {
            Some(f) => format!("{f},{FINISHED_PODS}"),
            None => FINISHED_PODS.to_string(),
        });
    }
    let go = Launch {
        select,
        client,
        shared,
    };
    match resource {
        Resource::Deployments => go.start(Spec::new(
            resource,
            ns,
            Deployment::url_path(&(), ns),
            config,
            decode::deployment,
            Event::Deployment,
        )),
        Resource::ReplicaSets => go.start(Spec::new(
            resource,
            ns,
            ReplicaSet::url_path(&(), ns),
            config,
            decode::replicaset,
            Event::ReplicaSet,
        )),
        Resource::StatefulSets => go.start(Spec::new(
            resource,
            ns,
            StatefulSet::url_path(&(), ns),
            config,
            decode::statefulset,
            Event::StatefulSet,
        )),
        Resource::DaemonSets => go.start(Spec::new(
            resource,
            ns,
            DaemonSet::url_path(&(), ns),
            config,
            decode::daemonset,
            Event::DaemonSet,
        )),
        Resource::ControllerRevisions => go.start(Spec::new(
            resource,
            ns,
            ControllerRevision::url_path(&(), ns),
            config,
            decode::controllerrevision,
            Event::ControllerRevision,
        )),
        Resource::Pods => go.start(Spec::new(
            resource,
            ns,
            Pod::url_path(&(), ns),
            config,
            decode::pod,
            Event::Pod,
        )),
        Resource::FinishedPods => go.start(Spec::new(
            resource,
            ns,
            Pod::url_path(&(), ns),
            config,
            decode::finished_pod,
            Event::FinishedPod,
        )),
    }
}

/// What every watch of one [`start_resource`] call shares: its selectors and where it reports.
struct Launch<'a> {
    select: Select,
    client: &'a Client,
    shared: &'a Arc<Shared>,
}

impl Launch<'_> {
    fn start<T: Send + 'static>(self, spec: Spec<T>) -> JoinHandle<()> {
        let spec = Spec {
            labels: self.select.labels,
            fields: self.select.fields,
            full_pods: self.select.full_pods,
            ..spec
        };
        start(spec, self.client.clone(), self.shared.clone())
    }
}

/// What `wait` watches of one workload: the object itself by name, and what it owns (its
/// ReplicaSets or ControllerRevisions, its pods) by the workload's own selector, in its namespace
/// only. The model it feeds sees nothing else, so its lists sweep nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadWatch {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    /// The workload's `spec.selector` as a label selector (`app=web,tier in (a,b)`); empty
    /// selects every object of the namespace.
    pub selector: String,
}

/// Starts the watches of one workload for `wait` (see [`WorkloadWatch`]): the same loops as the
/// exporter's, with a field selector on the workload's name and a label selector on what it owns.
pub fn spawn_workload(
    client: Client,
    target: &WorkloadWatch,
    page_size: u32,
    shared: Arc<Shared>,
) -> Vec<JoinHandle<()>> {
    let config = Config {
        selection: Arc::new(Selection::default()),
        page_size,
        kinds: vec![target.kind],
    };
    let ns = Some(target.namespace.as_str());
    let owned = Some(target.selector.clone()).filter(|s| !s.is_empty());
    Resource::ALL
        .into_iter()
        .filter(|r| r.needed_by(&config.kinds))
        .map(|resource| {
            // The workload itself by name; what it owns by its selector.
            let (labels, fields) = match resource.workload_kind() {
                Some(_) => (None, Some(format!("metadata.name={}", target.name))),
                None => (owned.clone(), None),
            };
            // Pods whole: `wait` counts the new ones that are Ready, and there are few.
            let select = Select {
                labels,
                fields,
                full_pods: true,
            };
            start_resource(resource, ns, select, &config, &client, &shared)
        })
        .collect()
}

fn start<T: Send + 'static>(spec: Spec<T>, client: Client, shared: Arc<Shared>) -> JoinHandle<()> {
    let span = info_span!(
        "watch",
        resource = spec.resource.as_str(),
        namespace = spec.namespace.as_deref().unwrap_or("*")
    );
    let watch = ListWatch {
        spec,
        client,
        shared,
        version: None,
        lists: 0,
        batch: Vec::with_capacity(LIST_BATCH),
        backoff: Backoff::default(),
    };
    tokio::spawn(watch.run().instrument(span))
}

/// Why a list or a watch stopped.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("request failed: {0}")]
    Request(#[from] kube::Error),
    #[error("the API server answered {code}: {message}")]
    Status {
        code: u16,
        message: String,
        /// The answer's `Retry-After`, in seconds (429 and 503 carry it under API Priority and
        /// Fairness).
        retry_after: Option<Duration>,
    },
    #[error("a list page did not decode: {0}")]
    Page(serde_json::Error),
    #[error("a watch event did not decode and was lost: {0}")]
    Lost(serde_json::Error),
    #[error("a watch line exceeded {} MiB", lines::MAX_LINE >> 20)]
    TooLong,
    #[error("a list or an event without a resourceVersion")]
    NoResourceVersion,
}

impl From<TooLong> for Failure {
    fn from(_: TooLong) -> Self {
        Failure::TooLong
    }
}

impl From<kube::core::request::Error> for Failure {
    fn from(e: kube::core::request::Error) -> Self {
        Failure::Request(kube::Error::BuildRequest(e))
    }
}

impl Failure {
    /// Whether what is known can no longer be resumed from, and only a fresh list recovers: the
    /// version is gone (410), or an event was lost.
    fn needs_relist(&self) -> bool {
        match self {
            Failure::Status { code, .. } => *code == 410,
            Failure::Lost(_) | Failure::TooLong | Failure::NoResourceVersion => true,
            Failure::Request(_) | Failure::Page(_) => false,
        }
    }
}

/// How a watch ended without failing.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The server ended it (its timeout), or it was idle too long.
    Normally,
    /// At once and without a single line (see [`QUICK_END`], [`QUICK_BREAK`]): resumed after a
    /// pause, not in a tight loop.
    Empty,
}

/// One resource's list-and-watch loop.
struct ListWatch<T> {
    spec: Spec<T>,
    client: Client,
    shared: Arc<Shared>,
    /// The resourceVersion to resume from; `None` until a list completes, and after a failure
    /// that needs a relist.
    version: Option<String>,
    lists: u64,
    /// Events not yet handed to the model.
    batch: Vec<Event>,
    /// Grows with consecutive failures; reset by every 2xx answer.
    backoff: Backoff,
}

impl<T> ListWatch<T> {
    async fn run(mut self) {
        loop {
            let result = if self.version.is_some() {
                self.watch().await
            } else {
                self.list().await.map(|()| Ended::Normally)
            };
            // What a failed list or watch decoded before failing stays applied.
            self.flush();
            let now = Instant::now();
            let pause = match result {
                Ok(Ended::Normally) => continue,
                Ok(Ended::Empty) => {
                    let pause = self.backoff.delay(now, jitter());
                    debug!(
                        ?pause,
                        "the watch ended at once and empty; resuming after a pause"
                    );
                    pause
                }
                Err(e) => {
                    self.stats().error(now);
                    if e.needs_relist() {
                        self.version = None;
                    }
                    let pause = pause_after(&e, &mut self.backoff, now, jitter());
                    let relist = self.version.is_none();
                    warn!(error = %e, ?pause, relist, "watch error; retrying");
                    pause
                }
            };
            tokio::time::sleep(pause).await;
        }
    }

    fn stats(&self) -> &WatchStats {
        self.shared.watch_stats(self.spec.resource)
    }

    fn flush(&mut self) {
        if !self.batch.is_empty() {
            self.shared.handle_all(self.batch.drain(..));
        }
    }

    /// Sends a request and records the answer (`verb` is `list` or `watch`): every answer is
    /// counted by status (0 when none came), and a 2xx is a success for readiness even when no
    /// event follows (a quiet resumed watch). A non-2xx answer is a [`Failure::Status`] with the
    /// server's message.
    async fn send(
        &mut self,
        verb: &'static str,
        request: hyper::Request<Vec<u8>>,
    ) -> Result<Body, Failure> {
        let response = match self.client.send(request.map(Body::from)).await {
            Ok(response) => response,
            Err(e) => {
                self.stats().request(verb, 0);
                return Err(e.into());
            }
        };
        let status = response.status();
        self.stats().request(verb, status.as_u16());
        if status.is_success() {
            self.stats().success(Instant::now());
            self.backoff.reset();
            return Ok(response.into_body());
        }
        let retry_after = retry_after(response.headers());
        let body = response
            .into_body()
            .collect_bytes()
            .await
            .unwrap_or_default();
        Err(Failure::Status {
            code: status.as_u16(),
            message: decode::status_message(&body),
            retry_after,
        })
    }

    /// Lists every object, page by page, streaming them through the model; on success the
    /// watch resumes from the list's resourceVersion.
    async fn list(&mut self) -> Result<(), Failure> {
        let namespace = self.spec.namespace.clone();
        self.batch
            .push((self.spec.wrap)(Change::ListStarted(namespace.clone())));
        self.flush();
        if self.lists > 0 {
            self.stats().restarts.fetch_add(1, Ordering::Relaxed);
            debug!("relisting");
        }
        self.lists += 1;
        let mut listed = 0u64;
        let mut token: Option<String> = None;
        loop {
            let params = ListParams {
                label_selector: self.spec.labels.clone(),
                field_selector: self.spec.fields.clone(),
                limit: Some(self.spec.page_size),
                continue_token: token.take(),
                ..ListParams::default()
            };
            let request = Request::new(&self.spec.path);
            let request = if self.spec.metadata() {
                request.list_metadata(&params)?
            } else {
                request.list(&params)?
            };
            let page = self.send("list", request).await?.collect_bytes().await?;
            let (spec, shared, batch) = (&self.spec, &self.shared, &mut self.batch);
            let stats = shared.watch_stats(spec.resource);
            let meta = decode::list_page(&page, spec.seed(), &mut |o| {
                if accept(spec, stats, o, Change::Listed, batch) {
                    listed += 1;
                }
                if batch.len() >= LIST_BATCH {
                    shared.handle_all(batch.drain(..));
                }
            })
            .map_err(Failure::Page)?;
            let nonempty = |s: Option<Str<'_>>| s.map(Str::into_string).filter(|s| !s.is_empty());
            token = nonempty(meta.continue_);
            if token.is_none() {
                let version = nonempty(meta.resource_version).ok_or(Failure::NoResourceVersion)?;
                self.batch
                    .push((self.spec.wrap)(Change::ListDone(namespace)));
                self.flush();
                self.stats().success(Instant::now());
                info!(objects = listed, "list complete");
                self.version = Some(version);
                return Ok(());
            }
        }
    }

    /// Watches from `self.version` until the server ends the watch or the connection breaks,
    /// handing the events of each read to the model under one lock.
    async fn watch(&mut self) -> Result<Ended, Failure> {
        let params = WatchParams {
            label_selector: self.spec.labels.clone(),
            field_selector: self.spec.fields.clone(),
            timeout: Some(WATCH_TIMEOUT_SECS),
            bookmarks: true,
            ..WatchParams::default()
        };
        let version = self.version.as_deref().unwrap_or_default();
        let request = Request::new(&self.spec.path);
        let request = if self.spec.metadata() {
            request.watch_metadata(&params, version)?
        } else {
            request.watch(&params, version)?
        };
        let started = Instant::now();
        let mut body = self.send("watch", request).await?;
        let mut lines = Lines::default();
        let (mut seen, mut broke) = (false, false);
        loop {
            let frame = match tokio::time::timeout(WATCH_IDLE, body.frame()).await {
                Err(_) => {
                    debug!("the watch was idle too long; resuming");
                    return Ok(Ended::Normally);
                }
                Ok(None) => break,
                Ok(Some(Ok(frame))) => frame,
                // The connection broke (a proxy or the server went away): resumed at once, as
                // client-go resumes a watch that ends with an unexpected EOF.
                Ok(Some(Err(e))) => {
                    debug!(error = %e, "the watch connection broke; resuming");
                    broke = true;
                    break;
                }
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let (spec, shared, batch, version) =
                (&self.spec, &self.shared, &mut self.batch, &mut self.version);
            let stats = shared.watch_stats(spec.resource);
            let result = lines.feed(&data, |line| {
                seen = true;
                on_line(spec, stats, line, version, batch)
            });
            stats.success(Instant::now());
            self.flush();
            result?;
        }
        Ok(ending(seen, broke, started.elapsed()))
    }
}

/// The `Retry-After` of an answer, in seconds (the API server does not send the HTTP-date form).
fn retry_after(headers: &hyper::HeaderMap) -> Option<Duration> {
    let value = headers.get(hyper::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse().ok().map(Duration::from_secs)
}

/// How a watch that did not fail ended, from whether any line came, whether its connection
/// broke, and how long it lasted. One that ends cleanly at once, or whose connection is cut as
/// soon as it is made, is not resumed in a tight loop; a connection cut later is resumed at once
/// however often it happens, as proxies and restarting API servers do that.
fn ending(seen: bool, broke: bool, lasted: Duration) -> Ended {
    let quick = if broke { QUICK_BREAK } else { QUICK_END };
    if !seen && lasted < quick {
        Ended::Empty
    } else {
        Ended::Normally
    }
}

/// The pause before retrying after `failure` at `now`: a fixed one before relisting after a lost
/// event; otherwise the backoff, and at least what the server asked for with `Retry-After` (up to
/// [`MAX_RETRY_AFTER`], so a proxy's odd header cannot stop a watch for long).
fn pause_after(failure: &Failure, backoff: &mut Backoff, now: Instant, unit: f64) -> Duration {
    if let Failure::Lost(_) = failure {
        return LOST_EVENT_PAUSE;
    }
    let pause = backoff.delay(now, unit);
    match failure {
        Failure::Status {
            retry_after: Some(asked),
            ..
        } => pause.max((*asked).min(MAX_RETRY_AFTER)),
        _ => pause,
    }
}

/// One watch line: its event goes to `batch`, its resourceVersion becomes the one to resume from.
fn on_line<T>(
    spec: &Spec<T>,
    stats: &WatchStats,
    line: &[u8],
    version: &mut Option<String>,
    batch: &mut Vec<Event>,
) -> Result<(), Failure> {
    let mut object = Object::default();
    let event = decode::watch_line(line, spec.seed(), &mut object).map_err(Failure::Lost)?;
    let Some(change) = change_of(event) else {
        // No object: a bookmark only moves the resume version; an error is the server's status.
        if event == EventType::Bookmark {
            return resume_at(version, &object);
        }
        return Err(Failure::Status {
            code: object.code.unwrap_or(500),
            message: object.message.map(Str::into_string).unwrap_or_default(),
            retry_after: None,
        });
    };
    resume_at(version, &object)?;
    accept(spec, stats, &mut object, change, batch);
    Ok(())
}

/// The model change a watch event makes of its object: ADDED and MODIFIED apply it, DELETED
/// deletes it; a BOOKMARK or an ERROR carries no object to change (`None`). Public so that the
/// recordings replay (`tests/common`) turns recorded lines into changes exactly as the watches do.
pub fn change_of<T>(event: EventType) -> Option<fn(T) -> Change<T>> {
    match event {
        EventType::Added | EventType::Modified => Some(Change::Applied),
        EventType::Deleted => Some(Change::Deleted),
        EventType::Bookmark | EventType::Error => None,
    }
}

/// Records an event's resourceVersion as the one to resume from (reusing the string).
fn resume_at(version: &mut Option<String>, o: &Object<'_>) -> Result<(), Failure> {
    let rv = o
        .metadata
        .resource_version
        .as_ref()
        .map(Str::as_str)
        .filter(|rv| !rv.is_empty())
        .ok_or(Failure::NoResourceVersion)?;
    let v = version.get_or_insert_with(String::new);
    v.clear();
    v.push_str(rv);
    Ok(())
}

/// Counts an object and, unless the selection drops it or it cannot be used, queues its event.
/// Whether it was queued.
fn accept<T>(
    spec: &Spec<T>,
    stats: &WatchStats,
    object: &mut Object<'_>,
    change: fn(T) -> Change<T>,
    batch: &mut Vec<Event>,
) -> bool {
    stats.events.fetch_add(1, Ordering::Relaxed);
    if !selected(&spec.selection, &object.metadata) {
        return false;
    }
    match (spec.convert)(object) {
        Ok(t) => {
            batch.push((spec.wrap)(change(t)));
            true
        }
        Err(e) => {
            stats.error(Instant::now());
            warn!(error = %e, "object skipped");
            false
        }
    }
}

/// Whether the selection keeps an object, by the workload it belongs to (worked out only when the
/// selection filters at all).
fn selected(selection: &Selection, meta: &Meta<'_>) -> bool {
    if selection.keeps_every_workload() {
        return true;
    }
    let (namespace, workload) = meta.workload_key();
    selection.keeps(namespace, workload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, retry_after: Option<u64>) -> Failure {
        Failure::Status {
            code,
            message: String::new(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn pauses_follow_the_backoff_retry_after_and_lost_events() {
        let now = Instant::now();
        let mut b = Backoff::default();
        assert_eq!(
            pause_after(&status(503, None), &mut b, now, 1.0),
            Duration::from_millis(800)
        );
        assert_eq!(
            pause_after(&status(429, Some(5)), &mut b, now, 1.0),
            Duration::from_secs(5),
            "the server's Retry-After when longer than the backoff (1.6 s)"
        );
        assert_eq!(
            pause_after(&status(429, Some(1)), &mut b, now, 1.0),
            Duration::from_millis(3200),
            "the backoff when longer"
        );
        assert_eq!(
            pause_after(&status(429, Some(86_400)), &mut b, now, 1.0),
            MAX_RETRY_AFTER,
            "a day is capped"
        );
        let lost = Failure::Lost(serde_json::from_str::<u8>("x").unwrap_err());
        assert_eq!(pause_after(&lost, &mut b, now, 1.0), LOST_EVENT_PAUSE);
        assert!(lost.needs_relist() && status(410, None).needs_relist());
        assert!(!status(429, Some(1)).needs_relist() && !status(500, None).needs_relist());
    }

    fn pods() -> Spec<crate::model::PodState> {
        Spec::new(
            Resource::Pods,
            None,
            "/api/v1/pods".into(),
            &Config::default(),
            decode::pod,
            Event::Pod,
        )
    }

    /// A pod watch line of `type` at resourceVersion `rv` (none when empty).
    fn line(type_: &str, rv: &str) -> Vec<u8> {
        let rv = if rv.is_empty() {
            String::new()
        } else {
            format!(r#","resourceVersion":"{rv}""#)
        };
        format!(r#"{{"type":"{type_}","object":{{"metadata":{{"name":"p","namespace":"n","uid":"u"{rv}}}}}}}"#)
            .into_bytes()
    }

    #[test]
    fn each_watch_line_queues_its_event_and_moves_the_resume_version() {
        let (spec, stats) = (pods(), WatchStats::default());
        let (mut version, mut batch) = (Some("1".to_string()), Vec::new());
        let on = |l: &[u8], version: &mut Option<String>, batch: &mut Vec<Event>| {
            on_line(&spec, &stats, l, version, batch)
        };
        on(&line("ADDED", "5"), &mut version, &mut batch).expect("applied");
        on(&line("DELETED", "7"), &mut version, &mut batch).expect("deleted");
        assert!(matches!(
            batch.as_slice(),
            [
                Event::Pod(Change::Applied(_)),
                Event::Pod(Change::Deleted(_))
            ]
        ));
        on(
            &br#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}"#[..],
            &mut version,
            &mut batch,
        )
        .expect("bookmark");
        assert_eq!(
            (version.as_deref(), batch.len()),
            (Some("9"), 2),
            "a bookmark only moves the version"
        );

        let gone = br#"{"type":"ERROR","object":{"kind":"Status","status":"Failure","code":410,"message":"too old"}}"#;
        let e = on(gone, &mut version, &mut batch).expect_err("410");
        assert!(e.needs_relist(), "{e}");
        let lost =
            on(&b"{\"type\":\"ADDED\",\"obj"[..], &mut version, &mut batch).expect_err("garbage");
        assert!(matches!(lost, Failure::Lost(_)));
        let no_rv = on(&line("MODIFIED", ""), &mut version, &mut batch).expect_err("no version");
        assert!(matches!(no_rv, Failure::NoResourceVersion) && no_rv.needs_relist());
        assert_eq!(
            (version.as_deref(), batch.len()),
            (Some("9"), 2),
            "failed lines change nothing"
        );
        assert_eq!(stats.events.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut h = hyper::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(
            hyper::header::RETRY_AFTER,
            hyper::header::HeaderValue::from_static(" 7 "),
        );
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            hyper::header::RETRY_AFTER,
            hyper::header::HeaderValue::from_static("Fri, 27 Nov 2026 23:00:00 GMT"),
        );
        assert_eq!(
            retry_after(&h),
            None,
            "the date form is not used by the API server"
        );
    }

    #[test]
    fn only_watches_that_end_at_once_and_empty_pause() {
        let ms = Duration::from_millis;
        // Ended cleanly: within a second and without a line.
        assert_eq!(ending(false, false, ms(300)), Ended::Empty);
        assert_eq!(ending(false, false, ms(1500)), Ended::Normally);
        assert_eq!(ending(true, false, ms(10)), Ended::Normally);
        // Cut: only as soon as it was made. A watch cut again 700 ms after it was resumed (a
        // flapping proxy) is resumed at once.
        assert_eq!(ending(false, true, ms(50)), Ended::Empty);
        assert_eq!(ending(false, true, ms(700)), Ended::Normally);
        assert_eq!(ending(true, true, ms(5)), Ended::Normally);
    }
}
