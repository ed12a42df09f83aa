//! Runs the real exporter binary as a child process and reads its metrics over HTTP.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running exporter; killed and reaped on drop.
pub struct Exporter {
    child: Child,
    pub addr: SocketAddr,
    /// Every log line the exporter wrote so far (stderr, JSON).
    pub logs: mpsc::Receiver<String>,
    /// The "started" log line.
    start: serde_json::Value,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of the binary cargo built for this test run.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_kube-rollout-exporter")
}

impl Exporter {
    /// Starts the exporter on an ephemeral loopback port with `kubeconfig` and extra flags, and
    /// waits (at most 20 s) for it to log the address it listens on.
    pub fn start(kubeconfig: &Path, extra: &[&str]) -> Self {
        let kubeconfig = kubeconfig.to_string_lossy();
        let mut args = vec!["--kubeconfig", &kubeconfig];
        args.extend_from_slice(extra);
        Self::run(&args)
    }

    /// Starts `--demo` (the built-in simulated cluster) with extra flags, as [`Self::start`].
    pub fn demo(extra: &[&str]) -> Self {
        let mut args = vec!["--demo"];
        args.extend_from_slice(extra);
        Self::run(&args)
    }

    fn run(args: &[&str]) -> Self {
        let mut child = Command::new(binary())
            .args([
                "--web.listen-address",
                "127.0.0.1:0",
                "--log.format",
                "json",
                "--log.level",
                "debug",
            ])
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the exporter binary");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, logs) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let (addr, start) = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = logs
                .recv_timeout(left)
                .expect("the exporter logs its listen address within 20 s");
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["fields"]["message"] == "kube-rollout-exporter started" {
                let listen = v["fields"]["listen"].as_str().expect("listen field");
                break (listen.parse().expect("a socket address"), v);
            }
        };
        Self {
            child,
            addr,
            logs,
            start,
        }
    }

    /// The exporter's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory in bytes and open file descriptors, from /proc.
    pub fn resources(&self) -> (u64, usize) {
        let p = kube_rollout_exporter::process::read_pid(self.pid()).unwrap_or_default();
        (p.resident_bytes, p.open_fds as usize)
    }

    /// The JSON log line the exporter wrote when it started serving.
    pub fn start_line(&self) -> &serde_json::Value {
        &self.start
    }

    /// Sends SIGTERM and waits for the exit status (at most 10 s).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "exporter did not exit within 10 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One scrape, parsed: `name{labels}` → value, labels sorted by name.
#[derive(Debug, Default)]
pub struct Scrape(pub BTreeMap<String, f64>);

/// Splits `name{a="x",b="y"} value` into the series key (labels sorted) and the value.
fn parse_line(line: &str) -> Option<(String, f64)> {
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = match series.split_once('{') {
        Some((n, rest)) => (n, rest.strip_suffix('}').unwrap_or(rest)),
        None => (series, ""),
    };
    // `key="value"` pairs; values may hold commas and escaped quotes.
    let mut pairs = Vec::new();
    let mut rest = labels;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let end = end?;
        pairs.push(format!(
            "{}=\"{}\"",
            key.trim_start_matches(','),
            &after[..end]
        ));
        rest = &after[end + 1..];
    }
    pairs.sort_unstable();
    Some((format!("{name}{{{}}}", pairs.join(",")), value))
}

impl Scrape {
    pub fn parse(text: &str) -> Self {
        Self(
            text.lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .filter_map(parse_line)
                .collect(),
        )
    }

    /// The value of the series `name` whose labels include every `label="value"` given.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = self.0.iter().filter(|(k, _)| {
            k.starts_with(&format!("{name}{{"))
                && labels
                    .iter()
                    .all(|(l, v)| k.contains(&format!("{l}=\"{v}\"")))
        });
        let first = found.next().map(|(_, v)| *v);
        assert!(
            found.next().is_none(),
            "{name} {labels:?} matches more than one series"
        );
        first
    }

    /// Workload series (not the exporter's own), minus the gauges whose value depends on the
    /// scrape time (`in_progress_seconds`, `oldest_termination_seconds`).
    pub fn workload_series(&self) -> BTreeMap<String, f64> {
        self.0
            .iter()
            .filter(|(k, _)| {
                k.starts_with("kube_rollout_") && !k.starts_with("kube_rollout_exporter_")
            })
            .filter(|(k, _)| {
                !k.starts_with("kube_rollout_in_progress_seconds")
                    && !k.starts_with("kube_rollout_oldest_termination_seconds")
            })
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// The watch errors the exporter counted for `resource` (0 before the first).
    pub fn watch_errors(&self, resource: &str) -> f64 {
        self.get(
            "kube_rollout_exporter_watch_errors_total",
            &[("resource", resource)],
        )
        .unwrap_or(0.0)
    }

    /// Completed rollouts, summed over every workload.
    pub fn total_completes(&self) -> f64 {
        self.0
            .iter()
            .filter(|(k, _)| {
                k.starts_with("kube_rollout_duration_seconds_count{")
                    && k.contains("milestone=\"complete\"")
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// Like [`Self::get`], for a workload of namespace `shop`.
    pub fn web(&self, name: &str, workload: &str, more: &[(&str, &str)]) -> Option<f64> {
        let mut labels = vec![("namespace", "shop"), ("workload", workload)];
        labels.extend_from_slice(more);
        self.get(name, &labels)
    }
}

/// GETs `/metrics` (classic text format) from the exporter.
pub async fn scrape(addr: SocketAddr) -> Scrape {
    let reply = super::http::get(addr, "/metrics", "text/plain").await;
    assert_eq!(reply.status, 200);
    Scrape::parse(&String::from_utf8_lossy(&reply.body))
}

/// Scrapes until `check` passes or `within` has passed; returns the passing scrape or panics
/// with `what` and the last scrape.
pub async fn wait_metrics(
    addr: SocketAddr,
    what: &str,
    within: Duration,
    check: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let deadline = Instant::now() + within;
    let mut s = Scrape::default();
    loop {
        let reply = super::http::get(addr, "/metrics", "text/plain").await;
        // 503: too many scrapes at once (--web.max-requests), which load tests cause on
        // purpose; it is a refusal to render now, not an answer: ask again.
        if reply.status != 503 {
            assert_eq!(reply.status, 200, "/metrics answered {}", reply.status);
            s = Scrape::parse(&String::from_utf8_lossy(&reply.body));
        }
        if reply.status == 200 && check(&s) {
            return s;
        }
        if Instant::now() >= deadline {
            let interesting: Vec<_> =
                s.0.iter()
                    .filter(|(k, _)| k.starts_with("kube_rollout_") && !k.contains("_bucket"))
                    .collect();
            panic!("timed out after {within:?} waiting for {what}; last scrape: {interesting:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
