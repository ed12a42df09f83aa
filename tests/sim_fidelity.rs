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
