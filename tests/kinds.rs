//! End to end for StatefulSets and DaemonSets: the real exporter binary over real HTTP
//! list/watch against the simulated cluster's StatefulSet, DaemonSet and ControllerRevision
//! controllers. Every wait is a condition with a deadline; assertions are on scraped values.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Cluster, STEADY_WITHIN};
use common::exporter::{Exporter, scrape, wait_metrics};
use common::workload::{COMPLETE, READY, W};
use kube_sim::{Kind, SimDaemonSet, SimNode, SimStatefulSet, World};

const MINUTE: Duration = Duration::from_secs(60);
const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];

const PG: W = W("db", "pg", "statefulset");
const AGENT: W = W("infra", "agent", "daemonset");

/// A simulated cluster with three nodes and these workloads created and steady.
async fn cluster(statefulsets: &[SimStatefulSet], daemonsets: &[SimDaemonSet]) -> Cluster {
    let c = Cluster::steady("kinds", &[], STEADY_WITHIN).await;
    for node in NODES {
        c.sim.add_node(&SimNode::new(node)).expect("node");
    }
    for s in statefulsets {
        c.sim.create_statefulset(s).expect("statefulset");
    }
    for d in daemonsets {
        c.sim.create_daemonset(d).expect("daemonset");
    }
    let (sts, ds) = (statefulsets.len(), daemonsets.len());
    c.sim
        .wait_for("every workload steady", STEADY_WITHIN, move |w| {
            steady_statefulsets(w) == sts && steady_daemonsets(w) == ds
        })
        .await
        .expect("steady");
    c
}

/// StatefulSets whose controller has seen their spec, with every replica ready at the update
/// revision.
fn steady_statefulsets(w: &World) -> usize {
    w.store
        .statefulsets()
        .filter(|s| {
            let replicas = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            s.status.as_ref().is_some_and(|st| {
                st.observed_generation == s.metadata.generation
                    && st.ready_replicas.unwrap_or(0) == replicas
                    && st.replicas == replicas
                    && st.update_revision.is_some()
                    && st.update_revision == st.current_revision
            })
        })
        .count()
}

/// DaemonSets running an available, updated pod on every node they should.
fn steady_daemonsets(w: &World) -> usize {
    w.store
        .daemonsets()
        .filter(|d| {
            d.status.as_ref().is_some_and(|st| {
                st.observed_generation == d.metadata.generation
                    && st.desired_number_scheduled == NODES.len() as i32
                    && st.updated_number_scheduled.unwrap_or(0) == st.desired_number_scheduled
                    && st.number_available.unwrap_or(0) == st.desired_number_scheduled
            })
        })
        .count()
}

/// An exporter that has synced and exports each of `workloads` as complete, nothing started.
async fn exporter(c: &Cluster, flags: &[&str], workloads: &[W]) -> Exporter {
    let e = c.synced_exporter(flags).await;
    let s = scrape(e.addr).await;
    for &w in workloads {
        assert_eq!(w.phase(&s), Some("complete"), "{} at rest", w.1);
        assert_eq!(w.started(&s), 0.0, "{}: nothing started at the sync", w.1);
    }
    e
}

fn pg() -> SimStatefulSet {
    SimStatefulSet::new("db", "pg")
        .start_seconds(0.3)
        .drain_seconds(1.5)
}

fn agent() -> SimDaemonSet {
    SimDaemonSet::new("infra", "agent")
        .start_seconds(0.3)
        .drain_seconds(1.5)
}

fn set_image(c: &Cluster, w: W, image: &str) {
    c.sim
        .set_workload_image(w.kind(), w.0, w.1, image)
        .expect("set image");
}

/// The names of `w`'s pods that have a deletionTimestamp.
fn terminating_pods(c: &Cluster, w: W) -> Vec<String> {
    c.sim
        .pods()
        .expect("pods")
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(w.0))
        .filter(|p| p.metadata.deletion_timestamp.is_some())
        .filter_map(|p| p.metadata.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulset_replaces_one_pod_at_a_time_and_is_complete_when_kubectl_says_so() {
    let c = cluster(&[pg()], &[]).await;
    let e = exporter(&c, &[], &[PG]).await;
    let t0 = Instant::now();
    set_image(&c, PG, "registry.local/app:v2");
    // While it rolls, never more than one old pod terminates at once.
    let most = std::cell::Cell::new(0.0f64);
    let done = wait_metrics(e.addr, "pg complete", MINUTE, |s| {
        let now = PG.get(s, "kube_rollout_terminating_pods", &[]);
        most.set(most.get().max(now.unwrap_or(0.0)));
        PG.completes(s) == 1.0
    })
    .await;
    let most = most.get();
    let elapsed = t0.elapsed().as_secs_f64();
    assert_eq!(most, 1.0, "one old pod at a time");
    assert_eq!(PG.started(&done), 1.0);
    assert_eq!(PG.phase(&done), Some("complete"));
    assert_eq!(PG.get(&done, "kube_rollout_revision", &[]), Some(2.0));
    assert_eq!(PG.terminations(&done), 3.0);
    // Each old pod is gone before its successor starts: the three drains sit inside the
    // rollout, and kubectl's moment comes after the last is gone (no drain tail).
    let complete = PG.sum(&done, "kube_rollout_duration_seconds", COMPLETE);
    assert!(
        complete >= 3.0 * 1.5 && complete <= elapsed + 0.5,
        "complete {complete} s, elapsed {elapsed} s"
    );
    assert_eq!(
        PG.sum(&done, "kube_rollout_duration_seconds", READY),
        complete
    );
    assert_eq!(PG.sum(&done, "kube_rollout_drain_tail_seconds", &[]), 0.0);
    assert_eq!(
        PG.get(
            &done,
            "kube_rollout_workload_info",
            &[("strategy", "RollingUpdate")]
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_canary_then_its_promotion_are_two_rollouts() {
    let c = cluster(&[pg().partition(2)], &[]).await;
    let e = exporter(&c, &[], &[PG]).await;
    assert_eq!(
        PG.get(&scrape(e.addr).await, "kube_rollout_partition", &[]),
        Some(2.0)
    );
    set_image(&c, PG, "registry.local/app:v2");
    let canary = wait_metrics(e.addr, "canary complete", MINUTE, |s| {
        PG.completes(s) == 1.0
    })
    .await;
    assert_eq!(PG.started(&canary), 1.0);
    assert_eq!(PG.terminations(&canary), 1.0, "only pg-2 was replaced");
    // Promotion: partition 0 while pg-0 and pg-1 are old.
    c.sim.set_partition("db", "pg", Some(0)).expect("promote");
    let promoted = wait_metrics(e.addr, "promotion complete", MINUTE, |s| {
        PG.completes(s) == 2.0
    })
    .await;
    assert_eq!(PG.started(&promoted), 2.0);
    assert_eq!(
        PG.get(&promoted, "kube_rollout_superseded_total", &[]),
        Some(0.0)
    );
    assert_eq!(PG.terminations(&promoted), 3.0);
    assert_eq!(PG.get(&promoted, "kube_rollout_partition", &[]), Some(0.0));
    assert_eq!(PG.phase(&promoted), Some("complete"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ondelete_statefulsets_and_daemonsets_wait_for_people_and_are_never_slow() {
    let c = cluster(&[pg().on_delete()], &[agent().on_delete()]).await;
    let e = exporter(&c, &["--slo-threshold", "2s"], &[PG, AGENT]).await;
    set_image(&c, PG, "registry.local/app:v2");
    set_image(&c, AGENT, "registry.local/app:v2");
    let waiting = wait_metrics(e.addr, "both waiting for people", MINUTE, |s| {
        [PG, AGENT].iter().all(|w| {
            w.phase(s) == Some("waiting")
                && w.get(s, "kube_rollout_in_progress_seconds", &[]) > Some(2.5)
        })
    })
    .await;
    for w in [PG, AGENT] {
        assert_eq!(w.started(&waiting), 1.0, "{}", w.1);
        let info = w.get(
            &waiting,
            "kube_rollout_workload_info",
            &[("strategy", "OnDelete")],
        );
        assert_eq!(info, Some(1.0), "{}", w.1);
    }
    // People delete the old pods, one after the other.
    let old_pods = |w: W| -> Vec<String> {
        c.sim
            .pods()
            .expect("pods")
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(w.0))
            .filter(|p| {
                let image = p.spec.as_ref().and_then(|s| s.containers.first());
                image.and_then(|c| c.image.as_deref()) == Some("registry.local/app:v1")
            })
            .filter_map(|p| p.metadata.name)
            .collect()
    };
    for w in [PG, AGENT] {
        for replaced in 1..=3 {
            let pod = old_pods(w).into_iter().next().expect("an old pod left");
            c.sim.delete_pod(w.0, &pod, None).expect("delete");
            wait_metrics(e.addr, "the old pod replaced", MINUTE, |s| {
                w.terminations(s) == f64::from(replaced)
                    && matches!(w.phase(s), Some("waiting" | "complete"))
            })
            .await;
        }
    }
    let done = wait_metrics(e.addr, "both complete", MINUTE, |s| {
        [PG, AGENT].iter().all(|w| w.phase(s) == Some("complete"))
    })
    .await;
    for w in [PG, AGENT] {
        assert_eq!(w.terminations(&done), 3.0, "{}: terminations measured", w.1);
        assert_eq!(
            w.completes(&done) + w.count(&done, "kube_rollout_duration_seconds", READY),
            0.0,
            "{}: durations that measure people are not observed",
            w.1
        );
        let slow = w.get(
            &done,
            "kube_rollout_slow_total",
            &[("threshold_seconds", "2")],
        );
        assert_eq!(slow, Some(0.0), "{}", w.1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemonset_rolls_node_by_node_and_with_surge() {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    const SURGE: W = W("infra", "surge", "daemonset");
    let surge = SimDaemonSet::new("infra", "surge")
        .start_seconds(0.3)
        .drain_seconds(1.5)
        .rolling(IntOrString::Int(1), IntOrString::Int(0));
    let c = cluster(&[], &[agent(), surge]).await;
    let e = exporter(&c, &[], &[AGENT, SURGE]).await;
    set_image(&c, AGENT, "registry.local/app:v2");
    set_image(&c, SURGE, "registry.local/app:v2");
    let done = wait_metrics(e.addr, "both complete", MINUTE, |s| {
        AGENT.completes(s) == 1.0 && SURGE.completes(s) == 1.0
    })
    .await;
    for w in [AGENT, SURGE] {
        assert_eq!(w.started(&done), 1.0, "{}", w.1);
        assert_eq!(w.terminations(&done), 3.0, "{}: one old pod per node", w.1);
        assert_eq!(w.get(&done, "kube_rollout_revision", &[]), Some(2.0));
        assert_eq!(w.phase(&done), Some("complete"));
    }
    // maxUnavailable: a node counts as updated once its old pod has finished, so kubectl's
    // moment comes after the last old pod is gone.
    assert_eq!(
        AGENT.sum(&done, "kube_rollout_drain_tail_seconds", &[]),
        0.0
    );
    // Surge: each old pod is deleted once its successor is available; ready (every node
    // updated and available) can come while the last old pod still drains.
    let ready = SURGE.sum(&done, "kube_rollout_duration_seconds", READY);
    let complete = SURGE.sum(&done, "kube_rollout_duration_seconds", COMPLETE);
    assert!(complete >= ready, "ready {ready} s, complete {complete} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_terminations_of_both_kinds_are_overdue_and_block_completion() {
    // Drains well within the grace period: only the held pods go past their deadline.
    let c = cluster(
        &[pg().grace_seconds(2).drain_seconds(0.3)],
        &[agent().grace_seconds(2).drain_seconds(0.3)],
    )
    .await;
    let e = exporter(&c, &[], &[PG, AGENT]).await;
    // A finalizer nobody removes on one old pod of each.
    let held_pg = "pg-2".to_string();
    c.sim
        .add_finalizer("db", &held_pg, "example.com/never")
        .expect("finalizer");
    let held_agent = c
        .sim
        .pods()
        .expect("pods")
        .into_iter()
        .find(|p| p.metadata.namespace.as_deref() == Some("infra"))
        .and_then(|p| p.metadata.name)
        .expect("an agent pod");
    c.sim
        .add_finalizer("infra", &held_agent, "example.com/never")
        .expect("finalizer");
    set_image(&c, PG, "registry.local/app:v2");
    set_image(&c, AGENT, "registry.local/app:v2");
    let stuck = wait_metrics(e.addr, "both held pods overdue", MINUTE, |s| {
        [PG, AGENT]
            .iter()
            .all(|w| w.get(s, "kube_rollout_terminating_pods_overdue", &[]) == Some(1.0))
            && terminating_pods(&c, PG).contains(&held_pg)
            && terminating_pods(&c, AGENT).contains(&held_agent)
    })
    .await;
    for w in [PG, AGENT] {
        assert_eq!(w.completes(&stuck), 0.0, "{}: blocked", w.1);
        assert!(
            w.get(&stuck, "kube_rollout_oldest_termination_seconds", &[]) > Some(1.0),
            "{}",
            w.1
        );
    }
    c.sim.remove_finalizers("db", &held_pg).expect("release");
    c.sim
        .remove_finalizers("infra", &held_agent)
        .expect("release");
    let done = wait_metrics(e.addr, "both complete", MINUTE, |s| {
        PG.completes(s) == 1.0 && AGENT.completes(s) == 1.0
    })
    .await;
    for w in [PG, AGENT] {
        assert_eq!(
            w.get(&done, "kube_rollout_terminating_pods_overdue", &[]),
            Some(0.0)
        );
        assert_eq!(w.terminations(&done), 3.0, "{}", w.1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exporter_restarted_mid_statefulset_rollout_recovers_its_start() {
    let c = cluster(&[pg().drain_seconds(4.0)], &[]).await;
    let first = exporter(&c, &[], &[PG]).await;
    let t0 = Instant::now();
    set_image(&c, PG, "registry.local/app:v2");
    wait_metrics(first.addr, "the first old pod gone", MINUTE, |s| {
        PG.terminations(s) == 1.0
    })
    .await;
    drop(first);
    let second = c.synced_exporter(&[]).await;
    let resumed = scrape(second.addr).await;
    assert_eq!(
        PG.phase(&resumed),
        Some("progressing"),
        "recovered in flight"
    );
    assert_eq!(PG.started(&resumed), 0.0, "the start happened before");
    let done = wait_metrics(second.addr, "complete", MINUTE, |s| PG.completes(s) == 1.0).await;
    let elapsed = t0.elapsed().as_secs_f64();
    // The start is the update revision's ControllerRevision creationTimestamp (1 s resolution):
    // the newest revision, no partition.
    let complete = PG.sum(&done, "kube_rollout_duration_seconds", COMPLETE);
    assert!(
        complete <= elapsed + 1.0 && complete >= elapsed - 2.0,
        "complete {complete} s vs {elapsed} s measured"
    );
    // kubectl's moment came after the restart: observed, from the recovered start.
    assert_eq!(PG.count(&done, "kube_rollout_duration_seconds", READY), 1.0);
    assert_eq!(
        PG.terminations(&done),
        2.0,
        "the two drains after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulset_rollback_raises_the_old_revision_and_is_a_rollout() {
    let c = cluster(&[pg().drain_seconds(0.5)], &[]).await;
    let e = exporter(&c, &[], &[PG]).await;
    set_image(&c, PG, "registry.local/app:v2");
    wait_metrics(e.addr, "v2 complete", MINUTE, |s| PG.completes(s) == 1.0).await;
    c.sim
        .rollback_workload(Kind::StatefulSet, "db", "pg", 1)
        .expect("rollback");
    let done = wait_metrics(e.addr, "rollback complete", MINUTE, |s| {
        PG.completes(s) == 2.0
    })
    .await;
    assert_eq!(PG.started(&done), 2.0);
    assert_eq!(
        PG.get(&done, "kube_rollout_revision", &[]),
        Some(3.0),
        "revision 1 raised to 3"
    );
    assert_eq!(PG.terminations(&done), 6.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinds_left_out_are_not_watched() {
    let c = cluster(&[pg()], &[agent()]).await;
    let e = c.synced_exporter(&["--kinds", "deployment,ds"]).await;
    let s = scrape(e.addr).await;
    let synced = |r: &str| s.get("kube_rollout_exporter_synced", &[("resource", r)]);
    assert_eq!(synced("statefulsets"), None, "no StatefulSet watch");
    assert_eq!(synced("daemonsets"), Some(1.0));
    assert_eq!(
        synced("controllerrevisions"),
        Some(1.0),
        "the DaemonSets need them"
    );
    assert_eq!(PG.phase(&s), None, "pg is not exported");
    assert_eq!(AGENT.phase(&s), Some("complete"));
    // The StatefulSet's pods are not kept either.
    set_image(&c, PG, "registry.local/app:v2");
    set_image(&c, AGENT, "registry.local/app:v2");
    let done = wait_metrics(e.addr, "agent complete", MINUTE, |s| {
        AGENT.completes(s) == 1.0
    })
    .await;
    assert_eq!(PG.phase(&done), None);
}
