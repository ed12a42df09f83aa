//! The naive design, for comparison: kube runtime reflectors that keep every Deployment,
//! ReplicaSet and Pod as full objects, and compute the termination gauges on each scrape by
//! walking every pod. Run by the bench as a separate process (`scale --naive-reflector`), so it is
//! measured exactly like the exporter. Bench-only: it never ships in the exporter binary.
//!
//! It computes less than the exporter (no rollout milestones, no histograms: those need the
//! event history a store of current objects does not keep); what it does compute is what a
//! straightforward "store everything, compute on scrape" exporter computes at scrape time.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Config};

struct State {
    pods: Store<Pod>,
    replicasets: Store<ReplicaSet>,
    deployments: Store<Deployment>,
    ready: [AtomicBool; 3],
    events: [AtomicU64; 3],
}

fn controller(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<(&str, &str)> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| (o.kind.as_str(), o.name.as_str()))
}

/// Walks every pod: terminating, overdue and oldest termination per Deployment.
fn render(state: &State) -> String {
    let now = jiff::Timestamp::now().as_second();
    let mut rs_owner: BTreeMap<(String, String), String> = BTreeMap::new();
    for rs in state.replicasets.state() {
        if let Some(("Deployment", d)) = controller(&rs.metadata) {
            rs_owner.insert(
                (
                    rs.metadata.namespace.clone().unwrap_or_default(),
                    rs.metadata.name.clone().unwrap_or_default(),
                ),
                d.to_string(),
            );
        }
    }
    #[derive(Default)]
    struct W {
        terminating: u64,
        overdue: u64,
        oldest: Option<i64>,
    }
    let mut workloads: BTreeMap<(String, String), W> = BTreeMap::new();
    for d in state.deployments.state() {
        workloads.insert(
            (
                d.metadata.namespace.clone().unwrap_or_default(),
                d.metadata.name.clone().unwrap_or_default(),
            ),
            W::default(),
        );
    }
    for p in state.pods.state() {
        let Some(deletion) = &p.metadata.deletion_timestamp else {
            continue;
        };
        let Some(("ReplicaSet", rs)) = controller(&p.metadata) else {
            continue;
        };
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let Some(d) = rs_owner.get(&(ns.clone(), rs.to_string())) else {
            continue;
        };
        let Some(w) = workloads.get_mut(&(ns, d.clone())) else {
            continue;
        };
        let deadline = deletion.0.as_second();
        let requested = deadline - p.metadata.deletion_grace_period_seconds.unwrap_or(0);
        w.terminating += 1;
        if now > deadline {
            w.overdue += 1;
        }
        w.oldest = Some(w.oldest.map_or(requested, |o| o.min(requested)));
    }
    let mut out = String::new();
    for (name, value) in [
        ("naive_terminating_pods", 0usize),
        ("naive_terminating_pods_overdue", 1),
        ("naive_oldest_termination_seconds", 2),
    ] {
        let _ = writeln!(out, "# TYPE {name} gauge");
        for ((ns, d), w) in &workloads {
            let v = match value {
                0 => w.terminating as f64,
                1 => w.overdue as f64,
                _ => w.oldest.map_or(0.0, |o| (now - o).max(0) as f64),
            };
            let _ = writeln!(out, "{name}{{namespace=\"{ns}\",workload=\"{d}\"}} {v}");
        }
    }
    let _ = writeln!(out, "# TYPE naive_watch_events_total counter");
    for (i, r) in ["deployments", "replicasets", "pods"].iter().enumerate() {
        let _ = writeln!(
            out,
            "naive_watch_events_total{{resource=\"{r}\"}} {}",
            state.events[i].load(Ordering::Relaxed)
        );
    }
    out
}

fn reflect<K>(
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    state: Arc<State>,
    i: usize,
) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
{
    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default().page_size(500))
            .default_backoff()
            .reflect(writer)
            .boxed();
        let mut stream = stream;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::InitDone) => state.ready[i].store(true, Ordering::Relaxed),
                Ok(
                    watcher::Event::Apply(_)
                    | watcher::Event::Delete(_)
                    | watcher::Event::InitApply(_),
                ) => {
                    state.events[i].fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
    })
}

/// `scale --naive-reflector --kubeconfig PATH`: serves `/readyz` and `/metrics` on an ephemeral
/// loopback port and prints `listening on ADDR` on stderr.
pub fn main(kubeconfig: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
        let config = Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        let client = Client::try_from(config)?;
        let (pods, pods_w) = reflector::store::<Pod>();
        let (replicasets, rs_w) = reflector::store::<ReplicaSet>();
        let (deployments, d_w) = reflector::store::<Deployment>();
        let state = Arc::new(State {
            pods,
            replicasets,
            deployments,
            ready: Default::default(),
            events: Default::default(),
        });
        reflect(
            Api::<Deployment>::all(client.clone()),
            d_w,
            state.clone(),
            0,
        );
        reflect(
            Api::<ReplicaSet>::all(client.clone()),
            rs_w,
            state.clone(),
            1,
        );
        reflect(Api::<Pod>::all(client.clone()), pods_w, state.clone(), 2);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        eprintln!("listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let state = state.clone();
                    async move {
                        let (code, body) = match req.uri().path() {
                            "/readyz" if state.ready.iter().all(|r| r.load(Ordering::Relaxed)) => {
                                (200, "ok\n".to_string())
                            }
                            "/readyz" => (503, "not ready\n".to_string()),
                            "/metrics" => {
                                let state = state.clone();
                                let body = tokio::task::spawn_blocking(move || render(&state))
                                    .await
                                    .unwrap_or_default();
                                (200, body)
                            }
                            _ => (404, String::new()),
                        };
                        let mut resp = Response::new(Full::new(Bytes::from(body)));
                        *resp.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or_default();
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
