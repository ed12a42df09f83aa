//! Wire-level tests of the simulated API server (issue 3): every query parameter and media type it
//! serves, compared with the recorded v1.36 control plane where a recording exists
//! (`tests/fixtures/k8s-recordings/rolling-update-drain/`), and the cluster behaviour knobs behind
//! it (Recreate, maxSurge/maxUnavailable, pause, rollback, progress deadline, terminating pods,
//! stuck pods, finalizers, evictions, cascading deletion).
//!
//! Rollouts are checked on the watch streams, not by sampling: three unfiltered watches (one per
//! resource) from a list's resourceVersion see every write, because resourceVersions are one
//! sequence across resources, so replaying them visits every state the store went through.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::http::{self, Watch};
use common::recording_dir;
use http_body_util::{BodyExt, Empty};
use hyper::header::HeaderMap;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_sim::{
    ApiConfig, Kind, Object, POD_TEMPLATE_HASH, REVISION, START_SECONDS, SimCluster, SimConfig,
    SimDeployment,
};
use serde_json::Value;
use tokio::net::TcpStream;

const JSON: &str = "application/json";
const META: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const META_LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
const V1: &str = "registry.local/app:v1";
const V2: &str = "registry.local/app:v2";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// The selector the exporter's phase watch uses: pods that finished.
const FINISHED: &str = "status.phase!=Running,status.phase!=Pending,status.phase!=Unknown";

// ----- Helpers ---------------------------------------------------------------------------------

async fn start() -> SimCluster {
    start_with(SimConfig::default()).await
}

async fn start_with(config: SimConfig) -> SimCluster {
    SimCluster::start(config).await.expect("simulator starts")
}

/// A Deployment that starts and drains fast: 100 ms to Ready, 200 ms drains.
fn quick(namespace: &str, name: &str) -> SimDeployment {
    SimDeployment::new(namespace, name)
        .start_seconds(0.1)
        .drain_seconds(0.2)
}

fn recorded_text(file: &str) -> String {
    let p = recording_dir("rolling-update-drain").join(file);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

fn recorded(file: &str) -> Value {
    serde_json::from_str(recorded_text(file).trim()).expect("recording is JSON")
}

/// A recorded `.headers` file as (status, lower-case name → value).
fn recorded_headers(file: &str) -> (u16, BTreeMap<String, String>) {
    let text = recorded_text(file);
    let mut lines = text.lines();
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP "))
        .and_then(|s| s.trim().parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers)
}

/// The headers that matter (type, caching, framing) are the recorded ones; a recorded
/// `Content-Length` is checked against the body actually sent (the body differs in key order).
fn assert_recorded_headers(what: &str, file: &str, status: u16, headers: &HeaderMap, body: &[u8]) {
    let (want_status, want) = recorded_headers(file);
    assert_eq!(status, want_status, "{what}: status");
    for (name, value) in &want {
        let got = headers.get(name.as_str()).and_then(|v| v.to_str().ok());
        if name == "content-length" {
            assert_eq!(
                got,
                Some(body.len().to_string().as_str()),
                "{what}: Content-Length is the body's length"
            );
        } else {
            assert_eq!(got, Some(value.as_str()), "{what}: header {name}");
        }
    }
    let framing = ["content-length", "transfer-encoding"];
    for name in framing {
        if !want.contains_key(name) {
            assert!(
                headers.get(name).is_none(),
                "{what}: {name} must be absent, as recorded"
            );
        }
    }
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Any request, for the methods the GET helper does not make.
async fn request(addr: SocketAddr, method: Method, path: &str) -> (u16, HeaderMap, Vec<u8>) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("accept", JSON)
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, headers, body.to_vec())
}

/// `namespace/name` of every item of a list.
fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    format!(
                        "{}/{}",
                        i["metadata"]["namespace"].as_str().unwrap_or_default(),
                        i["metadata"]["name"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn rv_of(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no resourceVersion in {object}"))
}

fn line_json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("watch line is not JSON ({e}): {line}"))
}

fn status_of(v: &Value) -> Option<i64> {
    v["code"].as_i64()
}

/// Waits for the next line, for at most `within`.
async fn next_line(w: &mut Watch, within: Duration) -> Option<Value> {
    w.next_within(within).await.map(|(_, l)| line_json(&l))
}

/// Whether the stream has ended (the server closed it) within `within`, no line coming first.
async fn ends_within(w: &mut Watch, within: Duration) -> bool {
    matches!(tokio::time::timeout(within, w.lines.recv()).await, Ok(None))
}

/// Waits until no write has happened for 150 ms and at least 8 polls (each 20 ms apart, so the
/// 10 ms ticker had its turns even if the process was descheduled), and answers the
/// resourceVersion then.
async fn quiet(sim: &SimCluster) -> u64 {
    let last = Mutex::new((0u64, Instant::now(), 0u32));
    sim.wait_for("no writes for 150 ms", Duration::from_secs(10), |w| {
        let rv = w.store.resource_version();
        let mut l = last.lock().expect("lock");
        if l.0 != rv {
            *l = (rv, Instant::now(), 0);
            return false;
        }
        l.2 += 1;
        l.2 >= 8 && l.1.elapsed() >= Duration::from_millis(150)
    })
    .await
    .expect("the cluster settles");
    last.into_inner().expect("lock").0
}

fn image(p: &Pod) -> Option<&str> {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.as_deref())
}

fn pod_phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn app_pods<'a>(pods: impl Iterator<Item = &'a Pod>, ns: &str, app: &str) -> Vec<&'a Pod> {
    pods.filter(|p| {
        p.metadata.namespace.as_deref() == Some(ns)
            && p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .map(String::as_str)
                == Some(app)
    })
    .collect()
}

fn find_deployment<'a>(
    mut deps: impl Iterator<Item = &'a Deployment>,
    ns: &str,
    name: &str,
) -> Option<&'a Deployment> {
    deps.find(|d| {
        d.metadata.namespace.as_deref() == Some(ns) && d.metadata.name.as_deref() == Some(name)
    })
}

fn progressing(d: &Deployment) -> Option<(String, String)> {
    d.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Progressing")
        .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
}

/// The Deployment is rolled out to `image`: exactly its replicas, all on `image`, Running and
/// Ready, nothing terminating or finished left, and the controller says so.
fn rolled_out<'a>(
    deps: impl Iterator<Item = &'a Deployment>,
    pods: impl Iterator<Item = &'a Pod>,
    ns: &str,
    name: &str,
    want_image: &str,
) -> bool {
    let Some(d) = find_deployment(deps, ns, name) else {
        return false;
    };
    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let pods = app_pods(pods, ns, name);
    let st = d.status.clone().unwrap_or_default();
    pods.len() == replicas as usize
        && pods.iter().all(|p| {
            image(p) == Some(want_image)
                && pod_phase(p) == "Running"
                && pod_ready(p)
                && p.metadata.deletion_timestamp.is_none()
        })
        && st.available_replicas == Some(replicas)
        && st.updated_replicas == Some(replicas)
        && st.observed_generation == d.metadata.generation
        && progressing(d).is_some_and(|(_, r)| r == "NewReplicaSetAvailable")
}

/// Creates a Deployment and waits until it is rolled out.
async fn create_ready(sim: &SimCluster, d: SimDeployment) {
    let (ns, name, img) = (d.namespace.clone(), d.name.clone(), d.image.clone());
    sim.create_deployment(&d).expect("create");
    sim.wait_for(
        &format!("{ns}/{name} rolled out"),
        Duration::from_secs(10),
        |w| rolled_out(w.store.deployments(), w.store.pods(), &ns, &name, &img),
    )
    .await
    .expect("rolled out");
}

async fn wait_rolled_out(sim: &SimCluster, ns: &str, name: &str, img: &str) {
    sim.wait_for(
        &format!("{ns}/{name} rolled out to {img}"),
        Duration::from_secs(15),
        |w| rolled_out(w.store.deployments(), w.store.pods(), ns, name, img),
    )
    .await
    .expect("rolled out");
}

fn pod_names(sim: &SimCluster, ns: &str, app: &str) -> Vec<String> {
    let pods = sim.pods().expect("pods");
    app_pods(pods.iter(), ns, app)
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect()
}

fn get_pod(sim: &SimCluster, ns: &str, name: &str) -> Option<Pod> {
    match sim.get(Kind::Pod, ns, name) {
        Ok(Object::Pod(p)) => Some(p),
        _ => None,
    }
}

fn find_pod<'a>(mut pods: impl Iterator<Item = &'a Pod>, name: &str) -> Option<&'a Pod> {
    pods.find(|p| p.metadata.name.as_deref() == Some(name))
}

/// Unfiltered full-JSON watches of the three resources from `rv`.
async fn watch_all(addr: SocketAddr, rv: u64) -> Vec<Watch> {
    let mut out = Vec::new();
    for path in [
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/replicasets",
        "/api/v1/pods",
    ] {
        let w = http::watch(
            addr,
            &format!("{path}?watch=true&resourceVersion={rv}"),
            JSON,
        )
        .await;
        assert_eq!(w.status, 200, "{path}");
        out.push(w);
    }
    out
}

/// Reads the watches until together they delivered every resourceVersion in `(after, through]`;
/// answers each watch's events in arrival order.
async fn collect_covering(watches: &mut [Watch], after: u64, through: u64) -> Vec<Vec<Value>> {
    let mut out = vec![Vec::new(); watches.len()];
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for (i, w) in watches.iter_mut().enumerate() {
            while let Ok((_, line)) = w.lines.try_recv() {
                let v = line_json(&line);
                assert_ne!(v["type"], "ERROR", "unexpected ERROR: {v}");
                seen.insert(rv_of(&v["object"]));
                out[i].push(v);
            }
        }
        let missing: Vec<u64> = (after + 1..=through)
            .filter(|rv| !seen.contains(rv))
            .collect();
        if missing.is_empty() {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "resourceVersions never delivered by any watch: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One rollout observed on the wire: the pods listed at `rv`, then every event of the three
/// resources after it.
struct Recording {
    rv: u64,
    pods: Vec<Value>,
    watches: Vec<Watch>,
}

async fn record(sim: &SimCluster) -> Recording {
    let rv = quiet(sim).await;
    let list = http::get(sim.addr(), "/api/v1/pods", JSON).await.json();
    assert_eq!(rv_of(&list), rv, "the cluster was quiet");
    let pods = list["items"].as_array().cloned().unwrap_or_default();
    let watches = watch_all(sim.addr(), rv).await;
    Recording { rv, pods, watches }
}

/// Finishes a recording once the cluster is quiet: (deployment, replicaset, pod) events.
async fn finish(sim: &SimCluster, mut r: Recording) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let through = quiet(sim).await;
    let mut streams = collect_covering(&mut r.watches, r.rv, through).await;
    let pods = streams.pop().expect("pods");
    let rss = streams.pop().expect("replicasets");
    let deps = streams.pop().expect("deployments");
    (deps, rss, pods)
}

fn v_name(o: &Value) -> String {
    o["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn v_phase(o: &Value) -> &str {
    o["status"]["phase"].as_str().unwrap_or("")
}

fn v_hash(o: &Value) -> String {
    o["metadata"]["labels"][POD_TEMPLATE_HASH]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn v_finished(o: &Value) -> bool {
    matches!(v_phase(o), "Succeeded" | "Failed")
}

/// Neither deleted nor finished: what counts against maxSurge.
fn v_active(o: &Value) -> bool {
    o["metadata"].get("deletionTimestamp").is_none() && !v_finished(o)
}

/// Active and Ready: what counts as available (minReadySeconds is 0).
fn v_available(o: &Value) -> bool {
    v_active(o)
        && o["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Replays pod events over the listed pods and calls `check` with every state in between.
fn replay_pods(
    initial: &[Value],
    events: &[Value],
    mut check: impl FnMut(&Value, &BTreeMap<String, Value>),
) {
    let mut state: BTreeMap<String, Value> =
        initial.iter().map(|p| (v_name(p), p.clone())).collect();
    for e in events {
        let o = &e["object"];
        match e["type"].as_str() {
            Some("ADDED" | "MODIFIED") => {
                state.insert(v_name(o), o.clone());
            }
            Some("DELETED") => {
                state.remove(&v_name(o));
            }
            other => panic!("unexpected event type {other:?}"),
        }
        check(e, &state);
    }
}

// ----- Paths, GET, methods ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_answer_on_cluster_wide_and_namespaced_paths_for_every_resource() {
    let sim = start().await;
    create_ready(&sim, quick("a", "web").replicas(2)).await;
    create_ready(&sim, quick("b", "api").replicas(1)).await;
    quiet(&sim).await;
    let addr = sim.addr();
    for (kind, list_kind, api_version, cluster, namespaced) in [
        (
            Kind::Deployment,
            "DeploymentList",
            "apps/v1",
            "/apis/apps/v1/deployments",
            "/apis/apps/v1/namespaces/{ns}/deployments",
        ),
        (
            Kind::ReplicaSet,
            "ReplicaSetList",
            "apps/v1",
            "/apis/apps/v1/replicasets",
            "/apis/apps/v1/namespaces/{ns}/replicasets",
        ),
        (
            Kind::Pod,
            "PodList",
            "v1",
            "/api/v1/pods",
            "/api/v1/namespaces/{ns}/pods",
        ),
    ] {
        let stored: Vec<(String, String)> = sim
            .with_world(|w| w.store.list(kind).map(|o| o.key()).collect())
            .expect("store");
        let want = |ns: Option<&str>| -> Vec<String> {
            stored
                .iter()
                .filter(|(n, _)| ns.is_none_or(|ns| n == ns))
                .map(|(n, name)| format!("{n}/{name}"))
                .collect()
        };
        let reply = http::get(addr, cluster, JSON).await;
        assert_eq!(reply.status, 200, "{cluster}");
        assert_eq!(reply.header("content-type"), Some(JSON), "{cluster}");
        assert_eq!(
            reply.header("cache-control"),
            Some("no-cache, private"),
            "{cluster}"
        );
        assert_eq!(
            reply.header("transfer-encoding"),
            Some("chunked"),
            "{cluster}"
        );
        let list = reply.json();
        assert_eq!(list["kind"], list_kind, "{cluster}");
        assert_eq!(list["apiVersion"], api_version, "{cluster}");
        assert_eq!(names(&list), want(None), "{cluster}: every namespace");
        assert!(
            names(&list).iter().any(|n| n.starts_with("a/"))
                && names(&list).iter().any(|n| n.starts_with("b/")),
            "{cluster}: both namespaces present"
        );
        for ns in ["a", "b", "empty"] {
            let path = namespaced.replace("{ns}", ns);
            let reply = http::get(addr, &path, JSON).await;
            assert_eq!(reply.status, 200, "{path}");
            let list = reply.json();
            assert_eq!(list["kind"], list_kind, "{path}");
            assert_eq!(names(&list), want(Some(ns)), "{path}: only its namespace");
        }
    }
    for path in [
        "/api/v1/deployments",
        "/apis/apps/v1/pods",
        "/apis/batch/v1/jobs",
        "/api/v1/namespaces/a/pods/x/y",
    ] {
        let reply = http::get(addr, path, JSON).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.json()["reason"], "NotFound", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_of_one_object_is_the_full_object_with_kind_and_api_version() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(1)).await;
    quiet(&sim).await;
    let rs = sim.with_world(|w| w.store.list(Kind::ReplicaSet).next().map(|o| o.key()));
    let (_, rs_name) = rs.expect("store").expect("a ReplicaSet");
    let pod = pod_names(&sim, "shop", "web").pop().expect("a pod");
    for (kind, kind_name, api_version, path, name) in [
        (
            Kind::Deployment,
            "Deployment",
            "apps/v1",
            "/apis/apps/v1/namespaces/shop/deployments/web".to_string(),
            "web".to_string(),
        ),
        (
            Kind::ReplicaSet,
            "ReplicaSet",
            "apps/v1",
            format!("/apis/apps/v1/namespaces/shop/replicasets/{rs_name}"),
            rs_name.clone(),
        ),
        (
            Kind::Pod,
            "Pod",
            "v1",
            format!("/api/v1/namespaces/shop/pods/{pod}"),
            pod.clone(),
        ),
    ] {
        let reply = http::get(sim.addr(), &path, JSON).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("content-type"), Some(JSON), "{path}");
        let v = reply.json();
        assert_eq!(v["kind"], kind_name, "{path}");
        assert_eq!(v["apiVersion"], api_version, "{path}");
        assert_eq!(v["metadata"]["name"], name.as_str(), "{path}");
        assert!(
            v.get("spec").is_some() && v.get("status").is_some(),
            "{path}"
        );
        let stored = sim.get(kind, "shop", &name).expect("stored").to_json();
        assert_eq!(v, stored, "{path}: exactly the stored object");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_of_one_object_as_partial_object_metadata_is_metadata_only() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(1)).await;
    quiet(&sim).await;
    let pod = pod_names(&sim, "shop", "web").pop().expect("a pod");
    for (kind, path, name) in [
        (
            Kind::Deployment,
            "/apis/apps/v1/namespaces/shop/deployments/web".to_string(),
            "web",
        ),
        (
            Kind::Pod,
            format!("/api/v1/namespaces/shop/pods/{pod}"),
            pod.as_str(),
        ),
    ] {
        let reply = http::get(sim.addr(), &path, META).await;
        assert_eq!(reply.status, 200, "{path}");
        let v = reply.json();
        let keys: BTreeSet<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["apiVersion", "kind", "metadata"]),
            "{path}"
        );
        assert_eq!(v["kind"], "PartialObjectMetadata", "{path}");
        assert_eq!(v["apiVersion"], "meta.k8s.io/v1", "{path}");
        let full = sim.get(kind, "shop", name).expect("stored").to_json();
        assert_eq!(
            v["metadata"], full["metadata"],
            "{path}: the whole metadata"
        );
    }
    // The list media type on a single object is refused, as the real server does.
    let reply = http::get(
        sim.addr(),
        "/apis/apps/v1/namespaces/shop/deployments/web",
        META_LIST,
    )
    .await;
    assert_eq!(reply.status, 406);
    let v = reply.json();
    assert_eq!(v["reason"], "NotAcceptable");
    assert_eq!(
        v["message"],
        "you requested PartialObjectMetadataList, but the requested object is not a list (*apps.Deployment)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_of_a_missing_object_is_a_404_status() {
    let sim = start().await;
    for (path, message, details) in [
        (
            "/api/v1/namespaces/shop/pods/nope",
            "pods \"nope\" not found",
            serde_json::json!({"name": "nope", "kind": "pods"}),
        ),
        (
            "/apis/apps/v1/namespaces/shop/deployments/nope",
            "deployments.apps \"nope\" not found",
            serde_json::json!({"name": "nope", "group": "apps", "kind": "deployments"}),
        ),
        (
            "/apis/apps/v1/namespaces/shop/replicasets/nope",
            "replicasets.apps \"nope\" not found",
            serde_json::json!({"name": "nope", "group": "apps", "kind": "replicasets"}),
        ),
    ] {
        for accept in [JSON, META] {
            let reply = http::get(sim.addr(), path, accept).await;
            assert_eq!(reply.status, 404, "{path}");
            assert_eq!(
                reply.header("content-length"),
                Some(reply.body.len().to_string().as_str()),
                "{path}: errors are sent whole"
            );
            let v = reply.json();
            assert_eq!(v["kind"], "Status", "{path}");
            assert_eq!(v["apiVersion"], "v1", "{path}");
            assert_eq!(v["status"], "Failure", "{path}");
            assert_eq!(v["reason"], "NotFound", "{path}");
            assert_eq!(status_of(&v), Some(404), "{path}");
            assert_eq!(v["message"], message, "{path}");
            assert_eq!(v["details"], details, "{path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_other_than_get_are_405() {
    let sim = start().await;
    sim.create_deployment(&quick("shop", "web").replicas(1))
        .expect("create");
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        for path in [
            "/apis/apps/v1/namespaces/shop/deployments",
            "/apis/apps/v1/namespaces/shop/deployments/web",
            "/api/v1/pods",
        ] {
            let (status, _, body) = request(sim.addr(), method.clone(), path).await;
            assert_eq!(status, 405, "{method} {path}");
            let v: Value = serde_json::from_slice(&body).expect("Status");
            assert_eq!(v["kind"], "Status", "{method} {path}");
            assert_eq!(v["reason"], "MethodNotAllowed", "{method} {path}");
            assert_eq!(status_of(&v), Some(405), "{method} {path}");
        }
    }
    assert!(
        sim.get(Kind::Deployment, "shop", "web").is_ok(),
        "a refused DELETE deletes nothing"
    );
}

// ----- Media types of lists --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_asked_for_with_the_single_object_metadata_type_is_406_as_recorded() {
    let sim = start().await;
    let reply = http::get(sim.addr(), "/api/v1/pods", META).await;
    assert_recorded_headers(
        "pod list as PartialObjectMetadata",
        "list-wrong-accept.json.headers",
        reply.status,
        &reply.headers,
        &reply.body,
    );
    assert_eq!(reply.json(), recorded("list-wrong-accept.json"));
    for (path, ty) in [
        ("/api/v1/namespaces/shop/pods", "*core.PodList"),
        ("/apis/apps/v1/deployments", "*apps.DeploymentList"),
        ("/apis/apps/v1/replicasets", "*apps.ReplicaSetList"),
    ] {
        let reply = http::get(sim.addr(), path, META).await;
        assert_eq!(reply.status, 406, "{path}");
        assert!(reply.header("transfer-encoding").is_none(), "{path}");
        let mut want = recorded("list-wrong-accept.json");
        want["message"] = Value::from(format!(
            "you requested PartialObjectMetadata, but the requested object is a list ({ty})"
        ));
        assert_eq!(reply.json(), want, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_metadata_list_has_null_items_as_recorded() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(2)).await;
    let rv = quiet(&sim).await;
    let path = format!("/api/v1/pods?fieldSelector={}", enc(FINISHED));
    let reply = http::get(sim.addr(), &path, META_LIST).await;
    assert_recorded_headers(
        "empty metadata list",
        "list-pods.meta.json.headers",
        reply.status,
        &reply.headers,
        &reply.body,
    );
    let mut want = recorded("list-pods-finished.meta.json");
    want["metadata"]["resourceVersion"] = Value::from(rv.to_string());
    assert_eq!(reply.json(), want);
    assert!(
        std::str::from_utf8(&reply.body)
            .expect("utf-8")
            .contains("\"items\":null"),
        "null, not []"
    );
    // A full list writes an empty array.
    let full = http::get(sim.addr(), &path, JSON).await.json();
    assert_eq!(full["items"], Value::Array(Vec::new()));
    assert_eq!(full["kind"], "PodList");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_list_items_carry_no_api_version_or_kind() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(2)).await;
    quiet(&sim).await;
    for (kind, path) in [
        (Kind::Deployment, "/apis/apps/v1/deployments"),
        (Kind::ReplicaSet, "/apis/apps/v1/replicasets"),
        (Kind::Pod, "/api/v1/pods"),
    ] {
        let list = http::get(sim.addr(), path, JSON).await.json();
        let items = list["items"].as_array().expect("items");
        assert!(!items.is_empty(), "{path}");
        for item in items {
            assert!(item.get("apiVersion").is_none(), "{path}: {item}");
            assert!(item.get("kind").is_none(), "{path}: {item}");
            let name = item["metadata"]["name"].as_str().expect("name");
            let mut stored = sim.get(kind, "shop", name).expect("stored").to_json();
            let map = stored.as_object_mut().expect("object");
            map.remove("apiVersion");
            map.remove("kind");
            assert_eq!(item, &stored, "{path}: the stored object otherwise");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_list_items_are_partial_object_metadata() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(2)).await;
    quiet(&sim).await;
    for (kind, path) in [
        (Kind::Deployment, "/apis/apps/v1/deployments"),
        (Kind::ReplicaSet, "/apis/apps/v1/replicasets"),
        (Kind::Pod, "/api/v1/pods"),
    ] {
        let reply = http::get(sim.addr(), path, META_LIST).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("transfer-encoding"), Some("chunked"), "{path}");
        let list = reply.json();
        assert_eq!(list["kind"], "PartialObjectMetadataList", "{path}");
        assert_eq!(list["apiVersion"], "meta.k8s.io/v1", "{path}");
        let items = list["items"].as_array().expect("items");
        assert!(!items.is_empty(), "{path}");
        for item in items {
            let keys: BTreeSet<&str> = item
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                BTreeSet::from(["apiVersion", "kind", "metadata"]),
                "{path}"
            );
            assert_eq!(item["kind"], "PartialObjectMetadata", "{path}");
            assert_eq!(item["apiVersion"], "meta.k8s.io/v1", "{path}");
            let name = item["metadata"]["name"].as_str().expect("name");
            let full = sim.get(kind, "shop", name).expect("stored").to_json();
            assert_eq!(item["metadata"], full["metadata"], "{path}");
        }
    }
}

// ----- Paging ----------------------------------------------------------------------------------

/// Pages through `path` with `limit`, checking each page's bookkeeping; answers the pages.
async fn pages(addr: SocketAddr, path: &str, limit: usize, accept: &str) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out: Vec<Value> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let url = match &token {
            Some(t) => format!("{path}{sep}limit={limit}&continue={}", enc(t)),
            None => format!("{path}{sep}limit={limit}"),
        };
        let reply = http::get(addr, &url, accept).await;
        assert_eq!(reply.status, 200, "{url}");
        let page = reply.json();
        assert!(out.len() < 100, "paging never ends");
        if let Some(first) = out.first() {
            assert_eq!(
                page["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"],
                "every page is served at the first page's resourceVersion"
            );
        }
        token = page["metadata"]["continue"].as_str().map(str::to_string);
        out.push(page);
        if token.is_none() {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_and_continue_return_every_object_exactly_once_with_remaining_item_count() {
    let sim = start().await;
    create_ready(&sim, quick("a", "web").replicas(4)).await;
    create_ready(&sim, quick("b", "api").replicas(3)).await;
    quiet(&sim).await;
    let addr = sim.addr();
    let all = names(&http::get(addr, "/api/v1/pods", JSON).await.json());
    assert_eq!(all.len(), 7);
    for accept in [JSON, META_LIST] {
        let got = pages(addr, "/api/v1/pods", 3, accept).await;
        let sizes: Vec<usize> = got.iter().map(|p| names(p).len()).collect();
        assert_eq!(sizes, [3, 3, 1], "{accept}");
        let remaining: Vec<Option<u64>> = got
            .iter()
            .map(|p| p["metadata"]["remainingItemCount"].as_u64())
            .collect();
        assert_eq!(remaining, [Some(4), Some(1), None], "{accept}");
        let last = got.last().expect("pages");
        assert!(last["metadata"].get("continue").is_none(), "{accept}");
        let paged: Vec<String> = got.iter().flat_map(names).collect();
        assert_eq!(paged, all, "{accept}: each object once, in list order");
    }
    // A limit of exactly the count, and one above it, is one page without a continue token.
    for limit in [7, 8] {
        let got = pages(addr, "/api/v1/pods", limit, JSON).await;
        assert_eq!(got.len(), 1);
        assert!(got[0]["metadata"].get("remainingItemCount").is_none());
    }
    // Namespaced, and with a selector: pages still cover everything, but the real server leaves
    // remainingItemCount unset when a selector narrows the list.
    let got = pages(addr, "/api/v1/namespaces/a/pods", 3, JSON).await;
    assert_eq!(
        got.iter().flat_map(names).collect::<Vec<_>>(),
        all.iter()
            .filter(|n| n.starts_with("a/"))
            .cloned()
            .collect::<Vec<_>>()
    );
    assert_eq!(got[0]["metadata"]["remainingItemCount"], 1);
    let path = format!("/api/v1/pods?labelSelector={}", enc("app in (web,api)"));
    let got = pages(addr, &path, 2, JSON).await;
    assert_eq!(got.iter().flat_map(names).collect::<Vec<_>>(), all);
    assert!(got.len() == 4 && got[0]["metadata"].get("continue").is_some());
    assert!(
        got.iter()
            .all(|p| p["metadata"].get("remainingItemCount").is_none()),
        "no remainingItemCount with a selector"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_continue_token_is_410_expired() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(3)).await;
    let rv = quiet(&sim).await;
    let first = http::get(sim.addr(), "/api/v1/pods?limit=1", JSON)
        .await
        .json();
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("a continue token")
        .to_string();
    // A write after the snapshot, then a compaction past it.
    sim.scale("shop", "web", 4).expect("scale");
    sim.wait_for("a write", Duration::from_secs(5), |w| {
        w.store.resource_version() > rv
    })
    .await
    .expect("written");
    sim.compact().expect("compact");
    let reply = http::get(
        sim.addr(),
        &format!("/api/v1/pods?limit=1&continue={}", enc(&token)),
        JSON,
    )
    .await;
    assert_eq!(reply.status, 410);
    assert!(reply.header("content-length").is_some(), "sent whole");
    let v = reply.json();
    assert_eq!(v["kind"], "Status");
    assert_eq!(v["status"], "Failure");
    assert_eq!(v["reason"], "Expired");
    assert_eq!(status_of(&v), Some(410));
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("continue parameter is too old")),
        "{v}"
    );
    // A new list works.
    let fresh = http::get(sim.addr(), "/api/v1/pods?limit=1", JSON).await;
    assert_eq!(fresh.status, 200);
    // A garbled token is a 400, not a crash.
    let bad = http::get(sim.addr(), "/api/v1/pods?limit=1&continue=zz%2F", JSON).await;
    assert_eq!(bad.status, 400);
}

// ----- Selectors -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_selector_supports_every_operator() {
    let sim = start().await;
    sim.create_deployment(&quick("a", "web").replicas(1).label("tier", "front"))
        .expect("create");
    sim.create_deployment(&quick("a", "api").replicas(1).label("tier", "back"))
        .expect("create");
    sim.create_deployment(&quick("a", "db").replicas(1))
        .expect("create");
    let addr = sim.addr();
    let select = |sel: &str| {
        format!(
            "/apis/apps/v1/namespaces/a/deployments?labelSelector={}",
            enc(sel)
        )
    };
    for (sel, want) in [
        ("", &["a/api", "a/db", "a/web"][..]),
        ("tier=front", &["a/web"]),
        ("tier==front", &["a/web"]),
        ("tier!=front", &["a/api", "a/db"]),
        ("tier in (front,back)", &["a/api", "a/web"]),
        ("tier in (front, back)", &["a/api", "a/web"]),
        ("tier notin (front)", &["a/api", "a/db"]),
        ("tier", &["a/api", "a/web"]),
        ("!tier", &["a/db"]),
        ("app=web,tier=front", &["a/web"]),
        ("app=web,tier=back", &[]),
        ("app in (web,db),!tier", &["a/db"]),
    ] {
        for accept in [JSON, META_LIST] {
            let reply = http::get(addr, &select(sel), accept).await;
            assert_eq!(reply.status, 200, "{sel:?}");
            assert_eq!(names(&reply.json()), want, "{sel:?} ({accept})");
        }
    }
    // Pods carry the template's labels.
    sim.wait_for("three pods", Duration::from_secs(5), |w| {
        w.store.pods().count() == 3
    })
    .await
    .expect("pods");
    let pods = http::get(
        addr,
        &format!(
            "/api/v1/namespaces/a/pods?labelSelector={}",
            enc("app in (web,api)")
        ),
        JSON,
    )
    .await
    .json();
    let got: BTreeSet<String> = pods["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| {
            p["metadata"]["labels"]["app"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(got, BTreeSet::from(["api".to_string(), "web".to_string()]));
    // Unparseable selectors are a 400 Status.
    for sel in ["tier in front", "tier in (front", "a b c"] {
        let reply = http::get(addr, &select(sel), JSON).await;
        assert_eq!(reply.status, 400, "{sel:?}");
        let v = reply.json();
        assert_eq!(v["reason"], "BadRequest", "{sel:?}");
        assert_eq!(status_of(&v), Some(400), "{sel:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_selector_on_name_and_namespace_with_each_operator() {
    let sim = start().await;
    for (ns, name) in [("a", "web"), ("b", "web"), ("b", "api")] {
        sim.create_deployment(&quick(ns, name).replicas(1))
            .expect("create");
    }
    let addr = sim.addr();
    for (sel, want) in [
        ("metadata.name=web", &["a/web", "b/web"][..]),
        ("metadata.name==web", &["a/web", "b/web"]),
        ("metadata.name!=web", &["b/api"]),
        ("metadata.namespace=b", &["b/api", "b/web"]),
        ("metadata.namespace==a", &["a/web"]),
        ("metadata.namespace!=b", &["a/web"]),
        ("metadata.namespace=b,metadata.name!=web", &["b/api"]),
        ("metadata.name=nothing", &[]),
    ] {
        for accept in [JSON, META_LIST] {
            let path = format!("/apis/apps/v1/deployments?fieldSelector={}", enc(sel));
            let reply = http::get(addr, &path, accept).await;
            assert_eq!(reply.status, 200, "{sel}");
            assert_eq!(names(&reply.json()), want, "{sel} ({accept})");
        }
    }
    // On a namespaced path the selector narrows further.
    let path = format!(
        "/apis/apps/v1/namespaces/b/deployments?fieldSelector={}",
        enc("metadata.name=web")
    );
    assert_eq!(names(&http::get(addr, &path, JSON).await.json()), ["b/web"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_selector_on_pod_phase_with_each_operator() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "run").replicas(2)).await;
    sim.create_deployment(&quick("shop", "wait").replicas(1).start_seconds(1000.0))
        .expect("create");
    sim.wait_for("a scheduled Pending pod", Duration::from_secs(5), |w| {
        app_pods(w.store.pods(), "shop", "wait")
            .iter()
            .any(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_some()))
    })
    .await
    .expect("pending pod");
    let running = pod_names(&sim, "shop", "run");
    let pending = pod_names(&sim, "shop", "wait");
    let ns = |v: &[String]| -> Vec<String> {
        let mut v: Vec<String> = v.iter().map(|n| format!("shop/{n}")).collect();
        v.sort();
        v
    };
    let addr = sim.addr();
    for (sel, want) in [
        ("status.phase=Running", ns(&running)),
        ("status.phase==Running", ns(&running)),
        ("status.phase=Pending", ns(&pending)),
        ("status.phase!=Running", ns(&pending)),
        ("status.phase!=Pending", ns(&running)),
        (FINISHED, Vec::new()),
        ("status.phase=Running,metadata.namespace=shop", ns(&running)),
        ("status.phase=Running,metadata.namespace=other", Vec::new()),
    ] {
        for path in ["/api/v1/pods", "/api/v1/namespaces/shop/pods"] {
            let url = format!("{path}?fieldSelector={}", enc(sel));
            let reply = http::get(addr, &url, JSON).await;
            assert_eq!(reply.status, 200, "{url}");
            assert_eq!(names(&reply.json()), want, "{url}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_field_selector_is_400() {
    let sim = start().await;
    for (path, sel, message) in [
        (
            "/apis/apps/v1/deployments",
            "status.phase=Running",
            "field label not supported: status.phase",
        ),
        (
            "/apis/apps/v1/replicasets",
            "spec.replicas=1",
            "field label not supported: spec.replicas",
        ),
        (
            "/api/v1/pods",
            "status.reason=Evicted",
            "field label not supported: status.reason",
        ),
    ] {
        for watch in ["", "&watch=true"] {
            let url = format!("{path}?fieldSelector={}{watch}", enc(sel));
            let reply = http::get(sim.addr(), &url, JSON).await;
            assert_eq!(reply.status, 400, "{url}");
            let v = reply.json();
            assert_eq!(v["kind"], "Status", "{url}");
            assert_eq!(v["reason"], "BadRequest", "{url}");
            assert_eq!(status_of(&v), Some(400), "{url}");
            assert_eq!(v["message"], message, "{url}");
        }
    }
    let url = format!("/api/v1/pods?fieldSelector={}", enc("metadata.name"));
    assert_eq!(
        http::get(sim.addr(), &url, JSON).await.status,
        400,
        "no operator"
    );
}

// ----- Watches ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumed_from_a_resource_version_delivers_exactly_the_changes_after_it() {
    let sim = start().await;
    let from = quiet(&sim).await;
    let mut first = watch_all(sim.addr(), from).await;
    create_ready(&sim, quick("shop", "web").replicas(2)).await;
    sim.set_image("shop", "web", V2).expect("set image");
    wait_rolled_out(&sim, "shop", "web", V2).await;
    let through = quiet(&sim).await;
    let whole = collect_covering(&mut first, from, through).await;
    // Resume from the middle of the history.
    let mut rvs: Vec<u64> = whole
        .iter()
        .flatten()
        .map(|e| rv_of(&e["object"]))
        .collect();
    rvs.sort_unstable();
    let middle = rvs[rvs.len() / 2];
    let mut resumed = watch_all(sim.addr(), middle).await;
    let tail = collect_covering(&mut resumed, middle, through).await;
    for (i, what) in ["deployments", "replicasets", "pods"].iter().enumerate() {
        let want: Vec<&Value> = whole[i]
            .iter()
            .filter(|e| rv_of(&e["object"]) > middle)
            .collect();
        let got: Vec<&Value> = tail[i].iter().collect();
        assert!(!want.is_empty(), "{what}: changes after {middle}");
        assert_eq!(
            got, want,
            "{what}: the same events after {middle}, nothing before"
        );
    }
    // Resuming from the latest version delivers nothing old.
    let mut latest = watch_all(sim.addr(), through).await;
    for w in &mut latest {
        assert!(
            next_line(w, Duration::from_millis(200)).await.is_none(),
            "nothing after the latest version"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_without_resource_version_starts_with_the_current_objects_as_added() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(2)).await;
    quiet(&sim).await;
    let list = http::get(sim.addr(), "/api/v1/pods", META_LIST)
        .await
        .json();
    for query in ["watch=true", "watch=true&resourceVersion=0"] {
        let mut w = http::watch(sim.addr(), &format!("/api/v1/pods?{query}"), META).await;
        let mut got = Vec::new();
        for _ in 0..2 {
            let e = next_line(&mut w, Duration::from_secs(2))
                .await
                .expect("ADDED");
            assert_eq!(e["type"], "ADDED", "{query}");
            got.push(e["object"].clone());
        }
        assert_eq!(Value::Array(got), list["items"], "{query}");
        assert!(
            next_line(&mut w, Duration::from_millis(100))
                .await
                .is_none()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_versions_are_one_increasing_sequence_across_resources() {
    let sim = start().await;
    let from = quiet(&sim).await;
    let mut watches = watch_all(sim.addr(), from).await;
    create_ready(&sim, quick("a", "web").replicas(2)).await;
    create_ready(&sim, quick("b", "web").replicas(1)).await;
    sim.set_image("a", "web", V2).expect("set image");
    wait_rolled_out(&sim, "a", "web", V2).await;
    let through = quiet(&sim).await;
    let streams = collect_covering(&mut watches, from, through).await;
    let mut all: Vec<u64> = Vec::new();
    for (stream, what) in streams.iter().zip(["deployments", "replicasets", "pods"]) {
        let rvs: Vec<u64> = stream.iter().map(|e| rv_of(&e["object"])).collect();
        assert!(!rvs.is_empty(), "{what}");
        assert!(
            rvs.windows(2).all(|p| p[0] < p[1]),
            "{what}: strictly increasing within a stream: {rvs:?}"
        );
        all.extend(rvs);
    }
    all.sort_unstable();
    let want: Vec<u64> = (from + 1..=through).collect();
    assert_eq!(all, want, "every version once, across the three resources");
    // Lists of every resource are served at the one current version; objects' versions are
    // distinct across resources.
    let mut object_rvs = BTreeSet::new();
    for path in [
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/replicasets",
        "/api/v1/pods",
    ] {
        let list = http::get(sim.addr(), path, JSON).await.json();
        assert_eq!(rv_of(&list), through, "{path}");
        for item in list["items"].as_array().expect("items") {
            let rv = rv_of(item);
            assert!(rv <= through, "{path}");
            assert!(object_rvs.insert(rv), "{path}: version {rv} used twice");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_compacted_version_is_one_expired_error_event_as_recorded() {
    let sim = start().await;
    let old = quiet(&sim).await;
    create_ready(&sim, quick("shop", "web").replicas(1)).await;
    let now = quiet(&sim).await;
    sim.compact().expect("compact");
    for (path, accept) in [("/api/v1/pods", META), ("/apis/apps/v1/deployments", JSON)] {
        let mut w = http::watch(
            sim.addr(),
            &format!("{path}?watch=true&resourceVersion={old}"),
            accept,
        )
        .await;
        assert_recorded_headers(
            "expired watch",
            "watch-too-old.json.headers",
            w.status,
            &w.headers,
            &[],
        );
        let e = next_line(&mut w, Duration::from_secs(2))
            .await
            .expect("an ERROR event");
        let mut want = recorded("watch-too-old.json");
        want["object"]["message"] = Value::from(format!("too old resource version: {old} ({now})"));
        assert_eq!(
            e, want,
            "{path}: the recorded event, with this cluster's versions"
        );
        assert!(
            ends_within(&mut w, Duration::from_secs(2)).await,
            "{path}: the stream ends after the ERROR"
        );
    }
    // From the compaction point on, watches work.
    let mut w = http::watch(
        sim.addr(),
        &format!("/api/v1/pods?watch=true&resourceVersion={now}"),
        JSON,
    )
    .await;
    sim.scale("shop", "web", 2).expect("scale");
    let e = next_line(&mut w, Duration::from_secs(3))
        .await
        .expect("event");
    assert_eq!(e["type"], "ADDED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_window_expires_old_versions_by_itself() {
    let sim = start_with(SimConfig {
        history: 5,
        ..SimConfig::default()
    })
    .await;
    create_ready(&sim, quick("shop", "web").replicas(2)).await;
    let now = quiet(&sim).await;
    // The last 5 changes are kept: a watch from now-5 gets exactly them.
    let mut kept = watch_all(sim.addr(), now - 5).await;
    let streams = collect_covering(&mut kept, now - 5, now).await;
    assert_eq!(streams.iter().map(Vec::len).sum::<usize>(), 5);
    // One version older has expired, without any compaction asked for.
    for rv in [now - 6, 101] {
        let mut w = http::watch(
            sim.addr(),
            &format!("/api/v1/pods?watch=true&resourceVersion={rv}"),
            META,
        )
        .await;
        assert_eq!(w.status, 200);
        let e = next_line(&mut w, Duration::from_secs(2))
            .await
            .expect("ERROR");
        assert_eq!(e["type"], "ERROR");
        assert_eq!(e["object"]["reason"], "Expired");
        assert_eq!(status_of(&e["object"]), Some(410));
        assert_eq!(
            e["object"]["message"],
            format!("too old resource version: {rv} ({})", now - 5)
        );
        assert!(ends_within(&mut w, Duration::from_secs(2)).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookmarks_come_when_allowed_shaped_like_the_recorded_one() {
    let sim = start_with(SimConfig {
        api: ApiConfig {
            bookmark_interval: Duration::from_millis(100),
            ..ApiConfig::default()
        },
        ..SimConfig::default()
    })
    .await;
    let rv = quiet(&sim).await;
    let mut with = http::watch(
        sim.addr(),
        &format!("/api/v1/pods?watch=true&allowWatchBookmarks=true&resourceVersion={rv}"),
        META,
    )
    .await;
    let mut without = http::watch(
        sim.addr(),
        &format!("/api/v1/pods?watch=true&resourceVersion={rv}"),
        META,
    )
    .await;
    let recorded_line = recorded_text("watch-bookmark.meta.jsonl");
    let mut want = line_json(recorded_line.trim());
    want["object"]["metadata"]["resourceVersion"] = Value::from(rv.to_string());
    for _ in 0..2 {
        let e = next_line(&mut with, Duration::from_secs(2))
            .await
            .expect("a BOOKMARK");
        assert_eq!(e, want, "metadata-only, only the resourceVersion");
    }
    assert!(
        next_line(&mut without, Duration::from_millis(300))
            .await
            .is_none(),
        "no BOOKMARK unless allowed"
    );
    // A bookmark carries the latest version of the whole store, including writes to other
    // resources the watch does not show.
    create_ready(&sim, quick("shop", "web").replicas(1)).await;
    let now = quiet(&sim).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let e = next_line(&mut with, Duration::from_secs(2))
            .await
            .expect("events");
        if e["type"] == "BOOKMARK" && rv_of(&e["object"]) == now {
            break;
        }
        assert!(Instant::now() < deadline, "no bookmark at {now}");
    }
    // A full-object watch's bookmark names its kind.
    let mut full = http::watch(
        sim.addr(),
        &format!(
            "/apis/apps/v1/deployments?watch=true&allowWatchBookmarks=true&resourceVersion={now}"
        ),
        JSON,
    )
    .await;
    let e = next_line(&mut full, Duration::from_secs(2))
        .await
        .expect("BOOKMARK");
    assert_eq!(e["type"], "BOOKMARK");
    assert_eq!(e["object"]["kind"], "Deployment");
    assert_eq!(e["object"]["apiVersion"], "apps/v1");
    assert_eq!(rv_of(&e["object"]), now);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_seconds_ends_the_watch() {
    let sim = start().await;
    let rv = quiet(&sim).await;
    let t0 = Instant::now();
    let mut short = http::watch(
        sim.addr(),
        &format!("/api/v1/pods?watch=true&timeoutSeconds=1&resourceVersion={rv}"),
        META,
    )
    .await;
    let mut open = http::watch(
        sim.addr(),
        &format!("/api/v1/pods?watch=true&resourceVersion={rv}"),
        META,
    )
    .await;
    let mut zero = http::watch(
        sim.addr(),
        &format!("/api/v1/pods?watch=true&timeoutSeconds=0&resourceVersion={rv}"),
        META,
    )
    .await;
    assert_eq!(short.status, 200);
    assert!(
        ends_within(&mut short, Duration::from_secs(3)).await,
        "the watch ends"
    );
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(2500),
        "ended after {took:?}, want about 1 s"
    );
    for (w, what) in [
        (&mut open, "no timeoutSeconds"),
        (&mut zero, "timeoutSeconds=0"),
    ] {
        assert!(
            matches!(
                w.lines.try_recv(),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty)
            ),
            "a watch with {what} runs to the server's own limit: still open"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_initial_events_is_refused_as_recorded() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(1)).await;
    let mut w = http::watch(
        sim.addr(),
        "/api/v1/pods?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
        META,
    )
    .await;
    assert_recorded_headers(
        "streaming list",
        "watch-error-event.json.headers",
        w.status,
        &w.headers,
        &[],
    );
    let e = next_line(&mut w, Duration::from_secs(2))
        .await
        .expect("an ERROR event");
    assert_eq!(e, recorded("watch-error-event.json"));
    assert!(
        ends_within(&mut w, Duration::from_secs(2)).await,
        "nothing but the ERROR, then the end"
    );
}

/// Events of one watch about one object.
fn about<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| v_name(&e["object"]) == name)
        .collect()
}

/// Reads a watch until `done` holds for what it delivered.
async fn read_until(w: &mut Watch, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&out) {
        assert!(Instant::now() < deadline, "{what}: got {out:#?}");
        if let Some(e) = next_line(w, Duration::from_millis(100)).await {
            out.push(e);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_filtered_watches_turn_a_finishing_pod_into_deleted_and_added() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(2)).await;
    let rv = quiet(&sim).await;
    let watch = |sel: &str| {
        format!(
            "/api/v1/pods?watch=true&resourceVersion={rv}&fieldSelector={}",
            enc(sel)
        )
    };
    let mut running = http::watch(sim.addr(), &watch("status.phase=Running"), JSON).await;
    let mut finished = http::watch(sim.addr(), &watch(FINISHED), JSON).await;
    let victim = pod_names(&sim, "shop", "web").pop().expect("a pod");
    sim.delete_pod("shop", &victim, None).expect("delete");
    let is_deleted = |e: &Value| e["type"] == "DELETED" && v_name(&e["object"]) == victim;
    let is_replacement = |e: &Value| e["type"] == "ADDED" && v_name(&e["object"]) != victim;
    let run_events = read_until(
        &mut running,
        "DELETED and the replacement in the Running watch",
        |es| es.iter().any(is_deleted) && es.iter().any(is_replacement),
    )
    .await;
    let fin_events = read_until(&mut finished, "DELETED in the finished watch", |es| {
        es.iter().any(is_deleted)
    })
    .await;
    sim.wait_for("victim gone", Duration::from_secs(3), |w| {
        find_pod(w.store.pods(), &victim).is_none()
    })
    .await
    .expect("gone");

    // status.phase=Running: the deletion request is a MODIFIED (still Running), the finish a
    // DELETED that shows the last matching state (Running) at the finishing write's version.
    let run: Vec<&Value> = about(&run_events, &victim);
    let types: Vec<&str> = run.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types, ["MODIFIED", "DELETED"], "{run:#?}");
    assert!(run[0]["object"]["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(v_phase(&run[1]["object"]), "Running");
    assert_eq!(
        run[1]["object"]["metadata"]["deletionGracePeriodSeconds"],
        60
    );

    // The finished-pods selector: ADDED when it turns Succeeded, MODIFIED by the kubelet's grace-0
    // delete, DELETED when it goes.
    let fin: Vec<&Value> = about(&fin_events, &victim);
    let types: Vec<&str> = fin.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types, ["ADDED", "MODIFIED", "DELETED"], "{fin:#?}");
    assert_eq!(v_phase(&fin[0]["object"]), "Succeeded");
    assert_eq!(
        fin[0]["object"]["metadata"]["deletionGracePeriodSeconds"],
        60
    );
    assert_eq!(
        fin[1]["object"]["metadata"]["deletionGracePeriodSeconds"],
        0
    );
    assert_eq!(
        rv_of(&run[1]["object"]),
        rv_of(&fin[0]["object"]),
        "one write: DELETED from one watch, ADDED to the other"
    );
    assert_eq!(
        fin_events.len(),
        fin.len(),
        "nothing else finished: {fin_events:#?}"
    );
    // The replacement enters the Running watch as ADDED, already Running.
    let added = run_events
        .iter()
        .find(|e| is_replacement(e))
        .expect("ADDED");
    assert_eq!(v_phase(&added["object"]), "Running");
}

// ----- Cluster behaviour -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_starts_no_new_pod_before_every_old_pod_has_finished() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(3).recreate()).await;
    let rec = record(&sim).await;
    let initial = rec.pods.clone();
    let old_hash = v_hash(&initial[0]);
    sim.set_image("shop", "web", V2).expect("set image");
    wait_rolled_out(&sim, "shop", "web", V2).await;
    let (_, _, pods) = finish(&sim, rec).await;
    let mut new_seen = false;
    replay_pods(&initial, &pods, |e, state| {
        if state.values().any(|p| v_hash(p) != old_hash) {
            new_seen = true;
            let unfinished: Vec<String> = state
                .values()
                .filter(|p| v_hash(p) == old_hash && !v_finished(p))
                .map(v_name)
                .collect();
            assert!(
                unfinished.is_empty(),
                "a new pod exists while old pods still run or drain: {unfinished:?} (at {})",
                e["object"]["metadata"]["resourceVersion"]
            );
        }
    });
    assert!(new_seen, "the new pods came");
    // All old pods were deleted together, before any of them finished.
    let first = |cond: &dyn Fn(&Value) -> bool| -> Vec<u64> {
        let mut by_pod: BTreeMap<String, u64> = BTreeMap::new();
        for e in &pods {
            let o = &e["object"];
            if v_hash(o) == old_hash && cond(o) {
                by_pod.entry(v_name(o)).or_insert(rv_of(o));
            }
        }
        by_pod.into_values().collect()
    };
    let deleted = first(&|o| o["metadata"].get("deletionTimestamp").is_some());
    let finished = first(&|o| v_finished(o));
    assert_eq!((deleted.len(), finished.len()), (3, 3));
    assert!(deleted.iter().max() < finished.iter().min());
}

/// Rolls a Deployment of `replicas` from v1 to v2 with the given maxSurge/maxUnavailable and
/// answers the most active pods and the fewest available pods over every state the store went
/// through (active: neither deleted nor finished; available: active and Ready).
async fn rolling_bounds(
    replicas: i32,
    surge: IntOrString,
    unavailable: IntOrString,
) -> (usize, usize) {
    let sim = start().await;
    let d = quick("shop", "web")
        .replicas(replicas)
        .rolling(surge, unavailable)
        .start_seconds(0.2)
        .drain_seconds(0.3);
    create_ready(&sim, d).await;
    let rec = record(&sim).await;
    let initial = rec.pods.clone();
    sim.set_image("shop", "web", V2).expect("set image");
    wait_rolled_out(&sim, "shop", "web", V2).await;
    let (_, _, pods) = finish(&sim, rec).await;
    let (mut most, mut fewest) = (0, usize::MAX);
    replay_pods(&initial, &pods, |_, state| {
        most = most.max(state.values().filter(|p| v_active(p)).count());
        fewest = fewest.min(state.values().filter(|p| v_available(p)).count());
    });
    (most, fewest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_25_percent_of_4_never_exceeds_5_pods_or_drops_below_3_available() {
    let (most, fewest) = rolling_bounds(
        4,
        IntOrString::String("25%".into()),
        IntOrString::String("25%".into()),
    )
    .await;
    assert_eq!(
        (most, fewest),
        (5, 3),
        "25% of 4 is one pod each way, and both are used"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_percentages_round_surge_up_and_unavailable_down() {
    // 30% of 4 = 1.2: maxSurge 2 (up), maxUnavailable 1 (down).
    let (most, fewest) = rolling_bounds(
        4,
        IntOrString::String("30%".into()),
        IntOrString::String("30%".into()),
    )
    .await;
    assert_eq!((most, fewest), (6, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_with_numbers_surge_2_unavailable_0() {
    let (most, fewest) = rolling_bounds(3, IntOrString::Int(2), IntOrString::Int(0)).await;
    assert_eq!((most, fewest), (5, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_with_numbers_surge_0_unavailable_1() {
    let (most, fewest) = rolling_bounds(3, IntOrString::Int(0), IntOrString::Int(1)).await;
    assert_eq!((most, fewest), (3, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_deployment_gets_no_new_replicaset_until_resumed() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(2)).await;
    let rec = record(&sim).await;
    sim.set_paused("shop", "web", true).expect("pause");
    sim.set_image("shop", "web", V2).expect("set image");
    sim.wait_for(
        "the controller saw the paused new template",
        Duration::from_secs(5),
        |w| {
            find_deployment(w.store.deployments(), "shop", "web").is_some_and(|d| {
                d.status.as_ref().and_then(|s| s.observed_generation) == d.metadata.generation
                    && progressing(d) == Some(("Unknown".into(), "DeploymentPaused".into()))
            })
        },
    )
    .await
    .expect("paused");
    // Paused, the cluster goes quiet with nothing rolled.
    let paused_at = quiet(&sim).await;
    let (rs_count, images) = sim
        .with_world(|w| {
            let images: Vec<String> = app_pods(w.store.pods(), "shop", "web")
                .iter()
                .filter_map(|p| image(p).map(str::to_string))
                .collect();
            (w.store.count(Kind::ReplicaSet), images)
        })
        .expect("store");
    assert_eq!(rs_count, 1, "no new ReplicaSet while paused");
    assert_eq!(images, [V1, V1]);
    sim.set_paused("shop", "web", false).expect("resume");
    wait_rolled_out(&sim, "shop", "web", V2).await;
    let (deps, rss, pods) = finish(&sim, rec).await;
    let added: Vec<u64> = rss
        .iter()
        .filter(|e| e["type"] == "ADDED")
        .map(|e| rv_of(&e["object"]))
        .collect();
    assert_eq!(added.len(), 1, "one new ReplicaSet");
    assert!(added[0] > paused_at + 1, "created only after the resume");
    assert!(
        pods.iter()
            .filter(|e| rv_of(&e["object"]) <= paused_at)
            .all(|e| e["type"] != "ADDED"),
        "no pod created while paused"
    );
    // The Progressing reasons go as recorded: paused, resumed (its own write, before the new
    // ReplicaSet), then progressing and available.
    let recorded_deps: Vec<Value> =
        std::fs::read_to_string(recording_dir("pause").join("watch-deployments.jsonl"))
            .expect("recording")
            .lines()
            .map(line_json)
            .collect();
    assert_eq!(
        progressing_reasons(&deps),
        progressing_reasons(&recorded_deps)
    );
}

/// The Progressing condition's reasons over a Deployment stream, repeats collapsed.
fn progressing_reasons(events: &[Value]) -> Vec<String> {
    let mut reasons: Vec<String> = Vec::new();
    for e in events {
        let reason = e["object"]["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Progressing"))
            .and_then(|c| c["reason"].as_str())
            .unwrap_or_default()
            .to_string();
        if reasons.last() != Some(&reason) {
            reasons.push(reason);
        }
    }
    reasons
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_reuses_the_old_replicaset_with_a_new_revision_and_revision_history() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(2)).await;
    sim.set_image("shop", "web", V2).expect("set image");
    wait_rolled_out(&sim, "shop", "web", V2).await;
    let before: Vec<ReplicaSet> = sim
        .with_world(|w| w.store.replicasets().cloned().collect())
        .expect("store");
    assert_eq!(before.len(), 2);
    let rev = |rs: &ReplicaSet, key: &str| -> Option<String> {
        rs.metadata.annotations.as_ref()?.get(key).cloned()
    };
    let first = before
        .iter()
        .find(|rs| rev(rs, REVISION).as_deref() == Some("1"))
        .expect("revision 1")
        .clone();
    sim.rollback("shop", "web", 1).expect("rollback");
    wait_rolled_out(&sim, "shop", "web", V1).await;
    quiet(&sim).await;
    let after: Vec<ReplicaSet> = sim
        .with_world(|w| w.store.replicasets().cloned().collect())
        .expect("store");
    assert_eq!(after.len(), 2, "no third ReplicaSet");
    let reused = after
        .iter()
        .find(|rs| rs.metadata.uid == first.metadata.uid)
        .expect("the first ReplicaSet is still there");
    assert_eq!(rev(reused, REVISION).as_deref(), Some("3"));
    assert_eq!(rev(reused, REVISION_HISTORY).as_deref(), Some("1"));
    assert_eq!(reused.spec.as_ref().and_then(|s| s.replicas), Some(2));
    let other = after
        .iter()
        .find(|rs| rs.metadata.uid != first.metadata.uid)
        .expect("the v2 ReplicaSet");
    assert_eq!(rev(other, REVISION).as_deref(), Some("2"));
    assert_eq!(rev(other, REVISION_HISTORY), None);
    assert_eq!(other.spec.as_ref().and_then(|s| s.replicas), Some(0));
    let Object::Deployment(d) = sim
        .get(Kind::Deployment, "shop", "web")
        .expect("deployment")
    else {
        panic!("not a Deployment");
    };
    assert_eq!(
        d.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            .map(String::as_str),
        Some("3")
    );
    let hash = first
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(POD_TEMPLATE_HASH))
        .cloned();
    let pods = sim.pods().expect("pods");
    assert!(
        pods.iter().all(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(POD_TEMPLATE_HASH))
                == hash.as_ref()
                && p.metadata.owner_references.as_ref().is_some_and(|o| {
                    o.iter()
                        .any(|r| Some(&r.uid) == first.metadata.uid.as_ref())
                })
        }),
        "the pods are the first ReplicaSet's again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_deadline_exceeded_when_pods_never_become_ready() {
    let sim = start().await;
    let rv = quiet(&sim).await;
    let mut w = http::watch(
        sim.addr(),
        &format!("/apis/apps/v1/deployments?watch=true&resourceVersion={rv}"),
        JSON,
    )
    .await;
    sim.create_deployment(
        &quick("shop", "web")
            .replicas(2)
            .start_seconds(1000.0)
            .progress_deadline_seconds(1),
    )
    .expect("create");
    let progressing_of = |e: &Value| -> Option<(String, String)> {
        e["object"]["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Progressing")
            .map(|c| {
                (
                    c["status"].as_str().unwrap_or_default().to_string(),
                    c["reason"].as_str().unwrap_or_default().to_string(),
                )
            })
    };
    let exceeded =
        |e: &Value| progressing_of(e) == Some(("False".into(), "ProgressDeadlineExceeded".into()));
    let events = read_until(&mut w, "ProgressDeadlineExceeded", |es| {
        es.iter().any(exceeded)
    })
    .await;
    let first_exceeded = events.iter().position(exceeded).expect("exceeded");
    assert!(
        events[..first_exceeded]
            .iter()
            .any(|e| progressing_of(e).is_some_and(|(s, _)| s == "True")),
        "Progressing was True before the deadline"
    );
    let rs_name = sim
        .with_world(|w| {
            w.store
                .replicasets()
                .next()
                .and_then(|r| r.metadata.name.clone())
        })
        .expect("store")
        .expect("a ReplicaSet");
    let cond = events[first_exceeded]["object"]["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Progressing"))
        .cloned()
        .expect("condition");
    assert_eq!(
        cond["message"],
        format!("ReplicaSet \"{rs_name}\" has timed out progressing.")
    );
    assert!(cond["lastUpdateTime"].is_string() && cond["lastTransitionTime"].is_string());
    // It stays so while nothing progresses; the pods never started.
    quiet(&sim).await;
    let Object::Deployment(d) = sim
        .get(Kind::Deployment, "shop", "web")
        .expect("deployment")
    else {
        panic!("not a Deployment");
    };
    assert_eq!(
        progressing(&d),
        Some(("False".into(), "ProgressDeadlineExceeded".into()))
    );
    assert!(
        sim.pods()
            .expect("pods")
            .iter()
            .all(|p| pod_phase(p) == "Pending")
    );
}

/// `status.terminatingReplicas` of shop/web and of each ReplicaSet.
fn terminating<'a>(
    deps: impl Iterator<Item = &'a Deployment>,
    rss: impl Iterator<Item = &'a ReplicaSet>,
) -> (Option<i32>, Vec<Option<i32>>) {
    let d = find_deployment(deps, "shop", "web")
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.terminating_replicas);
    let r = rss
        .map(|r| r.status.as_ref().and_then(|s| s.terminating_replicas))
        .collect();
    (d, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_after_the_deadline_turns_progressing_true_again() {
    let sim = start().await;
    sim.create_deployment(
        &quick("shop", "web")
            .replicas(2)
            .start_seconds(1000.0)
            .progress_deadline_seconds(1),
    )
    .expect("create");
    let is = |d: Option<&Deployment>, status: &str, reason: &str| {
        d.and_then(progressing)
            .is_some_and(|(s, r)| s == status && r == reason)
    };
    sim.wait_for("ProgressDeadlineExceeded", Duration::from_secs(6), |w| {
        is(
            find_deployment(w.store.deployments(), "shop", "web"),
            "False",
            "ProgressDeadlineExceeded",
        )
    })
    .await
    .expect("exceeded");
    // One pod starts: progress, so Progressing is True again (not yet complete).
    let pod = pod_names(&sim, "shop", "web").pop().expect("a pod");
    sim.edit_pod("shop", &pod, |p| {
        p.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(START_SECONDS.into(), "0".into());
    })
    .expect("edit");
    sim.wait_for("Progressing True again", Duration::from_secs(3), |w| {
        is(
            find_deployment(w.store.deployments(), "shop", "web"),
            "True",
            "ReplicaSetUpdated",
        )
    })
    .await
    .expect("progressing again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_replicas_excludes_pods_already_succeeded() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(2).drain_seconds(0.5)).await;
    let victim = pod_names(&sim, "shop", "web").pop().expect("a pod");
    // The finalizer keeps the finished pod object around, as a slow kubelet or a finalizer would.
    sim.add_finalizer("shop", &victim, "example.com/hold")
        .expect("finalizer");
    sim.delete_pod("shop", &victim, None).expect("delete");
    sim.wait_for(
        "the draining pod counted as terminating",
        Duration::from_secs(3),
        |w| {
            let running = find_pod(w.store.pods(), &victim).is_some_and(|p| {
                pod_phase(p) == "Running" && p.metadata.deletion_timestamp.is_some()
            });
            running
                && terminating(w.store.deployments(), w.store.replicasets())
                    == (Some(1), vec![Some(1)])
        },
    )
    .await
    .expect("terminating 1 while draining");
    sim.wait_for("the pod finished", Duration::from_secs(3), |w| {
        find_pod(w.store.pods(), &victim).is_some_and(|p| pod_phase(p) == "Succeeded")
    })
    .await
    .expect("finished");
    let (counts, still_there) = sim
        .with_world(|w| {
            (
                terminating(w.store.deployments(), w.store.replicasets()),
                find_pod(w.store.pods(), &victim).is_some(),
            )
        })
        .expect("store");
    assert!(still_there, "the finished pod object still exists");
    assert_eq!(
        counts,
        (Some(0), vec![Some(0)]),
        "finished pods are not terminating"
    );
    // On the wire too.
    let d = http::get(
        sim.addr(),
        "/apis/apps/v1/namespaces/shop/deployments/web",
        JSON,
    )
    .await
    .json();
    assert_eq!(d["status"]["terminatingReplicas"], 0);
    assert_eq!(
        d["status"]["replicas"], 2,
        "the replacement counts, the finished pod not"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_pod_stays_terminating_until_its_grace_period() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(2).grace_seconds(2)).await;
    let mut pods = pod_names(&sim, "shop", "web");
    let stuck = pods.pop().expect("pod");
    let normal = pods.pop().expect("pod");
    sim.make_pod_stuck("shop", &stuck).expect("stuck");
    let t0 = Instant::now();
    sim.delete_pod("shop", &stuck, None).expect("delete");
    sim.delete_pod("shop", &normal, None).expect("delete");
    sim.wait_for(
        "the normal pod drained and gone",
        Duration::from_secs(3),
        |w| find_pod(w.store.pods(), &normal).is_none(),
    )
    .await
    .expect("normal gone");
    let p = get_pod(&sim, "shop", &stuck).expect("the stuck pod is still there");
    assert_eq!(pod_phase(&p), "Running", "still draining");
    assert!(p.metadata.deletion_timestamp.is_some());
    assert_eq!(p.metadata.deletion_grace_period_seconds, Some(2));
    sim.wait_for("the stuck pod finished", Duration::from_secs(5), |w| {
        find_pod(w.store.pods(), &stuck).is_none_or(|p| pod_phase(p) != "Running")
    })
    .await
    .expect("killed at its deadline");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1950),
        "finished {took:?} after deletion, before its 2 s grace period"
    );
    sim.wait_for("the stuck pod gone", Duration::from_secs(2), |w| {
        find_pod(w.store.pods(), &stuck).is_none()
    })
    .await
    .expect("gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizer_holds_a_finished_pod_until_removed() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(1)).await;
    let victim = pod_names(&sim, "shop", "web").pop().expect("a pod");
    sim.add_finalizer("shop", &victim, "example.com/hold")
        .expect("finalizer");
    sim.delete_pod("shop", &victim, None).expect("delete");
    // Finished, given the kubelet's grace-0 delete, and its replacement Ready: still held.
    sim.wait_for(
        "the pod finished, force-deleted, and replaced",
        Duration::from_secs(5),
        |w| {
            let held = find_pod(w.store.pods(), &victim).is_some_and(|p| {
                pod_phase(p) == "Succeeded" && p.metadata.deletion_grace_period_seconds == Some(0)
            });
            let replaced = app_pods(w.store.pods(), "shop", "web")
                .iter()
                .any(|p| p.metadata.name.as_deref() != Some(&victim) && pod_ready(p));
            held && replaced
        },
    )
    .await
    .expect("held");
    quiet(&sim).await;
    let p = get_pod(&sim, "shop", &victim).expect("held by its finalizer");
    assert_eq!(
        p.metadata.finalizers.as_deref(),
        Some(&["example.com/hold".to_string()][..])
    );
    sim.remove_finalizers("shop", &victim).expect("remove");
    sim.wait_for("the pod gone", Duration::from_secs(2), |w| {
        find_pod(w.store.pods(), &victim).is_none()
    })
    .await
    .expect("gone once released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_pod_stays_failed_without_deletion_timestamp_and_is_replaced() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(2)).await;
    let victim = pod_names(&sim, "shop", "web").pop().expect("a pod");
    sim.evict_pod("shop", &victim).expect("evict");
    wait_rolled_out_with_leftover(&sim, &victim).await;
    quiet(&sim).await;
    let p = get_pod(&sim, "shop", &victim).expect("the evicted pod stays");
    let st = p.status.clone().unwrap_or_default();
    assert_eq!(st.phase.as_deref(), Some("Failed"));
    assert_eq!(st.reason.as_deref(), Some("Evicted"));
    assert!(p.metadata.deletion_timestamp.is_none());
    assert!(p.metadata.deletion_grace_period_seconds.is_none());
    let rs = sim
        .with_world(|w| w.store.replicasets().next().cloned())
        .expect("store")
        .expect("ReplicaSet");
    let rs_status = rs.status.unwrap_or_default();
    assert_eq!(rs_status.replicas, 2, "the leftover does not count");
    assert_eq!(rs_status.available_replicas, Some(2));
    let url = format!("/api/v1/pods?fieldSelector={}", enc(FINISHED));
    assert_eq!(
        names(&http::get(sim.addr(), &url, META_LIST).await.json()),
        [format!("shop/{victim}")],
        "the leftover is what the finished-pods selector finds"
    );
}

/// Two Ready pods besides the evicted leftover.
async fn wait_rolled_out_with_leftover(sim: &SimCluster, victim: &str) {
    sim.wait_for("a replacement Ready", Duration::from_secs(5), |w| {
        let ready = app_pods(w.store.pods(), "shop", "web")
            .iter()
            .filter(|p| p.metadata.name.as_deref() != Some(victim))
            .filter(|p| pod_ready(p) && p.metadata.deletion_timestamp.is_none())
            .count();
        ready == 2
    })
    .await
    .expect("replaced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_deployment_cascades_to_replicasets_then_pods() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(2)).await;
    let rec = record(&sim).await;
    sim.delete_deployment("shop", "web").expect("delete");
    sim.wait_for("everything gone", Duration::from_secs(5), |w| {
        Kind::ALL.iter().all(|k| w.store.count(*k) == 0)
    })
    .await
    .expect("cascaded");
    let (deps, rss, pods) = finish(&sim, rec).await;
    let deleted = |es: &[Value]| -> Vec<u64> {
        es.iter()
            .filter(|e| e["type"] == "DELETED")
            .map(|e| rv_of(&e["object"]))
            .collect()
    };
    let (d, r, p) = (deleted(&deps), deleted(&rss), deleted(&pods));
    assert_eq!((d.len(), r.len(), p.len()), (1, 1, 2));
    assert!(
        d[0] < r[0],
        "the Deployment goes first, then its ReplicaSet"
    );
    // Each pod is deleted gracefully after its ReplicaSet is gone, drains, then goes.
    let mut by_pod: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for e in &pods {
        by_pod.entry(v_name(&e["object"])).or_default().push(e);
    }
    assert_eq!(by_pod.len(), 2);
    for (name, events) in by_pod {
        let marked = events
            .iter()
            .find(|e| e["object"]["metadata"].get("deletionTimestamp").is_some())
            .expect("a graceful delete");
        assert!(
            rv_of(&marked["object"]) > r[0],
            "{name}: after the ReplicaSet"
        );
        assert_eq!(
            marked["object"]["metadata"]["deletionGracePeriodSeconds"], 60,
            "{name}: graceful"
        );
        let last = events.last().expect("events");
        assert_eq!(last["type"], "DELETED", "{name}");
        assert!(
            events.iter().any(|e| v_phase(&e["object"]) == "Succeeded"),
            "{name}: drained"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_to_an_object_already_gone_does_not_bring_it_back() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(1)).await;
    let rv = quiet(&sim).await;
    let pod = pod_names(&sim, "shop", "web").pop().expect("a pod");
    // A test's read-modify-write that loses the race with the pod's final delete.
    let stale = sim.get(Kind::Pod, "shop", &pod).expect("pod");
    let key = ("shop".to_string(), pod.clone());
    let (removed, written) = sim
        .with_world(|w| {
            let removed = w.store.remove(Kind::Pod, &key).is_some();
            (removed, w.store.update(stale).is_some())
        })
        .expect("store");
    assert!(removed && !written);
    assert!(sim.get(Kind::Pod, "shop", &pod).is_err(), "still gone");
    let mut w = http::watch(
        sim.addr(),
        &format!("/api/v1/pods?watch=true&resourceVersion={rv}"),
        JSON,
    )
    .await;
    let e = next_line(&mut w, Duration::from_secs(2))
        .await
        .expect("DELETED");
    assert_eq!(
        (e["type"].as_str(), v_name(&e["object"])),
        (Some("DELETED"), pod.clone())
    );
    let later = read_until(&mut w, "the replacement", |es| {
        es.iter().any(|e| e["type"] == "ADDED")
    })
    .await;
    assert!(
        later.iter().all(|e| v_name(&e["object"]) != pod),
        "no event brings {pod} back: {later:#?}"
    );
}

// ----- StatefulSets, DaemonSets, ControllerRevisions, Nodes ------------------------------------

use kube_sim::{
    CONTROLLER_REVISION_HASH, STATEFULSET_POD_NAME, STATEFULSET_REVISION_HASH, SimDaemonSet,
    SimNode, SimStatefulSet, World,
};

/// A StatefulSet that starts and drains fast.
fn quick_sts(namespace: &str, name: &str) -> SimStatefulSet {
    SimStatefulSet::new(namespace, name)
        .start_seconds(0.1)
        .drain_seconds(0.2)
}

/// A DaemonSet that starts and drains fast.
fn quick_ds(namespace: &str, name: &str) -> SimDaemonSet {
    SimDaemonSet::new(namespace, name)
        .start_seconds(0.1)
        .drain_seconds(0.2)
}

/// The pods a workload (by its `app` label) has in `ns`: all on `img`, Running and Ready, none
/// terminating, `n` of them.
fn workload_pods_at(w: &World, ns: &str, app: &str, img: &str, n: usize) -> bool {
    let pods = app_pods(w.store.pods(), ns, app);
    pods.len() == n
        && pods.iter().all(|p| {
            image(p) == Some(img)
                && pod_phase(p) == "Running"
                && pod_ready(p)
                && p.metadata.deletion_timestamp.is_none()
        })
}

/// The StatefulSet is rolled out to `img`: its pods, and a status that says so.
fn sts_rolled_out(w: &World, ns: &str, name: &str, img: &str) -> bool {
    let Some(s) = w.store.statefulsets().find(|s| {
        s.metadata.namespace.as_deref() == Some(ns) && s.metadata.name.as_deref() == Some(name)
    }) else {
        return false;
    };
    let replicas = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = s.status.clone().unwrap_or_default();
    workload_pods_at(w, ns, name, img, replicas as usize)
        && st.observed_generation == s.metadata.generation
        && st.ready_replicas.unwrap_or(0) == replicas
        && st.updated_replicas.unwrap_or(0) == replicas
        && st.replicas == replicas
}

/// The DaemonSet runs `img` on `nodes` nodes, and its status says so.
fn ds_rolled_out(w: &World, ns: &str, name: &str, img: &str, nodes: i32) -> bool {
    let Some(d) = w.store.daemonsets().find(|d| {
        d.metadata.namespace.as_deref() == Some(ns) && d.metadata.name.as_deref() == Some(name)
    }) else {
        return false;
    };
    let st = d.status.clone().unwrap_or_default();
    workload_pods_at(w, ns, name, img, nodes as usize)
        && st.observed_generation == d.metadata.generation
        && st.desired_number_scheduled == nodes
        && st.current_number_scheduled == nodes
        && st.updated_number_scheduled.unwrap_or(0) == nodes
        && st.number_available.unwrap_or(0) == nodes
}

async fn wait_sts(sim: &SimCluster, ns: &str, name: &str, img: &str) {
    sim.wait_for(
        &format!("{ns}/{name} rolled out to {img}"),
        Duration::from_secs(20),
        |w| sts_rolled_out(w, ns, name, img),
    )
    .await
    .expect("StatefulSet rolled out");
}

async fn wait_ds(sim: &SimCluster, ns: &str, name: &str, img: &str, nodes: i32) {
    sim.wait_for(
        &format!("{ns}/{name} on {nodes} nodes at {img}"),
        Duration::from_secs(20),
        |w| ds_rolled_out(w, ns, name, img, nodes),
    )
    .await
    .expect("DaemonSet rolled out");
}

/// The ControllerRevisions of one owner as (name, revision, creationTimestamp), by revision.
fn revisions_of(sim: &SimCluster, owner: &str) -> Vec<(String, i64, String)> {
    let mut v: Vec<(String, i64, String)> = sim
        .with_world(|w| {
            w.store
                .controller_revisions()
                .filter(|r| {
                    r.metadata
                        .owner_references
                        .as_ref()
                        .is_some_and(|o| o.iter().any(|o| o.name == owner))
                })
                .map(|r| {
                    (
                        r.metadata.name.clone().unwrap_or_default(),
                        r.revision,
                        format!("{:?}", r.metadata.creation_timestamp),
                    )
                })
                .collect()
        })
        .expect("world");
    v.sort_by_key(|r| r.1);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_kinds_list_and_get_cluster_wide_namespaced_and_metadata_only() {
    let sim = start().await;
    sim.add_node(&SimNode::new("node-a")).expect("node");
    sim.add_node(&SimNode::new("node-b")).expect("node");
    sim.create_statefulset(&quick_sts("db", "pg").replicas(2))
        .expect("sts");
    sim.create_daemonset(&quick_ds("infra", "agent"))
        .expect("ds");
    wait_sts(&sim, "db", "pg", V1).await;
    wait_ds(&sim, "infra", "agent", V1, 2).await;
    let addr = sim.addr();
    for (path, kind, want) in [
        (
            "/apis/apps/v1/statefulsets",
            "StatefulSetList",
            vec!["db/pg"],
        ),
        (
            "/apis/apps/v1/namespaces/db/statefulsets",
            "StatefulSetList",
            vec!["db/pg"],
        ),
        (
            "/apis/apps/v1/daemonsets",
            "DaemonSetList",
            vec!["infra/agent"],
        ),
        (
            "/apis/apps/v1/namespaces/db/daemonsets",
            "DaemonSetList",
            vec![],
        ),
        ("/api/v1/nodes", "NodeList", vec!["/node-a", "/node-b"]),
    ] {
        let list = http::get(addr, path, JSON).await;
        assert_eq!(list.status, 200, "{path}");
        let v = list.json();
        assert_eq!(v["kind"], kind, "{path}");
        assert_eq!(names(&v), want, "{path}");
        let meta = http::get(addr, path, META_LIST).await.json();
        assert_eq!(meta["kind"], "PartialObjectMetadataList", "{path}");
        assert_eq!(names(&meta), want, "{path}");
    }
    // Revisions: one per workload, the kind's own hash label, an owner, data and a revision.
    let revs = http::get(addr, "/apis/apps/v1/controllerrevisions", JSON)
        .await
        .json();
    assert_eq!(revs["kind"], "ControllerRevisionList");
    let items = revs["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    for r in items {
        assert_eq!(r["revision"], 1);
        assert!(r.get("kind").is_none(), "list items carry no kind");
        assert!(r["metadata"].get("generation").is_none());
        assert_eq!(r["data"]["spec"]["template"]["$patch"], "replace");
        let owner = &r["metadata"]["ownerReferences"][0];
        assert_eq!(owner["controller"], true);
        let hash_label = match owner["kind"].as_str() {
            Some("StatefulSet") => STATEFULSET_REVISION_HASH,
            _ => CONTROLLER_REVISION_HASH,
        };
        let hash = r["metadata"]["labels"][hash_label].as_str().expect("hash");
        assert_eq!(
            v_name(r),
            format!("{}-{hash}", owner["name"].as_str().unwrap_or_default())
        );
    }
    let ns_revs = http::get(
        addr,
        "/apis/apps/v1/namespaces/db/controllerrevisions",
        META_LIST,
    )
    .await
    .json();
    assert_eq!(names(&ns_revs).len(), 1);
    assert_eq!(ns_revs["items"][0]["kind"], "PartialObjectMetadata");
    // GETs: namespaced kinds under their namespace, nodes without one.
    let node = http::get(addr, "/api/v1/nodes/node-a", JSON).await;
    assert_eq!(node.status, 200);
    let node = node.json();
    assert_eq!(
        (&node["kind"], &node["apiVersion"]),
        (&"Node".into(), &"v1".into())
    );
    assert!(node["metadata"].get("namespace").is_none());
    let sts = http::get(addr, "/apis/apps/v1/namespaces/db/statefulsets/pg", META).await;
    assert_eq!(sts.json()["kind"], "PartialObjectMetadata");
    let rev_name = v_name(&ns_revs["items"][0]);
    let rev = http::get(
        addr,
        &format!("/apis/apps/v1/namespaces/db/controllerrevisions/{rev_name}"),
        JSON,
    )
    .await
    .json();
    assert_eq!(rev["kind"], "ControllerRevision");
    let missing = http::get(addr, "/api/v1/nodes/nope", JSON).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "nodes \"nope\" not found");
    let missing = http::get(addr, "/apis/apps/v1/namespaces/db/daemonsets/nope", JSON).await;
    assert_eq!(
        missing.json()["message"],
        "daemonsets.apps \"nope\" not found"
    );
    // A cluster-scoped kind has no namespaced path, nor a namespace field.
    assert_eq!(
        http::get(addr, "/api/v1/namespaces/db/nodes", JSON)
            .await
            .status,
        404
    );
    let by_ns = http::get(
        addr,
        &format!(
            "/api/v1/nodes?fieldSelector={}",
            enc("metadata.namespace=x")
        ),
        JSON,
    )
    .await;
    assert_eq!(by_ns.status, 400);
    let by_name = http::get(
        addr,
        &format!(
            "/api/v1/nodes?fieldSelector={}",
            enc("metadata.name=node-b")
        ),
        JSON,
    )
    .await
    .json();
    assert_eq!(names(&by_name), vec!["/node-b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_selectors_pick_revisions_and_pods_by_their_kind_specific_labels() {
    let sim = start().await;
    sim.add_node(&SimNode::new("node-a")).expect("node");
    sim.create_statefulset(&quick_sts("db", "pg")).expect("sts");
    sim.create_daemonset(&quick_ds("db", "agent")).expect("ds");
    wait_sts(&sim, "db", "pg", V1).await;
    wait_ds(&sim, "db", "agent", V1, 1).await;
    let addr = sim.addr();
    let get = |path: String| async move { http::get(addr, &path, JSON).await.json() };
    // StatefulSet revisions carry controller.kubernetes.io/hash, DaemonSet ones
    // controller-revision-hash.
    let sts_revs = get(format!(
        "/apis/apps/v1/controllerrevisions?labelSelector={}",
        enc(STATEFULSET_REVISION_HASH)
    ))
    .await;
    let sts_rev = names(&sts_revs);
    assert_eq!(sts_rev.len(), 1);
    assert!(sts_rev[0].starts_with("db/pg-"));
    let ds_revs = get(format!(
        "/apis/apps/v1/controllerrevisions?labelSelector={}",
        enc(CONTROLLER_REVISION_HASH)
    ))
    .await;
    let ds_rev = names(&ds_revs);
    assert_eq!(ds_rev.len(), 1);
    assert!(ds_rev[0].starts_with("db/agent-"));
    // Pods by revision: the StatefulSet's pods carry the whole revision name, the DaemonSet's
    // the hash only.
    let sts_rev_name = sts_rev[0].trim_start_matches("db/").to_string();
    let pods = get(format!(
        "/api/v1/namespaces/db/pods?labelSelector={}",
        enc(&format!("{CONTROLLER_REVISION_HASH}={sts_rev_name}"))
    ))
    .await;
    assert_eq!(names(&pods), vec!["db/pg-0", "db/pg-1", "db/pg-2"]);
    let hash = ds_rev[0].trim_start_matches("db/agent-").to_string();
    let pods = get(format!(
        "/api/v1/pods?labelSelector={}",
        enc(&format!(
            "{CONTROLLER_REVISION_HASH}={hash},pod-template-generation=1"
        ))
    ))
    .await;
    assert_eq!(names(&pods).len(), 1);
    assert!(names(&pods)[0].starts_with("db/agent-"));
    let one = get(format!(
        "/api/v1/pods?labelSelector={}",
        enc(&format!("{STATEFULSET_POD_NAME}=pg-1"))
    ))
    .await;
    assert_eq!(names(&one), vec!["db/pg-1"]);
    let first = get(format!(
        "/apis/apps/v1/statefulsets?fieldSelector={}",
        enc("metadata.name=pg")
    ))
    .await;
    assert_eq!(names(&first), vec!["db/pg"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_of_the_new_kinds_resume_bookmark_and_expire() {
    let sim = start_with(SimConfig {
        api: ApiConfig {
            bookmark_interval: Duration::from_millis(100),
            ..ApiConfig::default()
        },
        ..SimConfig::default()
    })
    .await;
    sim.add_node(&SimNode::new("node-a")).expect("node");
    sim.create_statefulset(&quick_sts("db", "pg").replicas(1))
        .expect("sts");
    wait_sts(&sim, "db", "pg", V1).await;
    let rv = quiet(&sim).await;
    let addr = sim.addr();
    let watch = |path: &str, accept: &'static str| {
        let path = format!("{path}?watch=true&resourceVersion={rv}");
        async move { http::watch(addr, &path, accept).await }
    };
    let mut revs = watch("/apis/apps/v1/controllerrevisions", JSON).await;
    let mut revs_meta = watch("/apis/apps/v1/namespaces/db/controllerrevisions", META).await;
    let mut sets = watch("/apis/apps/v1/statefulsets", JSON).await;
    let mut nodes = watch("/api/v1/nodes", META).await;
    sim.set_workload_image(Kind::StatefulSet, "db", "pg", V2)
        .expect("image");
    sim.add_node(&SimNode::new("node-b")).expect("node");
    let added = read_until(&mut revs, "the new revision", |e| !e.is_empty()).await;
    assert_eq!(added[0]["type"], "ADDED");
    assert_eq!(added[0]["object"]["kind"], "ControllerRevision");
    assert_eq!(added[0]["object"]["revision"], 2);
    let added_meta = read_until(&mut revs_meta, "the new revision", |e| !e.is_empty()).await;
    assert_eq!(added_meta[0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(
        v_name(&added_meta[0]["object"]),
        v_name(&added[0]["object"])
    );
    // Server order: the StatefulSet's generation bump comes before its revision.
    let set_events = read_until(&mut sets, "the generation bump", |e| !e.is_empty()).await;
    assert_eq!(set_events[0]["object"]["metadata"]["generation"], 2);
    assert!(rv_of(&set_events[0]["object"]) < rv_of(&added[0]["object"]));
    let node_events = read_until(&mut nodes, "the new node", |e| !e.is_empty()).await;
    assert_eq!(node_events[0]["type"], "ADDED");
    assert_eq!(v_name(&node_events[0]["object"]), "node-b");
    wait_sts(&sim, "db", "pg", V2).await;
    // Bookmarks name the kind.
    let now = quiet(&sim).await;
    let mut bookmarked = http::watch(
        sim.addr(),
        &format!(
            "/apis/apps/v1/daemonsets?watch=true&allowWatchBookmarks=true&resourceVersion={now}"
        ),
        JSON,
    )
    .await;
    let e = next_line(&mut bookmarked, Duration::from_secs(2))
        .await
        .expect("BOOKMARK");
    assert_eq!(e["type"], "BOOKMARK");
    assert_eq!(e["object"]["kind"], "DaemonSet");
    assert_eq!(rv_of(&e["object"]), now);
    // A compacted version is the recorded 410 ERROR event, for these kinds too.
    sim.compact().expect("compact");
    let mut old = http::watch(
        sim.addr(),
        &format!("/apis/apps/v1/controllerrevisions?watch=true&resourceVersion={rv}"),
        META,
    )
    .await;
    let e = next_line(&mut old, Duration::from_secs(2))
        .await
        .expect("ERROR");
    assert_eq!(e["type"], "ERROR");
    assert_eq!(status_of(&e["object"]), Some(410));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_rollback_raises_the_old_revision_keeping_its_name_and_creation_time() {
    let sim = start().await;
    sim.create_statefulset(&quick_sts("db", "pg")).expect("sts");
    wait_sts(&sim, "db", "pg", V1).await;
    let first = revisions_of(&sim, "pg");
    assert_eq!(first.len(), 1);
    sim.set_workload_image(Kind::StatefulSet, "db", "pg", V2)
        .expect("image");
    wait_sts(&sim, "db", "pg", V2).await;
    let two = revisions_of(&sim, "pg");
    assert_eq!(two.len(), 2);
    let rv = quiet(&sim).await;
    let mut revs = http::watch(
        sim.addr(),
        &format!("/apis/apps/v1/controllerrevisions?watch=true&resourceVersion={rv}"),
        JSON,
    )
    .await;
    sim.rollback_workload(Kind::StatefulSet, "db", "pg", 1)
        .expect("rollback");
    wait_sts(&sim, "db", "pg", V1).await;
    let after = revisions_of(&sim, "pg");
    assert_eq!(after.len(), 2, "no new revision: {after:?}");
    // The first revision, same name and creationTimestamp, now numbered 3.
    assert_eq!(after[1], (first[0].0.clone(), 3, first[0].2.clone()));
    assert_eq!(after[0], two[1]);
    let e = read_until(&mut revs, "the raised revision", |e| !e.is_empty()).await;
    assert_eq!(e[0]["type"], "MODIFIED");
    assert_eq!(e[0]["object"]["revision"], 3);
    let (update, current, labels) = sim
        .with_world(|w| {
            let s = w.store.statefulsets().next().cloned().expect("sts");
            let st = s.status.unwrap_or_default();
            let labels: BTreeSet<String> = w
                .store
                .pods()
                .filter_map(|p| {
                    p.metadata
                        .labels
                        .as_ref()?
                        .get(CONTROLLER_REVISION_HASH)
                        .cloned()
                })
                .collect();
            (st.update_revision, st.current_revision, labels)
        })
        .expect("world");
    assert_eq!(update.as_deref(), Some(first[0].0.as_str()));
    assert_eq!(current, update);
    assert_eq!(labels, BTreeSet::from([first[0].0.clone()]));
    assert!(
        sim.rollback_workload(Kind::StatefulSet, "db", "pg", 9)
            .is_err(),
        "no revision 9"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_rollback_raises_the_old_revision() {
    let sim = start().await;
    sim.add_node(&SimNode::new("node-a")).expect("node");
    sim.create_daemonset(&quick_ds("infra", "agent"))
        .expect("ds");
    wait_ds(&sim, "infra", "agent", V1, 1).await;
    let first = revisions_of(&sim, "agent");
    sim.set_workload_image(Kind::DaemonSet, "infra", "agent", V2)
        .expect("image");
    wait_ds(&sim, "infra", "agent", V2, 1).await;
    sim.rollback_workload(Kind::DaemonSet, "infra", "agent", 1)
        .expect("rollback");
    wait_ds(&sim, "infra", "agent", V1, 1).await;
    let after = revisions_of(&sim, "agent");
    assert_eq!(after.len(), 2);
    assert_eq!(after[1], (first[0].0.clone(), 3, first[0].2.clone()));
    // The template generation counts every template change, rollbacks included.
    let generation = sim
        .with_world(|w| {
            w.store.daemonsets().next().and_then(|d| {
                d.metadata
                    .annotations
                    .as_ref()?
                    .get(kube_sim::TEMPLATE_GENERATION)
                    .cloned()
            })
        })
        .expect("world");
    assert_eq!(generation.as_deref(), Some("3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_creates_in_order_and_scales_down_from_the_highest_ordinal() {
    let sim = start().await;
    let rv = quiet(&sim).await;
    let mut pods = http::watch(
        sim.addr(),
        &format!("/api/v1/pods?watch=true&resourceVersion={rv}"),
        JSON,
    )
    .await;
    sim.create_statefulset(&quick_sts("db", "pg")).expect("sts");
    wait_sts(&sim, "db", "pg", V1).await;
    sim.scale_statefulset("db", "pg", 1).expect("scale");
    sim.wait_for("one pod left", Duration::from_secs(10), |w| {
        sts_rolled_out(w, "db", "pg", V1) && app_pods(w.store.pods(), "db", "pg").len() == 1
    })
    .await
    .expect("scaled down");
    let events = read_until(&mut pods, "pg-1 gone", |e| {
        e.iter()
            .any(|e| e["type"] == "DELETED" && v_name(&e["object"]) == "pg-1")
    })
    .await;
    // Each pod is created only once the one before is Ready.
    let mut ready: BTreeSet<String> = BTreeSet::new();
    let mut created = Vec::new();
    let mut deleted = Vec::new();
    for e in &events {
        let o = &e["object"];
        let name = v_name(o);
        if e["type"] == "ADDED" {
            let ord: usize = name.trim_start_matches("pg-").parse().expect("ordinal");
            assert_eq!(
                ready.len(),
                ord,
                "{name} created after {ready:?} were ready"
            );
            created.push(name.clone());
            assert_eq!(o["spec"]["hostname"], name.as_str());
            assert_eq!(o["spec"]["subdomain"], "pg");
            assert_eq!(o["metadata"]["labels"][STATEFULSET_POD_NAME], name.as_str());
        }
        if v_available(o) {
            ready.insert(name.clone());
        }
        if e["type"] == "MODIFIED"
            && o["metadata"].get("deletionTimestamp").is_some()
            && !deleted.contains(&name)
        {
            deleted.push(name);
        }
    }
    assert_eq!(created, ["pg-0", "pg-1", "pg-2"]);
    assert_eq!(deleted, ["pg-2", "pg-1"], "highest ordinal first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_on_delete_replaces_only_deleted_pods_at_the_update_revision() {
    let sim = start().await;
    sim.create_statefulset(&quick_sts("db", "pg").on_delete())
        .expect("sts");
    wait_sts(&sim, "db", "pg", V1).await;
    let uid = |sim: &SimCluster, name: &str| get_pod(sim, "db", name).and_then(|p| p.metadata.uid);
    let before = uid(&sim, "pg-1");
    sim.set_workload_image(Kind::StatefulSet, "db", "pg", V2)
        .expect("image");
    let rv = quiet(&sim).await;
    let status = |sim: &SimCluster| {
        sim.with_world(|w| w.store.statefulsets().next().and_then(|s| s.status.clone()))
            .expect("world")
            .expect("status")
    };
    let st = status(&sim);
    assert_ne!(st.update_revision, st.current_revision);
    assert_eq!(st.updated_replicas, None, "nothing replaced by itself");
    assert_eq!(st.current_replicas, Some(3));
    // The user deletes pg-1: it comes back under the same name, a new object, updated.
    sim.delete_pod("db", "pg-1", None).expect("delete");
    sim.wait_for("pg-1 replaced", Duration::from_secs(10), |w| {
        find_pod(w.store.pods(), "pg-1")
            .is_some_and(|p| image(p) == Some(V2) && pod_ready(p) && p.metadata.uid != before)
    })
    .await
    .expect("pg-1 replaced");
    let after = quiet(&sim).await;
    assert!(after > rv);
    let st = status(&sim);
    assert_eq!(st.updated_replicas, Some(1));
    assert_eq!(st.current_replicas, Some(2));
    for name in ["pg-0", "pg-2"] {
        let p = get_pod(&sim, "db", name).expect("pod");
        assert_eq!(image(&p), Some(V1), "{name} untouched");
    }
    let p = get_pod(&sim, "db", "pg-1").expect("pod");
    assert_eq!(
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(CONTROLLER_REVISION_HASH)),
        st.update_revision.as_ref()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_statefulset_pod_holds_the_rolling_update_until_its_grace_period() {
    let sim = start().await;
    sim.create_statefulset(&quick_sts("db", "pg").replicas(2).grace_seconds(2))
        .expect("sts");
    wait_sts(&sim, "db", "pg", V1).await;
    sim.make_pod_stuck("db", "pg-1").expect("stuck");
    let t0 = Instant::now();
    sim.set_workload_image(Kind::StatefulSet, "db", "pg", V2)
        .expect("image");
    sim.wait_for("pg-1 terminating", Duration::from_secs(5), |w| {
        find_pod(w.store.pods(), "pg-1").is_some_and(|p| p.metadata.deletion_timestamp.is_some())
    })
    .await
    .expect("terminating");
    // pg-0 waits for pg-1's successor.
    sim.wait_for(
        "pg-0 untouched while pg-1 is stuck",
        Duration::from_secs(1),
        |w| {
            find_pod(w.store.pods(), "pg-0")
                .is_some_and(|p| p.metadata.deletion_timestamp.is_some())
        },
    )
    .await
    .expect_err("pg-0 must not be deleted yet");
    wait_sts(&sim, "db", "pg", V2).await;
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "held until the deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_follows_nodes_their_taints_and_removal() {
    let sim = start().await;
    sim.add_node(&SimNode::new("node-a")).expect("node");
    sim.add_node(&SimNode::new("node-t").taint("dedicated", Some("x"), "NoSchedule"))
        .expect("node");
    sim.create_daemonset(&quick_ds("infra", "agent"))
        .expect("ds");
    // The tainted node runs no pod and is not desired.
    wait_ds(&sim, "infra", "agent", V1, 1).await;
    let revisions = revisions_of(&sim, "agent");
    sim.add_node(&SimNode::new("node-b")).expect("node");
    wait_ds(&sim, "infra", "agent", V1, 2).await;
    let on_b = sim
        .with_world(|w| {
            app_pods(w.store.pods(), "infra", "agent")
                .iter()
                .find(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("node-b"))
                .and_then(|p| p.metadata.name.clone())
        })
        .expect("world")
        .expect("a pod on node-b");
    let rv = quiet(&sim).await;
    let mut pods = http::watch(
        sim.addr(),
        &format!("/api/v1/pods?watch=true&resourceVersion={rv}"),
        JSON,
    )
    .await;
    sim.remove_node("node-b").expect("remove");
    wait_ds(&sim, "infra", "agent", V1, 1).await;
    let events = read_until(&mut pods, "the orphan gone", |e| {
        e.iter().any(|e| e["type"] == "DELETED")
    })
    .await;
    let orphan = about(&events, &on_b);
    assert_eq!(orphan[0]["object"]["status"]["phase"], "Failed");
    assert_eq!(orphan.last().expect("events")["type"], "DELETED");
    assert_eq!(
        revisions_of(&sim, "agent"),
        revisions,
        "nodes make no revision"
    );
    assert!(sim.remove_node("node-b").is_err());
    // A Deployment's pods go onto a node they tolerate.
    create_ready(&sim, quick("shop", "web").replicas(1)).await;
    let nodes: Vec<String> = sim
        .pods()
        .expect("pods")
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some("shop"))
        .filter_map(|p| p.spec.as_ref()?.node_name.clone())
        .collect();
    assert_eq!(nodes, ["node-a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_surge_never_leaves_a_node_without_an_available_pod() {
    let sim = start().await;
    for n in ["node-a", "node-b", "node-c"] {
        sim.add_node(&SimNode::new(n)).expect("node");
    }
    sim.create_daemonset(
        &quick_ds("infra", "agent").rolling(IntOrString::Int(1), IntOrString::Int(0)),
    )
    .expect("ds");
    wait_ds(&sim, "infra", "agent", V1, 3).await;
    let rv = quiet(&sim).await;
    let list = http::get(sim.addr(), "/api/v1/pods", JSON).await.json();
    assert_eq!(rv_of(&list), rv, "the cluster was quiet");
    let initial = list["items"].as_array().cloned().unwrap_or_default();
    let mut pods = http::watch(
        sim.addr(),
        &format!("/api/v1/pods?watch=true&resourceVersion={rv}"),
        JSON,
    )
    .await;
    sim.set_workload_image(Kind::DaemonSet, "infra", "agent", V2)
        .expect("image");
    wait_ds(&sim, "infra", "agent", V2, 3).await;
    let pod_events = read_until(&mut pods, "every old pod gone", |e| {
        e.iter().filter(|e| e["type"] == "DELETED").count() == 3
    })
    .await;
    let (mut fewest, mut most) = (usize::MAX, 0);
    replay_pods(&initial, &pod_events, |_, state| {
        let per_node = |node: &str| {
            state
                .values()
                .filter(|p| p["spec"]["nodeName"] == node && v_available(p))
                .count()
        };
        for n in ["node-a", "node-b", "node-c"] {
            fewest = fewest.min(per_node(n));
        }
        most = most.max(state.values().filter(|p| v_active(p)).count());
    });
    assert!(
        fewest >= 1,
        "maxUnavailable 0: every node keeps an available pod"
    );
    assert_eq!(most, 4, "maxSurge 1: one extra pod at a time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_statefulset_cascades_to_revisions_and_pods() {
    let sim = start().await;
    sim.create_statefulset(&quick_sts("db", "pg").replicas(2))
        .expect("sts");
    wait_sts(&sim, "db", "pg", V1).await;
    sim.delete_workload(Kind::StatefulSet, "db", "pg")
        .expect("delete");
    sim.wait_for("everything gone", Duration::from_secs(10), |w| {
        w.store.count(Kind::ControllerRevision) == 0 && w.store.count(Kind::Pod) == 0
    })
    .await
    .expect("cascade");
    assert!(
        sim.delete_workload(Kind::StatefulSet, "db", "pg").is_err(),
        "already gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_statefulsets_and_daemonsets_are_what_the_controllers_would_keep() {
    // Filled in bulk, then left to the controllers: a steady state they leave alone.
    let sim = start().await;
    let spec = kube_sim::BulkSpec::pods(20).with_kinds(2, 2, 3);
    assert_eq!(spec.total_pods(), 20 + 20 + 6);
    sim.populate(&spec).expect("populate");
    let versions = |sim: &SimCluster| {
        sim.with_world(|w| {
            [
                Kind::StatefulSet,
                Kind::DaemonSet,
                Kind::ControllerRevision,
                Kind::Node,
            ]
            .iter()
            .flat_map(|k| w.store.list(*k))
            .map(|o| (o.key(), o.meta().resource_version.clone()))
            .collect::<Vec<_>>()
        })
        .expect("world")
    };
    let before = versions(&sim);
    assert_eq!(before.len(), 2 + 2 + 4 + 3);
    quiet(&sim).await;
    assert_eq!(versions(&sim), before, "the controllers changed nothing");
    let addr = sim.addr();
    let sets = http::get(addr, "/apis/apps/v1/statefulsets", JSON)
        .await
        .json();
    assert_eq!(sets["items"][0]["status"]["readyReplicas"], 10);
    let pods = http::get(
        addr,
        &format!(
            "/api/v1/pods?labelSelector={}",
            enc(CONTROLLER_REVISION_HASH)
        ),
        META_LIST,
    )
    .await
    .json();
    assert_eq!(names(&pods).len(), 26);
}

// ----- Why a terminating pod is stuck ----------------------------------------------------------
//
// What the exporter reads to tell a stuck termination's cause: the pod (its node, phase and
// containers) and its node (the Ready condition; 404 when gone, 403 when it may not look). A
// deletion's deadline is shown passed by a control pod deleted at the same moment with the same
// grace period and made stuck: the kubelet kills it at that deadline, so once it is gone the
// deadline is behind us.

use kube_sim::{NODE_NAME, NodeReadiness, Verb};

/// The condition of `type_` in a node's JSON.
fn node_condition<'a>(node: &'a Value, type_: &str) -> &'a Value {
    node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {node}"))
}

/// `GET /api/v1/nodes/{name}`.
async fn get_node(sim: &SimCluster, name: &str) -> http::Reply {
    http::get(sim.addr(), &format!("/api/v1/nodes/{name}"), JSON).await
}

/// `GET /api/v1/namespaces/{ns}/pods/{name}`, which must answer 200.
async fn get_pod_json(sim: &SimCluster, ns: &str, name: &str) -> Value {
    let reply = http::get(
        sim.addr(),
        &format!("/api/v1/namespaces/{ns}/pods/{name}"),
        JSON,
    )
    .await;
    assert_eq!(reply.status, 200, "GET pod {ns}/{name}");
    reply.json()
}

/// The first pod of a Deployment (by its `app` label).
fn first_pod(sim: &SimCluster, ns: &str, app: &str) -> String {
    pod_names(sim, ns, app).pop().expect("a pod")
}

/// Deletes `control` (made stuck, so killed at its deadline) and waits until it is gone: a
/// deletion requested before it with the same grace period is then past its deadline.
async fn wait_past_deadline_of(sim: &SimCluster, ns: &str, control: &str) {
    sim.make_pod_stuck(ns, control).expect("stuck");
    sim.delete_pod(ns, control, None).expect("delete");
    sim.wait_for(
        "the control pod killed at its deadline and gone",
        Duration::from_secs(10),
        |w| find_pod(w.store.pods(), control).is_none(),
    )
    .await
    .expect("control pod gone");
}

/// A pod as GET shows it, still terminating past its deadline with its containers running.
fn assert_running_past_deadline(what: &str, pod: &Value) {
    assert_eq!(pod["status"]["phase"], "Running", "{what}: {pod}");
    let deadline = pod["metadata"]["deletionTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .unwrap_or_else(|| panic!("{what}: no deletionTimestamp in {pod}"));
    assert!(
        deadline < jiff::Timestamp::now(),
        "{what}: past its deadline"
    );
    let containers = pod["status"]["containerStatuses"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no containerStatuses in {pod}"));
    assert!(!containers.is_empty(), "{what}");
    for c in containers {
        assert!(
            c["state"]["running"]["startedAt"].is_string(),
            "{what}: container still running: {c}"
        );
        assert!(c["state"].get("terminated").is_none(), "{what}: {c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_on_a_not_ready_node_never_finish_their_deletion() {
    let sim = start().await;
    sim.add_node(&SimNode::new("node-a")).expect("node");
    create_ready(&sim, quick("shop", "web").replicas(1).grace_seconds(1)).await;
    let held = first_pod(&sim, "shop", "web");
    let rv = quiet(&sim).await;
    let mut nodes = http::watch(
        sim.addr(),
        &format!("/api/v1/nodes?watch=true&resourceVersion={rv}"),
        JSON,
    )
    .await;
    sim.set_node_ready("node-a", NodeReadiness::NotReady)
        .expect("not ready");
    let events = read_until(&mut nodes, "node-a modified", |e| !e.is_empty()).await;
    assert_eq!(events[0]["type"], "MODIFIED");
    let ready = node_condition(&events[0]["object"], "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "KubeletNotReady");
    assert_eq!(ready["message"], "container runtime is down");
    let reply = get_node(&sim, "node-a").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        node_condition(&reply.json(), "Ready"),
        ready,
        "GET shows what the watch showed"
    );
    // The node lifecycle controller marks the node's pods not Ready.
    sim.wait_for("the pod not Ready", Duration::from_secs(2), |w| {
        find_pod(w.store.pods(), &held).is_some_and(|p| !pod_ready(p))
    })
    .await
    .expect("marked not Ready");
    // Nothing new goes to the NotReady node: a second node takes the control Deployment.
    sim.add_node(&SimNode::new("node-b")).expect("node");
    create_ready(&sim, quick("shop", "ctl").replicas(1).grace_seconds(1)).await;
    let control = first_pod(&sim, "shop", "ctl");
    let on = |name: &str| {
        get_pod(&sim, "shop", name)
            .and_then(|p| p.spec?.node_name)
            .expect("bound")
    };
    assert_eq!(on(&control), "node-b");
    sim.delete_pod("shop", &held, None).expect("delete");
    wait_past_deadline_of(&sim, "shop", &control).await;
    let pod = get_pod_json(&sim, "shop", &held).await;
    assert_running_past_deadline("pod on the NotReady node", &pod);
    assert_eq!(pod["spec"]["nodeName"], "node-a");
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 1);
    // Lost altogether: the node lifecycle controller turns every kubelet condition Unknown and
    // keeps the last heartbeat.
    sim.set_node_ready("node-a", NodeReadiness::Unknown)
        .expect("unknown");
    let node = get_node(&sim, "node-a").await.json();
    for type_ in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        let c = node_condition(&node, type_);
        assert_eq!(c["status"], "Unknown", "{type_}");
        assert_eq!(c["reason"], "NodeStatusUnknown", "{type_}");
        assert_eq!(
            c["message"], "Kubelet stopped posting node status.",
            "{type_}"
        );
    }
    assert_eq!(
        node_condition(&node, "Ready")["lastHeartbeatTime"],
        ready["lastHeartbeatTime"],
        "no heartbeat since the kubelet stopped posting"
    );
    assert!(get_pod(&sim, "shop", &held).is_some(), "still terminating");
    // Back: the kubelet finishes the overdue deletion at once.
    sim.set_node_ready("node-a", NodeReadiness::Ready)
        .expect("ready");
    let ready = node_condition(&get_node(&sim, "node-a").await.json(), "Ready").clone();
    assert_eq!(ready["status"], "True");
    assert_eq!(ready["reason"], "KubeletReady");
    sim.wait_for("the held pod gone", Duration::from_secs(3), |w| {
        find_pod(w.store.pods(), &held).is_none()
    })
    .await
    .expect("gone once its node is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_implicit_node_answers_a_get_as_ready_and_can_be_made_not_ready() {
    let sim = start().await;
    let reply = get_node(&sim, NODE_NAME).await;
    assert_eq!(
        reply.status, 200,
        "the node pods are bound to without nodes"
    );
    let node = reply.json();
    assert_eq!(node["kind"], "Node");
    assert_eq!(node["apiVersion"], "v1");
    assert_eq!(node["metadata"]["name"], NODE_NAME);
    let ready = node_condition(&node, "Ready");
    assert_eq!(ready["status"], "True");
    assert_eq!(ready["reason"], "KubeletReady");
    let meta = http::get(sim.addr(), &format!("/api/v1/nodes/{NODE_NAME}"), META).await;
    assert_eq!(meta.json()["metadata"], node["metadata"]);
    let list = http::get(sim.addr(), "/api/v1/nodes", JSON).await.json();
    assert_eq!(names(&list), Vec::<String>::new(), "never listed");
    assert!(sim.get(Kind::Node, "", NODE_NAME).is_err(), "no object");
    assert_eq!(
        sim.node(NODE_NAME).expect("node").metadata.name.as_deref(),
        Some(NODE_NAME)
    );

    create_ready(&sim, quick("shop", "web").replicas(1).grace_seconds(1)).await;
    let held = first_pod(&sim, "shop", "web");
    sim.set_node_ready(NODE_NAME, NodeReadiness::NotReady)
        .expect("not ready");
    let ready = node_condition(&get_node(&sim, NODE_NAME).await.json(), "Ready").clone();
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "KubeletNotReady");
    sim.delete_pod("shop", &held, None).expect("delete");
    // The replacement finds no Ready node: it stays Pending, unscheduled.
    sim.wait_for("a replacement created", Duration::from_secs(3), |w| {
        app_pods(w.store.pods(), "shop", "web").len() == 2
    })
    .await
    .expect("replacement");
    quiet(&sim).await;
    let pods = sim.pods().expect("pods");
    let replacement = app_pods(pods.iter(), "shop", "web")
        .into_iter()
        .find(|p| p.metadata.name.as_deref() != Some(&held))
        .cloned()
        .expect("replacement");
    assert_eq!(pod_phase(&replacement), "Pending");
    assert!(replacement.spec.and_then(|s| s.node_name).is_none());
    let pod = get_pod_json(&sim, "shop", &held).await;
    assert_eq!(
        pod["status"]["phase"], "Running",
        "the kubelet there does nothing"
    );
    assert!(pod["metadata"]["deletionTimestamp"].is_string());
    // Ready again: the deletion finishes, the replacement is bound and starts.
    sim.set_node_ready(NODE_NAME, NodeReadiness::Ready)
        .expect("ready");
    wait_rolled_out(&sim, "shop", "web", V1).await;
    // Removed, the implicit node is gone like any node: 404, and its pods collected.
    sim.remove_node(NODE_NAME).expect("remove");
    assert_eq!(get_node(&sim, NODE_NAME).await.status, 404);
    assert!(sim.set_node_ready(NODE_NAME, NodeReadiness::Ready).is_err());
    sim.wait_for("the pods collected", Duration::from_secs(3), |w| {
        app_pods(w.store.pods(), "shop", "web")
            .iter()
            .all(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none())
    })
    .await
    .expect("collected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unkillable_pod_stays_running_past_its_deadline_until_released() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(3).grace_seconds(1)).await;
    let mut pods = pod_names(&sim, "shop", "web");
    let (unkillable, forced, control) = (
        pods.pop().expect("pod"),
        pods.pop().expect("pod"),
        pods.pop().expect("pod"),
    );
    for p in [&unkillable, &forced] {
        sim.make_pod_unkillable("shop", p).expect("unkillable");
        sim.delete_pod("shop", p, None).expect("delete");
    }
    wait_past_deadline_of(&sim, "shop", &control).await;
    for p in [&unkillable, &forced] {
        let pod = get_pod_json(&sim, "shop", p).await;
        assert_running_past_deadline("unkillable pod", &pod);
        assert_eq!(pod["spec"]["nodeName"], NODE_NAME);
        assert_eq!(
            node_condition(&get_node(&sim, NODE_NAME).await.json(), "Ready")["status"],
            "True",
            "on a Ready node"
        );
    }
    // A force delete (grace 0) removes it at once; made killable, the kubelet kills it.
    sim.delete_pod("shop", &forced, Some(0)).expect("force");
    assert!(get_pod(&sim, "shop", &forced).is_none(), "force-deleted");
    sim.make_pod_killable("shop", &unkillable)
        .expect("killable");
    sim.wait_for("the released pod gone", Duration::from_secs(3), |w| {
        find_pod(w.store.pods(), &unkillable).is_none()
    })
    .await
    .expect("killed once killable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_pods_held_by_a_finalizer_keep_their_terminal_phase_and_containers() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(2)).await;
    let mut pods = pod_names(&sim, "shop", "web");
    let (succeeded, failed) = (pods.pop().expect("pod"), pods.pop().expect("pod"));
    // A pod evicted under node pressure is Failed; deleted, it stays so.
    sim.evict_pod("shop", &failed).expect("evict");
    for p in [&succeeded, &failed] {
        sim.add_finalizer("shop", p, "example.com/hold")
            .expect("finalizer");
        sim.delete_pod("shop", p, None).expect("delete");
    }
    sim.wait_for(
        "both finished and given the kubelet's final delete",
        Duration::from_secs(5),
        |w| {
            [&succeeded, &failed].iter().all(|name| {
                find_pod(w.store.pods(), name)
                    .is_some_and(|p| p.metadata.deletion_grace_period_seconds == Some(0))
            })
        },
    )
    .await
    .expect("held");
    quiet(&sim).await;
    for (name, phase) in [(&succeeded, "Succeeded"), (&failed, "Failed")] {
        let pod = get_pod_json(&sim, "shop", name).await;
        assert_eq!(pod["status"]["phase"], phase, "{name}");
        assert!(pod["metadata"]["deletionTimestamp"].is_string(), "{name}");
        assert_eq!(pod["metadata"]["finalizers"][0], "example.com/hold");
        for c in pod["status"]["containerStatuses"]
            .as_array()
            .expect("containerStatuses")
        {
            let t = &c["state"]["terminated"];
            assert_eq!(t["exitCode"], 0, "{name}: {c}");
            assert_eq!(t["reason"], "Completed", "{name}: {c}");
            assert!(t["startedAt"].is_string() && t["finishedAt"].is_string());
            assert_eq!(t["containerID"], c["containerID"]);
            assert!(c["state"].get("running").is_none(), "{name}: {c}");
            assert_eq!(c["ready"], false);
            assert_eq!(c["started"], false);
        }
    }
    for p in [&succeeded, &failed] {
        sim.remove_finalizers("shop", p).expect("release");
    }
    sim.wait_for("both gone", Duration::from_secs(3), |w| {
        [&succeeded, &failed]
            .iter()
            .all(|name| find_pod(w.store.pods(), name).is_none())
    })
    .await
    .expect("gone once released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_log_records_every_request_once_per_endpoint() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(1)).await;
    let pod = first_pod(&sim, "shop", "web");
    let other = sim.add_endpoint().await.expect("endpoint");
    sim.endpoint().clear_requests();
    let before = http::unix_now_pub();
    get_pod_json(&sim, "shop", &pod).await;
    assert_eq!(get_node(&sim, NODE_NAME).await.status, 200);
    let missing = http::get(sim.addr(), "/api/v1/namespaces/shop/pods/nope", JSON).await;
    assert_eq!(missing.status, 404);
    http::get(
        sim.addr(),
        "/api/v1/namespaces/shop/pods?limit=5",
        META_LIST,
    )
    .await;
    let w = http::watch(sim.addr(), "/api/v1/pods?watch=true&timeoutSeconds=1", JSON).await;
    assert_eq!(w.status, 200);
    http::get(other.addr(), "/api/v1/nodes/elsewhere", JSON).await;

    let log = sim.requests();
    /// What a test can check of a logged request.
    type Seen<'a> = (Option<Verb>, Option<Kind>, &'a str, &'a str, u16);
    let seen: Vec<Seen> = log
        .iter()
        .map(|r| (r.verb, r.kind, r.path.as_str(), r.query.as_str(), r.status))
        .collect();
    let pod_path = format!("/api/v1/namespaces/shop/pods/{pod}");
    let node_path = format!("/api/v1/nodes/{NODE_NAME}");
    assert_eq!(
        seen,
        [
            (Some(Verb::Get), Some(Kind::Pod), pod_path.as_str(), "", 200),
            (
                Some(Verb::Get),
                Some(Kind::Node),
                node_path.as_str(),
                "",
                200
            ),
            (
                Some(Verb::Get),
                Some(Kind::Pod),
                "/api/v1/namespaces/shop/pods/nope",
                "",
                404
            ),
            (
                Some(Verb::List),
                Some(Kind::Pod),
                "/api/v1/namespaces/shop/pods",
                "limit=5",
                200
            ),
            (
                Some(Verb::Watch),
                Some(Kind::Pod),
                "/api/v1/pods",
                "watch=true&timeoutSeconds=1",
                200
            ),
        ],
        "this endpoint's requests, in order, once each"
    );
    assert!(log.iter().all(|r| r.method == "GET" && r.at >= before));
    assert_eq!(log[0].namespace.as_deref(), Some("shop"));
    assert_eq!(log[0].name.as_deref(), Some(pod.as_str()));
    assert_eq!(
        sim.gets(Kind::Pod),
        [
            (Some("shop".to_string()), pod.clone()),
            (Some("shop".to_string()), "nope".to_string()),
        ]
    );
    assert_eq!(sim.gets(Kind::Node), [(None, NODE_NAME.to_string())]);
    assert_eq!(
        other
            .requests()
            .iter()
            .map(|r| (r.verb, r.name.clone(), r.status))
            .collect::<Vec<_>>(),
        [(Some(Verb::Get), Some("elsewhere".to_string()), 404)],
        "each endpoint logs its own"
    );
    let (status, _, _) = request(sim.addr(), Method::DELETE, &pod_path).await;
    assert_eq!(status, 405);
    let last = sim.requests().pop().expect("logged");
    assert_eq!(
        (last.method.as_str(), last.verb, last.status),
        ("DELETE", None, 405)
    );
    sim.endpoint().clear_requests();
    assert!(sim.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_kind_is_forbidden_as_rbac_answers_and_the_rest_is_served() {
    let sim = start().await;
    create_ready(&sim, quick("shop", "web").replicas(1)).await;
    let pod = first_pod(&sim, "shop", "web");
    sim.endpoint().faults().deny(Kind::Node);
    let reply = get_node(&sim, NODE_NAME).await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.header("content-type"), Some(JSON));
    assert_eq!(
        reply.json(),
        serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "nodes \"sim-node\" is forbidden: User \"system:anonymous\" cannot get resource \"nodes\" in API group \"\" at the cluster scope",
            "reason": "Forbidden",
            "details": {"name": "sim-node", "kind": "nodes"},
            "code": 403,
        })
    );
    for (path, verb) in [
        ("/api/v1/nodes", "list"),
        ("/api/v1/nodes?watch=true", "watch"),
    ] {
        let v = http::get(sim.addr(), path, JSON).await;
        assert_eq!(v.status, 403, "{path}");
        let v = v.json();
        assert_eq!(
            v["message"],
            format!(
                "nodes is forbidden: User \"system:anonymous\" cannot {verb} resource \"nodes\" in API group \"\" at the cluster scope"
            ),
            "{path}"
        );
        assert_eq!(v["details"], serde_json::json!({"kind": "nodes"}), "{path}");
    }
    // Everything else is served.
    get_pod_json(&sim, "shop", &pod).await;
    let list = http::get(sim.addr(), "/apis/apps/v1/deployments", JSON).await;
    assert_eq!(list.status, 200);
    assert!(
        sim.requests()
            .iter()
            .filter(|r| r.kind == Some(Kind::Node))
            .all(|r| r.status == 403),
        "the refusals are logged"
    );
    // A namespaced resource of a group names both.
    sim.endpoint().faults().deny(Kind::Deployment);
    let v = http::get(
        sim.addr(),
        "/apis/apps/v1/namespaces/shop/deployments/web",
        JSON,
    )
    .await
    .json();
    assert_eq!(
        v["message"],
        "deployments.apps \"web\" is forbidden: User \"system:anonymous\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"shop\""
    );
    assert_eq!(
        v["details"],
        serde_json::json!({"name": "web", "group": "apps", "kind": "deployments"})
    );
    sim.endpoint().faults().clear();
    assert_eq!(get_node(&sim, NODE_NAME).await.status, 200);
}
