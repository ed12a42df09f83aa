//! Resilience under API faults. Each test runs two exporters on the same simulated cluster: one
//! through a clean endpoint (the fault-free run of the same scenario) and one through an endpoint
//! with faults injected. The faulty one must keep serving what it knows, show the trouble in its
//! self-metrics (and /readyz where it lasts), recover by itself, and end with the same metrics as
//! the clean one, except the documented bound: an observation whose event fell in a watch gap
//! is timed at the relist (later by at most the gap), and a termination that started and ended
//! inside a gap is not seen at all.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Cluster, STEADY_WITHIN, SYNC_WITHIN, synced, wait_for_new_second};
use common::exporter::{Exporter, Scrape, scrape, wait_metrics};
use common::http;
use kube_sim::{Endpoint, ErrorFault, SimDeployment};

const WEB: &str = "web";
const MINUTE: Duration = Duration::from_secs(60);

struct Pair {
    cluster: Cluster,
    faulty: Endpoint,
    clean: Exporter,
    bad: Exporter,
}

/// `shop/web` steady; one exporter through the main endpoint, one through a second endpoint
/// prepared by `before` (faults set before the faulty exporter starts).
async fn pair(d: SimDeployment, bad_flags: &[&str], before: impl FnOnce(&Endpoint)) -> Pair {
    let cluster = Cluster::steady("faults", &[d], STEADY_WITHIN).await;
    let faulty = cluster.sim.add_endpoint().await.expect("second endpoint");
    faulty
        .write_kubeconfig(&bad_kubeconfig(&cluster))
        .expect("kubeconfig");
    before(&faulty);
    // Both start at once; only the clean one is sure to sync.
    let bad = Exporter::start(&bad_kubeconfig(&cluster), bad_flags);
    let clean = cluster.synced_exporter(&[]).await;
    Pair {
        cluster,
        faulty,
        clean,
        bad,
    }
}

/// A [`pair`] without faults set, once the faulty exporter has synced too.
async fn synced_pair(d: SimDeployment, bad_flags: &[&str]) -> Pair {
    let p = pair(d, bad_flags, |_| {}).await;
    wait_metrics(p.bad.addr, "faulty synced", SYNC_WITHIN, synced).await;
    p
}

impl Pair {
    /// Rolls `shop/web` to `image`.
    fn roll(&self, image: &str) {
        self.cluster
            .sim
            .set_image("shop", WEB, image)
            .expect("set image");
    }
}

/// The kubeconfig of the faulty endpoint.
fn bad_kubeconfig(c: &Cluster) -> std::path::PathBuf {
    c.dir.path().join("bad")
}

fn completes(s: &Scrape) -> f64 {
    s.web(
        "kube_rollout_duration_seconds_count",
        WEB,
        &[("milestone", "complete")],
    )
    .unwrap_or(0.0)
}

fn phase_complete(s: &Scrape) -> bool {
    s.web("kube_rollout_phase", WEB, &[("phase", "complete")]) == Some(1.0)
}

fn self_metric(s: &Scrape, name: &str) -> f64 {
    s.0.iter()
        .filter(|(k, _)| k.starts_with(&format!("{name}{{")))
        .map(|(_, v)| v)
        .sum()
}

/// API answers the exporter counted, summed over resources, for a verb and/or a code.
fn requests(s: &Scrape, verb: Option<&str>, code: Option<&str>) -> f64 {
    s.0.iter()
        .filter(|(k, _)| k.starts_with("kube_rollout_exporter_api_requests_total{"))
        .filter(|(k, _)| verb.is_none_or(|v| k.contains(&format!("verb=\"{v}\""))))
        .filter(|(k, _)| code.is_none_or(|c| k.contains(&format!("code=\"{c}\""))))
        .map(|(_, v)| v)
        .sum()
}

/// The faulty exporter's workload metrics equal the clean one's; durations and timestamps may
/// differ by `bound` seconds per observation (receive-time jitter, or a gap's relist), and
/// bucket counts only where such a shift is allowed.
fn assert_equivalent(clean: &Scrape, bad: &Scrape, bound: f64) {
    let (c, b) = (clean.workload_series(), bad.workload_series());
    assert_eq!(
        c.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "same series"
    );
    for (k, cv) in &c {
        let bv = b[k];
        if k.contains("_sum{") {
            let n = c
                .get(&k.replace("_sum{", "_count{"))
                .copied()
                .unwrap_or(1.0)
                .max(1.0);
            assert!(
                (bv - cv).abs() <= bound * n + 0.3,
                "{k}: faulty {bv}, clean {cv}, bound {bound} s each"
            );
        } else if k.contains("_timestamp_seconds{") {
            assert!(
                (bv - cv).abs() <= bound + 0.3,
                "{k}: faulty {bv}, clean {cv}"
            );
        } else if k.contains("_bucket{") && bound > 0.5 {
            // A shifted observation may cross one bucket bound.
        } else {
            assert_eq!(bv, *cv, "{k}");
        }
    }
}

/// Rolls `shop/web` to `image` and waits until both exporters saw it complete.
async fn roll_and_converge(
    p: &Pair,
    image: &str,
    expected_completes: f64,
    within: Duration,
) -> (Scrape, Scrape) {
    p.roll(image);
    converge(p, expected_completes, within).await
}

async fn converge(p: &Pair, expected_completes: f64, within: Duration) -> (Scrape, Scrape) {
    let done = |s: &Scrape| completes(s) == expected_completes && phase_complete(s);
    let clean = wait_metrics(p.clean.addr, "clean exporter: complete", within, done).await;
    let bad = wait_metrics(p.bad.addr, "faulty exporter: complete", within, done).await;
    (clean, bad)
}

fn deployment() -> SimDeployment {
    SimDeployment::new("shop", WEB)
        .drain_seconds(3.0)
        .start_seconds(0.5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watch_connections_lose_nothing() {
    let p = synced_pair(deployment(), &[]).await;
    p.roll("registry.local/app:v2");
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        p.faulty.drop_watches();
    }
    let (clean, bad) = converge(&p, 1.0, MINUTE).await;
    // A dropped watch is resumed at once (no watcher error); the drops show as re-watches.
    let bad_watches = requests(&bad, Some("watch"), Some("200"));
    let clean_watches = requests(&clean, Some("watch"), Some("200"));
    assert!(
        bad_watches >= clean_watches + 16.0,
        "four drops of four watches: {bad_watches} vs {clean_watches}"
    );
    assert_equivalent(&clean, &bad, 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_answered_410_force_relists_and_lose_nothing() {
    let p = synced_pair(deployment(), &[]).await;
    p.roll("registry.local/app:v2");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    p.faulty.faults().set(|f| f.expire_watch_resumes = true);
    p.faulty.drop_watches();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    p.faulty.drop_watches();
    p.faulty.faults().clear();
    let (clean, bad) = converge(&p, 1.0, MINUTE).await;
    assert!(
        self_metric(&bad, "kube_rollout_exporter_watch_restarts_total") >= 4.0,
        "every watch relisted"
    );
    assert_eq!(
        self_metric(&clean, "kube_rollout_exporter_watch_restarts_total"),
        0.0
    );
    // A relist follows within the watcher's backoff (under 3 s here).
    assert_equivalent(&clean, &bad, 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_continue_token_during_a_paged_list_is_retried() {
    let p = pair(deployment(), &["--watch.page-size", "1"], |ep| {
        ep.faults().set(|f| f.expire_continue_tokens = true);
    })
    .await;
    // The pod list needs three pages: it fails while tokens expire, so the exporter is not ready.
    let stuck = wait_metrics(
        p.bad.addr,
        "list errors counted",
        Duration::from_secs(20),
        |s| s.watch_errors("pods") >= 1.0,
    )
    .await;
    assert_eq!(
        stuck.get("kube_rollout_exporter_synced", &[("resource", "pods")]),
        Some(0.0)
    );
    assert_eq!(http::get(p.bad.addr, "/readyz", "*/*").await.status, 503);
    p.faulty.faults().clear();
    wait_metrics(p.bad.addr, "synced once tokens last", MINUTE, synced).await;
    let (clean, bad) = roll_and_converge(&p, "registry.local/app:v2", 1.0, MINUTE).await;
    assert_equivalent(&clean, &bad, 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_with_and_without_retry_after() {
    let p = synced_pair(deployment(), &[]).await;
    p.roll("registry.local/app:v2");
    p.faulty.faults().set(|f| {
        f.error = Some(ErrorFault {
            code: 429,
            retry_after: Some(1),
            remaining: 4,
        })
    });
    p.faulty.drop_watches();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    p.faulty.faults().set(|f| {
        f.error = Some(ErrorFault {
            code: 503,
            retry_after: None,
            remaining: 4,
        })
    });
    p.faulty.drop_watches();
    let (clean, bad) = converge(&p, 1.0, MINUTE).await;
    assert!(
        requests(&bad, None, Some("429")) >= 4.0,
        "throttled answers counted"
    );
    assert!(
        requests(&bad, None, Some("503")) >= 4.0,
        "server errors counted"
    );
    assert!(
        self_metric(&bad, "kube_rollout_exporter_watch_errors_total") >= 8.0,
        "each refused request is a watch error"
    );
    assert_eq!(
        requests(&clean, None, Some("429")) + requests(&clean, None, Some("503")),
        0.0
    );
    assert_eq!(
        p.faulty.faults().get().error.map(|e| e.remaining),
        Some(0),
        "every injected error was served"
    );
    // A watch refused with 429/503 retries after backoff; with the failed requests that is a
    // few seconds at most.
    assert_equivalent(&clean, &bad, 5.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn very_slow_responses_delay_but_do_not_break() {
    let p = pair(deployment(), &[], |ep| {
        ep.faults().set(|f| f.delay = Some(Duration::from_secs(2)));
    })
    .await;
    wait_metrics(
        p.bad.addr,
        "faulty synced despite 2 s per request",
        Duration::from_secs(30),
        synced,
    )
    .await;
    p.roll("registry.local/app:v2");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    p.faulty.drop_watches();
    let (clean, bad) = converge(&p, 1.0, MINUTE).await;
    p.faulty.faults().clear();
    // Events missed while a watch restarts slowly come back through the resumed watch, late by
    // at most the delay and the backoff.
    assert_equivalent(&clean, &bad, 4.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_and_malformed_json_are_lost_events_recovered_by_relisting() {
    let p = pair(deployment(), &[], |ep| {
        ep.faults().set(|f| f.truncate_lists = 2)
    })
    .await;
    wait_metrics(
        p.bad.addr,
        "synced after truncated lists",
        Duration::from_secs(30),
        synced,
    )
    .await;
    let early = scrape(p.bad.addr).await;
    assert!(
        self_metric(&early, "kube_rollout_exporter_watch_errors_total") >= 2.0,
        "undecodable lists counted"
    );
    p.roll("registry.local/app:v2");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // The next watch event (whichever stream) arrives as half a line: it is lost.
    p.faulty.faults().set(|f| f.garble_watch_events = 1);
    let (clean, bad) = converge(&p, 1.0, MINUTE).await;
    assert_eq!(
        p.faulty.faults().get().garble_watch_events,
        0,
        "a line was garbled"
    );
    assert!(
        self_metric(&bad, "kube_rollout_exporter_watch_restarts_total") >= 1.0,
        "the lost event forced a relist"
    );
    // The relist comes one second after the lost line, plus the list itself.
    assert_equivalent(&clean, &bad, 2.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_down_at_start_is_picked_up_when_it_comes() {
    let p = pair(deployment(), &["--watch.failure-timeout", "2s"], |ep| {
        ep.go_offline()
    })
    .await;
    let down = wait_metrics(
        p.bad.addr,
        "errors while the API server is down",
        Duration::from_secs(20),
        |s| self_metric(s, "kube_rollout_exporter_watch_errors_total") >= 4.0,
    )
    .await;
    assert!(!synced(&down));
    assert_eq!(http::get(p.bad.addr, "/healthz", "*/*").await.status, 200);
    assert_eq!(http::get(p.bad.addr, "/readyz", "*/*").await.status, 503);
    p.faulty.come_back().await.expect("back");
    wait_metrics(p.bad.addr, "synced once it is up", MINUTE, synced).await;
    let (clean, bad) = roll_and_converge(&p, "registry.local/app:v2", 1.0, MINUTE).await;
    assert_equivalent(&clean, &bad, 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_gone_for_a_minute_during_a_rollout() {
    let p = synced_pair(
        deployment().drain_seconds(5.0),
        &["--watch.failure-timeout", "10s"],
    )
    .await;
    let before = scrape(p.bad.addr).await;
    p.faulty.go_offline();
    let gone = Instant::now();
    p.roll("registry.local/app:v2");
    // The whole rollout happens while the faulty exporter cannot see it.
    let clean_done = wait_metrics(p.clean.addr, "clean exporter: complete", MINUTE, |s| {
        completes(s) == 1.0
    })
    .await;
    // Meanwhile the faulty exporter serves what it knew, and says it is not well.
    let during = wait_metrics(
        p.bad.addr,
        "not ready during the outage",
        Duration::from_secs(30),
        |s| !synced(s),
    )
    .await;
    assert_eq!(
        during.web("kube_rollout_started_total", WEB, &[]),
        before.web("kube_rollout_started_total", WEB, &[])
    );
    assert_eq!(
        during.web("kube_rollout_revision", WEB, &[]),
        Some(1.0),
        "last known state"
    );
    assert_eq!(http::get(p.bad.addr, "/readyz", "*/*").await.status, 503);
    let outage = Duration::from_secs(60).saturating_sub(gone.elapsed());
    tokio::time::sleep(outage).await;
    p.faulty.come_back().await.expect("back");
    let back = Instant::now();
    let bad = wait_metrics(p.bad.addr, "recovered and complete", MINUTE, |s| {
        synced(s) && completes(s) == 1.0
    })
    .await;
    let relist_delay = back.elapsed().as_secs_f64();
    assert_eq!(http::get(p.bad.addr, "/readyz", "*/*").await.status, 200);
    // The API server kept its change history through the outage (a real one keeps about five
    // minutes), so the watches resume and every event arrives, late by at most the gap: each
    // observation whose event fell in the gap is timed after it.
    let gap = 60.0 + relist_delay;
    for (metric, labels) in [
        ("kube_rollout_pod_termination_duration_seconds", vec![]),
        (
            "kube_rollout_duration_seconds",
            vec![("milestone", "complete")],
        ),
    ] {
        let count = |s: &Scrape| {
            s.web(&format!("{metric}_count"), WEB, &labels)
                .unwrap_or(0.0)
        };
        let sum = |s: &Scrape| s.web(&format!("{metric}_sum"), WEB, &labels).unwrap_or(0.0);
        assert_eq!(
            count(&bad),
            count(&clean_done),
            "{metric}: every observation made"
        );
        // A termination's end is replayed late (its request time is the server's): longer by at
        // most the gap. A rollout's start is replayed late too, so its durations may come out
        // shorter or longer, by at most the gap each.
        let late = sum(&bad) - sum(&clean_done);
        assert!(
            late.abs() <= gap * count(&bad) + 0.5,
            "{metric}: {late} s off in total, gap {gap} s"
        );
    }
    assert_eq!(bad.web("kube_rollout_started_total", WEB, &[]), Some(1.0));
    assert_eq!(
        bad.web("kube_rollout_revision", WEB, &[]),
        clean_done.web("kube_rollout_revision", WEB, &[])
    );
    let clean_completed = clean_done
        .web("kube_rollout_last_completed_timestamp_seconds", WEB, &[])
        .expect("clean completion");
    let bad_completed = bad
        .web("kube_rollout_last_completed_timestamp_seconds", WEB, &[])
        .expect("faulty completion");
    assert!(
        bad_completed >= clean_completed && bad_completed - clean_completed <= gap,
        "completion timed after the gap: {bad_completed} vs {clean_completed}, gap {gap} s"
    );
    assert!(
        requests(&bad, None, Some("0")) >= 1.0,
        "refused connections counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_longer_than_the_history_is_bounded_by_the_relist() {
    let p = synced_pair(deployment().drain_seconds(2.0), &[]).await;
    p.faulty.go_offline();
    p.roll("registry.local/app:v2");
    let clean_done = wait_metrics(p.clean.addr, "clean exporter: complete", MINUTE, |s| {
        completes(s) == 1.0
    })
    .await;
    // The history is compacted while the endpoint is away: the watches must relist.
    p.cluster.sim.compact().expect("compact");
    let gone_until = Instant::now();
    p.faulty.come_back().await.expect("back");
    // Every watch relists; each comes back on its own backoff, so the rollout may complete
    // (three of them suffice) before the last one has.
    let bad = wait_metrics(p.bad.addr, "every watch relisted, complete", MINUTE, |s| {
        synced(s)
            && completes(s) == 1.0
            && self_metric(s, "kube_rollout_exporter_watch_restarts_total") >= 4.0
    })
    .await;
    let gap_end = gone_until.elapsed().as_secs_f64();
    // Documented bounds: the revision change, ready and complete fell in the gap and are timed
    // at the relists; the terminations started and ended inside it, so none is seen.
    assert_eq!(bad.web("kube_rollout_started_total", WEB, &[]), Some(1.0));
    assert_eq!(
        clean_done.web(
            "kube_rollout_pod_termination_duration_seconds_count",
            WEB,
            &[]
        ),
        Some(3.0)
    );
    assert_eq!(
        bad.web(
            "kube_rollout_pod_termination_duration_seconds_count",
            WEB,
            &[]
        ),
        None,
        "started and ended in the gap"
    );
    let imprecise = self_metric(&bad, "kube_rollout_exporter_imprecise_observations_total");
    assert!(
        imprecise >= 2.0,
        "start and completion timed at relists: {imprecise}"
    );
    let bad_completed = bad
        .web("kube_rollout_last_completed_timestamp_seconds", WEB, &[])
        .expect("completion");
    let clean_completed = clean_done
        .web("kube_rollout_last_completed_timestamp_seconds", WEB, &[])
        .expect("clean");
    let gap = clean_completed - bad_completed.min(clean_completed)
        + gap_end
        + (bad_completed - clean_completed).max(0.0);
    assert!(
        bad_completed >= clean_completed,
        "never earlier than the real completion"
    );
    assert!(
        bad_completed - clean_completed <= gap,
        "late by at most the gap"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exporter_restarted_mid_rollout_matches_an_uninterrupted_one() {
    // Slow starts keep the rollout progressing (not ready) for a few seconds.
    let mut p = synced_pair(deployment().start_seconds(1.5).drain_seconds(2.0), &[]).await;
    wait_for_new_second(&p.cluster.sim).await;
    p.roll("registry.local/app:v2");
    wait_metrics(p.bad.addr, "progressing", MINUTE, |s| {
        s.web("kube_rollout_phase", WEB, &[("phase", "progressing")]) == Some(1.0)
    })
    .await;
    // Restart the second exporter through the same (clean) endpoint.
    let kubeconfig = bad_kubeconfig(&p.cluster);
    drop(std::mem::replace(
        &mut p.bad,
        Exporter::start(&kubeconfig, &[]),
    ));
    let (clean, bad) = converge(&p, 1.0, MINUTE).await;
    assert_eq!(
        bad.web("kube_rollout_started_total", WEB, &[]),
        Some(0.0),
        "the start was before the restart"
    );
    assert_eq!(clean.web("kube_rollout_started_total", WEB, &[]), Some(1.0));
    // Ready and complete happened after the restart: observed, with the start recovered from
    // the ReplicaSet's creationTimestamp (1 s resolution).
    for milestone in ["ready", "complete"] {
        let sum = |s: &Scrape| {
            s.web(
                "kube_rollout_duration_seconds_sum",
                WEB,
                &[("milestone", milestone)],
            )
        };
        let (c, b) = (
            sum(&clean).expect("clean observed"),
            sum(&bad).expect("restarted observed"),
        );
        assert!(
            (c - b).abs() <= 1.5,
            "{milestone}: restarted {b} s vs uninterrupted {c} s"
        );
    }
    let terminations = |s: &Scrape| {
        s.web(
            "kube_rollout_pod_termination_duration_seconds_count",
            WEB,
            &[],
        )
    };
    assert_eq!(
        terminations(&bad),
        terminations(&clean),
        "terminations all came after the restart"
    );
}
