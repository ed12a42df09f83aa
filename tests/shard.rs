//! Sharding: the union of N shards' metrics equals the unsharded exporter's, on the same
//! simulated cluster, and every workload is exported by exactly one shard.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::cluster::{Cluster, STEADY_WITHIN, SYNC_WITHIN, synced};
use common::exporter::{Exporter, Scrape, scrape, wait_metrics};
use kube_sim::SimDeployment;

const SHARDS: u64 = 3;

fn names() -> Vec<(String, String)> {
    ["alpha", "beta"]
        .iter()
        .flat_map(|ns| (0..5).map(move |i| (ns.to_string(), format!("app-{i}"))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_union_of_shards_equals_the_unsharded_output() {
    let deployments: Vec<SimDeployment> = names()
        .iter()
        .map(|(ns, name)| {
            SimDeployment::new(ns, name)
                .replicas(2)
                .start_seconds(0.3)
                .drain_seconds(1.5)
        })
        .collect();
    let c = Cluster::steady("shard", &deployments, STEADY_WITHIN).await;
    let kubeconfig = c.kubeconfig();

    let whole = Exporter::start(&kubeconfig, &[]);
    let shards: Vec<Exporter> = (0..SHARDS)
        .map(|i| {
            Exporter::start(
                &kubeconfig,
                &[
                    "--shard",
                    &i.to_string(),
                    "--total-shards",
                    &SHARDS.to_string(),
                ],
            )
        })
        .collect();
    for e in std::iter::once(&whole).chain(&shards) {
        wait_metrics(e.addr, "first sync", SYNC_WITHIN, synced).await;
    }
    for (i, e) in shards.iter().enumerate() {
        let s = scrape(e.addr).await;
        assert_eq!(
            s.get("kube_rollout_exporter_shard_ordinal", &[]),
            Some(i as f64)
        );
        assert_eq!(
            s.get("kube_rollout_exporter_total_shards", &[]),
            Some(SHARDS as f64)
        );
    }

    for (ns, name) in names() {
        c.sim
            .set_image(&ns, &name, "registry.local/app:v2")
            .expect("roll");
    }
    let all = wait_metrics(
        whole.addr,
        "ten rollouts complete",
        Duration::from_secs(60),
        |s| s.total_completes() == 10.0,
    )
    .await;
    let mut parts = Vec::new();
    for e in &shards {
        parts.push(scrape(e.addr).await);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while parts.iter().map(Scrape::total_completes).sum::<f64>() < 10.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "shards complete the same ten rollouts"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        parts = Vec::new();
        for e in &shards {
            parts.push(scrape(e.addr).await);
        }
    }
    let whole_series = all.workload_series();
    let mut union = BTreeMap::new();
    let mut workloads_per_shard = Vec::new();
    for part in &parts {
        let series = part.workload_series();
        let workloads: BTreeSet<String> = series
            .keys()
            .filter(|k| k.starts_with("kube_rollout_revision{"))
            .cloned()
            .collect();
        workloads_per_shard.push(workloads.len());
        for (k, v) in series {
            assert!(
                union.insert(k.clone(), v).is_none(),
                "{k} exported by two shards"
            );
        }
    }
    assert_eq!(
        workloads_per_shard.iter().sum::<usize>(),
        10,
        "each workload in exactly one shard"
    );
    assert!(
        workloads_per_shard.iter().filter(|&&n| n > 0).count() >= 2,
        "spread: {workloads_per_shard:?}"
    );
    assert_eq!(
        union.keys().collect::<Vec<_>>(),
        whole_series.keys().collect::<Vec<_>>(),
        "same series"
    );
    for (k, v) in &whole_series {
        let u = union[k];
        // Each exporter times events on its own receive: sums and timestamps agree within a
        // fraction of a second, everything else exactly. Bucket counts can only move across a
        // bound by that much; none of these durations sits that close to one.
        let tolerance = if k.contains("_sum{") || k.contains("_timestamp_seconds{") {
            0.5
        } else {
            0.0
        };
        assert!((u - v).abs() <= tolerance, "{k}: shards {u}, unsharded {v}");
    }
}
