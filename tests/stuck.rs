//! End to end: why a drain is stuck, and whether the grace period fits, for every workload kind.
//! The real exporter binary over real HTTP list/watch and GETs against the simulated cluster,
//! whose nodes can go NotReady, whose pods can be held by a finalizer nobody removes or ignore
//! their grace period. Every wait is a condition with a deadline; the cost bound is checked on
//! the simulated API server's own request log: no pod is read before it is overdue.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::cluster::{Cluster, STEADY_WITHIN};
use common::exporter::{Exporter, Scrape, wait_metrics};
use common::workload::W;
use k8s_openapi::api::core::v1::Pod;
use kube_sim::{
    Kind, NodeReadiness, SimDaemonSet, SimDeployment, SimNode, SimStatefulSet, Verb, World,
};
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);
const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];
/// Every workload's grace period: short, so pods go overdue quickly, and well above its drains
/// (0.3 s) plus the 1 s resolution of deletion timestamps, so no ordinary drain uses it up.
const GRACE: i64 = 3;
const FINALIZER: &str = "example.com/hold";

const WEB: W = W("shop", "web", "deployment");
const PG: W = W("db", "pg", "statefulset");
const AGENT: W = W("infra", "agent", "daemonset");

/// A cluster with three Ready nodes and `w` created with three pods, all Running and Ready.
async fn cluster(w: W) -> Cluster {
    let c = Cluster::steady(w.1, &[], STEADY_WITHIN).await;
    for node in NODES {
        c.sim.add_node(&SimNode::new(node)).expect("node");
    }
    match w.kind() {
        Kind::Deployment => c.sim.create_deployment(
            &SimDeployment::new(w.0, w.1)
                .replicas(3)
                .grace_seconds(GRACE)
                .drain_seconds(0.3)
                .start_seconds(0.3),
        ),
        Kind::StatefulSet => c.sim.create_statefulset(
            &SimStatefulSet::new(w.0, w.1)
                .replicas(3)
                .grace_seconds(GRACE)
                .drain_seconds(0.3)
                .start_seconds(0.3),
        ),
        _ => c.sim.create_daemonset(
            &SimDaemonSet::new(w.0, w.1)
                .grace_seconds(GRACE)
                .drain_seconds(0.3)
                .start_seconds(0.3),
        ),
    }
    .expect("create the workload");
    c.sim
        .wait_for(
            "three pods running and ready",
            STEADY_WITHIN,
            move |world| live_pods(world, w).len() == 3 && live_pods(world, w).iter().all(ready),
        )
        .await
        .expect("steady");
    c
}

/// `w`'s pods without a deletionTimestamp.
fn live_pods(world: &World, w: W) -> Vec<Pod> {
    world
        .store
        .pods()
        .filter(|p| p.metadata.namespace.as_deref() == Some(w.0))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .cloned()
        .collect()
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

fn node(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default()
}

/// Three distinct live pods of `w`, sorted by name.
fn three_pods(c: &Cluster, w: W) -> [Pod; 3] {
    let mut pods = c.sim.with_world(|world| live_pods(world, w)).expect("pods");
    pods.sort_by_key(name);
    pods.try_into().expect("three live pods")
}

/// Deletes a pod with its own grace period and returns its deadline (Unix seconds).
fn delete(c: &Cluster, w: W, pod: &str) -> i64 {
    c.sim.delete_pod(w.0, pod, None).expect("delete");
    let deleted = c.sim.get(Kind::Pod, w.0, pod).expect("still there");
    let kube_sim::Object::Pod(p) = deleted else {
        panic!("{pod} is a pod");
    };
    let deadline = p.metadata.deletion_timestamp.expect("deleting").0;
    deadline.as_second()
}

fn reasons(w: W, s: &Scrape) -> BTreeMap<&'static str, f64> {
    ["node_lost", "finalizers", "still_running", "unknown"]
        .into_iter()
        .filter_map(|r| {
            w.get(
                s,
                "kube_rollout_terminating_pods_overdue_by_reason",
                &[("reason", r)],
            )
            .map(|v| (r, v))
        })
        .collect()
}

/// What the exporter logged so far: every line, and the "pod termination overdue" ones by pod.
#[derive(Default)]
struct Logs {
    all: Vec<String>,
    overdue: BTreeMap<String, Value>,
}

impl Logs {
    /// Reads the lines logged since the last call.
    fn read(&mut self, e: &Exporter) {
        while let Ok(line) = e.logs.try_recv() {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let f = &v["fields"];
                if f["message"] == "pod termination overdue" {
                    let pod = f["pod"].as_str().unwrap_or_default().to_string();
                    assert!(
                        self.overdue.insert(pod.clone(), f.clone()).is_none(),
                        "one line per pod: {pod} twice"
                    );
                }
            }
            self.all.push(line);
        }
    }

    /// Waits until the overdue line of every pod in `pods` is logged.
    async fn wait_overdue(&mut self, e: &Exporter, pods: &[&str]) {
        let deadline = std::time::Instant::now() + MINUTE;
        loop {
            self.read(e);
            if pods.iter().all(|p| self.overdue.contains_key(*p)) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "overdue lines of {pods:?}; seen {:#?}",
                self.overdue
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[track_caller]
fn assert_line(line: &Value, w: W, reason: &str, finalizers: &str, node: &str) {
    assert_eq!(line["namespace"], w.0);
    assert_eq!(line["workload"], w.1);
    assert_eq!(line["workload_type"], w.2);
    assert_eq!(line["reason"], reason, "{line}");
    assert_eq!(line["finalizers"], finalizers, "{line}");
    assert_eq!(line["node"], node, "{line}");
}

/// The pods and nodes the exporter read one by one: (kind, name) → times of the GETs.
fn gets(c: &Cluster) -> BTreeMap<(Kind, String), Vec<f64>> {
    let mut out: BTreeMap<(Kind, String), Vec<f64>> = BTreeMap::new();
    for r in c.sim.requests() {
        if let (Some(Verb::Get), Some(kind), Some(name)) = (r.verb, r.kind, r.name) {
            out.entry((kind, name)).or_default().push(r.at);
        }
    }
    out
}

/// Each reason in turn on one workload of kind `w`, and the cost bound: a finalizer nobody
/// removes (`finalizers`) and a pod that cannot be killed (`still_running`) on Ready nodes, an
/// ordinary deletion that is never read, then a pod whose node goes NotReady (`node_lost`).
async fn every_reason(w: W) {
    let c = cluster(w).await;
    let e = c.synced_exporter(&[]).await;
    wait_metrics(e.addr, "the workload at rest", MINUTE, |s| {
        w.phase(s) == Some("complete")
    })
    .await;
    let [held, wild, ordinary] = three_pods(&c, w);
    let (held, wild, ordinary) = (name(&held), name(&wild), name(&ordinary));
    let held_node = node(&three_pods(&c, w)[0]);
    let wild_node = node(&three_pods(&c, w)[1]);
    c.sim.add_finalizer(w.0, &held, FINALIZER).expect("hold");
    c.sim.make_pod_unkillable(w.0, &wild).expect("unkillable");
    let mut deadlines = BTreeMap::new();
    for pod in [&held, &wild, &ordinary] {
        deadlines.insert(pod.clone(), delete(&c, w, pod));
    }

    let s = wait_metrics(e.addr, "finalizers and still_running", MINUTE, |s| {
        reasons(w, s) == BTreeMap::from([("finalizers", 1.0), ("still_running", 1.0)])
    })
    .await;
    assert_eq!(
        w.get(&s, "kube_rollout_terminating_pods_overdue", &[]),
        Some(2.0)
    );
    assert_eq!(
        w.get(&s, "kube_rollout_termination_grace_period_seconds", &[]),
        Some(GRACE as f64)
    );
    let mut logs = Logs::default();
    logs.wait_overdue(&e, &[&held, &wild]).await;
    assert_line(&logs.overdue[&held], w, "finalizers", FINALIZER, &held_node);
    assert_line(&logs.overdue[&wild], w, "still_running", "", &wild_node);

    // Release both; each used up its grace.
    c.sim.remove_finalizers(w.0, &held).expect("release");
    c.sim.delete_pod(w.0, &wild, Some(0)).expect("force delete");
    wait_metrics(e.addr, "nothing terminating", MINUTE, |s| {
        w.get(s, "kube_rollout_terminating_pods", &[]) == Some(0.0)
    })
    .await;

    // A node goes NotReady under a live pod, which is then deleted.
    c.sim
        .wait_for("three live pods again", STEADY_WITHIN, move |world| {
            let pods = live_pods(world, w);
            pods.len() == 3 && pods.iter().all(ready)
        })
        .await
        .expect("replaced");
    let lost = three_pods(&c, w)[2].clone();
    let (lost, lost_node) = (name(&lost), node(&lost));
    c.sim
        .set_node_ready(&lost_node, NodeReadiness::NotReady)
        .expect("not ready");
    deadlines.insert(lost.clone(), delete(&c, w, &lost));
    wait_metrics(e.addr, "node_lost", MINUTE, |s| {
        reasons(w, s) == BTreeMap::from([("node_lost", 1.0)])
    })
    .await;
    logs.wait_overdue(&e, &[&lost]).await;
    assert_line(&logs.overdue[&lost], w, "node_lost", "", &lost_node);
    // The node comes back: the kubelet finishes the termination.
    c.sim
        .set_node_ready(&lost_node, NodeReadiness::Ready)
        .expect("ready");
    let s = wait_metrics(e.addr, "all four terminations observed", MINUTE, |s| {
        w.terminations(s) == 4.0 && w.get(s, "kube_rollout_terminating_pods", &[]) == Some(0.0)
    })
    .await;
    assert_eq!(
        w.get(
            &s,
            "kube_rollout_pod_termination_grace_exhausted_total",
            &[]
        ),
        Some(3.0),
        "the held, the unkillable and the lost pod used up their grace; the ordinary one did not"
    );
    assert!(
        reasons(w, &s).is_empty(),
        "no series per reason once none is overdue"
    );
    logs.read(&e);
    assert_eq!(
        logs.overdue.len(),
        3,
        "one line per overdue pod: {:#?}",
        logs.overdue
    );

    // The cost bound: the only pods read are the overdue ones, each only after its deadline;
    // the only nodes read are theirs.
    let gets = gets(&c);
    let pods: BTreeMap<&String, &Vec<f64>> = gets
        .iter()
        .filter(|((kind, _), _)| *kind == Kind::Pod)
        .map(|((_, name), at)| (name, at))
        .collect();
    let mut read: Vec<&str> = pods.keys().map(|p| p.as_str()).collect();
    read.sort();
    let mut expected = vec![held.as_str(), wild.as_str(), lost.as_str()];
    expected.sort();
    assert_eq!(read, expected, "pods read: only the overdue ones");
    for (pod, at) in pods {
        let deadline = deadlines[pod] as f64;
        assert!(
            at.iter().all(|&at| at >= deadline),
            "{pod} read at {at:?}, before its deadline {deadline}"
        );
    }
    let nodes: Vec<&str> = gets
        .keys()
        .filter(|(kind, _)| *kind == Kind::Node)
        .map(|(_, n)| n.as_str())
        .collect();
    for n in &nodes {
        assert!(
            [held_node.as_str(), wild_node.as_str(), lost_node.as_str()].contains(n),
            "node {n} read, but no overdue pod ran there"
        );
    }
    assert!(nodes.contains(&lost_node.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployments_stuck_pods_each_get_their_reason_and_only_they_are_read() {
    every_reason(WEB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulsets_stuck_pods_each_get_their_reason_and_only_they_are_read() {
    every_reason(PG).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemonsets_stuck_pods_each_get_their_reason_and_only_they_are_read() {
    every_reason(AGENT).await;
}

/// A finished pod held by a finalizer and a pod that cannot be killed, deleted together; what
/// the exporter says of them under `flags`, with node reads denied when `deny_nodes`.
async fn degraded(flags: &[&str], deny_nodes: bool) -> (Cluster, Logs) {
    let c = cluster(WEB).await;
    if deny_nodes {
        c.sim.endpoint().faults().deny(Kind::Node);
    }
    let e = c.synced_exporter(flags).await;
    let [held, wild, _] = three_pods(&c, WEB);
    let (held, wild) = (name(&held), name(&wild));
    c.sim.add_finalizer("shop", &held, FINALIZER).expect("hold");
    c.sim
        .make_pod_unkillable("shop", &wild)
        .expect("unkillable");
    delete(&c, WEB, &held);
    delete(&c, WEB, &wild);
    let s = wait_metrics(e.addr, "finalizers and unknown", MINUTE, |s| {
        reasons(WEB, s) == BTreeMap::from([("finalizers", 1.0), ("unknown", 1.0)])
    })
    .await;
    assert_eq!(
        WEB.get(&s, "kube_rollout_terminating_pods_overdue", &[]),
        Some(2.0)
    );
    let mut logs = Logs::default();
    logs.wait_overdue(&e, &[&held, &wild]).await;
    assert_eq!(logs.overdue[&held]["reason"], "finalizers");
    assert_eq!(logs.overdue[&wild]["reason"], "unknown");
    (c, logs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_stuck_reasons_nothing_is_read_and_the_watches_still_tell_finalizers() {
    let (c, _) = degraded(&["--no-stuck-reasons"], false).await;
    let gets = gets(&c);
    assert!(
        gets.keys()
            .all(|(kind, _)| *kind != Kind::Pod && *kind != Kind::Node),
        "nothing read one by one: {gets:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_permission_to_read_nodes_the_reasons_that_need_the_node_are_unknown() {
    let (c, logs) = degraded(&[], true).await;
    let gets = gets(&c);
    assert!(
        gets.keys().any(|(kind, _)| *kind == Kind::Node),
        "the node was asked for, and refused"
    );
    // Said once, with what it means.
    let warned = logs.all.iter().filter(|l| l.contains("cannot get nodes"));
    assert_eq!(warned.count(), 1, "the refusal is logged once");
}
