//! `kube-rollout-exporter wait` end to end: the real binary over real HTTP list/watch against
//! the simulated cluster. Every wait is a condition with a deadline; drains are short (0.5-2 s)
//! and so are the timeouts.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, STEADY_WITHIN};
use common::exporter::binary;
use k8s_openapi::api::apps::v1::Deployment;
use kube_sim::{Kind, SimDaemonSet, SimDeployment, SimNode, SimStatefulSet, World};
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);

/// A running `wait`; its output lines are kept with the instant each arrived.
struct Wait {
    child: Child,
    stdout: Arc<Mutex<Vec<(Instant, String)>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

/// How a `wait` ended.
struct Done {
    code: i32,
    ended: Instant,
    stdout: String,
    stderr: String,
}

impl Drop for Wait {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Wait {
    fn start(kubeconfig: &std::path::Path, args: &[&str]) -> Self {
        let mut child = Command::new(binary())
            .arg("wait")
            .args(args)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wait");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (out, err) = (
            child.stdout.take().expect("piped"),
            child.stderr.take().expect("piped"),
        );
        let keep = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                keep.lock().expect("lines").push((Instant::now(), line));
            }
        });
        let keep = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                keep.lock().expect("lines").push(line);
            }
        });
        Self {
            child,
            stdout,
            stderr,
        }
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn stdout_has(&self, what: &str) -> bool {
        self.stdout
            .lock()
            .expect("lines")
            .iter()
            .any(|(_, l)| l.contains(what))
    }

    /// Waits (without blocking the runtime) for the exit, at most `within`.
    async fn done(mut self, within: Duration) -> Done {
        let deadline = Instant::now() + within;
        let (code, ended) = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break (status.code().unwrap_or(-1), Instant::now());
            }
            assert!(
                Instant::now() < deadline,
                "wait did not end within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // The readers finish once the pipes close.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stdout = self.stdout.lock().expect("lines");
        // The summary is the last thing written before the exit: when the process ended, even
        // if this poll came later.
        let ended = stdout.last().map_or(ended, |(at, _)| (*at).min(ended));
        let stderr = self.stderr.lock().expect("lines");
        Done {
            code,
            ended,
            stdout: stdout
                .iter()
                .map(|(_, l)| l.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            stderr: stderr.join("\n"),
        }
    }
}

/// Polls `condition` every 10 ms until it holds (at most `within`): the instant it was seen.
async fn when(
    c: &Cluster,
    what: &str,
    within: Duration,
    condition: impl Fn(&World) -> bool,
) -> Instant {
    c.sim.wait_for(what, within, condition).await.expect(what);
    Instant::now()
}

/// kubectl's `rollout status` test on a stored Deployment.
fn kubectl_ready(d: &Deployment) -> bool {
    let (Some(spec), Some(st)) = (&d.spec, &d.status) else {
        return false;
    };
    let want = spec.replicas.unwrap_or(1);
    let updated = st.updated_replicas.unwrap_or(0);
    st.observed_generation >= d.metadata.generation
        && updated >= want
        && st.replicas.unwrap_or(0) <= updated
        && st.available_replicas.unwrap_or(0) >= updated
}

fn deployment<'a>(w: &'a World, ns: &str, name: &str) -> Option<&'a Deployment> {
    w.store.deployments().find(|d| {
        d.metadata.namespace.as_deref() == Some(ns) && d.metadata.name.as_deref() == Some(name)
    })
}

/// Pods of `ns` whose name starts with `prefix` and that are not at `image`.
fn old_pods(w: &World, ns: &str, prefix: &str, image: &str) -> usize {
    w.store
        .pods()
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns)
                && p.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(prefix))
                && p.spec
                    .as_ref()
                    .and_then(|s| s.containers.first())
                    .and_then(|c| c.image.as_deref())
                    != Some(image)
        })
        .count()
}

fn no_escape_codes(s: &str) {
    assert!(
        !s.chars().any(|c| c.is_control() && c != '\n'),
        "control characters in non-terminal output: {s:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_returns_after_the_last_old_pod_is_gone_and_ready_at_kubectls_moment() {
    let c = Cluster::steady(
        "wait-complete",
        &[SimDeployment::new("shop", "web")
            .replicas(2)
            .drain_seconds(2.0)
            .start_seconds(0.3)],
        STEADY_WITHIN,
    )
    .await;
    let v2 = "registry.local/app:v2";
    c.sim.set_image("shop", "web", v2).expect("v2");
    let complete = Wait::start(
        &c.kubeconfig(),
        &["deploy/web", "-n", "shop", "--timeout", "60s"],
    );
    let ready = Wait::start(
        &c.kubeconfig(),
        &[
            "deployment/web",
            "-n",
            "shop",
            "--for",
            "ready",
            "--timeout",
            "60s",
        ],
    );
    let kubectl = when(&c, "kubectl's moment", MINUTE, |w| {
        deployment(w, "shop", "web").is_some_and(kubectl_ready)
    })
    .await;
    let gone = when(&c, "the last old pod gone", MINUTE, |w| {
        old_pods(w, "shop", "web-", v2) == 0
    })
    .await;
    assert!(
        gone.duration_since(kubectl) > Duration::from_millis(1000),
        "the drain takes 2 s after kubectl's moment"
    );
    let r = ready.done(MINUTE).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.ended < gone,
        "--for ready returns at kubectl's moment, before the drain ends: it ended {:?} after kubectl's moment, the drain {:?} after\n{}",
        r.ended.duration_since(kubectl),
        gone.duration_since(kubectl),
        r.stdout
    );
    let d = complete.done(MINUTE).await;
    assert_eq!(d.code, 0, "{}", d.stderr);
    assert!(
        d.ended + Duration::from_millis(50) >= gone,
        "complete returns only once the last old pod is gone"
    );
    assert!(
        d.ended > kubectl + Duration::from_millis(1000),
        "not at kubectl's moment"
    );
    assert!(
        d.stdout.contains("shop/deployment/web: complete"),
        "{}",
        d.stdout
    );
    assert!(
        d.stdout.contains("drained   web-"),
        "each old pod's drain: {}",
        d.stdout
    );
    assert!(d.stderr.is_empty(), "{}", d.stderr);
    no_escape_codes(&d.stdout);
    no_escape_codes(&r.stdout);
    // Progress lines are timestamped.
    assert!(
        d.stdout
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("20") && l.contains("Z deployment/web: ")),
        "{}",
        d.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_before_the_controller_acted_it_waits_for_the_new_rollout_and_sees_its_start() {
    let c = Cluster::steady(
        "wait-applied",
        &[SimDeployment::new("shop", "web")
            .replicas(2)
            .drain_seconds(1.0)
            .start_seconds(0.3)],
        STEADY_WITHIN,
    )
    .await;
    // `kubectl apply`, and the controller has not acted yet.
    c.sim.pause_controllers(true).expect("pause");
    let v2 = "registry.local/app:v2";
    c.sim.set_image("shop", "web", v2).expect("v2");
    let mut w = Wait::start(
        &c.kubeconfig(),
        &["deploy/web", "-n", "shop", "--timeout", "60s"],
    );
    // Wait until it has synced and says why it waits.
    let deadline = Instant::now() + MINUTE;
    while !w.stdout_has("waiting for the controller to observe the latest generation") {
        assert!(
            w.running(),
            "wait must not return before the controller observed the change"
        );
        assert!(Instant::now() < deadline, "no progress line");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(w.running(), "the previous rollout is not reported as done");
    c.sim.pause_controllers(false).expect("resume");
    let gone = when(&c, "the last old pod gone", MINUTE, |w| {
        old_pods(w, "shop", "web-", v2) == 0
    })
    .await;
    let d = w.done(MINUTE).await;
    assert_eq!(d.code, 0, "{}", d.stderr);
    assert!(d.ended + Duration::from_millis(50) >= gone);
    // The generation rose before the command started: the start is unknown, never guessed; the
    // ready and complete moments it saw are reported, with the drain tail between them, and
    // both old pods' drains.
    assert!(
        d.stdout.contains("shop/deployment/web: complete"),
        "{}",
        d.stdout
    );
    assert!(
        d.stdout
            .contains("start     unknown (before the command started)"),
        "{}",
        d.stdout
    );
    assert!(d.stdout.contains("(drain tail "), "{}", d.stdout);
    assert_eq!(
        d.stdout.matches("drained   web-").count(),
        2,
        "{}",
        d.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_already_complete_workload_returns_at_once() {
    let c = Cluster::steady(
        "wait-steady",
        &[SimDeployment::new("shop", "web")
            .replicas(2)
            .start_seconds(0.3)],
        STEADY_WITHIN,
    )
    .await;
    let started = Instant::now();
    let d = Wait::start(&c.kubeconfig(), &["deploy/web", "-n", "shop"])
        .done(MINUTE)
        .await;
    assert_eq!(d.code, 0, "{}", d.stderr);
    assert!(d.ended.duration_since(started) < Duration::from_secs(10));
    assert!(
        d.stdout
            .contains("start     unknown (before the command started)"),
        "{}",
        d.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_pod_ends_in_exit_1_at_the_timeout_naming_it() {
    let c = Cluster::steady(
        "wait-stuck",
        &[SimDeployment::new("shop", "web")
            .replicas(1)
            .drain_seconds(0.5)
            .grace_seconds(1)
            .start_seconds(0.3)],
        STEADY_WITHIN,
    )
    .await;
    let old = c.sim.pods().expect("pods")[0]
        .metadata
        .name
        .clone()
        .expect("name");
    c.sim
        .add_finalizer("shop", &old, "example.com/hold")
        .expect("finalizer");
    c.sim
        .set_image("shop", "web", "registry.local/app:v2")
        .expect("v2");
    let started = Instant::now();
    let d = Wait::start(
        &c.kubeconfig(),
        &[
            "deploy/web",
            "-n",
            "shop",
            "--timeout",
            "4s",
            "--output",
            "json",
        ],
    )
    .done(MINUTE)
    .await;
    assert_eq!(d.code, 1, "{}", d.stderr);
    let took = d.ended.duration_since(started);
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(15),
        "{took:?}"
    );
    assert_eq!(
        d.stderr.lines().count(),
        1,
        "one line on stderr: {}",
        d.stderr
    );
    assert!(
        d.stderr.contains(&old) && d.stderr.contains("finalizers example.com/hold"),
        "{}",
        d.stderr
    );
    assert!(
        d.stderr.contains("not complete within 4.0s"),
        "{}",
        d.stderr
    );
    let doc: Value = serde_json::from_str(&d.stdout).expect("JSON");
    validate(&doc);
    let web = &doc["workloads"][0];
    assert_eq!(
        (web["reason"].as_str(), doc["result"].as_str()),
        (Some("timeout"), Some("failed"))
    );
    let pod = &web["blocking_pods"][0];
    assert_eq!(pod["pod"].as_str(), Some(old.as_str()));
    assert_eq!(pod["finalizers"][0].as_str(), Some("example.com/hold"));
    assert!(
        pod["terminating_since"].is_string() && pod["past_deadline_seconds"].is_number(),
        "{pod}"
    );
    c.sim.remove_finalizers("shop", &old).expect("release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_deployment_fails_fast() {
    let c = Cluster::steady(
        "wait-stalled",
        &[SimDeployment::new("shop", "web")
            .replicas(1)
            .start_seconds(0.3)
            .progress_deadline_seconds(1)],
        STEADY_WITHIN,
    )
    .await;
    // The new pods never become ready: past the 1 s progress deadline, the Deployment stalls.
    c.sim
        .set_template_annotation("shop", "web", kube_sim::START_SECONDS, "1000")
        .expect("slow pods");
    let started = Instant::now();
    let d = Wait::start(
        &c.kubeconfig(),
        &["deploy/web", "-n", "shop", "--timeout", "60s"],
    )
    .done(MINUTE)
    .await;
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(
        d.ended.duration_since(started) < Duration::from_secs(20),
        "fails at once, not at the timeout"
    );
    assert!(
        d.stderr.contains("ProgressDeadlineExceeded"),
        "{}",
        d.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_workloads_by_name_and_by_label_selector() {
    let c = Cluster::steady(
        "wait-several",
        &[
            SimDeployment::new("shop", "web")
                .replicas(1)
                .drain_seconds(0.5)
                .start_seconds(0.3)
                .label("team", "a"),
            SimDeployment::new("shop", "api")
                .replicas(1)
                .drain_seconds(1.0)
                .start_seconds(0.3)
                .label("team", "a"),
            SimDeployment::new("shop", "db")
                .replicas(1)
                .start_seconds(0.3)
                .label("team", "b"),
        ],
        STEADY_WITHIN,
    )
    .await;
    for name in ["web", "api"] {
        c.sim
            .set_image("shop", name, "registry.local/app:v2")
            .expect("v2");
    }
    let d = Wait::start(
        &c.kubeconfig(),
        &[
            "-l",
            "team=a",
            "-n",
            "shop",
            "--timeout",
            "60s",
            "-o",
            "json",
        ],
    )
    .done(MINUTE)
    .await;
    assert_eq!(d.code, 0, "{}", d.stderr);
    let doc: Value = serde_json::from_str(&d.stdout).expect("JSON");
    validate(&doc);
    let mut names: Vec<&str> = doc["workloads"]
        .as_array()
        .expect("workloads")
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["api", "web"]);
    let none = Wait::start(
        &c.kubeconfig(),
        &["-l", "team=nobody", "-n", "shop", "--timeout", "10s"],
    )
    .done(MINUTE)
    .await;
    assert_eq!(none.code, 1, "matching nothing is a failure");
    assert!(
        none.stderr.contains("matches -l team=nobody"),
        "{}",
        none.stderr
    );
    let missing = Wait::start(
        &c.kubeconfig(),
        &[
            "deploy/web",
            "deploy/gone",
            "-n",
            "shop",
            "--timeout",
            "10s",
        ],
    )
    .done(MINUTE)
    .await;
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("shop/deployment/gone: not found"),
        "{}",
        missing.stderr
    );
    assert!(
        !missing.stderr.contains("deployment/web"),
        "web reached: {}",
        missing.stderr
    );
    let usage = Wait::start(&c.kubeconfig(), &[]).done(MINUTE).await;
    assert_eq!(usage.code, 2, "bad usage: {}", usage.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulset_and_a_daemonset_complete_with_their_last_old_pod() {
    let c = Cluster::steady("wait-kinds", &[], STEADY_WITHIN).await;
    for node in ["node-a", "node-b"] {
        c.sim.add_node(&SimNode::new(node)).expect("node");
    }
    c.sim
        .create_statefulset(
            &SimStatefulSet::new("data", "pg")
                .replicas(2)
                .drain_seconds(0.5)
                .start_seconds(0.3),
        )
        .expect("sts");
    c.sim
        .create_daemonset(
            &SimDaemonSet::new("data", "agent")
                .drain_seconds(0.5)
                .start_seconds(0.3),
        )
        .expect("ds");
    let steady = Wait::start(
        &c.kubeconfig(),
        &["sts/pg", "ds/agent", "-n", "data", "--timeout", "60s"],
    )
    .done(MINUTE)
    .await;
    assert_eq!(steady.code, 0, "created and steady: {}", steady.stderr);
    c.sim
        .set_workload_image(Kind::StatefulSet, "data", "pg", "registry.local/pg:v2")
        .expect("sts v2");
    c.sim
        .set_workload_image(Kind::DaemonSet, "data", "agent", "registry.local/agent:v2")
        .expect("ds v2");
    let d = Wait::start(
        &c.kubeconfig(),
        &[
            "statefulset/pg",
            "daemonset/agent",
            "-n",
            "data",
            "--timeout",
            "60s",
        ],
    )
    .done(MINUTE)
    .await;
    assert_eq!(d.code, 0, "{}", d.stderr);
    let left = c.sim.with_world(|w| {
        w.store
            .pods()
            .filter(|p| {
                p.spec
                    .as_ref()
                    .and_then(|s| s.containers.first())
                    .and_then(|c| c.image.as_deref())
                    .is_some_and(|i| !i.ends_with(":v2"))
            })
            .count()
    });
    assert_eq!(
        left.expect("world"),
        0,
        "no old pod left when wait returned"
    );
    assert!(
        d.stdout.contains("data/statefulset/pg: complete"),
        "{}",
        d.stdout
    );
    assert!(
        d.stdout.contains("data/daemonset/agent: complete"),
        "{}",
        d.stdout
    );
    no_escape_codes(&d.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_canary_is_done_at_kubectls_test_and_ondelete_names_the_pods_left() {
    let c = Cluster::steady("wait-partition", &[], STEADY_WITHIN).await;
    let sts = |name: &str| {
        SimStatefulSet::new("data", name)
            .drain_seconds(0.5)
            .start_seconds(0.3)
    };
    c.sim
        .create_statefulset(&sts("pg").partition(2))
        .expect("sts");
    c.sim
        .create_statefulset(&sts("kv").on_delete())
        .expect("sts");
    c.sim
        .create_statefulset(&sts("held").partition(3))
        .expect("sts");
    c.sim
        .wait_for("all steady", STEADY_WITHIN, |w| {
            w.store.statefulsets().count() == 3
                && w.store.statefulsets().all(|s| {
                    s.status.as_ref().is_some_and(|st| {
                        st.ready_replicas == Some(3) && st.update_revision == st.current_revision
                    })
                })
        })
        .await
        .expect("steady");
    for name in ["pg", "kv", "held"] {
        c.sim
            .set_workload_image(Kind::StatefulSet, "data", name, "registry.local/app:v2")
            .expect("v2");
    }
    // partition >= replicas replaces no pod: done at once.
    let started = Instant::now();
    let held = Wait::start(
        &c.kubeconfig(),
        &["sts/held", "-n", "data", "--timeout", "60s"],
    )
    .done(MINUTE)
    .await;
    assert_eq!(held.code, 0, "{}", held.stderr);
    assert!(
        held.ended.duration_since(started) < Duration::from_secs(10),
        "at once"
    );
    assert!(held.stdout.contains("partition 3"), "{}", held.stdout);
    // The canary: pg-2 replaced, pg-0 and pg-1 keep v1 below the partition; done.
    let canary = Wait::start(
        &c.kubeconfig(),
        &["sts/pg", "-n", "data", "--timeout", "60s", "-o", "json"],
    )
    .done(MINUTE)
    .await;
    assert_eq!(canary.code, 0, "{}", canary.stderr);
    let doc: Value = serde_json::from_str(&canary.stdout).expect("one JSON document");
    validate(&doc);
    let text = doc.to_string();
    assert!(
        text.contains("\"partition\":2"),
        "the partition is said: {text}"
    );
    let v1 = c
        .sim
        .with_world(|w| {
            w.store
                .pods()
                .filter(|p| {
                    p.metadata
                        .name
                        .as_deref()
                        .is_some_and(|n| n.starts_with("pg-"))
                })
                .filter(|p| {
                    p.spec
                        .as_ref()
                        .and_then(|s| s.containers.first())
                        .and_then(|c| c.image.as_deref())
                        == Some("registry.local/app:v1")
                })
                .count()
        })
        .expect("world");
    assert_eq!(v1, 2, "pg-0 and pg-1 stay at v1 below the partition");
    // OnDelete: nobody deletes kv's pods, so the timeout says how many are left.
    let kv = Wait::start(
        &c.kubeconfig(),
        &["sts/kv", "-n", "data", "--timeout", "3s"],
    )
    .done(MINUTE)
    .await;
    assert_eq!(kv.code, 1);
    assert_eq!(kv.stderr.lines().count(), 1, "one line: {}", kv.stderr);
    assert!(
        kv.stderr.contains("OnDelete: 3 pods not yet deleted"),
        "{}",
        kv.stderr
    );
}

/// Validates `doc` against docs/wait-output.schema.json: the subset of JSON Schema the file uses
/// (type, const, enum, required, properties, additionalProperties false, items, minimum, local
/// $ref).
fn validate(doc: &Value) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/wait-output.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("schema JSON");
    let mut errors = Vec::new();
    check(&schema, &schema, doc, "$", &mut errors);
    assert!(errors.is_empty(), "does not validate: {errors:#?}\n{doc:#}");
}

fn check(root: &Value, s: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(r) = s["$ref"].as_str() {
        let name = r.trim_start_matches("#/$defs/");
        return check(root, &root["$defs"][name], v, at, errors);
    }
    let type_ok = |t: &str| match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        _ => false,
    };
    match &s["type"] {
        Value::String(t) if !type_ok(t) => errors.push(format!("{at}: not {t}")),
        Value::Array(ts) if !ts.iter().filter_map(Value::as_str).any(type_ok) => {
            errors.push(format!("{at}: not any of {ts:?}"))
        }
        _ => {}
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        errors.push(format!("{at}: not {c}"));
    }
    if let Some(e) = s["enum"].as_array()
        && !e.contains(v)
    {
        errors.push(format!("{at}: {v} not in {e:?}"));
    }
    if let (Some(min), Some(n)) = (s["minimum"].as_f64(), v.as_f64())
        && n < min
    {
        errors.push(format!("{at}: {n} below {min}"));
    }
    if let Some(obj) = v.as_object() {
        for r in s["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !obj.contains_key(r) {
                errors.push(format!("{at}: missing {r}"));
            }
        }
        for (k, x) in obj {
            match s["properties"].get(k) {
                Some(p) => check(root, p, x, &format!("{at}.{k}"), errors),
                None if s["additionalProperties"] == Value::Bool(false) => {
                    errors.push(format!("{at}: unexpected {k}"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            check(root, items, x, &format!("{at}[{i}]"), errors);
        }
    }
}

#[test]
fn the_validator_rejects_what_the_schema_forbids() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/wait-output.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("JSON");
    let mut errors = Vec::new();
    let bad = serde_json::json!({"schema_version": 2, "for": "soon", "extra": 1});
    check(&schema, &schema, &bad, "$", &mut errors);
    assert!(
        errors.iter().any(|e| e.contains("missing workloads")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("unexpected extra")),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("soon")), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_that_never_answers_fails_at_the_timeout() {
    let c = Cluster::steady("wait-offline", &[], STEADY_WITHIN).await;
    c.sim.endpoint().go_offline();
    let started = Instant::now();
    let d = Wait::start(
        &c.kubeconfig(),
        &["deploy/web", "-n", "shop", "--timeout", "2s"],
    )
    .done(MINUTE)
    .await;
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(d.ended.duration_since(started) >= Duration::from_secs(2));
    assert!(d.stderr.contains("API server unreachable"), "{}", d.stderr);
    assert_eq!(d.stderr.lines().count(), 1, "{}", d.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_superseded_while_waiting_is_followed_to_the_newest() {
    let c = Cluster::steady(
        "wait-superseded",
        &[SimDeployment::new("shop", "web")
            .drain_seconds(1.5)
            .start_seconds(0.3)],
        STEADY_WITHIN,
    )
    .await;
    c.sim
        .set_image("shop", "web", "registry.local/app:v2")
        .expect("v2");
    let w = Wait::start(
        &c.kubeconfig(),
        &["deploy/web", "-n", "shop", "--timeout", "60s"],
    );
    // Mid-rollout (a v2 pod runs, v1 pods remain), the template changes again.
    when(&c, "v2 rolling", MINUTE, |w| {
        let all = old_pods(w, "shop", "web-", "");
        let not_v1 = all - old_pods(w, "shop", "web-", "registry.local/app:v1");
        let not_v2 = old_pods(w, "shop", "web-", "registry.local/app:v2");
        // Some pod is no longer v1 (a v2 one) while v1 pods remain.
        not_v1 > 0 && not_v2 > 0 && not_v2 < all
    })
    .await;
    c.sim
        .set_image("shop", "web", "registry.local/app:v3")
        .expect("v3");
    let d = w.done(MINUTE).await;
    assert_eq!(d.code, 0, "{}", d.stderr);
    let left = c
        .sim
        .with_world(|w| old_pods(w, "shop", "web-", "registry.local/app:v3"))
        .expect("world");
    assert_eq!(left, 0, "returned only once every v1 and v2 pod was gone");
    assert!(
        d.stdout.contains("shop/deployment/web: complete"),
        "{}",
        d.stdout
    );
}

/// `wait deploy/web` on a cluster where `deny` makes the API server refuse something: exit 1
/// at once (not after the 60 s timeout), one line on stderr with `says`, JSON reason `forbidden`.
async fn refused_at_once(tag: &str, deny: impl Fn(&Cluster), says: &[&str]) {
    let c = Cluster::steady(tag, &[SimDeployment::new("shop", "web")], STEADY_WITHIN).await;
    deny(&c);
    let started = Instant::now();
    let d = Wait::start(
        &c.kubeconfig(),
        &["deploy/web", "-n", "shop", "--timeout", "60s", "-o", "json"],
    )
    .done(MINUTE)
    .await;
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(
        d.ended.duration_since(started) < Duration::from_secs(20),
        "no retrying until the 60 s timeout"
    );
    assert_eq!(d.stderr.lines().count(), 1, "{}", d.stderr);
    for words in says {
        assert!(d.stderr.contains(words), "says {words:?}: {}", d.stderr);
    }
    let doc: Value = serde_json::from_str(&d.stdout).expect("one JSON document");
    validate(&doc);
    assert!(doc.to_string().contains("\"forbidden\""), "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_permission_fails_at_once_saying_what_wait_needs() {
    let deny_all = |c: &Cluster| {
        c.sim.endpoint().faults().set(|f| {
            f.error = Some(kube_sim::ErrorFault {
                code: 403,
                retry_after: None,
                remaining: u32::MAX,
            })
        })
    };
    let says = ["refused by the API server", "(403)", "get, list and watch"];
    refused_at_once("wait-forbidden", deny_all, &says).await;
}

/// The workload can be read but its pods cannot (a Role without pods): the refused list fails
/// at once too, naming what was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_watch_refused_fails_at_once_naming_it() {
    let deny_pods = |c: &Cluster| c.sim.endpoint().faults().deny(kube_sim::Kind::Pod);
    let says = ["refused by the API server", "pods was refused (403)"];
    refused_at_once("wait-forbidden-pods", deny_pods, &says).await;
}
