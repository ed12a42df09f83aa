//! The dashboards and rules against a real Prometheus (Debian's `prometheus` package, installed
//! by `scripts/test`): the real exporter watches the simulated cluster, Prometheus scrapes it
//! every second and evaluates `alerts/`; after a normal rollout, a slow drain and a stuck
//! termination, every dashboard query, variable and annotation returns data with Grafana's
//! variables and macros substituted, every recording rule produces series, and the
//! stuck-termination alert is pending or firing.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, STEADY_WITHIN};
use common::exporter::wait_metrics;
use common::http;
use kube_sim::{Kind, SimDaemonSet, SimDeployment, SimNode, SimStatefulSet};
use serde_json::Value;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A Prometheus server on a free loopback port with a temporary data directory; killed on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

impl Prometheus {
    fn start(dir: &Path, exporter: SocketAddr) -> Self {
        let rules: Vec<String> = [
            "kube-rollout-rules.yaml",
            "kube-rollout-alerts.yaml",
            "kube-rollout-slo.yaml",
        ]
        .iter()
        .map(|f| format!("  - {}", repo("alerts").join(f).display()))
        .collect();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n{}\nscrape_configs:\n  - job_name: kube-rollout-exporter\n    static_configs:\n      - targets: ['{exporter}']\n",
                rules.join("\n")
            ),
        )
        .expect("prometheus.yml");
        let addr = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `prometheus` ({e}): run ./scripts/test, which installs Debian's prometheus"));
        Self { child, addr }
    }

    async fn api(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        let reply = http::get(
            self.addr,
            &format!("{path}?{}", query.join("&")),
            "application/json",
        )
        .await;
        let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        assert_eq!(body["status"], "success", "{path} {params:?}: {body}");
        body["data"].clone()
    }

    /// Whether a query returns at least one series (instant at now, or range over 5 minutes).
    async fn has_data(&self, expr: &str, instant: bool) -> bool {
        self.series(expr, instant)
            .await
            .is_some_and(|r| !r.is_empty())
    }

    /// The series a query returns (instant at now, or range over 5 minutes).
    async fn series(&self, expr: &str, instant: bool) -> Option<Vec<Value>> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let data = if instant {
            self.api(
                "/api/v1/query",
                &[("query", expr), ("time", &format!("{now:.3}"))],
            )
            .await
        } else {
            let start = format!("{:.3}", now - 300.0);
            let end = format!("{now:.3}");
            self.api(
                "/api/v1/query_range",
                &[
                    ("query", expr),
                    ("start", &start),
                    ("end", &end),
                    ("step", "2"),
                ],
            )
            .await
        };
        data["result"].as_array().cloned()
    }
}

/// Percent-encodes a query parameter value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A query as a dashboard panel, variable or annotation holds it.
#[derive(Debug)]
struct DashboardQuery {
    what: String,
    expr: String,
    instant: bool,
    /// The panel's minimum interval (what `$__rate_interval` is at least).
    interval: Option<String>,
    /// An annotation: its events must name the revision and images, and with
    /// `useValueForTime` its values are times in milliseconds.
    annotation: Option<Annotation>,
}

#[derive(Debug, Clone, Copy)]
struct Annotation {
    value_is_time: bool,
}

fn panels(list: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in list.as_array().into_iter().flatten() {
        out.push(p);
        out.extend(panels(&p["panels"]));
    }
    out
}

fn dashboard_queries() -> Vec<DashboardQuery> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo("dashboards")).expect("dashboards/") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let d: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
        for p in panels(&d["panels"]) {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    out.push(DashboardQuery {
                        what: format!("{name}: panel {:?} {}", p["title"], t["refId"]),
                        expr: expr.to_string(),
                        instant: t["instant"].as_bool().unwrap_or(false),
                        interval: p["interval"].as_str().map(str::to_string),
                        annotation: None,
                    });
                }
            }
        }
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            if v["type"] == "query" {
                let q = v["query"]
                    .as_str()
                    .or_else(|| v["query"]["query"].as_str())
                    .unwrap_or_default();
                out.push(DashboardQuery {
                    what: format!("{name}: variable {}", v["name"]),
                    expr: q.to_string(),
                    instant: true,
                    interval: None,
                    annotation: None,
                });
            }
        }
        for a in d["annotations"]["list"].as_array().into_iter().flatten() {
            if let Some(expr) = a["expr"].as_str() {
                out.push(DashboardQuery {
                    what: format!("{name}: annotation {:?}", a["name"]),
                    expr: expr.to_string(),
                    instant: false,
                    interval: None,
                    annotation: Some(Annotation {
                        value_is_time: a["useValueForTime"].as_bool().unwrap_or(false),
                    }),
                });
            }
        }
    }
    out
}

/// Grafana's substitutions: variables as multi-value regexes, `$__rate_interval` at least the
/// panel's interval plus a scrape interval, `$__range` the 5-minute dashboard range.
const ALL_KINDS: &str = "deployment|statefulset|daemonset";

fn substitute(q: &DashboardQuery, namespaces: &str, workloads: &str, kinds: &str) -> String {
    let rate_interval = q
        .interval
        .as_deref()
        .map_or("30s".to_string(), |i| i.to_string());
    q.expr
        .replace("$__rate_interval", &rate_interval)
        .replace("${__range}", "5m")
        .replace("$__range", "5m")
        .replace("$__interval", "2s")
        .replace("${namespace}", namespaces)
        .replace("$namespace", namespaces)
        // Before `$workload`, which is its prefix.
        .replace("${workload_type}", kinds)
        .replace("$workload_type", kinds)
        .replace("${workload}", workloads)
        .replace("$workload", workloads)
        .replace("${job}", "kube-rollout-exporter")
        .replace("$job", "kube-rollout-exporter")
}

/// `label_values(selector, label)` → the selector and the label, to be asked of the series API.
fn label_values(expr: &str) -> Option<(String, String)> {
    let inner = expr
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    match inner.rsplit_once(',') {
        Some((selector, label)) => Some((selector.trim().to_string(), label.trim().to_string())),
        None => Some((String::new(), inner.trim().to_string())),
    }
}

fn recording_rules() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in ["kube-rollout-rules.yaml", "kube-rollout-slo.yaml"] {
        let text = std::fs::read_to_string(repo("alerts").join(f)).expect("rules");
        for line in text.lines() {
            if let Some(name) = line.trim().strip_prefix("- record:") {
                out.insert(name.trim().trim_matches('"').to_string());
            }
        }
    }
    out
}

async fn missing(
    prom: &Prometheus,
    queries: &[DashboardQuery],
    namespaces: &str,
    workloads: &str,
    kinds: &str,
) -> Vec<String> {
    let mut missing = Vec::new();
    for q in queries {
        let expr = substitute(q, namespaces, workloads, kinds);
        let ok = match label_values(&expr) {
            Some((selector, label)) => {
                let selector = if selector.is_empty() {
                    format!("{{{label}!=\"\"}}")
                } else {
                    selector
                };
                let data = prom.api("/api/v1/series", &[("match[]", &selector)]).await;
                data.as_array()
                    .is_some_and(|s| s.iter().any(|series| series[&label].is_string()))
            }
            None => match q.annotation {
                Some(annotation) => {
                    let series = prom.series(&expr, false).await.unwrap_or_default();
                    for problem in annotation_problems(&series, annotation) {
                        missing.push(format!("{}: {problem}: {expr}", q.what));
                    }
                    !series.is_empty()
                }
                None => prom.has_data(&expr, q.instant).await,
            },
        };
        if !ok {
            missing.push(format!("{}: {expr}", q.what));
        }
    }
    for rule in recording_rules() {
        if !prom.has_data(&rule, false).await {
            missing.push(format!("recording rule {rule}"));
        }
    }
    missing
}

/// What is wrong with an annotation's events: every event's text names the revision and the
/// images (labels joined from `kube_rollout_revision_info`), and a time taken from the value is a
/// Unix time in milliseconds from this test's last hour, never in the future.
fn annotation_problems(series: &[Value], annotation: Annotation) -> Vec<String> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let mut problems = Vec::new();
    for s in series {
        let labels = &s["metric"];
        for label in ["revision", "images"] {
            if labels[label].as_str().is_none_or(str::is_empty) {
                problems.push(format!("an event without {label}: {labels}"));
            }
        }
        if annotation.value_is_time {
            for point in s["values"].as_array().into_iter().flatten() {
                let ms: f64 = point[1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0);
                if !(now_ms - 3_600_000.0..=now_ms + 5_000.0).contains(&ms) {
                    problems.push(format!(
                        "event time {ms} ms is not from the last hour: {labels}"
                    ));
                }
            }
        }
    }
    problems
}

/// Which cardinality mode the exporter runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Histograms per workload.
    Default,
    /// `--histograms.per-namespace`.
    PerNamespace,
    /// `--workloads.deny shop/canary`.
    DenyList,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_and_recording_rule_returns_data_from_a_real_prometheus() {
    scenario(Mode::Default).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_rules_work_with_per_namespace_histograms() {
    scenario(Mode::PerNamespace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_rules_work_with_a_deny_list() {
    scenario(Mode::DenyList).await;
}

async fn scenario(mode: Mode) {
    let c = Cluster::steady(
        "prometheus",
        &[
            SimDeployment::new("shop", "web")
                .drain_seconds(2.0)
                .start_seconds(0.3),
            SimDeployment::new("shop", "api")
                .drain_seconds(6.0)
                .start_seconds(0.3),
            SimDeployment::new("blog", "worker")
                .replicas(2)
                .grace_seconds(2)
                .drain_seconds(30.0)
                .start_seconds(0.3),
            SimDeployment::new("shop", "canary").replicas(1),
        ],
        STEADY_WITHIN,
    )
    .await;
    let sim = &c.sim;
    // A StatefulSet and a DaemonSet (on three nodes) roll too, so every panel is checked with
    // every kind.
    for node in ["node-a", "node-b", "node-c"] {
        sim.add_node(&SimNode::new(node)).expect("node");
    }
    sim.create_statefulset(
        &SimStatefulSet::new("db", "pg")
            .grace_seconds(2)
            .start_seconds(0.3)
            .drain_seconds(1.0),
    )
    .expect("statefulset");
    sim.create_daemonset(
        &SimDaemonSet::new("infra", "agent")
            .start_seconds(0.3)
            .drain_seconds(1.0),
    )
    .expect("daemonset");
    let flags: &[&str] = match mode {
        Mode::Default => &[],
        Mode::PerNamespace => &["--histograms.per-namespace"],
        Mode::DenyList => &["--workloads.deny", "shop/canary"],
    };
    let exporter = c.synced_exporter(flags).await;
    let prom = Prometheus::start(c.dir.path(), exporter.addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !prom_up(&prom).await {
        assert!(
            Instant::now() < deadline,
            "Prometheus scrapes the exporter within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Prometheus asks for gzip, and what it ingests (up == 1 above, every query below) came
    // gzipped: the exporter logs each scrape's encoding and client.
    let prometheus_scrapes: Vec<serde_json::Value> =
        std::iter::from_fn(|| exporter.logs.try_recv().ok())
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
            .filter(|v| v["fields"]["message"] == "scrape")
            .filter(|v| {
                v["fields"]["user_agent"]
                    .as_str()
                    .is_some_and(|ua| ua.starts_with("Prometheus/"))
            })
            .collect();
    assert!(!prometheus_scrapes.is_empty(), "Prometheus scraped");
    assert!(
        prometheus_scrapes
            .iter()
            .all(|v| v["fields"]["encoding"] == "gzip"),
        "every Prometheus scrape is gzipped: {prometheus_scrapes:?}"
    );

    // Normal rollouts, slow drains, and a stuck termination (a finalizer that never goes). Each
    // workload rolls twice: its histograms appear with their first observation, and rate() sees
    // an increase only from the second sample of a series on.
    for (name, image) in [
        ("web", "registry.local/web:v2"),
        ("api", "registry.local/api:v2"),
    ] {
        sim.set_image("shop", name, image).expect("first rollout");
    }
    let other_kinds = [
        (Kind::StatefulSet, "db", "pg"),
        (Kind::DaemonSet, "infra", "agent"),
    ];
    for (kind, ns, name) in other_kinds {
        sim.set_workload_image(kind, ns, name, "registry.local/app:v2")
            .expect("first rollout");
    }
    wait_metrics(
        exporter.addr,
        "first rollouts complete",
        Duration::from_secs(60),
        |s| {
            ["web", "api"].iter().all(|w| {
                s.web("kube_rollout_started_total", w, &[]) == Some(1.0)
                    && s.web("kube_rollout_phase", w, &[("phase", "complete")]) == Some(1.0)
            }) && other_kinds.iter().all(|(_, ns, w)| {
                let at = [("namespace", *ns), ("workload", *w)];
                s.get("kube_rollout_started_total", &at) == Some(1.0)
                    && s.get("kube_rollout_phase", &[at[0], at[1], ("phase", "complete")])
                        == Some(1.0)
            })
        },
    )
    .await;
    for (name, image) in [
        ("web", "registry.local/web:v3"),
        ("api", "registry.local/api:v3"),
    ] {
        sim.set_image("shop", name, image).expect("second rollout");
    }
    // pg-2, the StatefulSet's first pod to go, is held by a finalizer too: its rollout stays in
    // flight with an overdue termination.
    sim.add_finalizer("db", "pg-2", "example.com/never")
        .expect("finalizer");
    for (kind, ns, name) in other_kinds {
        sim.set_workload_image(kind, ns, name, "registry.local/app:v3")
            .expect("second rollout");
    }
    let held = sim
        .pods()
        .expect("pods")
        .into_iter()
        .find(|p| p.metadata.namespace.as_deref() == Some("blog"))
        .and_then(|p| p.metadata.name)
        .expect("a worker pod");
    sim.add_finalizer("blog", &held, "example.com/never")
        .expect("finalizer");
    sim.set_image("blog", "worker", "registry.local/worker:v2")
        .expect("worker v2");

    let queries = dashboard_queries();
    assert!(
        queries.len() > 40,
        "the dashboards' queries were found: {}",
        queries.len()
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = Vec::new();
    loop {
        // The stuck pod keeps a rollout in flight, so "in progress" panels have data too.
        let all = missing(&prom, &queries, ".*", ".*", ALL_KINDS).await;
        // Every panel works for StatefulSets and DaemonSets alone too.
        let kinds = if mode == Mode::Default {
            missing(&prom, &queries, ".*", ".*", "statefulset|daemonset").await
        } else {
            Vec::new()
        };
        // Per-namespace histograms have an empty workload label: a dashboard filtered to named
        // workloads shows no histograms in that mode, by design; "All" shows everything.
        let multi = if mode == Mode::PerNamespace {
            Vec::new()
        } else {
            missing(&prom, &queries, "shop|blog", "web|api|worker", ALL_KINDS).await
        };
        let alert = stuck_alert(&prom).await;
        // blog/worker's pods drain for 30 s with a 2 s grace: killed at their deadline, so the
        // grace panels and rules see terminations that used up their grace, not only zeros.
        let exhausted = prom
            .has_data(
                "namespace_workload:kube_rollout_pod_termination_grace_exhausted:rate1h{namespace=\"blog\"} > 0",
                true,
            )
            .await;
        // The start annotation names web's second rollout by its images.
        let started = queries
            .iter()
            .find(|q| {
                q.what.starts_with("kube-rollout-workload.json: annotation")
                    && q.what.contains("Rollout started")
            })
            .expect("a start annotation");
        let labelled = prom
            .series(&substitute(started, ".*", ".*", ALL_KINDS), false)
            .await
            .unwrap_or_default()
            .iter()
            .any(|s| s["metric"]["images"] == "registry.local/web:v3");
        if all.is_empty() && multi.is_empty() && kinds.is_empty() && alert && exhausted && labelled
        {
            break;
        }
        last = all.into_iter().chain(multi).chain(kinds).collect();
        if !labelled {
            last.push("no start annotation with web's images registry.local/web:v3".into());
        }
        if !alert {
            last.push("alert KubeRolloutPodsStuckTerminating not pending or firing".into());
        }
        if !exhausted {
            last.push("no termination of blog/worker used up its grace period".into());
        }
        if Instant::now() >= deadline {
            panic!("after 120 s, still without data:\n{}", last.join("\n"));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    drop(last);
    // The series count per workload each mode promises (README, "Cardinality").
    let scraped = common::exporter::scrape(exporter.addr).await;
    let series = |namespace: &str, workload: &str| {
        let (ns, wl) = (
            format!("namespace=\"{namespace}\""),
            format!("workload=\"{workload}\""),
        );
        scraped
            .0
            .keys()
            .filter(|k| k.contains(&ns) && k.contains(&wl))
            .count()
    };
    match mode {
        // 10 gauges (the two info series included), 5 phases, 4 counters, 4 histograms of 18
        // buckets + sum + count; no overdue pod, so no series per stuck reason.
        Mode::Default => assert_eq!(series("shop", "web"), 99),
        Mode::PerNamespace => {
            assert_eq!(series("shop", "web"), 19);
            assert_eq!(series("shop", ""), 80, "the namespace's histograms");
        }
        Mode::DenyList => {
            assert_eq!(series("shop", "canary"), 0, "denied");
            assert_eq!(series("shop", "web"), 99);
        }
    }
    sim.remove_finalizers("blog", &held).expect("release");
    sim.remove_finalizers("db", "pg-2").expect("release");
}

async fn prom_up(prom: &Prometheus) -> bool {
    // Not listening yet while it starts.
    if tokio::net::TcpStream::connect(prom.addr).await.is_err() {
        return false;
    }
    let reply = http::get(prom.addr, "/api/v1/query?query=up", "application/json").await;
    let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    body["data"]["result"]
        .as_array()
        .is_some_and(|r| r.iter().any(|s| s["value"][1] == "1"))
}

async fn stuck_alert(prom: &Prometheus) -> bool {
    let data = prom.api("/api/v1/alerts", &[]).await;
    data["alerts"].as_array().is_some_and(|alerts| {
        alerts.iter().any(|a| {
            a["labels"]["alertname"] == "KubeRolloutPodsStuckTerminating"
                && a["labels"]["namespace"] == "blog"
                && matches!(a["state"].as_str(), Some("pending" | "firing"))
        })
    })
}
