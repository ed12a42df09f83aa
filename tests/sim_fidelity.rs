//! The simulated cluster against the recorded v1.36 control plane: the recorded scenario
//! (`shop/web`, 3 replicas, maxSurge 1, maxUnavailable 0, 8 s drains, v1 → v2) driven through the
//! simulator over HTTP must produce the same wire format and event sequences, and the model fed
//! with that output must reach the recording's milestones within timestamp resolution.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::cluster::steady_sim;
use common::http::{self, Watch};
use common::{TempDir, recording_dir, replay};
use kube_rollout_exporter::model::{Phase, Timestamp};
use kube_sim::SimDeployment;
use serde_json::Value;

const META_LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
const META: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const JSON: &str = "application/json";

/// Every key path of a JSON value, map keys under labels and annotations left out (they are data),
/// array positions collapsed.
fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let p = format!("{prefix}.{k}");
                out.insert(p.clone());
                if k != "labels" && k != "annotations" && k != "managedFields" {
                    paths(child, &p, out);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn path_set(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    paths(v, "", &mut out);
    out
}

fn recorded(file: &str) -> Value {
    let p = recording_dir("rolling-update-drain").join(file);
    serde_json::from_str(&std::fs::read_to_string(p).expect("recording")).expect("JSON")
}

fn recorded_lines(file: &str) -> Vec<Value> {
    let p = recording_dir("rolling-update-drain").join(file);
    std::fs::read_to_string(p)
        .expect("recording")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Fields the recorded API server writes that the simulator does not: server-side apply
/// bookkeeping (`managedFields`), and `lastProbeTime: null`, which the Go server writes for a nil
/// pointer without omitempty and k8s-openapi's serializer, which omits `None`, cannot.
const NOT_SIMULATED: &[&str] = &[
    ".metadata.managedFields",
    ".items[].metadata.managedFields",
    ".object.metadata.managedFields",
    ".items[].status.conditions[].lastProbeTime",
    ".object.status.conditions[].lastProbeTime",
];

fn assert_same_fields(what: &str, sim: &Value, real: &Value) {
    let keep = |s: BTreeSet<String>| -> BTreeSet<String> {
        s.into_iter()
            .filter(|p| !NOT_SIMULATED.iter().any(|n| p.starts_with(n)))
            .collect()
    };
    let (s, r) = (keep(path_set(sim)), keep(path_set(real)));
    let missing: Vec<_> = r.difference(&s).collect();
    let extra: Vec<_> = s.difference(&r).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: fields the recording has but the simulator lacks: {missing:?}; fields only the simulator writes: {extra:?}"
    );
}

/// Per object: the sequence of event types with repeats collapsed, and the sequence of
/// (deletion state, grace, phase) states a pod goes through.
fn signatures(lines: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in lines {
        let t = l["type"].as_str().unwrap_or_default();
        let o = &l["object"];
        let m = &o["metadata"];
        let name = m["name"].as_str().unwrap_or_default();
        let class = if name.contains(&new_hash_marker(lines)) {
            "new"
        } else {
            "old"
        };
        let sig = format!(
            "{t} dt={} grace={} phase={}",
            m.get("deletionTimestamp").is_some(),
            m.get("deletionGracePeriodSeconds")
                .map_or("-".into(), |g| g.to_string()),
            o["status"]["phase"].as_str().unwrap_or("-"),
        );
        let per = out.entry(format!("{class}:{name}")).or_default();
        if per.last() != Some(&sig) {
            per.push(sig);
        }
    }
    out
}

/// The pod-template-hash of the pods that are ADDED during the rollout (the new ReplicaSet).
fn new_hash_marker(lines: &[Value]) -> String {
    lines
        .iter()
        .find(|l| l["type"] == "ADDED")
        .and_then(|l| l["object"]["metadata"]["labels"]["pod-template-hash"].as_str())
        .unwrap_or("none")
        .to_string()
}

/// The distinct per-pod state sequences, by class (old or new pods).
fn pod_histories(lines: &[Value]) -> BTreeMap<String, BTreeSet<Vec<String>>> {
    let mut out: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (k, seq) in signatures(lines) {
        let class = k.split(':').next().unwrap_or_default().to_string();
        out.entry(class).or_default().insert(seq);
    }
    out
}

fn lines_json(lines: &[(f64, String)]) -> Vec<Value> {
    lines
        .iter()
        .map(|(_, l)| serde_json::from_str(l).expect("watch line is JSON"))
        .collect()
}

fn write_stream(dir: &std::path::Path, file: &str, lines: &[(f64, String)]) {
    let text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    let times: String = lines.iter().map(|(t, _)| format!("{t:.6}\n")).collect();
    std::fs::write(dir.join(file), text).expect("write stream");
    std::fs::write(dir.join(format!("{file}.times")), times).expect("write times");
}

async fn start_watch(addr: std::net::SocketAddr, path: &str, rv: &str, accept: &str) -> Watch {
    let w = http::watch(
        addr,
        &format!("{path}?watch=true&resourceVersion={rv}"),
        accept,
    )
    .await;
    assert_eq!(w.status, 200);
    assert_eq!(
        w.headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    assert_eq!(
        w.headers.get("transfer-encoding").map(|v| v.as_bytes()),
        Some(&b"chunked"[..])
    );
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorded_rollout_through_the_simulator_matches_the_recording() {
    let sim = steady_sim(
        &[SimDeployment::new("shop", "web")
            .drain_seconds(8.0)
            .start_seconds(1.0)],
        Duration::from_secs(20),
    )
    .await;
    let addr = sim.addr();

    // Lists, as the exporter's first sync makes them.
    let deps = http::get(addr, "/apis/apps/v1/deployments", JSON).await;
    let rss = http::get(addr, "/apis/apps/v1/replicasets", META_LIST).await;
    let pods_meta = http::get(addr, "/api/v1/pods", META_LIST).await;
    let pods_full = http::get(addr, "/api/v1/pods", JSON).await;
    for (what, reply) in [
        ("deployments", &deps),
        ("replicasets", &rss),
        ("pods", &pods_meta),
        ("pods full", &pods_full),
    ] {
        assert_eq!(reply.status, 200, "{what}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{what}"
        );
        assert_eq!(
            reply.header("cache-control"),
            Some("no-cache, private"),
            "{what}"
        );
        assert_eq!(reply.header("transfer-encoding"), Some("chunked"), "{what}");
    }
    let (deps_json, rss_json, pods_json) = (deps.json(), rss.json(), pods_meta.json());
    assert_same_fields(
        "Deployment list",
        &deps_json,
        &recorded("list-deployments.json"),
    );
    assert_same_fields(
        "ReplicaSet metadata list",
        &rss_json,
        &recorded("list-replicasets.meta.json"),
    );
    assert_same_fields(
        "Pod metadata list",
        &pods_json,
        &recorded("list-pods.meta.json"),
    );
    assert_same_fields("Pod list", &pods_full.json(), &recorded("list-pods.json"));
    assert!(
        deps_json["items"][0].get("kind").is_none(),
        "full list items carry no kind"
    );
    assert_eq!(pods_json["items"][0]["kind"], "PartialObjectMetadata");
    let rv = deps_json["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();

    let mut w_deps = start_watch(addr, "/apis/apps/v1/deployments", &rv, JSON).await;
    let mut w_rss = start_watch(addr, "/apis/apps/v1/replicasets", &rv, META).await;
    let mut w_pods = start_watch(addr, "/api/v1/pods", &rv, META).await;
    let mut w_full = start_watch(addr, "/api/v1/pods", &rv, JSON).await;
    let t0 = common::http::unix_now_pub();
    sim.set_image("shop", "web", "registry.local/app:v2")
        .expect("set image");
    sim.wait_for(
        "three old pods gone and three new ready",
        Duration::from_secs(30),
        |w| {
            let pods: Vec<_> = w.store.pods().collect();
            pods.len() == 3
                && pods.iter().all(|p| {
                    p.spec
                        .as_ref()
                        .and_then(|s| s.containers.first())
                        .and_then(|c| c.image.as_deref())
                        == Some("registry.local/app:v2")
                        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                })
        },
    )
    .await
    .expect("rollout finishes");
    // Let the last status updates arrive.
    let mut deps_lines = w_deps.drain();
    while let Some(line) = w_deps.next_within(Duration::from_millis(500)).await {
        deps_lines.push(line);
    }
    let (rs_lines, pod_lines, full_lines) = (w_rss.drain(), w_pods.drain(), w_full.drain());
    drop(sim);

    // Wire format of watch events.
    let sim_pods = lines_json(&pod_lines);
    let sim_full = lines_json(&full_lines);
    assert_same_fields(
        "Pod metadata watch event (deleted pod)",
        sim_pods
            .iter()
            .rev()
            .find(|l| l["type"] == "DELETED")
            .expect("a DELETED"),
        recorded_lines("watch-pods.meta.jsonl")
            .iter()
            .rev()
            .find(|l| l["type"] == "DELETED")
            .expect("recorded"),
    );
    assert_same_fields(
        "Deployment watch event",
        lines_json(&deps_lines).last().expect("events"),
        recorded_lines("watch-deployments.jsonl")
            .last()
            .expect("recorded"),
    );
    // The same per-pod life stories: new pods ADDED Pending → scheduled → Running; old pods get a
    // deletionTimestamp with grace 60, turn Succeeded, get the kubelet's grace-0 rewrite, go.
    let histories = pod_histories(&sim_full);
    assert_eq!(histories.len(), 2, "old and new pods");
    assert_eq!(
        histories,
        pod_histories(&recorded_lines("watch-pods.jsonl"))
    );
    assert_eq!(
        pod_histories(&sim_pods),
        pod_histories(&recorded_lines("watch-pods.meta.jsonl"))
    );
    // ReplicaSets: the new one is ADDED then MODIFIED, the old one only MODIFIED, as recorded.
    let rs_types = |lines: &[Value]| -> BTreeSet<Vec<String>> {
        let mut per: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for l in lines {
            let seq = per
                .entry(
                    l["object"]["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .into(),
                )
                .or_default();
            let t = l["type"].as_str().unwrap_or_default().to_string();
            if seq.last() != Some(&t) {
                seq.push(t);
            }
        }
        per.into_values().collect()
    };
    assert_eq!(
        rs_types(&lines_json(&rs_lines)),
        rs_types(&recorded_lines("watch-replicasets.meta.jsonl"))
    );

    // The model over the simulator's output reaches the recording's milestones.
    let dir = TempDir::new("fidelity");
    std::fs::write(dir.path().join("list-deployments.json"), &deps.body).expect("write");
    std::fs::write(dir.path().join("list-replicasets.meta.json"), &rss.body).expect("write");
    std::fs::write(dir.path().join("list-pods.meta.json"), &pods_meta.body).expect("write");
    std::fs::write(dir.path().join("list-pods.json"), &pods_full.body).expect("write");
    write_stream(dir.path(), "watch-deployments.jsonl", &deps_lines);
    write_stream(dir.path(), "watch-replicasets.meta.jsonl", &rs_lines);
    write_stream(dir.path(), "watch-pods.meta.jsonl", &pod_lines);
    write_stream(dir.path(), "watch-pods.jsonl", &full_lines);
    let r = replay(
        dir.path().to_str().expect("utf-8 path"),
        Timestamp::from_secs_f64(t0 - 1.0),
    );
    let m = &r.last;
    let phases: Vec<Phase> = r.phases.iter().map(|p| p.1).collect();
    assert_eq!(
        phases,
        [
            Phase::Complete,
            Phase::Progressing,
            Phase::Draining,
            Phase::Complete
        ]
    );
    assert_eq!(m.started_total, 1);
    // Recording: ready 3.360 s, complete 11.502 s, drain tail 8.142 s, drains 8.449..8.676 s.
    // Object timestamps have 1 s resolution and pods start 1 s after creation: allow 1 s.
    let one = |h: &Option<kube_rollout_exporter::model::Histogram>| {
        let h = h.as_ref().expect("observed");
        assert_eq!(h.count(), 1);
        h.sum()
    };
    let within = |what: &str, got: f64, want: f64| {
        assert!(
            (got - want).abs() <= 1.0,
            "{what}: simulator {got:.3} s, recording {want:.3} s"
        );
    };
    within("ready duration", one(&m.ready_duration), 3.360);
    within("complete duration", one(&m.complete_duration), 11.502);
    within("drain tail", one(&m.drain_tail), 8.142);
    assert_eq!(r.drains.len(), 3);
    for (_, d) in &r.drains {
        within("pod drain", *d, 8.5);
    }
}

// ----- StatefulSets and DaemonSets -------------------------------------------------------------
//
// Each recording of `statefulset-*` and `daemonset-*` is driven through the simulator: the same
// workload (and, for DaemonSets, the same three nodes), the same change, the same drains. Then
// the simulator's lists and watch streams are compared with the recorded ones: the wire fields of
// every kind (full and metadata-only), the label keys, the sequence of status changes, the
// ControllerRevision events, and one merged sequence of milestones in resourceVersion order
// (template change, revision, pod deletions, finishes, replacements, readiness, the status write
// that makes kubectl's test pass). Nodes are named by the order the rollout first touches them:
// the real DaemonSet controller walks a Go map, so its node order is random.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_sim::{
    CONTROLLER_REVISION_HASH, Kind, SimCluster, SimConfig, SimDaemonSet, SimNode, SimStatefulSet,
};

const V2: &str = "registry.local/app:v2";

/// The workload kind a recording is about.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Workload {
    StatefulSet,
    DaemonSet,
}

impl Workload {
    fn plural(self) -> &'static str {
        match self {
            Workload::StatefulSet => "statefulsets",
            Workload::DaemonSet => "daemonsets",
        }
    }

    #[allow(dead_code)]
    fn kind(self) -> Kind {
        match self {
            Workload::StatefulSet => Kind::StatefulSet,
            Workload::DaemonSet => Kind::DaemonSet,
        }
    }
}

fn recorded_in(dir: &str, file: &str) -> Value {
    let p = recording_dir(dir).join(file);
    serde_json::from_str(&std::fs::read_to_string(p).expect("recording")).expect("JSON")
}

fn recorded_lines_in(dir: &str, file: &str) -> Vec<Value> {
    let p = recording_dir(dir).join(file);
    std::fs::read_to_string(p)
        .expect("recording")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn recorded_times_in(dir: &str, file: &str) -> Vec<f64> {
    let p = recording_dir(dir).join(format!("{file}.times"));
    std::fs::read_to_string(p)
        .expect("times")
        .split_whitespace()
        .map(|t| t.parse().expect("a receive time"))
        .collect()
}

/// One scenario's traffic: the lists before the change, and the watch streams (line, receive
/// time) from the workload list's resourceVersion through the rollout.
struct Traffic {
    workload_list: Value,
    revisions_list: Value,
    revisions_list_meta: Value,
    pods_list: Value,
    pods_list_meta: Value,
    workload: Vec<Value>,
    revisions: Vec<Value>,
    revisions_meta: Vec<Value>,
    pods: Vec<Value>,
    pods_meta: Vec<Value>,
    pod_times: Vec<f64>,
}

impl Traffic {
    fn recorded(dir: &str, w: Workload) -> Self {
        let list = |f: &str| recorded_in(dir, f);
        let lines = |f: &str| recorded_lines_in(dir, f);
        Self {
            workload_list: list(&format!("list-{}.json", w.plural())),
            revisions_list: list("list-controllerrevisions.json"),
            revisions_list_meta: list("list-controllerrevisions.meta.json"),
            pods_list: list("list-pods.json"),
            pods_list_meta: list("list-pods.meta.json"),
            workload: lines(&format!("watch-{}.jsonl", w.plural())),
            revisions: lines("watch-controllerrevisions.jsonl"),
            revisions_meta: lines("watch-controllerrevisions.meta.jsonl"),
            pods: lines("watch-pods.jsonl"),
            pods_meta: lines("watch-pods.meta.jsonl"),
            pod_times: recorded_times_in(dir, "watch-pods.jsonl"),
        }
    }
}

/// The open watches of a capture.
struct Watches {
    workload: Watch,
    revisions: Watch,
    revisions_meta: Watch,
    pods: Watch,
    pods_meta: Watch,
}

/// Waits until no write has happened for 300 ms.
async fn settle(sim: &SimCluster) {
    let last = std::sync::Mutex::new((0u64, std::time::Instant::now()));
    sim.wait_for("no writes for 300 ms", Duration::from_secs(10), |w| {
        let rv = w.store.resource_version();
        let mut l = last.lock().expect("lock");
        if l.0 != rv {
            *l = (rv, std::time::Instant::now());
            return false;
        }
        l.1.elapsed() >= Duration::from_millis(300)
    })
    .await
    .expect("the cluster settles");
}

/// Lists everything as a watcher's first sync does (checking the framing the recorded server
/// used), then opens the five watches from the workload list's resourceVersion.
async fn start_capture(sim: &SimCluster, w: Workload) -> (Traffic, Watches) {
    settle(sim).await;
    let addr = sim.addr();
    let workload_path = format!("/apis/apps/v1/{}", w.plural());
    let workloads = http::get(addr, &workload_path, JSON).await;
    let revisions = http::get(addr, "/apis/apps/v1/controllerrevisions", JSON).await;
    let revisions_meta = http::get(addr, "/apis/apps/v1/controllerrevisions", META_LIST).await;
    let pods = http::get(addr, "/api/v1/pods", JSON).await;
    let pods_meta = http::get(addr, "/api/v1/pods", META_LIST).await;
    for (what, reply, chunked) in [
        ("workloads", &workloads, true),
        ("revisions", &revisions, false),
        ("revisions meta", &revisions_meta, false),
        ("pods", &pods, true),
        ("pods meta", &pods_meta, true),
    ] {
        assert_eq!(reply.status, 200, "{what}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.header("cache-control"), Some("no-cache, private"));
        if chunked {
            assert_eq!(reply.header("transfer-encoding"), Some("chunked"), "{what}");
        } else {
            // The recorded ControllerRevision lists came in one piece.
            assert_eq!(
                reply.header("content-length"),
                Some(reply.body.len().to_string().as_str()),
                "{what}"
            );
        }
    }
    let workload_list = workloads.json();
    let rv = workload_list["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let watches = Watches {
        workload: start_watch(addr, &workload_path, &rv, JSON).await,
        revisions: start_watch(addr, "/apis/apps/v1/controllerrevisions", &rv, JSON).await,
        revisions_meta: start_watch(addr, "/apis/apps/v1/controllerrevisions", &rv, META).await,
        pods: start_watch(addr, "/api/v1/pods", &rv, JSON).await,
        pods_meta: start_watch(addr, "/api/v1/pods", &rv, META).await,
    };
    let traffic = Traffic {
        workload_list,
        revisions_list: revisions.json(),
        revisions_list_meta: revisions_meta.json(),
        pods_list: pods.json(),
        pods_list_meta: pods_meta.json(),
        workload: Vec::new(),
        revisions: Vec::new(),
        revisions_meta: Vec::new(),
        pods: Vec::new(),
        pods_meta: Vec::new(),
        pod_times: Vec::new(),
    };
    (traffic, watches)
}

/// Everything each watch delivered, once every one has been quiet for 500 ms.
async fn finish_capture(mut t: Traffic, mut w: Watches) -> Traffic {
    async fn rest(w: &mut Watch) -> Vec<(f64, String)> {
        let mut lines = w.drain();
        while let Some(line) = w.next_within(Duration::from_millis(500)).await {
            lines.push(line);
        }
        lines
    }
    t.workload = lines_json(&rest(&mut w.workload).await);
    t.revisions = lines_json(&rest(&mut w.revisions).await);
    t.revisions_meta = lines_json(&rest(&mut w.revisions_meta).await);
    let pods = rest(&mut w.pods).await;
    t.pod_times = pods.iter().map(|(t, _)| *t).collect();
    t.pods = lines_json(&pods);
    t.pods_meta = lines_json(&rest(&mut w.pods_meta).await);
    t
}

fn rv_num(o: &Value) -> u64 {
    o["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .expect("a resourceVersion")
}

fn opt(v: &Value) -> String {
    if v.is_null() {
        "-".into()
    } else {
        v.to_string()
    }
}

/// Revision names as letters in order of first appearance, so that the simulator's and the
/// recording's hashes compare.
#[derive(Default)]
struct Names(Vec<String>);

impl Names {
    fn of(&mut self, v: &Value) -> String {
        let Some(name) = v.as_str() else {
            return "-".into();
        };
        let i = match self.0.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.0.push(name.to_string());
                self.0.len() - 1
            }
        };
        ((b'A' + i as u8) as char).to_string()
    }
}

/// The workload's status after each event, consecutive repeats collapsed. A DaemonSet status
/// with fewer nodes scheduled than desired is left out: the recorded controller once (of three
/// replacements in `daemonset-rolling`) wrote a status that did not yet see the pod it had just
/// created, a race of its cache; the simulator, like the other two, counts it.
fn status_sequence(w: Workload, events: &[Value]) -> Vec<String> {
    let mut names = Names::default();
    let mut out: Vec<String> = Vec::new();
    for e in events {
        let o = &e["object"];
        let st = &o["status"];
        if w == Workload::DaemonSet
            && st["currentNumberScheduled"].as_i64() < st["desiredNumberScheduled"].as_i64()
        {
            continue;
        }
        let s = match w {
            Workload::StatefulSet => format!(
                "gen={} obs={} partition={} replicas={} ready={} current={} updated={} available={} currentRevision={} updateRevision={}",
                o["metadata"]["generation"],
                opt(&st["observedGeneration"]),
                opt(&o["spec"]["updateStrategy"]["rollingUpdate"]["partition"]),
                opt(&st["replicas"]),
                opt(&st["readyReplicas"]),
                opt(&st["currentReplicas"]),
                opt(&st["updatedReplicas"]),
                opt(&st["availableReplicas"]),
                names.of(&st["currentRevision"]),
                names.of(&st["updateRevision"]),
            ),
            Workload::DaemonSet => format!(
                "gen={} obs={} templateGeneration={} desired={} ready={} available={} updated={} unavailable={} misscheduled={}",
                o["metadata"]["generation"],
                opt(&st["observedGeneration"]),
                opt(&o["metadata"]["annotations"]["deprecated.daemonset.template.generation"]),
                opt(&st["desiredNumberScheduled"]),
                opt(&st["numberReady"]),
                opt(&st["numberAvailable"]),
                opt(&st["updatedNumberScheduled"]),
                opt(&st["numberUnavailable"]),
                opt(&st["numberMisscheduled"]),
            ),
        };
        if out.last() != Some(&s) {
            out.push(s);
        }
    }
    out
}

/// kubectl's rollout status test for the kind.
fn kubectl_ready(w: Workload, o: &Value) -> bool {
    let st = &o["status"];
    let n = |v: &Value| v.as_i64().unwrap_or(0);
    let observed = n(&st["observedGeneration"]) >= n(&o["metadata"]["generation"]);
    match w {
        Workload::StatefulSet => {
            let replicas = n(&o["spec"]["replicas"]);
            let partition = &o["spec"]["updateStrategy"]["rollingUpdate"]["partition"];
            observed
                && n(&st["readyReplicas"]) >= replicas
                && if partition.is_null() {
                    st["updateRevision"] == st["currentRevision"]
                } else {
                    n(&st["updatedReplicas"]) >= replicas - n(partition)
                }
        }
        Workload::DaemonSet => {
            let desired = n(&st["desiredNumberScheduled"]);
            observed
                && n(&st["updatedNumberScheduled"]) >= desired
                && n(&st["numberAvailable"]) >= desired
        }
    }
}

fn pod_node(o: &Value) -> Option<String> {
    let spec = &o["spec"];
    spec["nodeName"].as_str().map(str::to_string).or_else(|| {
        spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0]["matchFields"][0]["values"][0]
            .as_str()
            .map(str::to_string)
    })
}

fn pod_ready(o: &Value) -> bool {
    o["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// One sequence of what happened, in resourceVersion order (the server's order, which receive
/// order across watches is not). A pod is `old` or `new` by its revision label against the
/// listed pods'; it is named by its name (StatefulSet) or by its node's place in the order the
/// rollout first touched the nodes (DaemonSet).
fn milestones(w: Workload, t: &Traffic) -> Vec<String> {
    let listed_gen = t.workload_list["items"][0]["metadata"]["generation"]
        .as_i64()
        .expect("listed generation");
    let old_label = t.pods_list["items"][0]["metadata"]["labels"][CONTROLLER_REVISION_HASH]
        .as_str()
        .expect("listed pod revision")
        .to_string();
    let mut events: Vec<(u64, &str, &Value)> = Vec::new();
    for e in &t.workload {
        events.push((rv_num(&e["object"]), "workload", e));
    }
    for e in &t.revisions {
        events.push((rv_num(&e["object"]), "revision", e));
    }
    for e in &t.pods {
        events.push((rv_num(&e["object"]), "pod", e));
    }
    events.sort_by_key(|(rv, _, _)| *rv);
    let mut out = Vec::new();
    let mut generation = listed_gen;
    let mut observed = true;
    let mut ready = true;
    let mut nodes: Vec<String> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (_, what, e) in events {
        let o = &e["object"];
        let t_ = e["type"].as_str().unwrap_or_default();
        match what {
            "workload" => {
                let g = o["metadata"]["generation"].as_i64().unwrap_or(0);
                if g > generation {
                    generation = g;
                    observed = false;
                    out.push(format!("change to generation {g}"));
                }
                if !observed && o["status"]["observedGeneration"].as_i64() == Some(g) {
                    observed = true;
                    out.push("observed".into());
                }
                let now_ready = kubectl_ready(w, o);
                if now_ready && !ready {
                    out.push("kubectl ready".into());
                }
                ready = now_ready;
            }
            "revision" => out.push(format!("revision {t_} {}", o["revision"])),
            _ => {
                let uid = o["metadata"]["uid"].as_str().unwrap_or_default();
                let class = if o["metadata"]["labels"][CONTROLLER_REVISION_HASH].as_str()
                    == Some(old_label.as_str())
                {
                    "old"
                } else {
                    "new"
                };
                let id = match w {
                    Workload::StatefulSet => v_name(o),
                    Workload::DaemonSet => {
                        let node = pod_node(o).unwrap_or_default();
                        if !nodes.contains(&node) {
                            nodes.push(node.clone());
                        }
                        let i = nodes.iter().position(|n| *n == node).unwrap_or_default();
                        format!("node{i}")
                    }
                };
                let mut once = |step: &str| {
                    if seen.insert(format!("{uid} {step}")) {
                        out.push(format!("{step} {class} {id}"));
                    }
                };
                if t_ == "ADDED" {
                    once("created");
                }
                if t_ == "DELETED" {
                    once("gone");
                    continue;
                }
                if !o["metadata"]["deletionTimestamp"].is_null() {
                    once("deleted");
                }
                if o["status"]["phase"] == "Succeeded" {
                    once("finished");
                }
                if class == "new" && t_ != "ADDED" && pod_ready(o) {
                    once("ready");
                }
            }
        }
    }
    out
}

fn v_name(o: &Value) -> String {
    o["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Per pod object (by uid): its states, repeats collapsed; the distinct ones per class.
fn histories_by_uid(lines: &[Value], old_label: &str) -> BTreeMap<String, BTreeSet<Vec<String>>> {
    let mut per: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for l in lines {
        let m = &l["object"]["metadata"];
        let class = if m["labels"][CONTROLLER_REVISION_HASH].as_str() == Some(old_label) {
            "old"
        } else {
            "new"
        };
        let sig = format!(
            "{} dt={} grace={} phase={}",
            l["type"].as_str().unwrap_or_default(),
            m.get("deletionTimestamp").is_some(),
            m.get("deletionGracePeriodSeconds")
                .map_or("-".into(), |g| g.to_string()),
            l["object"]["status"]["phase"].as_str().unwrap_or("-"),
        );
        let seq = per
            .entry((
                class.to_string(),
                m["uid"].as_str().unwrap_or_default().to_string(),
            ))
            .or_default();
        if seq.last() != Some(&sig) {
            seq.push(sig);
        }
    }
    let mut out: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
    for ((class, _), seq) in per {
        out.entry(class).or_default().insert(seq);
    }
    out
}

fn label_keys(o: &Value, field: &str) -> BTreeSet<String> {
    o["metadata"][field]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Seconds from each old pod's first deletion seen to its DELETED, by receive time.
fn drains(t: &Traffic, old_label: &str) -> Vec<f64> {
    let mut deleted: BTreeMap<String, f64> = BTreeMap::new();
    let mut out = Vec::new();
    for (l, at) in t.pods.iter().zip(&t.pod_times) {
        let m = &l["object"]["metadata"];
        if m["labels"][CONTROLLER_REVISION_HASH].as_str() != Some(old_label) {
            continue;
        }
        let uid = m["uid"].as_str().unwrap_or_default().to_string();
        if m.get("deletionTimestamp").is_some() {
            deleted.entry(uid.clone()).or_insert(*at);
        }
        if l["type"] == "DELETED"
            && let Some(start) = deleted.get(&uid)
        {
            out.push(at - start);
        }
    }
    out
}

/// Every comparison of a simulated scenario with its recording.
fn compare(dir: &str, w: Workload, sim: &Traffic) {
    let real = Traffic::recorded(dir, w);
    let what = |s: &str| format!("{dir}: {s}");

    // Wire fields of the lists and of each kind of watch event.
    assert_same_fields(
        &what("workload list"),
        &sim.workload_list,
        &real.workload_list,
    );
    assert_same_fields(
        &what("revision list"),
        &sim.revisions_list,
        &real.revisions_list,
    );
    assert_same_fields(
        &what("revision metadata list"),
        &sim.revisions_list_meta,
        &real.revisions_list_meta,
    );
    assert_same_fields(&what("pod list"), &sim.pods_list, &real.pods_list);
    assert_same_fields(
        &what("pod metadata list"),
        &sim.pods_list_meta,
        &real.pods_list_meta,
    );
    let last = |v: &[Value]| v.last().cloned().expect("events");
    let first_of = |v: &[Value], t: &str| {
        v.iter()
            .find(|l| l["type"] == t)
            .cloned()
            .unwrap_or_else(|| panic!("a {t} event"))
    };
    assert_same_fields(
        &what("workload event"),
        &last(&sim.workload),
        &last(&real.workload),
    );
    assert_same_fields(
        &what("revision event"),
        &first_of(&sim.revisions, "ADDED"),
        &first_of(&real.revisions, "ADDED"),
    );
    assert_same_fields(
        &what("revision metadata event"),
        &first_of(&sim.revisions_meta, "ADDED"),
        &first_of(&real.revisions_meta, "ADDED"),
    );
    for t in ["ADDED", "DELETED"] {
        assert_same_fields(
            &what(&format!("pod {t} event")),
            &first_of(&sim.pods, t),
            &first_of(&real.pods, t),
        );
        assert_same_fields(
            &what(&format!("pod metadata {t} event")),
            &first_of(&sim.pods_meta, t),
            &first_of(&real.pods_meta, t),
        );
    }

    // Label and annotation keys, which differ by kind.
    let item = |list: &Value| list["items"][0].clone();
    for field in ["labels", "annotations"] {
        for (name, s, r) in [
            (
                "workload",
                item(&sim.workload_list),
                item(&real.workload_list),
            ),
            (
                "revision",
                item(&sim.revisions_list),
                item(&real.revisions_list),
            ),
            ("pod", item(&sim.pods_list), item(&real.pods_list)),
            (
                "new revision",
                first_of(&sim.revisions, "ADDED")["object"].clone(),
                first_of(&real.revisions, "ADDED")["object"].clone(),
            ),
            (
                "new pod",
                first_of(&sim.pods, "ADDED")["object"].clone(),
                first_of(&real.pods, "ADDED")["object"].clone(),
            ),
        ] {
            assert_eq!(
                label_keys(&s, field),
                label_keys(&r, field),
                "{}",
                what(&format!("{name} {field}"))
            );
        }
    }
    // A pod's revision label: the revision's whole name (StatefulSet) or its hash (DaemonSet).
    let revision = first_of(&sim.revisions, "ADDED")["object"].clone();
    let pod = first_of(&sim.pods, "ADDED")["object"].clone();
    let rev_name = v_name(&revision);
    let hash = match w {
        Workload::StatefulSet => &revision["metadata"]["labels"]["controller.kubernetes.io/hash"],
        Workload::DaemonSet => &revision["metadata"]["labels"][CONTROLLER_REVISION_HASH],
    }
    .as_str()
    .expect("the revision's hash label");
    assert_eq!(hash.len(), 10);
    assert_eq!(
        rev_name,
        format!("{}-{hash}", v_name(&item(&sim.workload_list)))
    );
    let pod_label = pod["metadata"]["labels"][CONTROLLER_REVISION_HASH].as_str();
    match w {
        Workload::StatefulSet => assert_eq!(pod_label, Some(rev_name.as_str())),
        Workload::DaemonSet => assert_eq!(pod_label, Some(hash)),
    }
    assert!(
        revision["metadata"].get("generation").is_none(),
        "ControllerRevisions have no generation"
    );

    // Status changes, revision events, and the merged milestones.
    assert_eq!(
        status_sequence(w, &sim.workload),
        status_sequence(w, &real.workload),
        "{}",
        what("status sequence")
    );
    let rev_events = |v: &[Value]| -> Vec<String> {
        v.iter()
            .map(|l| format!("{} revision={}", l["type"], l["object"]["revision"]))
            .collect()
    };
    assert_eq!(
        rev_events(&sim.revisions),
        rev_events(&real.revisions),
        "{}",
        what("revision events")
    );
    assert_eq!(
        sim.revisions_meta.len(),
        real.revisions_meta.len(),
        "{}",
        what("revision metadata events")
    );
    assert_eq!(
        milestones(w, sim),
        milestones(w, &real),
        "{}",
        what("milestones")
    );

    // Every pod object's life, old and new, and (metadata-only) the same.
    let old_label = |t: &Traffic| {
        t.pods_list["items"][0]["metadata"]["labels"][CONTROLLER_REVISION_HASH]
            .as_str()
            .expect("listed pod revision")
            .to_string()
    };
    let (sim_old, real_old) = (old_label(sim), old_label(&real));
    assert_eq!(
        histories_by_uid(&sim.pods, &sim_old),
        histories_by_uid(&real.pods, &real_old),
        "{}",
        what("pod histories")
    );
    assert_eq!(
        histories_by_uid(&sim.pods_meta, &sim_old),
        histories_by_uid(&real.pods_meta, &real_old),
        "{}",
        what("pod metadata histories")
    );
    // Drains: 5 s from the deletion to the object gone, within the timestamps' resolution.
    let (sim_drains, real_drains) = (drains(sim, &sim_old), drains(&real, &real_old));
    assert_eq!(sim_drains.len(), real_drains.len(), "{}", what("drains"));
    for d in sim_drains {
        assert!((4.5..6.5).contains(&d), "{}: {d:.3} s", what("drain"));
    }
}

/// A simulated cluster, with the recorded DaemonSet nodes when `nodes` is set.
async fn sim_cluster(nodes: bool) -> SimCluster {
    let sim = SimCluster::start(SimConfig::default())
        .await
        .expect("simulator starts");
    if nodes {
        sim.add_node(&SimNode::new("lab-node")).expect("node");
        for n in ["lab-node-2", "lab-node-3"] {
            sim.add_node(&SimNode::new(n).taint(
                "lab.example/extra-node",
                Some("true"),
                "NoSchedule",
            ))
            .expect("node");
        }
    }
    sim
}

fn sts_status(
    w: &kube_sim::World,
    ns: &str,
    name: &str,
) -> Option<(i64, i64, i32, i32, i32, bool)> {
    let s = w.store.statefulsets().find(|s| {
        s.metadata.namespace.as_deref() == Some(ns) && s.metadata.name.as_deref() == Some(name)
    })?;
    let st = s.status.as_ref()?;
    Some((
        s.metadata.generation.unwrap_or(0),
        st.observed_generation.unwrap_or(0),
        st.ready_replicas.unwrap_or(0),
        st.updated_replicas.unwrap_or(0),
        st.replicas,
        st.current_revision == st.update_revision,
    ))
}

/// Every pod of the namespace Running and Ready on `image`, none terminating, `n` of them.
fn pods_at(w: &kube_sim::World, ns: &str, image: &str, n: usize) -> bool {
    let pods: Vec<_> = w
        .store
        .pods()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns))
        .collect();
    pods.len() == n
        && pods.iter().all(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.spec
                    .as_ref()
                    .and_then(|s| s.containers.first())
                    .and_then(|c| c.image.as_deref())
                    == Some(image)
                && p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
}

async fn statefulset_scenario(dir: &str, partition: Option<i32>) {
    let sim = sim_cluster(false).await;
    let mut set = SimStatefulSet::new("db", "pg");
    if let Some(p) = partition {
        set = set.partition(p);
    }
    sim.create_statefulset(&set).expect("create");
    sim.wait_for("pg steady", Duration::from_secs(30), |w| {
        sts_status(w, "db", "pg")
            .is_some_and(|(g, o, r, u, n, same)| g == o && r == 3 && u == 3 && n == 3 && same)
            && pods_at(w, "db", "registry.local/app:v1", 3)
    })
    .await
    .expect("steady");
    let (traffic, watches) = start_capture(&sim, Workload::StatefulSet).await;
    sim.set_workload_image(Kind::StatefulSet, "db", "pg", V2)
        .expect("set image");
    if partition.is_some() {
        sim.wait_for("the canary ready", Duration::from_secs(30), |w| {
            sts_status(w, "db", "pg")
                .is_some_and(|(g, o, r, u, n, _)| g == o && r == 3 && u == 1 && n == 3)
        })
        .await
        .expect("canary");
        // The recording promotes 3 s after the canary is ready; what follows does not depend on
        // the wait, so the simulator promotes at once.
        sim.set_partition("db", "pg", Some(0)).expect("partition 0");
    }
    sim.wait_for("pg rolled out", Duration::from_secs(60), |w| {
        sts_status(w, "db", "pg")
            .is_some_and(|(g, o, r, u, n, same)| g == o && r == 3 && u == 3 && n == 3 && same)
            && pods_at(w, "db", V2, 3)
    })
    .await
    .expect("rolled out");
    let traffic = finish_capture(traffic, watches).await;
    drop(sim);
    compare(dir, Workload::StatefulSet, &traffic);
}

async fn daemonset_scenario(dir: &str, surge: bool) {
    let sim = sim_cluster(true).await;
    let mut ds =
        SimDaemonSet::new("infra", "agent").toleration("lab.example/extra-node", "NoSchedule");
    if surge {
        ds = ds.rolling(IntOrString::Int(1), IntOrString::Int(0));
    }
    sim.create_daemonset(&ds).expect("create");
    let done = |image: &'static str| {
        move |w: &kube_sim::World| {
            w.store.daemonsets().any(|d| {
                d.status.as_ref().is_some_and(|st| {
                    st.observed_generation == d.metadata.generation
                        && st.desired_number_scheduled == 3
                        && st.updated_number_scheduled == Some(3)
                        && st.number_available == Some(3)
                })
            }) && pods_at(w, "infra", image, 3)
        }
    };
    sim.wait_for(
        "agent steady",
        Duration::from_secs(30),
        done("registry.local/app:v1"),
    )
    .await
    .expect("steady");
    let (traffic, watches) = start_capture(&sim, Workload::DaemonSet).await;
    sim.set_workload_image(Kind::DaemonSet, "infra", "agent", V2)
        .expect("set image");
    sim.wait_for("agent rolled out", Duration::from_secs(60), done(V2))
        .await
        .expect("rolled out");
    let traffic = finish_capture(traffic, watches).await;
    drop(sim);
    compare(dir, Workload::DaemonSet, &traffic);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_rolling_update_through_the_simulator_matches_the_recording() {
    statefulset_scenario("statefulset-rolling", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_partition_and_promotion_through_the_simulator_match_the_recording() {
    statefulset_scenario("statefulset-partition", Some(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_rolling_update_through_the_simulator_matches_the_recording() {
    daemonset_scenario("daemonset-rolling", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_surge_through_the_simulator_matches_the_recording() {
    daemonset_scenario("daemonset-surge", true).await;
}
