//! What the integration tests share: [`cluster`] (a steady simulated cluster and synced
//! exporters on it), [`exporter`] (the binary as a child process, scrapes), [`http`] (raw
//! HTTP/1.1), [`TempDir`], and here the replay of the recordings.
//!
//! The replay runs the recorded API traffic in `tests/fixtures/k8s-recordings/` through the
//! model, decoded by the exporter's own decode and watch-event mapping.
//!
//! Each recording holds the initial lists and the watch streams with the receive time of every
//! line. The replay relists every resource at the recording's start (the exporter just synced),
//! then merges the streams by receive time, as independent watches deliver them. The phase source
//! is the full pod stream seen through the field selector the exporter uses
//! (`status.phase` is Succeeded or Failed): a pod enters it when it finishes and leaves it when
//! deleted, with the full stream's own receive times.

#![allow(dead_code)]

use std::path::PathBuf;

use kube_rollout_exporter::decode::{self, Object, ObjectSeed};
use kube_rollout_exporter::error::ConvertError;
use kube_rollout_exporter::model::{
    Change, Event, FinishedPod, Histogram, Model, ModelConfig, Phase, Timestamp, WorkloadKey,
    WorkloadKind, WorkloadMetrics,
};
use kube_rollout_exporter::watch;
use serde_json::Value;

pub mod cluster;
pub mod exporter;
pub mod http;
pub mod workload;

/// A recording: a scenario name under `tests/fixtures/k8s-recordings/`, or a directory of the
/// same layout (absolute path), such as one captured from the simulated cluster.
pub fn recording_dir(scenario: &str) -> PathBuf {
    let path = PathBuf::from(scenario);
    if path.is_absolute() {
        return path;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/k8s-recordings")
        .join(scenario)
}

fn read(scenario: &str, file: &str) -> String {
    let path = recording_dir(scenario).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn json(scenario: &str, file: &str) -> Value {
    serde_json::from_str(&read(scenario, file)).expect("recording is JSON")
}

/// `(receive time, line)` for every line of a watch stream.
fn stream(scenario: &str, file: &str) -> Vec<(Timestamp, String)> {
    let lines = read(scenario, file);
    let times = read(scenario, &format!("{file}.times"));
    let lines: Vec<&str> = lines.lines().collect();
    let times: Vec<&str> = times.split_whitespace().collect();
    assert_eq!(
        lines.len(),
        times.len(),
        "{file}: one receive time per line"
    );
    lines
        .iter()
        .zip(times)
        .map(|(line, t)| {
            let t: f64 = t.parse().expect("receive time is a number");
            (Timestamp::from_secs_f64(t), line.to_string())
        })
        .collect()
}

type Convert<T> = fn(&mut Object<'_>) -> Result<T, ConvertError>;

/// Every item of a recorded list, decoded as the exporter decodes its list pages.
fn list<T>(scenario: &str, file: &str, seed: ObjectSeed, convert: Convert<T>) -> Vec<T> {
    let text = read(scenario, file);
    let mut items = Vec::new();
    decode::list_page(text.as_bytes(), seed, &mut |o| {
        items.push(convert(o).expect("usable object"))
    })
    .expect("list decodes");
    items
}

/// Every line of a recorded watch, decoded as the exporter decodes its watch lines.
fn watch<T>(
    scenario: &str,
    file: &str,
    seed: ObjectSeed,
    convert: Convert<T>,
) -> Vec<(Timestamp, Change<T>)> {
    stream(scenario, file)
        .into_iter()
        .map(|(t, line)| {
            let mut o = Object::default();
            let event = decode::watch_line(line.as_bytes(), seed, &mut o).expect("line decodes");
            let change = watch::change_of(event)
                .unwrap_or_else(|| panic!("unexpected {event:?} in a recording"));
            (t, change(convert(&mut o).expect("usable")))
        })
        .collect()
}

fn is_finished(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

/// A full pod as the phase source sees it (its metadata).
fn finished(pod: &Value) -> FinishedPod {
    let bytes = serde_json::to_vec(pod).expect("JSON");
    let mut o = decode::object(&bytes, META).expect("pod decodes");
    decode::finished_pod(&mut o).expect("usable Pod")
}

const META: ObjectSeed = ObjectSeed::Meta;

/// The workload kind a recording is of: the kind whose list it holds.
pub fn recording_kind(scenario: &str) -> WorkloadKind {
    let has = |file: &str| recording_dir(scenario).join(file).exists();
    if has("list-statefulsets.json") {
        WorkloadKind::StatefulSet
    } else if has("list-daemonsets.json") {
        WorkloadKind::DaemonSet
    } else {
        WorkloadKind::Deployment
    }
}

/// The workload a recording is about: the one object of its kind's list.
pub fn recording_workload(scenario: &str) -> WorkloadKey {
    let kind = recording_kind(scenario);
    let file = format!("list-{}s.json", kind.as_str());
    let items = json(scenario, &file)["items"].clone();
    let meta = &items[0]["metadata"];
    let (Some(ns), Some(name)) = (meta["namespace"].as_str(), meta["name"].as_str()) else {
        panic!("{file}: the first item has a namespace and a name");
    };
    WorkloadKey::new(kind, ns, name)
}

/// The model configuration a recording is replayed with: its kind only, as `--kinds` would.
pub fn recording_config(scenario: &str) -> ModelConfig {
    ModelConfig::default().with_kinds(&[recording_kind(scenario)])
}

/// The initial relists of every resource the recording's kind watches, as the exporter's first
/// sync delivers them.
pub fn initial_lists(scenario: &str) -> Vec<Event> {
    let finished_pods = json(scenario, "list-pods.json")["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|p| is_finished(p))
        .map(finished)
        .collect();
    let mut lists = match recording_kind(scenario) {
        WorkloadKind::Deployment => vec![
            Event::Deployment(Change::Relisted(list(
                scenario,
                "list-deployments.json",
                ObjectSeed::Deployment,
                decode::deployment,
            ))),
            Event::ReplicaSet(Change::Relisted(list(
                scenario,
                "list-replicasets.meta.json",
                META,
                decode::replicaset,
            ))),
        ],
        WorkloadKind::StatefulSet => vec![Event::StatefulSet(Change::Relisted(list(
            scenario,
            "list-statefulsets.json",
            ObjectSeed::StatefulSet,
            decode::statefulset,
        )))],
        WorkloadKind::DaemonSet => vec![Event::DaemonSet(Change::Relisted(list(
            scenario,
            "list-daemonsets.json",
            ObjectSeed::DaemonSet,
            decode::daemonset,
        )))],
    };
    if recording_kind(scenario) != WorkloadKind::Deployment {
        lists.push(Event::ControllerRevision(Change::Relisted(list(
            scenario,
            "list-controllerrevisions.json",
            ObjectSeed::ControllerRevision,
            decode::controllerrevision,
        ))));
    }
    lists.push(Event::Pod(Change::Relisted(list(
        scenario,
        "list-pods.meta.json",
        META,
        decode::pod,
    ))));
    lists.push(Event::FinishedPod(Change::Relisted(finished_pods)));
    lists
}

/// Every watch event of the recording, merged by receive time (ties keep stream order).
pub fn watch_events(scenario: &str) -> Vec<(Timestamp, Event)> {
    let mut events = Vec::new();
    match recording_kind(scenario) {
        WorkloadKind::Deployment => {
            for (t, c) in watch(
                scenario,
                "watch-deployments.jsonl",
                ObjectSeed::Deployment,
                decode::deployment,
            ) {
                events.push((t, Event::Deployment(c)));
            }
            for (t, c) in watch(
                scenario,
                "watch-replicasets.meta.jsonl",
                META,
                decode::replicaset,
            ) {
                events.push((t, Event::ReplicaSet(c)));
            }
        }
        kind => {
            if kind == WorkloadKind::StatefulSet {
                for (t, c) in watch(
                    scenario,
                    "watch-statefulsets.jsonl",
                    ObjectSeed::StatefulSet,
                    decode::statefulset,
                ) {
                    events.push((t, Event::StatefulSet(c)));
                }
            } else {
                for (t, c) in watch(
                    scenario,
                    "watch-daemonsets.jsonl",
                    ObjectSeed::DaemonSet,
                    decode::daemonset,
                ) {
                    events.push((t, Event::DaemonSet(c)));
                }
            }
            for (t, c) in watch(
                scenario,
                "watch-controllerrevisions.jsonl",
                ObjectSeed::ControllerRevision,
                decode::controllerrevision,
            ) {
                events.push((t, Event::ControllerRevision(c)));
            }
        }
    }
    for (t, c) in watch(scenario, "watch-pods.meta.jsonl", META, decode::pod) {
        events.push((t, Event::Pod(c)));
    }
    let mut in_finished_set = std::collections::HashSet::new();
    for (t, line) in stream(scenario, "watch-pods.jsonl") {
        let v: Value = serde_json::from_str(&line).expect("watch line is JSON");
        let kind = v["type"].as_str().expect("event type");
        let f = finished(&v["object"]);
        let event = match kind {
            "DELETED" if in_finished_set.remove(&f.uid) => Change::Deleted(f),
            _ if is_finished(&v["object"]) && kind != "DELETED" => {
                in_finished_set.insert(f.uid);
                Change::Applied(f)
            }
            _ => continue,
        };
        events.push((t, Event::FinishedPod(event)));
    }
    events.sort_by_key(|(t, _)| *t);
    events
}

/// What a replay saw of one workload.
pub struct Replay {
    pub model: Model,
    /// Each phase change: when, and the new phase.
    pub phases: Vec<(Timestamp, Phase)>,
    /// Each termination observed: when, and its duration (from the histogram's sum).
    pub drains: Vec<(Timestamp, f64)>,
    /// The most pods seen terminating at once.
    pub max_terminating: u64,
    /// The metrics after the last event.
    pub last: WorkloadMetrics,
    /// The metrics after each event, with its receive time.
    pub history: Vec<(Timestamp, WorkloadMetrics)>,
}

impl Replay {
    /// The start of each rollout: the workload's start time after each event that started one.
    pub fn starts(&self) -> Vec<Timestamp> {
        let mut started = 0;
        let mut starts = Vec::new();
        for (_, m) in &self.history {
            if m.started_total > started {
                started = m.started_total;
                let at = m.last_started_timestamp.expect("a start");
                starts.push(Timestamp::from_secs_f64(at));
            }
        }
        starts
    }

    /// Each observation of one histogram, in order, from the changes of its count and sum.
    pub fn observations(&self, h: impl Fn(&WorkloadMetrics) -> &Option<Histogram>) -> Vec<f64> {
        let (mut count, mut sum) = (0, 0.0);
        let mut seen = Vec::new();
        for (_, m) in &self.history {
            let Some(now) = h(m) else { continue };
            if now.count() > count {
                assert_eq!(now.count(), count + 1, "one observation per event");
                seen.push(now.sum() - sum);
                (count, sum) = (now.count(), now.sum());
            }
        }
        seen
    }
}

/// Replays a recording for its workload; lists are delivered at `list_time`.
pub fn replay(scenario: &str, list_time: Timestamp) -> Replay {
    let wk = recording_workload(scenario);
    let mut model = Model::new(recording_config(scenario));
    for event in initial_lists(scenario) {
        model.handle(event, list_time);
    }
    assert!(model.is_live(), "every resource synced after the lists");
    let find = |snap: Vec<WorkloadMetrics>| {
        snap.into_iter()
            .find(|m| m.key == wk)
            .unwrap_or_else(|| panic!("{wk:?} is exported"))
    };
    let mut last = find(model.snapshot(list_time));
    let mut phases = vec![(list_time, last.phase)];
    let mut drains = Vec::new();
    let mut history = Vec::new();
    let mut max_terminating = last.terminating_pods;
    for (t, event) in watch_events(scenario) {
        model.handle(event, t);
        let now = find(model.snapshot(t));
        if now.phase != last.phase {
            phases.push((t, now.phase));
        }
        let sum =
            |m: &WorkloadMetrics| m.pod_termination_duration.as_ref().map_or(0.0, |h| h.sum());
        let count =
            |m: &WorkloadMetrics| m.pod_termination_duration.as_ref().map_or(0, |h| h.count());
        if count(&now) > count(&last) {
            assert_eq!(count(&now), count(&last) + 1, "one termination per event");
            drains.push((t, sum(&now) - sum(&last)));
        }
        max_terminating = max_terminating.max(now.terminating_pods);
        history.push((t, now.clone()));
        last = now;
    }
    Replay {
        model,
        phases,
        drains,
        max_terminating,
        last,
        history,
    }
}

/// Asserts two durations agree to the microsecond.
#[track_caller]
pub fn assert_secs(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 2e-6,
        "expected {expected:.6} s, got {actual:.6} s"
    );
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "kre-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
