//! Under load: concurrent scrapes during churn, clients that never read, many idle connections,
//! and a short soak. Memory and file descriptors stay bounded, and events keep being processed.
//! (The long soak is `cargo run --release --example soak`; its results are in BENCHMARKS.md.)

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Cluster, STEADY_WITHIN};
use common::exporter::{Exporter, scrape, wait_metrics};
use common::http;
use kube_sim::SimDeployment;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const MIB: u64 = 1024 * 1024;

/// `n` Deployments `load/app-{i}` with quick starts and drains, steady.
async fn cluster(n: usize) -> Cluster {
    let deployments: Vec<SimDeployment> = (0..n)
        .map(|i| {
            SimDeployment::new("load", &format!("app-{i}"))
                .drain_seconds(1.0)
                .start_seconds(0.2)
        })
        .collect();
    Cluster::steady("load", &deployments, STEADY_WITHIN).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_do_not_stop_event_processing() {
    let c = cluster(4).await;
    let e = c.synced_exporter(&[]).await;
    let (rss_before, fds_before) = e.resources();

    // 200 idle connections, 50 clients that send a request and never read, 4 busy scrapers.
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(e.addr).await.expect("connect"));
    }
    let mut never_read = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(e.addr).await.expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("write");
        never_read.push(s);
    }
    let stop = Instant::now() + Duration::from_secs(12);
    let scrapers: Vec<_> = (0..4)
        .map(|_| {
            let addr = e.addr;
            tokio::spawn(async move {
                let mut n = 0u32;
                while Instant::now() < stop {
                    let r = http::get(addr, "/metrics", "application/openmetrics-text").await;
                    assert!(
                        r.status == 200 || r.status == 503,
                        "scrape answered {}",
                        r.status
                    );
                    n += 1;
                }
                n
            })
        })
        .collect();
    // Churn while all that goes on: every Deployment rolls twice.
    for round in 2..=3 {
        for i in 0..4 {
            c.sim
                .set_image(
                    "load",
                    &format!("app-{i}"),
                    &format!("registry.local/app:v{round}"),
                )
                .expect("roll");
        }
        let want = f64::from(4 * (round - 1));
        wait_metrics(
            e.addr,
            "rollouts complete under load",
            Duration::from_secs(60),
            |s| s.total_completes() == want,
        )
        .await;
    }
    let mut scrapes = 0;
    for s in scrapers {
        scrapes += s.await.expect("scraper");
    }
    assert!(scrapes > 20, "scrapes kept being served: {scrapes}");
    let (rss_during, fds_during) = e.resources();
    assert!(
        fds_during <= fds_before + 260,
        "one descriptor per open connection: {fds_before} → {fds_during}"
    );
    assert!(
        rss_during < rss_before + 64 * MIB,
        "memory bounded: {} → {} MiB",
        rss_before / MIB,
        rss_during / MIB
    );
    // Idle connections are closed by the server after the 10 s header timeout.
    drop(never_read);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, fds) = e.resources();
        if fds <= fds_before + 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "idle connections closed by the server: {fds} open"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(idle);
    let s = scrape(e.addr).await;
    assert_eq!(s.total_completes(), 8.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_closed_at_once() {
    let c = cluster(1).await;
    let e = Exporter::start(&c.kubeconfig(), &[]);
    let mut held = Vec::new();
    for _ in 0..520 {
        held.push(TcpStream::connect(e.addr).await.expect("connect"));
    }
    // The 513th and later are accepted and closed right away: a read sees EOF.
    let mut closed = 0;
    for s in held.iter_mut().skip(512) {
        let mut buf = [0u8; 1];
        use tokio::io::AsyncReadExt;
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
            closed += 1;
        }
    }
    assert!(closed >= 1, "connections over the limit are closed");
    drop(held);
    // The server still answers.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if tokio::net::TcpStream::connect(e.addr).await.is_ok()
            && http::get(e.addr, "/healthz", "*/*").await.status == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "serving again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_keeps_memory_and_descriptors_flat() {
    let c = cluster(3).await;
    let e = c.synced_exporter(&[]).await;
    let mut samples = Vec::new();
    let mut version = 2;
    let stop = Instant::now() + Duration::from_secs(20);
    while Instant::now() < stop {
        for i in 0..3 {
            c.sim
                .set_image(
                    "load",
                    &format!("app-{i}"),
                    &format!("registry.local/app:v{version}"),
                )
                .expect("roll");
        }
        let want = f64::from(3 * (version - 1));
        wait_metrics(e.addr, "round complete", Duration::from_secs(60), |s| {
            s.total_completes() == want
        })
        .await;
        version += 1;
        samples.push(e.resources());
    }
    assert!(
        samples.len() >= 3,
        "several rounds of churn: {}",
        samples.len()
    );
    // After the first round has warmed up the allocations, memory and descriptors stay flat.
    let (rss_first, fds_first) = samples[0];
    let (rss_last, fds_last) = *samples.last().expect("samples");
    assert!(
        rss_last <= rss_first + 8 * MIB,
        "RSS {} → {} MiB over {} rounds",
        rss_first / MIB,
        rss_last / MIB,
        samples.len()
    );
    assert!(
        fds_last <= fds_first + 4,
        "descriptors {fds_first} → {fds_last}"
    );
}
