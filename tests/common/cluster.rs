//! The prelude of the end-to-end tests: a simulated cluster whose Deployments are created and
//! steady, a kubeconfig for it, and exporters started on it that have synced.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube_sim::{SimCluster, SimConfig, SimDeployment};

use super::TempDir;
use super::exporter::{Exporter, Scrape, wait_metrics};

/// How long a handful of fresh Deployments may take to become steady on a busy machine.
pub const STEADY_WITHIN: Duration = Duration::from_secs(30);

/// How long a started exporter may take to list everything.
pub const SYNC_WITHIN: Duration = Duration::from_secs(20);

/// A simulated cluster and a directory holding its kubeconfig (and whatever else a test writes).
pub struct Cluster {
    pub sim: SimCluster,
    pub dir: TempDir,
}

impl Cluster {
    /// Starts a simulated cluster, creates `deployments` and waits (at most `within`) until every
    /// one is [`steady`]; writes its kubeconfig into a fresh directory tagged `tag`.
    pub async fn steady(tag: &str, deployments: &[SimDeployment], within: Duration) -> Self {
        let sim = steady_sim(deployments, within).await;
        let dir = TempDir::new(tag);
        sim.write_kubeconfig(&dir.path().join("kubeconfig"))
            .expect("kubeconfig");
        Self { sim, dir }
    }

    /// The kubeconfig of the cluster's main endpoint.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Starts an exporter on the cluster with `flags` and waits until it has [`synced`].
    pub async fn synced_exporter(&self, flags: &[&str]) -> Exporter {
        let e = Exporter::start(&self.kubeconfig(), flags);
        wait_metrics(e.addr, "first sync", SYNC_WITHIN, synced).await;
        e
    }
}

/// A simulated cluster with `deployments` created and [`steady`] within `within`, for tests that
/// read its API themselves.
pub async fn steady_sim(deployments: &[SimDeployment], within: Duration) -> SimCluster {
    let sim = SimCluster::start(SimConfig::default())
        .await
        .expect("simulator starts");
    for d in deployments {
        sim.create_deployment(d).expect("create deployment");
    }
    sim.wait_for(
        &format!("{} Deployments steady", deployments.len()),
        within,
        |w| {
            deployments.iter().all(|want| {
                w.store.deployments().any(|d| {
                    d.metadata.namespace.as_deref() == Some(&want.namespace)
                        && d.metadata.name.as_deref() == Some(&want.name)
                        && steady(d, want.replicas)
                })
            })
        },
    )
    .await
    .expect("every Deployment becomes steady");
    sim
}

/// Whether a Deployment is at rest with `replicas` pods: its controller has seen the latest spec,
/// all its pods are available and no other remains, and its new ReplicaSet is available.
pub fn steady(d: &Deployment, replicas: i32) -> bool {
    d.metadata.generation == d.status.as_ref().and_then(|s| s.observed_generation)
        && d.status.as_ref().is_some_and(|s| {
            s.available_replicas.unwrap_or(0) == replicas
                && s.replicas.unwrap_or(0) == replicas
                && s.conditions.as_ref().is_some_and(|c| {
                    c.iter()
                        .any(|c| c.reason.as_deref() == Some("NewReplicaSetAvailable"))
                })
        })
}

/// Whether every watch of the exporter has finished its first list.
pub fn synced(s: &Scrape) -> bool {
    // Every watched resource (which ones depends on --kinds), and at least the four every
    // configuration watches.
    let synced: Vec<f64> =
        s.0.iter()
            .filter(|(k, _)| k.starts_with("kube_rollout_exporter_synced{"))
            .map(|(_, v)| *v)
            .collect();
    synced.len() >= 4 && synced.iter().all(|&v| v == 1.0)
}

/// Waits until the wall clock is in a later second than every ReplicaSet's creationTimestamp
/// (1 s resolution), so the next ReplicaSet is strictly newer: after an exporter restart the
/// rollout start is recovered from it only then.
pub async fn wait_for_new_second(sim: &SimCluster) {
    sim.wait_for(
        "a new second since the last ReplicaSet",
        Duration::from_secs(60),
        |w| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            w.store.replicasets().all(|rs| {
                rs.metadata
                    .creation_timestamp
                    .as_ref()
                    .is_some_and(|t| t.0.as_second() < now)
            })
        },
    )
    .await
    .expect("the clock moves");
}
