//! `--demo`: the simulated cluster and a scenario that keeps it interesting, in one process with
//! the exporter. Only ever started by the flag; the exporter never falls back to it.
//!
//! The seed case comes first: `shop/web` rolls out 5 s after start with 8 s drains, so within a
//! minute the metrics show a rollout ready while its old pods drain, then complete. After that a
//! rollout starts every 15-40 s on a random workload (four Deployments, a StatefulSet whose pods
//! drain for 25 s one at a time, a DaemonSet on three nodes), and now and then a pod is held so its
//! termination goes overdue, for 90 s: by a finalizer (reason `finalizers`), or by a process
//! that cannot be killed (reason `still_running`).

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tracing::{info, warn};

use kube_sim::{
    Kind, SimCluster, SimConfig, SimDaemonSet, SimDeployment, SimError, SimNode, SimStatefulSet,
};

/// The demo cluster's nodes, which the DaemonSet runs on.
const NODES: [&str; 3] = ["demo-node-a", "demo-node-b", "demo-node-c"];

/// The StatefulSet: a database whose pods drain long, one at a time.
fn statefulset() -> SimStatefulSet {
    SimStatefulSet::new("data", "postgres")
        .drain_seconds(25.0)
        .grace_seconds(60)
}

/// The DaemonSet: an agent on every node.
fn daemonset() -> SimDaemonSet {
    SimDaemonSet::new("infra", "node-agent").drain_seconds(2.0)
}

/// Every workload the scenario rolls out: kind, namespace, name.
fn workloads() -> Vec<(Kind, String, String)> {
    let mut all: Vec<(Kind, String, String)> = deployments()
        .into_iter()
        .map(|d| (Kind::Deployment, d.namespace, d.name))
        .collect();
    let s = statefulset();
    all.push((Kind::StatefulSet, s.namespace, s.name));
    let d = daemonset();
    all.push((Kind::DaemonSet, d.namespace, d.name));
    all
}

/// The Deployments of the demo cluster.
fn deployments() -> Vec<SimDeployment> {
    vec![
        SimDeployment::new("shop", "web").drain_seconds(8.0),
        SimDeployment::new("shop", "api")
            .replicas(4)
            .rolling(
                IntOrString::String("25%".into()),
                IntOrString::String("25%".into()),
            )
            .drain_seconds(3.0),
        SimDeployment::new("blog", "frontend")
            .replicas(2)
            .recreate()
            .drain_seconds(2.0),
        SimDeployment::new("batch", "worker")
            .replicas(3)
            .drain_seconds(20.0)
            .grace_seconds(30),
    ]
}

/// A small deterministic generator: the demo needs variety, not cryptography.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below.max(1)
    }
}

/// Starts the demo cluster with its nodes and workloads.
pub async fn start() -> Result<SimCluster, SimError> {
    let sim = SimCluster::start(SimConfig::default()).await?;
    for node in NODES {
        sim.add_node(&SimNode::new(node))?;
    }
    for d in deployments() {
        sim.create_deployment(&d)?;
    }
    sim.create_statefulset(&statefulset())?;
    sim.create_daemonset(&daemonset())?;
    Ok(sim)
}

/// Drives rollouts on the demo cluster until the task is dropped.
pub async fn run_scenario(sim: &SimCluster) {
    let all = workloads();
    let mut rng = Lcg(0x2545_F491_4F6C_DD1D);
    let mut version = 2u64;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut next = Some(0usize);
    // The held pod: namespace, name, since when, and whether by a finalizer.
    let mut held: Option<(String, String, tokio::time::Instant, bool)> = None;
    let mut holds = 0u64;
    loop {
        let i = next
            .take()
            .unwrap_or_else(|| rng.next(all.len() as u64) as usize);
        let (kind, namespace, name) = &all[i];
        if held.is_none() && rng.next(3) == 0 {
            // Hold one current pod with a finalizer: it will be overdue once deleted.
            if let Ok(pods) = sim.pods() {
                let pod = pods.iter().find(|p| {
                    p.metadata.namespace.as_deref() == Some(namespace.as_str())
                        && p.metadata.deletion_timestamp.is_none()
                        && p.metadata
                            .name
                            .as_deref()
                            .is_some_and(|n| n.starts_with(&format!("{name}-")))
                });
                if let Some(pod) = pod.and_then(|p| p.metadata.name.clone()) {
                    // Alternately a finalizer nobody removes and a process that ignores its kill.
                    holds += 1;
                    let finalizer = holds % 2 == 1;
                    let (how, result) = if finalizer {
                        let f = "demo.kube-rollout-exporter/hold";
                        ("a finalizer", sim.add_finalizer(namespace, &pod, f))
                    } else {
                        (
                            "an unkillable process",
                            sim.make_pod_unkillable(namespace, &pod),
                        )
                    };
                    match result {
                        Ok(()) => {
                            info!(%namespace, %pod, "demo: holding a pod with {how}");
                            let since = tokio::time::Instant::now();
                            held = Some((namespace.clone(), pod, since, finalizer));
                        }
                        Err(e) => warn!(error = %e, "demo: could not hold a pod with {how}"),
                    }
                }
            }
        }
        let image = format!("registry.local/{name}:v{version}");
        version += 1;
        match sim.set_workload_image(*kind, namespace, name, &image) {
            Ok(()) => {
                info!(%namespace, workload = %name, kind = ?kind, %image, "demo: rolling out")
            }
            Err(e) => warn!(error = %e, "demo: rollout failed to start"),
        }
        let pause = Duration::from_secs(15 + rng.next(26));
        tokio::time::sleep(pause).await;
        if let Some((ns, name, since, finalizer)) = &held
            && since.elapsed() >= Duration::from_secs(90)
        {
            let released = if *finalizer {
                sim.remove_finalizers(ns, name)
            } else {
                sim.make_pod_killable(ns, name)
            };
            if let Err(e) = released {
                warn!(error = %e, "demo: could not release a held pod");
            }
            info!(namespace = %ns, pod = %name, "demo: released the held pod");
            held = None;
        }
    }
}
