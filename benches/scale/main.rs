//! `cargo bench --bench scale`: the exporter at cluster scale (issue 8).
//!
//! Starts the simulated API server in bulk mode in this process, runs the real exporter binary
//! (the release build cargo makes for this bench) against it as a separate process, and prints a
//! table. For each scale point (1k, 10k, 100k pods by default, in a realistic mix: 80% in
//! Deployments of 10 pods with two ReplicaSets each, 10% in StatefulSets of 10, 10% in DaemonSets
//! over one node per 1,000 pods; the churn rolls Deployments): initial sync wall time and CPU, resident memory after sync, and the same for
//! the naive design (full-object reflectors, `naive.rs`, run as a separate process too). At the
//! largest point: a churn phase of continuous rollouts with short drains (events per second, CPU
//! per event against the decode-only floor of the same bytes, memory after churn), `/metrics`
//! with every workload's histograms populated (CPU, wall time, bytes plain and gzip, memory during
//! the scrape), and the API server's bytes per minute for the exporter's watches against a loop
//! that lists every pod every 5 s.
//!
//! Options (after `--`): `--quick` (1k and 10k pods, 100k lifecycles, 20 s window),
//! `--points 1000,10000`, `--lifecycles N`, `--window SECS`, `--rate ROLLOUTS_PER_S`,
//! `--no-naive`, `--scrapes N`, `--deployments-only` (the cluster of the runs before the mix).

mod client;
mod floor;
mod naive;
mod procfs;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kube_sim::{Bulk, BulkSpec, Churn, ChurnConfig, Endpoint, SimCluster, SimConfig};

use client::Captured;
use floor::Stream;

const MIB: f64 = 1024.0 * 1024.0;
const META: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
const JSON: &str = "application/json";
const FINISHED: &str =
    "status.phase%21%3DPending%2Cstatus.phase%21%3DRunning%2Cstatus.phase%21%3DUnknown";

#[derive(Clone, Debug)]
struct Options {
    points: Vec<usize>,
    lifecycles: u64,
    naive: bool,
    naive_lifecycles: u64,
    window: Duration,
    rate: f64,
    scrapes: usize,
    bursts: usize,
    drain: Duration,
    /// Only serve a bulk cluster of this many pods (for profiling an exporter by hand).
    serve: Option<usize>,
    /// Every pod in Deployments, as before StatefulSets and DaemonSets were measured.
    deployments_only: bool,
}

impl Options {
    /// The bulk cluster of `pods` pods.
    fn cluster(&self, pods: usize) -> BulkSpec {
        if self.deployments_only {
            BulkSpec::pods(pods)
        } else {
            BulkSpec::mixed(pods)
        }
    }
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut o = Options {
            points: vec![1_000, 10_000, 100_000],
            lifecycles: 1_000_000,
            naive: true,
            naive_lifecycles: 100_000,
            window: Duration::from_secs(60),
            rate: 10.0,
            scrapes: 3,
            bursts: 10,
            serve: None,
            drain: Duration::from_millis(500),
            deployments_only: false,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match a.as_str() {
                "--bench" => {}
                "--quick" => {
                    o.points = vec![1_000, 10_000];
                    o.lifecycles = 100_000;
                    o.naive_lifecycles = 20_000;
                    o.window = Duration::from_secs(20);
                }
                "--points" => {
                    o.points = value("--points")?
                        .split(',')
                        .map(|p| p.trim().parse().map_err(|e| format!("--points: {e}")))
                        .collect::<Result<_, _>>()?;
                }
                "--lifecycles" => {
                    o.lifecycles = value("--lifecycles")?
                        .parse()
                        .map_err(|e| format!("--lifecycles: {e}"))?
                }
                "--window" => {
                    o.window = Duration::from_secs(
                        value("--window")?
                            .parse()
                            .map_err(|e| format!("--window: {e}"))?,
                    )
                }
                "--rate" => {
                    o.rate = value("--rate")?
                        .parse()
                        .map_err(|e| format!("--rate: {e}"))?
                }
                "--scrapes" => {
                    o.scrapes = value("--scrapes")?
                        .parse()
                        .map_err(|e| format!("--scrapes: {e}"))?
                }
                "--bursts" => {
                    o.bursts = value("--bursts")?
                        .parse()
                        .map_err(|e| format!("--bursts: {e}"))?
                }
                "--serve" => {
                    o.serve = Some(
                        value("--serve")?
                            .parse()
                            .map_err(|e| format!("--serve: {e}"))?,
                    )
                }
                "--no-naive" => o.naive = false,
                "--deployments-only" => o.deployments_only = true,
                other => return Err(format!("unknown option {other}")),
            }
        }
        o.points.sort_unstable();
        o.points.dedup();
        if o.points.is_empty() {
            return Err("--points: at least one scale point".into());
        }
        Ok(o)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--naive-reflector") {
        let Some(kubeconfig) = args.get(1) else {
            eprintln!("usage: scale --naive-reflector KUBECONFIG");
            std::process::exit(2);
        };
        if let Err(e) = naive::main(kubeconfig) {
            eprintln!("naive reflector: {e}");
            std::process::exit(1);
        }
        return;
    }
    let options = match Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let exporter = PathBuf::from(env!("CARGO_BIN_EXE_kube-rollout-exporter"));
    if !exporter.exists() {
        eprintln!(
            "error: {} is missing: run this bench with `cargo bench --bench scale`, which builds it",
            exporter.display()
        );
        std::process::exit(1);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Some(pods) = options.serve {
        runtime.block_on(serve(&options, pods));
        return;
    }
    let mut report = Report::default();
    runtime.block_on(run(&options, &exporter, &mut report));
    report.print(&options);
}

// ----- Report --------------------------------------------------------------------------------

#[derive(Default)]
struct Report {
    rows: Vec<(String, String, String, String)>,
}

impl Report {
    /// One figure: what, value, comparison, target.
    fn add(
        &mut self,
        what: impl Into<String>,
        value: impl Into<String>,
        compare: impl Into<String>,
        target: impl Into<String>,
    ) {
        let row = (what.into(), value.into(), compare.into(), target.into());
        eprintln!("  {} = {}  {}  {}", row.0, row.1, row.2, row.3);
        self.rows.push(row);
    }

    fn print(&self, options: &Options) {
        println!();
        println!("## Results ({options:?})");
        println!();
        println!("| figure | value | comparison (same run) | target |");
        println!("|---|---|---|---|");
        for (a, b, c, d) in &self.rows {
            println!("| {a} | {b} | {c} | {d} |");
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB)
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn pretty(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

// ----- Child processes -----------------------------------------------------------------------

/// The exporter or the naive reflector, running; killed on drop.
struct Proc {
    child: std::process::Child,
    addr: SocketAddr,
    spawned: Instant,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Starts `cmd` with stderr piped and waits (30 s at most) for it to say where it listens:
    /// the exporter's JSON "started" log line, or the naive reflector's `listening on ADDR`.
    fn spawn(mut cmd: Command) -> Self {
        let spawned = Instant::now();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the process under test");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = mpsc::channel::<SocketAddr>();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let addr = if let Some(a) = line.strip_prefix("listening on ") {
                    a.trim().parse().ok()
                } else if line.contains("kube-rollout-exporter started") {
                    serde_json::from_str::<serde_json::Value>(&line)
                        .ok()
                        .and_then(|v| v["fields"]["listen"].as_str()?.parse().ok())
                } else {
                    if line.contains("\"ERROR\"") || line.contains("\"WARN\"") {
                        eprintln!("    [child] {line}");
                    }
                    None
                };
                if let (Some(addr), Some(t)) = (addr, tx.take()) {
                    let _ = t.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the process says where it listens within 30 s");
        Self {
            child,
            addr,
            spawned,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn cpu(&self) -> f64 {
        procfs::cpu_seconds(self.pid())
    }

    fn rss(&self) -> u64 {
        procfs::rss_bytes(self.pid())
    }

    /// Waits for `/readyz` 200; answers the wall time since the process was spawned.
    async fn wait_ready(&self, within: Duration) -> Duration {
        loop {
            let (status, _) =
                client::get_within(self.addr, "/readyz", Duration::from_secs(5)).await;
            if status == 200 {
                return self.spawned.elapsed();
            }
            assert!(
                self.spawned.elapsed() < within,
                "not ready within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the process has used no CPU for `quiet`; answers when it last did.
    async fn wait_idle(&self, quiet: Duration, within: Duration) -> Instant {
        let start = Instant::now();
        let mut last = self.cpu();
        let mut last_change = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = self.cpu();
            // One 10 ms tick now and then is the runtime's timers, not work.
            if now - last > 0.015 {
                last_change = Instant::now();
            }
            last = now;
            if last_change.elapsed() >= quiet || start.elapsed() > within {
                return last_change;
            }
        }
    }
}

/// `kube-rollout-exporter wait deploy/app-00000 -n ns-0000` on the bulk cluster (a complete
/// Deployment of 10 pods): what one pipeline step costs the API server (bytes read), how long it
/// takes to answer, and the command's peak memory (GNU time's maximum resident set).
async fn wait_phase(
    exporter: &Path,
    kubeconfig: &Path,
    sim: &SimCluster,
    label: &str,
    report: &mut Report,
) {
    let served = sim.endpoint().bytes_served();
    let rusage = kubeconfig.with_file_name("wait.time");
    let t = Instant::now();
    let mut command = Command::new("/usr/bin/time");
    command
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rusage)
        .arg(exporter)
        .args([
            "wait",
            "deploy/app-00000",
            "-n",
            "ns-0000",
            "--timeout",
            "60s",
        ])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // The simulated API server runs on this runtime: wait for the command off it.
    let status = tokio::task::spawn_blocking(move || command.status())
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
    let wall = t.elapsed().as_secs_f64();
    let bytes = sim.endpoint().bytes_served() - served;
    let peak_kib: f64 = std::fs::read_to_string(&rusage)
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(f64::NAN);
    let ok = status.as_ref().is_ok_and(|s| s.success());
    report.add(
        format!("{label}: `wait` on one complete Deployment, time to answer"),
        format!("{wall:.2} s"),
        format!("exit {}", if ok { "0" } else { "non-zero" }),
        "",
    );
    report.add(
        format!("{label}: `wait` on one complete Deployment, bytes read from the API"),
        format!("{:.1} KiB", bytes as f64 / 1024.0),
        format!("peak RSS {:.1} MiB", peak_kib / 1024.0),
        "follows the workload, not the cluster",
    );
}

fn write_kubeconfig(dir: &Path, endpoint: &Endpoint) -> PathBuf {
    let path = dir.join(format!("kubeconfig-{}", endpoint.addr().port()));
    endpoint
        .write_kubeconfig(&path)
        .expect("write a kubeconfig");
    path
}

fn spawn_exporter(exporter: &Path, kubeconfig: &Path) -> Proc {
    let mut cmd = Command::new(exporter);
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.format",
            "json",
        ])
        .env_remove("RUST_LOG");
    Proc::spawn(cmd)
}

fn spawn_naive(kubeconfig: &Path) -> Proc {
    let mut cmd = Command::new(std::env::current_exe().expect("this bench's path"));
    cmd.arg("--naive-reflector")
        .arg(kubeconfig)
        .env_remove("RUST_LOG");
    Proc::spawn(cmd)
}

/// Counter values `name{resource="..."}` from a scrape, by resource.
async fn counters(addr: SocketAddr, name: &str) -> BTreeMap<String, f64> {
    let (_, body) = client::get(addr, "/metrics", "text/plain")
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let prefix = format!("{name}{{resource=\"");
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (resource, value) = rest.split_once("\"} ")?;
            Some((resource.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

fn delta(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>, key: &str) -> f64 {
    after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
}

fn this_process_cpu() -> f64 {
    procfs::cpu_seconds(std::process::id())
}

// ----- The run -------------------------------------------------------------------------------

/// `--serve PODS`: a bulk cluster for profiling an exporter by hand. Writes
/// `$TMPDIR/kre-serve/kubeconfig`, waits 30 s, churns `--lifecycles` pod lifecycles, then serves
/// until killed.
/// A churn at full speed that stops once `count` pods have been created.
fn lifecycles(sim: &SimCluster, bulk: Bulk, count: u64, drain: Duration) -> Churn {
    sim.churn(
        bulk,
        ChurnConfig {
            lifecycles: Some(count),
            drain,
            ..ChurnConfig::default()
        },
    )
}

/// Waits until the churn's driver has stopped.
async fn finished(churn: &Churn) {
    while !churn.is_finished() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn serve(options: &Options, pods: usize) {
    let sim = SimCluster::start(SimConfig {
        controllers: false,
        ..SimConfig::default()
    })
    .await
    .expect("start the simulated API server");
    let bulk = sim.populate(&options.cluster(pods)).expect("populate");
    let dir = std::env::temp_dir().join("kre-serve");
    std::fs::create_dir_all(&dir).expect("a directory");
    let kubeconfig = dir.join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("a kubeconfig");
    eprintln!("serving {pods} pods: --kubeconfig {}", kubeconfig.display());
    tokio::time::sleep(Duration::from_secs(30)).await;
    eprintln!("churning {} pod lifecycles", options.lifecycles);
    let churn = lifecycles(&sim, bulk, options.lifecycles, options.drain);
    finished(&churn).await;
    eprintln!("churn done");
    std::future::pending::<()>().await;
}

async fn run(options: &Options, exporter: &Path, report: &mut Report) {
    let dir = std::env::temp_dir().join(format!("kre-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    eprintln!("exporter binary: {}", exporter.display());
    let largest = *options.points.last().unwrap_or(&0);
    for &pods in &options.points {
        let last = pods == largest;
        eprintln!("\n== {pods} pods ==");
        let sim = SimCluster::start(SimConfig {
            controllers: false,
            history: BURST_CHANGES + 20_000,
            ..SimConfig::default()
        })
        .await
        .expect("start the simulated API server");
        let t = Instant::now();
        let spec = options.cluster(pods);
        let bulk = sim.populate(&spec).expect("populate");
        eprintln!(
            "  populated {} Deployments, {} ReplicaSets, {} StatefulSets, {} DaemonSets on {} nodes, {} pods in {:.1} s",
            spec.deployments,
            spec.deployments * 2,
            spec.statefulsets,
            spec.daemonsets,
            spec.nodes,
            spec.total_pods(),
            t.elapsed().as_secs_f64()
        );
        let kubeconfig = write_kubeconfig(&dir, sim.endpoint());
        let label = format!("{}k pods", pods / 1000);

        // `wait` on one Deployment of the whole cluster, before any exporter reads from it.
        if last {
            wait_phase(exporter, &kubeconfig, &sim, &label, report).await;
        }

        // The exporter's initial sync.
        let served = sim.endpoint().bytes_served();
        let exp = spawn_exporter(exporter, &kubeconfig);
        let sync = exp.wait_ready(Duration::from_secs(600)).await;
        let sync_cpu = exp.cpu();
        let rss_at_sync = exp.rss();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_sync = exp.rss();
        let listed = sim.endpoint().bytes_served() - served;
        report.add(
            format!("{label}: initial sync, wall (until /readyz 200)"),
            format!("{:.2} s", sync.as_secs_f64()),
            format!("{} listed", mib(listed)),
            if last && pods >= 100_000 {
                format!("< 5 s: {}", met(sync.as_secs_f64() < 5.0))
            } else {
                String::new()
            },
        );
        report.add(
            format!("{label}: initial sync, exporter CPU"),
            format!("{sync_cpu:.2} s"),
            "",
            "",
        );
        report.add(
            format!("{label}: exporter RSS after sync"),
            mib(rss_sync),
            format!("{} at /readyz", mib(rss_at_sync)),
            if pods >= 100_000 {
                format!("≤ 64 MiB: {}", met(rss_sync as f64 <= 64.0 * MIB))
            } else {
                String::new()
            },
        );

        let bulk = if last {
            let (bulk, floor) = churn_phase(options, &sim, bulk, &exp, rss_sync, report).await;
            let bulk = burst_phase(options, &sim, bulk, &exp, floor, report).await;
            scrape_phase(options, &exp, &spec, report).await;
            board_phase(&exp, &spec, report).await;
            let bulk = scrape_during_churn(options, &sim, bulk, &exp, report).await;
            bytes_phase(options, &sim, bulk, &exp, pods, report).await
        } else {
            bulk
        };
        drop(exp);

        if options.naive {
            let endpoint = sim.add_endpoint().await.expect("another endpoint");
            let kubeconfig = write_kubeconfig(&dir, &endpoint);
            let naive = spawn_naive(&kubeconfig);
            let sync_naive = naive.wait_ready(Duration::from_secs(900)).await;
            let cpu_naive = naive.cpu();
            tokio::time::sleep(Duration::from_secs(2)).await;
            let rss = naive.rss();
            report.add(
                format!("{label}: naive reflector, initial sync wall / CPU"),
                format!("{:.2} s / {cpu_naive:.2} s", sync_naive.as_secs_f64()),
                format!(
                    "exporter {:.2} s / {sync_cpu:.2} s ({:.1}x less CPU)",
                    sync.as_secs_f64(),
                    cpu_naive / sync_cpu.max(0.01)
                ),
                "",
            );
            let ratio = rss as f64 / rss_sync.max(1) as f64;
            report.add(
                format!("{label}: naive reflector RSS after sync"),
                mib(rss),
                format!("exporter {}: {ratio:.1}x less", mib(rss_sync)),
                if pods >= 100_000 {
                    format!("≥ 10x: {}", met(ratio >= 10.0))
                } else {
                    String::new()
                },
            );
            if last {
                naive_churn(options, &sim, bulk, &naive, report).await;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Captures the first lines of each of the exporter's four watches from `rv`.
fn start_captures(
    addr: SocketAddr,
    rv: u64,
    lines: usize,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Vec<(Stream, tokio::task::JoinHandle<Captured>)> {
    let streams = [
        (
            Stream::Deployments,
            format!(
                "/apis/apps/v1/deployments?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"
            ),
            JSON,
        ),
        (
            Stream::ReplicaSets,
            format!(
                "/apis/apps/v1/replicasets?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"
            ),
            META,
        ),
        (
            Stream::Pods,
            format!("/api/v1/pods?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"),
            META,
        ),
        (
            Stream::FinishedPods,
            format!(
                "/api/v1/pods?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&fieldSelector={FINISHED}"
            ),
            META,
        ),
    ];
    streams
        .into_iter()
        .map(|(stream, path, accept)| {
            let stop = stop.clone();
            let task = tokio::spawn(async move {
                client::capture(addr, &path, accept, lines, 256 << 20, stop)
                    .await
                    .unwrap_or_default()
            });
            (stream, task)
        })
        .collect()
}

async fn churn_phase(
    options: &Options,
    sim: &SimCluster,
    bulk: kube_sim::Bulk,
    exp: &Proc,
    rss_sync: u64,
    report: &mut Report,
) -> (kube_sim::Bulk, f64) {
    eprintln!(
        "  churn: {} pod lifecycles at full speed",
        options.lifecycles
    );
    let before = counters(exp.addr, "kube_rollout_exporter_watch_events_total").await;
    let rv = sim
        .with_world(|w| w.store.resource_version())
        .expect("the store");
    // The same bytes the exporter reads, for the floor: the first lines of each watch.
    let (stop_captures, captures_stop) = tokio::sync::watch::channel(false);
    let captures = start_captures(sim.addr(), rv, 40_000, &captures_stop);
    let cpu0 = exp.cpu();
    let own0 = this_process_cpu();
    let t0 = Instant::now();
    let churn = lifecycles(sim, bulk, options.lifecycles, options.drain);
    let mut rss_max = 0;
    let mut samples = Vec::new();
    let mut last_print = Instant::now();
    while !churn.is_finished() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rss = exp.rss();
        rss_max = rss_max.max(rss);
        let created = churn.stats().pods_created.load(Ordering::Relaxed);
        if last_print.elapsed() >= Duration::from_secs(10) {
            last_print = Instant::now();
            samples.push((created, rss));
            eprintln!(
                "    {:>5.0} s: {created} pods created, {} removed, exporter RSS {}, backpressure waits {}",
                t0.elapsed().as_secs_f64(),
                churn.stats().pods_removed.load(Ordering::Relaxed),
                mib(rss),
                churn.stats().backpressure_waits.load(Ordering::Relaxed),
            );
        }
    }
    let stats = (
        churn.stats().rollouts.load(Ordering::Relaxed),
        churn.stats().pods_created.load(Ordering::Relaxed),
        churn.stats().pods_removed.load(Ordering::Relaxed),
        churn.stats().writes.load(Ordering::Relaxed),
        churn.stats().backpressure_waits.load(Ordering::Relaxed),
    );
    let bulk = churn.wait().expect("the churn driver ends");
    let done = exp
        .wait_idle(Duration::from_millis(500), Duration::from_secs(120))
        .await;
    let wall = done.duration_since(t0).as_secs_f64();
    let cpu = exp.cpu() - cpu0;
    let own = this_process_cpu() - own0;
    let after = counters(exp.addr, "kube_rollout_exporter_watch_events_total").await;
    // Watches that saw fewer lines than asked (a short churn's Deployments) end here.
    let _ = stop_captures.send(true);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = exp.rss();
    samples.push((stats.1, rss_after));
    let pod_events = delta(&after, &before, "pods");
    let all_events: f64 = ["deployments", "replicasets", "pods", "finished_pods"]
        .iter()
        .map(|r| delta(&after, &before, r))
        .sum();
    eprintln!(
        "  churn done: {} rollouts, {} pods created, {} removed, {} writes, {} backpressure waits, {wall:.1} s",
        stats.0, stats.1, stats.2, stats.3, stats.4
    );
    report.add(
        "churn: pod lifecycles (created and gone)",
        pretty(stats.2 as f64),
        format!(
            "{} rollouts, {} cluster writes, {wall:.1} s",
            pretty(stats.0 as f64),
            pretty(stats.3 as f64)
        ),
        "1M",
    );
    let rate = pod_events / wall;
    report.add(
        "churn: pod watch events/s at full speed",
        pretty(rate),
        format!(
            "{} events on all 4 watches ({}/s); exporter used {:.2} of 2 cores, simulator + driver {:.2}",
            pretty(all_events),
            pretty(all_events / wall),
            cpu / wall,
            own / wall
        ),
        format!("≥ 50k/s: {}", met(rate >= 50_000.0)),
    );
    // The floor on the same bytes.
    let mut floor_ns = 0.0;
    let mut floor_detail = Vec::new();
    for (stream, task) in captures {
        let captured = task.await.unwrap_or_default();
        let (ns, ok) = floor::per_line_ns(stream, &captured, 3);
        let resource = match stream {
            Stream::Deployments => "deployments",
            Stream::ReplicaSets => "replicasets",
            Stream::Pods => "pods",
            Stream::FinishedPods => "finished_pods",
        };
        let events = delta(&after, &before, resource);
        floor_ns += ns * events;
        floor_detail.push(format!(
            "{resource} {ns:.0} ns ({} lines, {} B avg, {ok} ok)",
            captured.lines.len(),
            captured.data.len() / captured.lines.len().max(1)
        ));
    }
    let floor_per_event = floor_ns / all_events.max(1.0);
    let per_event = cpu * 1e9 / all_events.max(1.0);
    report.add(
        "churn: exporter CPU per watch event",
        format!("{:.2} µs", per_event / 1000.0),
        format!(
            "floor {:.2} µs ({:.2}x): {}",
            floor_per_event / 1000.0,
            per_event / floor_per_event.max(1.0),
            floor_detail.join("; ")
        ),
        format!("≤ 2x floor: {}", met(per_event <= 2.0 * floor_per_event)),
    );
    report.add(
        "churn: exporter CPU per pod event (all CPU / pod events)",
        format!("{:.2} µs", cpu * 1e6 / pod_events.max(1.0)),
        format!("{cpu:.1} s CPU in all"),
        "",
    );
    report.add(
        "churn: exporter RSS after churn",
        mib(rss_after),
        format!(
            "after sync {}; peak during churn {}; samples (pods created → RSS): {}",
            mib(rss_sync),
            mib(rss_max),
            samples
                .iter()
                .step_by(samples.len().div_ceil(10).max(1))
                .chain(samples.last())
                .map(|(c, r)| format!("{} → {:.1}", pretty(*c as f64), *r as f64 / MIB))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "no growth beyond noise",
    );
    (bulk, floor_per_event)
}

async fn scrape_phase(options: &Options, exp: &Proc, spec: &BulkSpec, report: &mut Report) {
    for (format, accept, gzip) in [
        ("text 0.0.4", "text/plain", false),
        (
            "OpenMetrics",
            "application/openmetrics-text; version=1.0.0",
            false,
        ),
        // What Prometheus asks for: OpenMetrics, gzipped.
        ("text 0.0.4, gzip", "text/plain", true),
        (
            "OpenMetrics, gzip",
            "application/openmetrics-text; version=1.0.0",
            true,
        ),
    ] {
        let mut headers = vec![("accept", accept)];
        if gzip {
            headers.push(("accept-encoding", "gzip"));
        }
        let mut runs: Vec<(f64, f64, u64, u64)> = Vec::new();
        let mut last_body = Vec::new();
        let mut sent = 0;
        // At least `--scrapes`, and more (up to 20) until they add up to 1 s of CPU: the CPU
        // clock ticks every 10 ms, too coarse for one small scrape.
        while runs.len() < options.scrapes.max(1)
            || (runs.iter().map(|r| r.0).sum::<f64>() < 1.0 && runs.len() < 20)
        {
            exp.wait_idle(Duration::from_millis(300), Duration::from_secs(30))
                .await;
            let rss_before = exp.rss();
            procfs::reset_peak(exp.pid());
            let cpu0 = exp.cpu();
            let t = Instant::now();
            let (status, body, encoding) = client::get_with(exp.addr, "/metrics", &headers)
                .await
                .unwrap_or_default();
            let wall = t.elapsed().as_secs_f64();
            // The rendering thread's CPU is accounted by the time the last byte arrived; give
            // the tick a moment to land.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let cpu = exp.cpu() - cpu0;
            let peak = procfs::peak_rss_bytes(exp.pid());
            assert_eq!(status, 200, "/metrics");
            assert_eq!(
                encoding.as_deref(),
                gzip.then_some("gzip"),
                "Content-Encoding"
            );
            runs.push((cpu, wall, rss_before, peak));
            sent = body.len();
            last_body = if gzip {
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(body.as_slice())
                    .read_to_end(&mut plain)
                    .expect("the exporter's gzip decodes");
                plain
            } else {
                body
            };
        }
        let text = String::from_utf8_lossy(&last_body);
        let series = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count();
        let populated = [
            "kube_rollout_pod_termination_duration_seconds_count{",
            "kube_rollout_duration_seconds_count{",
            "kube_rollout_drain_tail_seconds_count{",
        ]
        .iter()
        .map(|p| text.lines().filter(|l| l.starts_with(p)).count())
        .collect::<Vec<_>>();
        let (first_before, first_peak) = (runs[0].2, runs[0].3);
        let growth = runs
            .iter()
            .map(|r| r.3.saturating_sub(r.2))
            .max()
            .unwrap_or(0);
        runs.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (_, wall, _, _) = runs[runs.len() / 2];
        let cpu = runs.iter().map(|r| r.0).sum::<f64>() / runs.len() as f64;
        let per_series = cpu * 1e6 / series.max(1) as f64;
        let budget = if gzip { 1.0 } else { 0.5 };
        report.add(
            format!("/metrics ({format}): CPU per series"),
            format!("{per_series:.3} µs"),
            format!(
                "{:.3} s CPU (mean of {}), {} series; {} workloads, histograms with observations: termination {}, duration (ready+complete) {}, drain tail {}",
                cpu,
                runs.len(),
                pretty(series as f64),
                spec.deployments + spec.statefulsets + spec.daemonsets,
                populated[0],
                populated[1],
                populated[2]
            ),
            format!("≤ {budget} µs: {}", met(per_series <= budget)),
        );
        report.add(
            format!("/metrics ({format}): wall time, bytes sent"),
            format!("{wall:.2} s"),
            if gzip {
                format!(
                    "{} gzip (level {}) of {} plain, {:.1}x",
                    mib(sent as u64),
                    kube_rollout_exporter::compress::GZIP_LEVEL,
                    mib(last_body.len() as u64),
                    last_body.len() as f64 / sent.max(1) as f64
                )
            } else {
                format!("{} plain", mib(sent as u64))
            },
            "",
        );
        report.add(
            format!("/metrics ({format}): exporter peak RSS during a scrape"),
            format!("+{}", mib(growth)),
            format!(
                "largest growth of {} scrapes for {} of output; first: {} → {}",
                runs.len(),
                mib(last_body.len() as u64),
                mib(first_before),
                mib(first_peak),
            ),
            format!(
                "not growing with the output: {}",
                met((growth as f64) < 0.1 * last_body.len() as f64)
            ),
        );
    }
}

/// The board over the whole cluster: the page (200 rows per section by default) and the JSON of
/// every row (`limit=10000`), plain and gzipped; CPU and wall time of one request each.
async fn board_phase(exp: &Proc, spec: &BulkSpec, report: &mut Report) {
    let workloads = spec.deployments + spec.statefulsets + spec.daemonsets;
    for (what, path, gzip) in [
        ("board page", "/", false),
        (
            "board JSON, every row",
            "/api/v1/rollouts?limit=10000",
            false,
        ),
        (
            "board JSON, every row, gzip",
            "/api/v1/rollouts?limit=10000",
            true,
        ),
    ] {
        let mut headers = vec![("accept", "*/*")];
        if gzip {
            headers.push(("accept-encoding", "gzip"));
        }
        exp.wait_idle(Duration::from_millis(300), Duration::from_secs(30))
            .await;
        let cpu0 = exp.cpu();
        let t = Instant::now();
        let (status, body, _) = client::get_with(exp.addr, path, &headers)
            .await
            .unwrap_or_default();
        let wall = t.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let cpu = exp.cpu() - cpu0;
        assert_eq!(status, 200, "{path}");
        report.add(
            format!("{what}: wall / CPU"),
            format!("{wall:.3} s / {cpu:.2} s"),
            format!("{} sent; {workloads} workloads", mib(body.len() as u64)),
            "",
        );
    }
}

/// Changes queued for the stopped exporter in each burst; the history keeps more than these, so
/// a watch that ends meanwhile resumes without a relist.
const BURST_CHANGES: usize = 40_000;

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

/// The exporter at full speed, without the simulator in the way: the exporter is stopped
/// (SIGSTOP) while the churn driver queues about [`BURST_CHANGES`] changes on its watches, then
/// continued (SIGCONT); it drains them as fast as it can while the simulator only sends what it
/// has already encoded. Repeated `--bursts` times.
async fn burst_phase(
    options: &Options,
    sim: &SimCluster,
    mut bulk: kube_sim::Bulk,
    exp: &Proc,
    floor_ns: f64,
    report: &mut Report,
) -> kube_sim::Bulk {
    if options.bursts == 0 {
        return bulk;
    }
    eprintln!(
        "  bursts: {} x {BURST_CHANGES} changes queued for a stopped exporter",
        options.bursts
    );
    exp.wait_idle(Duration::from_millis(300), Duration::from_secs(30))
        .await;
    let before = counters(exp.addr, "kube_rollout_exporter_watch_events_total").await;
    let restarts0 = counters(exp.addr, "kube_rollout_exporter_watch_restarts_total").await;
    let (mut wall, mut cpu) = (0.0, 0.0);
    for _ in 0..options.bursts {
        signal(exp.pid(), "-STOP");
        let churn = sim.churn(
            bulk,
            ChurnConfig {
                drain: options.drain,
                max_backlog: BURST_CHANGES,
                eager_encoding: true,
                ..ChurnConfig::default()
            },
        );
        let t = Instant::now();
        while churn.stats().backpressure_waits.load(Ordering::Relaxed) == 0
            && t.elapsed() < Duration::from_secs(120)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bulk = churn.stop().expect("the churn driver ends");
        let cpu0 = exp.cpu();
        let t0 = Instant::now();
        signal(exp.pid(), "-CONT");
        let done = exp
            .wait_idle(Duration::from_millis(500), Duration::from_secs(120))
            .await;
        wall += done.duration_since(t0).as_secs_f64();
        cpu += exp.cpu() - cpu0;
    }
    let after = counters(exp.addr, "kube_rollout_exporter_watch_events_total").await;
    let restarts1 = counters(exp.addr, "kube_rollout_exporter_watch_restarts_total").await;
    let pods = delta(&after, &before, "pods");
    let all: f64 = ["deployments", "replicasets", "pods", "finished_pods"]
        .iter()
        .map(|r| delta(&after, &before, r))
        .sum();
    let restarts: f64 = restarts1.values().sum::<f64>() - restarts0.values().sum::<f64>();
    let rate = pods / wall.max(1e-9);
    let per_event = cpu * 1e9 / all.max(1.0);
    report.add(
        "burst: exporter CPU per watch event at full speed",
        format!("{:.2} µs", per_event / 1000.0),
        format!(
            "floor {:.2} µs (the churn's captured bytes): {:.2}x",
            floor_ns / 1000.0,
            per_event / floor_ns.max(1.0)
        ),
        format!("≤ 2x floor: {}", met(per_event <= 2.0 * floor_ns)),
    );
    report.add(
        "burst: pod watch events/s, exporter at full speed",
        pretty(rate),
        format!(
            "{} pod events ({} on all 4 watches) drained in {wall:.2} s over {} bursts; {:.2} µs CPU per event, {:.2} cores; relists {restarts}",
            pretty(pods),
            pretty(all),
            options.bursts,
            cpu * 1e6 / all.max(1.0),
            cpu / wall.max(1e-9)
        ),
        format!("≥ 50k/s: {}", met(rate >= 50_000.0)),
    );
    bulk
}

/// Event processing during a scrape: the driver writes only as fast as every watch reads, so its
/// write rate while a scrape renders is the exporter's event rate then.
async fn scrape_during_churn(
    options: &Options,
    sim: &SimCluster,
    bulk: kube_sim::Bulk,
    exp: &Proc,
    report: &mut Report,
) -> kube_sim::Bulk {
    let churn = sim.churn(
        bulk,
        ChurnConfig {
            drain: options.drain,
            ..ChurnConfig::default()
        },
    );
    let writes = || churn.stats().writes.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (w0, t) = (writes(), Instant::now());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = (writes() - w0) as f64 / t.elapsed().as_secs_f64();
    let (w1, t) = (writes(), Instant::now());
    let (_, body) = client::get(exp.addr, "/metrics", "text/plain")
        .await
        .unwrap_or_default();
    let took = t.elapsed();
    let during = (writes() - w1) as f64 / took.as_secs_f64();
    let bulk = churn.stop().expect("the churn driver ends");
    report.add(
        "churn: cluster writes/s while a /metrics scrape renders",
        pretty(during),
        format!(
            "{} in the 3 s before; the scrape took {:.2} s, {}",
            pretty(before),
            took.as_secs_f64(),
            mib(body.len() as u64)
        ),
        "events keep flowing",
    );
    bulk
}

async fn bytes_phase(
    options: &Options,
    sim: &SimCluster,
    bulk: kube_sim::Bulk,
    exp: &Proc,
    pods: usize,
    report: &mut Report,
) -> kube_sim::Bulk {
    eprintln!(
        "  API bytes: {:.0} rollouts/s for {} s, with list loops every 5 s",
        options.rate,
        options.window.as_secs()
    );
    exp.wait_idle(Duration::from_millis(300), Duration::from_secs(30))
        .await;
    let full = sim.add_endpoint().await.expect("an endpoint");
    let meta = sim.add_endpoint().await.expect("an endpoint");
    let exporter0 = sim.endpoint().bytes_served();
    let cpu0 = exp.cpu();
    let churn = sim.churn(
        bulk,
        ChurnConfig {
            rollouts_per_second: options.rate,
            drain: options.drain,
            ..ChurnConfig::default()
        },
    );
    let t0 = Instant::now();
    let window = options.window;
    let lists = |addr: SocketAddr, accept: &'static str| {
        tokio::spawn(async move {
            let mut n: u32 = 0;
            while t0.elapsed() < window {
                let start = Instant::now();
                if client::list_all(addr, "/api/v1/pods", accept, 500)
                    .await
                    .is_ok()
                {
                    n += 1;
                }
                let next = start + Duration::from_secs(5);
                if next.saturating_duration_since(t0) >= window {
                    break;
                }
                tokio::time::sleep_until(next.into()).await;
            }
            n
        })
    };
    let full_loop = lists(full.addr(), JSON);
    let meta_loop = lists(meta.addr(), META);
    tokio::time::sleep(window).await;
    let exporter_bytes = sim.endpoint().bytes_served() - exporter0;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = exp.cpu() - cpu0;
    let bulk = churn.stop().expect("the churn driver ends");
    let full_lists = full_loop.await.unwrap_or(0);
    let meta_lists = meta_loop.await.unwrap_or(0);
    let per_minute = |b: u64| b as f64 * 60.0 / elapsed;
    let lifecycles = options.rate * 10.0 * elapsed;
    let ex = per_minute(exporter_bytes);
    // A loop every 5 s is 12 lists a minute, even where one list took longer here (the
    // simulator shares the machine's 2 cores with everything else).
    let per_list = |b: u64, n: u32| b as f64 / f64::from(n.max(1));
    let fl = per_list(full.bytes_served(), full_lists) * 12.0;
    let ml = per_list(meta.bytes_served(), meta_lists) * 12.0;
    report.add(
        format!("API server bytes/min to the exporter's 4 watches ({:.0} rollouts/s = {} pod lifecycles/min)", options.rate, pretty(options.rate * 600.0)),
        mib(ex as u64),
        format!(
            "{:.0} B per pod lifecycle; exporter CPU {:.1}% of a core",
            exporter_bytes as f64 / lifecycles.max(1.0),
            cpu * 100.0 / elapsed
        ),
        "",
    );
    report.add(
        format!(
            "API server bytes/min to a loop listing all {}k pods every 5 s (full JSON)",
            pods / 1000
        ),
        format!(
            "{} (12 x {} per list; {full_lists} lists done in the window)",
            mib(fl as u64),
            mib((fl / 12.0) as u64)
        ),
        format!("{:.0}x the exporter's watches", fl / ex.max(1.0)),
        "",
    );
    report.add(
        format!("API server bytes/min to a loop listing all {}k pods every 5 s (metadata only; kubectl's Table is about this plus columns)", pods / 1000),
        format!("{} (12 x {} per list; {meta_lists} lists done in the window)", mib(ml as u64), mib((ml / 12.0) as u64)),
        format!("{:.0}x the exporter's watches", ml / ex.max(1.0)),
        "",
    );
    bulk
}

async fn naive_churn(
    options: &Options,
    sim: &SimCluster,
    bulk: kube_sim::Bulk,
    naive: &Proc,
    report: &mut Report,
) {
    eprintln!(
        "  naive reflector churn: {} pod lifecycles",
        options.naive_lifecycles
    );
    let before = counters(naive.addr, "naive_watch_events_total").await;
    let cpu0 = naive.cpu();
    let t0 = Instant::now();
    let churn = lifecycles(sim, bulk, options.naive_lifecycles, options.drain);
    finished(&churn).await;
    let _ = churn.wait();
    let done = naive
        .wait_idle(Duration::from_millis(500), Duration::from_secs(120))
        .await;
    let wall = done.duration_since(t0).as_secs_f64();
    let cpu = naive.cpu() - cpu0;
    let after = counters(naive.addr, "naive_watch_events_total").await;
    let pods = delta(&after, &before, "pods");
    let all: f64 = after.values().sum::<f64>() - before.values().sum::<f64>();
    report.add(
        "naive reflector: pod watch events/s, CPU per event",
        format!(
            "{} / {:.2} µs",
            pretty(pods / wall),
            cpu * 1e6 / all.max(1.0)
        ),
        format!("{} events on its 3 watches, {wall:.1} s", pretty(all)),
        "",
    );
    let cpu0 = naive.cpu();
    let t = Instant::now();
    let (_, body) = client::get(naive.addr, "/metrics", "text/plain")
        .await
        .unwrap_or_default();
    let took = t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(50)).await;
    report.add(
        "naive reflector: one /metrics (3 gauges per workload, walking every pod)",
        format!("{:.3} s CPU", naive.cpu() - cpu0),
        format!("{took:.2} s wall, {}", mib(body.len() as u64)),
        "",
    );
    report.add("naive reflector: RSS after churn", mib(naive.rss()), "", "");
}
