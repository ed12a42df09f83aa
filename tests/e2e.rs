//! End to end: the real exporter binary, over real HTTP list/watch, against the simulated
//! cluster. Every wait is a condition with a deadline; assertions are on scraped metric values.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::TempDir;
use common::cluster::{Cluster, STEADY_WITHIN, wait_for_new_second};
use common::exporter::{Exporter, Scrape, binary, scrape, wait_metrics};
use common::http;
use kube_sim::{SimCluster, SimConfig, SimDeployment};

const WEB: &str = "web";
const MINUTE: Duration = Duration::from_secs(60);

/// A simulated cluster with `d` created and steady, and a kubeconfig for it.
async fn cluster(d: SimDeployment) -> Cluster {
    Cluster::steady("e2e", &[d], STEADY_WITHIN).await
}

/// [`cluster`] with an [`exporter`] on it.
async fn synced(d: SimDeployment) -> (Cluster, Exporter) {
    let c = cluster(d).await;
    let e = exporter(&c).await;
    (c, e)
}

/// Starts the exporter and waits until it has synced, which means `shop/web` is exported.
async fn exporter(c: &Cluster) -> Exporter {
    let e = c.synced_exporter(&[]).await;
    assert!(
        scrape(e.addr)
            .await
            .web("kube_rollout_started_total", WEB, &[])
            .is_some(),
        "shop/web exported once synced"
    );
    e
}

fn phase(s: &Scrape, name: &str) -> Option<&'static str> {
    ["stalled", "paused", "progressing", "draining", "complete"]
        .into_iter()
        .find(|p| s.web("kube_rollout_phase", name, &[("phase", p)]) == Some(1.0))
}

fn count(s: &Scrape, metric: &str, more: &[(&str, &str)]) -> f64 {
    s.web(&format!("{metric}_count"), WEB, more).unwrap_or(0.0)
}

fn sum(s: &Scrape, metric: &str, more: &[(&str, &str)]) -> f64 {
    s.web(&format!("{metric}_sum"), WEB, more).unwrap_or(0.0)
}

const READY: &[(&str, &str)] = &[("milestone", "ready")];
const COMPLETE: &[(&str, &str)] = &[("milestone", "complete")];

fn old_pods(sim: &SimCluster, image: &str) -> usize {
    sim.pods()
        .expect("pods")
        .iter()
        .filter(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.as_deref())
                == Some(image)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_while_old_pods_drain_then_complete_when_the_last_is_gone() {
    let (c, e) = synced(
        SimDeployment::new("shop", WEB)
            .drain_seconds(4.0)
            .start_seconds(0.5),
    )
    .await;
    let s = scrape(e.addr).await;
    assert_eq!(phase(&s, WEB), Some("complete"));
    assert_eq!(s.web("kube_rollout_started_total", WEB, &[]), Some(0.0));
    assert_eq!(
        s.web(
            "kube_rollout_slow_total",
            WEB,
            &[("threshold_seconds", "900")]
        ),
        Some(0.0)
    );

    c.sim
        .set_image("shop", WEB, "registry.local/app:v2")
        .expect("set image");
    let draining = wait_metrics(e.addr, "phase draining", MINUTE, |s| {
        phase(s, WEB) == Some("draining")
    })
    .await;
    assert_eq!(
        count(&draining, "kube_rollout_duration_seconds", READY),
        1.0
    );
    assert_eq!(
        count(&draining, "kube_rollout_duration_seconds", COMPLETE),
        0.0
    );
    assert!(
        draining
            .web("kube_rollout_terminating_pods", WEB, &[])
            .unwrap_or(0.0)
            >= 1.0
    );
    assert!(
        draining
            .web("kube_rollout_in_progress_seconds", WEB, &[])
            .unwrap_or(0.0)
            > 0.0
    );

    let done = wait_metrics(e.addr, "phase complete", MINUTE, |s| {
        phase(s, WEB) == Some("complete")
    })
    .await;
    // The exporter can only learn what the cluster already did: no old pod may exist now.
    assert_eq!(
        old_pods(&c.sim, "registry.local/app:v1"),
        0,
        "complete only when the last old pod is gone"
    );
    assert_eq!(done.web("kube_rollout_started_total", WEB, &[]), Some(1.0));
    assert_eq!(count(&done, "kube_rollout_duration_seconds", READY), 1.0);
    assert_eq!(count(&done, "kube_rollout_duration_seconds", COMPLETE), 1.0);
    assert_eq!(count(&done, "kube_rollout_drain_tail_seconds", &[]), 1.0);
    assert_eq!(
        count(&done, "kube_rollout_pod_termination_duration_seconds", &[]),
        3.0,
        "one per old pod"
    );
    assert_eq!(
        done.web("kube_rollout_terminating_pods", WEB, &[]),
        Some(0.0)
    );
    assert_eq!(
        done.web("kube_rollout_in_progress_seconds", WEB, &[]),
        Some(0.0)
    );
    let (ready, complete, tail) = (
        sum(&done, "kube_rollout_duration_seconds", READY),
        sum(&done, "kube_rollout_duration_seconds", COMPLETE),
        sum(&done, "kube_rollout_drain_tail_seconds", &[]),
    );
    assert!(
        complete > ready && ready > 0.0,
        "ready {ready} s, complete {complete} s"
    );
    assert!(
        (complete - ready - tail).abs() < 1e-3,
        "drain tail is complete minus ready"
    );
    // Each old pod drained for about 4 s (plus up to 1 s of deletionTimestamp truncation).
    let drains = sum(&done, "kube_rollout_pod_termination_duration_seconds", &[]) / 3.0;
    assert!((3.5..=5.5).contains(&drains), "mean drain {drains} s");
    // Nothing more happens afterwards.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = scrape(e.addr).await;
    assert_eq!(
        count(&later, "kube_rollout_duration_seconds", COMPLETE),
        1.0
    );
    assert_eq!(
        count(&later, "kube_rollout_pod_termination_duration_seconds", &[]),
        3.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_held_by_a_finalizer_is_overdue_and_blocks_completion() {
    let (c, e) = synced(
        SimDeployment::new("shop", WEB)
            .grace_seconds(2)
            .drain_seconds(30.0)
            .start_seconds(0.5),
    )
    .await;
    let pod = c.sim.pods().expect("pods")[0]
        .metadata
        .name
        .clone()
        .expect("name");
    c.sim
        .add_finalizer("shop", &pod, "example.com/hold")
        .expect("finalizer");
    c.sim
        .set_image("shop", WEB, "registry.local/app:v2")
        .expect("set image");
    let stuck = wait_metrics(e.addr, "an overdue termination", MINUTE, |s| {
        s.web("kube_rollout_terminating_pods_overdue", WEB, &[]) == Some(1.0)
            && count(s, "kube_rollout_pod_termination_duration_seconds", &[]) == 2.0
    })
    .await;
    assert_eq!(phase(&stuck, WEB), Some("draining"));
    assert_eq!(
        stuck.web("kube_rollout_terminating_pods", WEB, &[]),
        Some(1.0)
    );
    assert!(
        stuck
            .web("kube_rollout_oldest_termination_seconds", WEB, &[])
            .unwrap_or(0.0)
            > 2.0
    );
    assert_eq!(
        count(&stuck, "kube_rollout_duration_seconds", COMPLETE),
        0.0
    );
    c.sim
        .remove_finalizers("shop", &pod)
        .expect("remove finalizer");
    let done = wait_metrics(e.addr, "complete after the finalizer goes", MINUTE, |s| {
        phase(s, WEB) == Some("complete")
    })
    .await;
    assert_eq!(
        done.web("kube_rollout_terminating_pods_overdue", WEB, &[]),
        Some(0.0)
    );
    assert_eq!(
        count(&done, "kube_rollout_pod_termination_duration_seconds", &[]),
        3.0
    );
    assert_eq!(count(&done, "kube_rollout_duration_seconds", COMPLETE), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_template_before_completion_supersedes_the_rollout() {
    let (c, e) = synced(
        SimDeployment::new("shop", WEB)
            .drain_seconds(3.0)
            .start_seconds(1.0),
    )
    .await;
    c.sim
        .set_image("shop", WEB, "registry.local/app:v2")
        .expect("v2");
    // Started at the template change; the controller has created revision 2 (a template changed
    // again before that would become revision 2 itself).
    wait_metrics(e.addr, "v2 started", MINUTE, |s| {
        s.web("kube_rollout_started_total", WEB, &[]) == Some(1.0)
            && s.web("kube_rollout_revision", WEB, &[]) == Some(2.0)
    })
    .await;
    c.sim
        .set_image("shop", WEB, "registry.local/app:v3")
        .expect("v3");
    let done = wait_metrics(e.addr, "v3 complete", MINUTE, |s| {
        s.web("kube_rollout_started_total", WEB, &[]) == Some(2.0)
            && phase(s, WEB) == Some("complete")
    })
    .await;
    assert_eq!(
        done.web("kube_rollout_superseded_total", WEB, &[]),
        Some(1.0)
    );
    assert_eq!(
        count(&done, "kube_rollout_duration_seconds", COMPLETE),
        1.0,
        "only v3 completes"
    );
    assert_eq!(done.web("kube_rollout_revision", WEB, &[]), Some(3.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_is_a_rollout_of_the_reused_replicaset() {
    let (c, e) = synced(
        SimDeployment::new("shop", WEB)
            .drain_seconds(1.0)
            .start_seconds(0.5),
    )
    .await;
    c.sim
        .set_image("shop", WEB, "registry.local/app:v2")
        .expect("v2");
    wait_metrics(e.addr, "v2 complete", MINUTE, |s| {
        count(s, "kube_rollout_duration_seconds", COMPLETE) == 1.0
    })
    .await;
    c.sim.rollback("shop", WEB, 1).expect("rollback");
    let done = wait_metrics(e.addr, "rollback complete", MINUTE, |s| {
        count(s, "kube_rollout_duration_seconds", COMPLETE) == 2.0
    })
    .await;
    assert_eq!(done.web("kube_rollout_started_total", WEB, &[]), Some(2.0));
    assert_eq!(done.web("kube_rollout_revision", WEB, &[]), Some(3.0));
    assert_eq!(old_pods(&c.sim, "registry.local/app:v2"), 0);
    assert_eq!(
        count(&done, "kube_rollout_pod_termination_duration_seconds", &[]),
        6.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_down_counts_terminations_but_no_rollout() {
    let (c, e) = synced(
        SimDeployment::new("shop", WEB)
            .drain_seconds(1.0)
            .start_seconds(0.5),
    )
    .await;
    c.sim.scale("shop", WEB, 1).expect("scale");
    let done = wait_metrics(e.addr, "two terminations observed", MINUTE, |s| {
        count(s, "kube_rollout_pod_termination_duration_seconds", &[]) == 2.0
    })
    .await;
    assert_eq!(done.web("kube_rollout_started_total", WEB, &[]), Some(0.0));
    assert_eq!(phase(&done, WEB), Some("complete"));
    assert_eq!(count(&done, "kube_rollout_duration_seconds", READY), 0.0);
    assert_eq!(done.web("kube_rollout_revision", WEB, &[]), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exporter_restarted_mid_drain_observes_the_rest_and_counts_nothing_twice() {
    // A long drain, so the restarted exporter syncs well before it ends even on a busy machine.
    let c = cluster(
        SimDeployment::new("shop", WEB)
            .drain_seconds(12.0)
            .start_seconds(0.5),
    )
    .await;
    let first = exporter(&c).await;
    // After a restart the start is recovered from the new ReplicaSet's creationTimestamp only if
    // it is newer than the old one's.
    wait_for_new_second(&c.sim).await;
    let started_at = Instant::now();
    c.sim
        .set_image("shop", WEB, "registry.local/app:v2")
        .expect("v2");
    wait_metrics(first.addr, "draining", MINUTE, |s| {
        phase(s, WEB) == Some("draining")
    })
    .await;
    drop(first);
    let second = Exporter::start(&c.kubeconfig(), &[]);
    let resumed = wait_metrics(
        second.addr,
        "the restarted exporter sees the drain",
        MINUTE,
        |s| phase(s, WEB).is_some(),
    )
    .await;
    assert_eq!(
        phase(&resumed, WEB),
        Some("draining"),
        "recovered as draining right after the first sync"
    );
    assert_eq!(
        resumed.web("kube_rollout_started_total", WEB, &[]),
        Some(0.0),
        "the start happened before"
    );
    let done = wait_metrics(second.addr, "complete", MINUTE, |s| {
        phase(s, WEB) == Some("complete")
    })
    .await;
    let elapsed = started_at.elapsed().as_secs_f64();
    assert_eq!(
        count(&done, "kube_rollout_duration_seconds", READY),
        0.0,
        "ready happened before the restart"
    );
    assert_eq!(count(&done, "kube_rollout_duration_seconds", COMPLETE), 1.0);
    // The recovered start is the new ReplicaSet's creationTimestamp (1 s resolution).
    let complete = sum(&done, "kube_rollout_duration_seconds", COMPLETE);
    assert!(
        complete <= elapsed + 1.0 && complete >= elapsed - 2.0,
        "complete {complete} s vs {elapsed} s measured"
    );
    assert!(count(&done, "kube_rollout_pod_termination_duration_seconds", &[]) >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_that_starts_after_the_exporter_is_picked_up() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr");
    let dir = TempDir::new("late");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://{port}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n"),
    )
    .expect("kubeconfig");
    let e = Exporter::start(&kubeconfig, &[]);
    assert_eq!(http::get(e.addr, "/healthz", "*/*").await.status, 200);
    let not_ready = http::get(e.addr, "/readyz", "*/*").await;
    assert_eq!(not_ready.status, 503);
    assert!(String::from_utf8_lossy(&not_ready.body).contains("waiting for the first list"));
    wait_metrics(e.addr, "watch errors counted", MINUTE, |s| {
        s.watch_errors("pods") >= 1.0
    })
    .await;
    let sim = SimCluster::start_on(port, SimConfig::default())
        .await
        .expect("simulator on the same port");
    sim.create_deployment(&SimDeployment::new("shop", WEB))
        .expect("create");
    wait_metrics(e.addr, "shop/web exported", MINUTE, |s| {
        s.web("kube_rollout_revision", WEB, &[]) == Some(1.0)
    })
    .await;
    let deadline = Instant::now() + MINUTE;
    while http::get(e.addr, "/readyz", "*/*").await.status != 200 {
        assert!(
            Instant::now() < deadline,
            "ready within a minute of the API server coming up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = scrape(e.addr).await;
    for r in ["deployments", "replicasets", "pods", "finished_pods"] {
        assert_eq!(
            s.get("kube_rollout_exporter_synced", &[("resource", r)]),
            Some(1.0),
            "{r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_openmetrics_when_asked_and_shuts_down_cleanly_on_sigterm() {
    let (_c, e) = synced(SimDeployment::new("shop", WEB)).await;
    let om = http::get(
        e.addr,
        "/metrics",
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    )
    .await;
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let body = String::from_utf8_lossy(&om.body);
    assert!(body.ends_with("# EOF\n"));
    assert!(body.contains("# TYPE kube_rollout_started counter"));
    assert!(body.contains("kube_rollout_exporter_build_info{version=\""));
    let plain = http::get(e.addr, "/metrics", "text/plain").await;
    assert_eq!(
        plain.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let landing = http::get(e.addr, "/", "text/html").await;
    assert!(String::from_utf8_lossy(&landing.body).contains("href=\"/metrics\""));
    assert_eq!(http::get(e.addr, "/nope", "*/*").await.status, 404);
    assert!(e.terminate().success(), "exit 0 after SIGTERM");
}

#[test]
fn bad_flags_and_a_missing_kubeconfig_exit_with_one_clear_line_without_colour_codes() {
    let bad_flag = Command::new(binary())
        .arg("--web.listen-address=nope")
        .output()
        .expect("run");
    assert_eq!(bad_flag.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_flag.stderr).contains("is not host:port"));

    let missing = Command::new(binary())
        .args([
            "--kubeconfig",
            "/nonexistent/kubeconfig",
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.level",
            "error",
        ])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: cannot read kubeconfig /nonexistent/kubeconfig"),
        "{stderr}"
    );
    assert!(last.contains("--kubeconfig"), "says what to do: {last}");
    assert!(
        stderr.lines().count() >= 2,
        "the error is logged as well as printed: {stderr}"
    );
    assert!(
        !stderr.contains('\x1b'),
        "logs to a pipe carry no colour codes: {stderr:?}"
    );

    // A combination clap cannot check is a usage error too, before anything starts.
    let out_of_range = Command::new(binary())
        .args(["--shard", "3", "--total-shards", "3", "--demo"])
        .args(["--web.listen-address", "127.0.0.1:0"])
        .output()
        .expect("run");
    assert_eq!(out_of_range.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out_of_range.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("error: --shard 3 is out of range") && stderr.contains("0 to 2"),
        "{stderr}"
    );

    let nothing = Command::new(binary())
        .args([
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.level",
            "error",
        ])
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("run");
    assert_eq!(nothing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&nothing.stderr);
    assert!(
        stderr.lines().last().unwrap_or_default().contains("--demo"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_the_seed_case_within_a_minute() {
    // Stopped however the test ends, a failed assertion included.
    let demo = Exporter::demo(&[]);
    let (addr, started) = (demo.addr, Instant::now());
    let draining = wait_metrics(addr, "shop/web draining", MINUTE, |s| {
        phase(s, WEB) == Some("draining")
    })
    .await;
    assert!(
        draining
            .web("kube_rollout_terminating_pods", WEB, &[])
            .unwrap_or(0.0)
            >= 1.0
    );
    wait_metrics(addr, "shop/web complete after its drain", MINUTE, |s| {
        count(s, "kube_rollout_duration_seconds", COMPLETE) >= 1.0
            && phase(s, WEB) == Some("complete")
    })
    .await;
    assert!(
        started.elapsed() < MINUTE,
        "seed case shown within a minute: {:?}",
        started.elapsed()
    );
    // The demo's StatefulSet and DaemonSet are measured too.
    let s = scrape(addr).await;
    for (namespace, workload, kind) in [
        ("data", "postgres", "statefulset"),
        ("infra", "node-agent", "daemonset"),
    ] {
        let labels = [
            ("namespace", namespace),
            ("workload", workload),
            ("workload_type", kind),
            ("strategy", "RollingUpdate"),
        ];
        assert_eq!(
            s.get("kube_rollout_workload_info", &labels),
            Some(1.0),
            "{kind} {namespace}/{workload} exported"
        );
    }
}
