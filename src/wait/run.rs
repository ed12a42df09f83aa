//! The I/O of `wait`: finds the workloads (by name, or by `-l` / `--all`), reads each one's
//! selector, starts the exporter's own list-and-watch loops on exactly what it needs, each
//! workload feeding a private [`Model`], and shows progress until every workload has reached the
//! milestone or failed. The decisions are [`super::decide`]'s.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Client;
use kube::api::{Api, ListParams};
use thiserror::Error;

use super::decide::{self, Failure, Goal, Notes, Status, Tracker};
use crate::model::{
    Change, Event, Model, ModelConfig, Resource, Timestamp, Uid, WorkloadKey, WorkloadKind,
};
use crate::shared::{self, Shared};
use crate::watch::{self, WorkloadWatch};

/// How often the workloads are checked and the progress redrawn.
const TICK: Duration = Duration::from_millis(100);

/// Objects per list page.
const PAGE_SIZE: u32 = 500;

/// How long the pods that block completion may take to be read once at the end.
const DETAILS_WITHIN: Duration = Duration::from_secs(3);

/// A workload named on the command line, or a kind to pick with `-l` or `--all`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Kind(WorkloadKind),
    Named(WorkloadKind, String),
}

/// What to wait for, from the flags.
#[derive(Clone, Debug)]
pub struct Request {
    pub targets: Vec<Target>,
    pub namespace: String,
    /// `-l`: every workload of the kinds named (all three when none is) matching it.
    pub selector: Option<String>,
    /// `--all`: every workload of those kinds in the namespace.
    pub all: bool,
    pub goal: Goal,
    pub timeout_secs: u64,
    pub json: bool,
}

/// What the command ends with: its exit code and the one line it writes on stderr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub code: u8,
    pub message: Option<String>,
}

#[derive(Debug, Error)]
pub enum WaitError {
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("cannot encode the JSON document: {0}")]
    Json(#[from] serde_json::Error),
}

/// One workload being followed.
struct Followed {
    tracker: Tracker,
    /// `None` for a workload that failed before it could be watched.
    shared: Option<Arc<Shared>>,
    notes: Arc<Mutex<Notes>>,
    selector: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Runs `wait` to its end.
pub async fn run(client: Client, req: Request) -> Result<Outcome, WaitError> {
    let since = shared::now();
    let deadline = since.plus_secs(i64::try_from(req.timeout_secs).unwrap_or(i64::MAX / 2));
    let found = match resolve(&client, &req, deadline).await {
        Ok(found) => found,
        Err(e) => {
            return Ok(Outcome {
                code: 1,
                message: Some(format!("error: {e}")),
            });
        }
    };
    if found.is_empty() {
        let kinds = kinds_of(&req)
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let what = req
            .selector
            .as_deref()
            .map_or_else(|| "--all".to_string(), |s| format!("-l {s}"));
        return Ok(Outcome {
            code: 1,
            message: Some(format!(
                "error: no workload ({kinds}) in namespace {} matches {what}: nothing to wait for",
                req.namespace
            )),
        });
    }
    let mut followed: Vec<Followed> = found
        .into_iter()
        .map(|f| follow(&client, f, req.goal, since))
        .collect();

    // With --output json, stdout is the document alone, and stderr the one verdict line unless
    // people watch it on a terminal: then the live lines go there.
    let (tty, mut out): (bool, Box<dyn Write>) = if req.json {
        let tty = std::io::stderr().is_terminal();
        let sink: Box<dyn Write> = if tty {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::sink())
        };
        (tty, sink)
    } else {
        (std::io::stdout().is_terminal(), Box::new(std::io::stdout()))
    };
    let mut progress = Progress::new(tty, req.json);
    loop {
        let now = shared::now();
        for f in &mut followed {
            let Some(shared) = &f.shared else { continue };
            // A list or watch refused later (pods not granted, say) fails as the first GET
            // does: retrying cannot help.
            if !f.tracker.status.is_done()
                && let Some(why) = refused(shared)
            {
                f.tracker.status = Status::Failed(Failure::Forbidden(why), now);
            }
            let view = shared.view(&f.tracker.key);
            let notes = f.notes.lock().unwrap_or_else(PoisonError::into_inner);
            f.tracker.update(view, &notes, now, deadline);
            if let Status::Failed(Failure::Unreachable(why), _) = &mut f.tracker.status
                && let Err(e) = shared.readiness().check()
            {
                *why = e.to_string();
            }
        }
        let lines: Vec<(String, String)> = followed
            .iter()
            .map(|f| (f.tracker.progress_key(now), f.tracker.progress(now)))
            .collect();
        progress.show(&mut out, &lines, now, since)?;
        if followed.iter().all(|f| f.tracker.status.is_done()) {
            progress.finish();
            break;
        }
        tokio::time::sleep(TICK).await;
    }
    for f in &followed {
        for t in &f.tasks {
            t.abort();
        }
    }
    let now = shared::now();
    for f in &followed {
        if !matches!(f.tracker.status, Status::Reached(_))
            && !f.tracker.blocking(&Notes::new(), now).is_empty()
        {
            pod_details(&client, &f.tracker.key.namespace, &f.selector, &f.notes).await;
        }
    }
    let notes: Vec<Notes> = followed
        .iter()
        .map(|f| {
            f.notes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        })
        .collect();
    let notes: Vec<&Notes> = notes.iter().collect();
    let trackers: Vec<Tracker> = followed.into_iter().map(|f| f.tracker).collect();
    let mut stdout = std::io::stdout().lock();
    if req.json {
        let doc = decide::document(&trackers, &notes, since, now, req.timeout_secs);
        serde_json::to_writer_pretty(&mut stdout, &doc)?;
        writeln!(stdout)?;
    } else {
        write!(
            stdout,
            "{}",
            decide::summary(&trackers, &notes, now, req.timeout_secs)
        )?;
    }
    stdout.flush()?;
    let (code, message) = decide::verdict(&trackers, &notes, now, req.timeout_secs);
    Ok(Outcome { code, message })
}

/// The first list or watch of a workload's watches that the API server refused (401, 403).
fn refused(shared: &Shared) -> Option<String> {
    Resource::ALL.into_iter().find_map(|r| {
        let counts = shared.watch_stats(r).counts();
        counts
            .requests
            .iter()
            .find(|((_, code), n)| matches!(code, 401 | 403) && *n > 0)
            .map(|((verb, code), _)| format!("the {verb} of {} was refused ({code})", r.as_str()))
    })
}

/// A workload found, or why it cannot be followed.
enum Found {
    Watch(WorkloadWatch),
    Failed(WorkloadKey, Failure),
}

/// The kinds `-l` or `--all` pick: those named, else all three.
fn kinds_of(req: &Request) -> Vec<WorkloadKind> {
    let mut kinds: Vec<WorkloadKind> = req
        .targets
        .iter()
        .filter_map(|t| match t {
            Target::Kind(k) => Some(*k),
            Target::Named(..) => None,
        })
        .collect();
    if kinds.is_empty() {
        kinds = WorkloadKind::ALL.to_vec();
    }
    kinds.sort();
    kinds.dedup();
    kinds
}

/// Finds the workloads and their selectors, retrying an API server that does not answer until
/// the deadline.
async fn resolve(
    client: &Client,
    req: &Request,
    deadline: Timestamp,
) -> Result<Vec<Found>, String> {
    let ns = req.namespace.as_str();
    let mut found = Vec::new();
    if req.selector.is_some() || req.all {
        let params = ListParams {
            label_selector: req.selector.clone(),
            ..ListParams::default()
        };
        for kind in kinds_of(req) {
            let items = retry(deadline, || list(client, kind, ns, &params))
                .await
                .map_err(|f| decide::failure_text(&f))?;
            for (name, selector) in items {
                found.push(Found::Watch(WorkloadWatch {
                    kind,
                    namespace: ns.to_string(),
                    name,
                    selector,
                }));
            }
        }
        return Ok(found);
    }
    for target in &req.targets {
        let Target::Named(kind, name) = target else {
            continue;
        };
        let key = WorkloadKey::new(*kind, ns, name.as_str());
        match retry(deadline, || get(client, *kind, ns, name)).await {
            Ok(Some(selector)) => found.push(Found::Watch(WorkloadWatch {
                kind: *kind,
                namespace: ns.to_string(),
                name: name.clone(),
                selector,
            })),
            Ok(None) => found.push(Found::Failed(key, Failure::NotFound)),
            Err(failure) => found.push(Found::Failed(key, failure)),
        }
    }
    Ok(found)
}

/// Calls `f` until it answers or the deadline passes (then the last error, in words); a refusal
/// (401, 403) ends it at once.
async fn retry<T, F, Fut>(deadline: Timestamp, mut f: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut pause = Duration::from_millis(250);
    loop {
        match f().await {
            Ok(t) => return Ok(t),
            Err(kube::Error::Api(status)) if matches!(status.code, 401 | 403) => {
                return Err(Failure::Forbidden(format!(
                    "{} ({})",
                    status.message, status.code
                )));
            }
            Err(e) => {
                if shared::now() >= deadline {
                    return Err(Failure::Unreachable(format!(
                        "the API server did not answer: {e}"
                    )));
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// A workload's selector by name; `None` when it does not exist.
async fn get(
    client: &Client,
    kind: WorkloadKind,
    ns: &str,
    name: &str,
) -> Result<Option<String>, kube::Error> {
    let selector = match kind {
        WorkloadKind::Deployment => Api::<Deployment>::namespaced(client.clone(), ns)
            .get_opt(name)
            .await?
            .map(|d| d.spec.map(|s| s.selector)),
        WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), ns)
            .get_opt(name)
            .await?
            .map(|d| d.spec.map(|s| s.selector)),
        WorkloadKind::DaemonSet => Api::<DaemonSet>::namespaced(client.clone(), ns)
            .get_opt(name)
            .await?
            .map(|d| d.spec.map(|s| s.selector)),
    };
    Ok(selector.map(|s| s.as_ref().map(selector_string).unwrap_or_default()))
}

/// Every workload of `kind` in `ns` the list parameters select: name and selector.
async fn list(
    client: &Client,
    kind: WorkloadKind,
    ns: &str,
    params: &ListParams,
) -> Result<Vec<(String, String)>, kube::Error> {
    fn pair(name: Option<String>, selector: Option<&LabelSelector>) -> Option<(String, String)> {
        Some((name?, selector.map(selector_string).unwrap_or_default()))
    }
    Ok(match kind {
        WorkloadKind::Deployment => Api::<Deployment>::namespaced(client.clone(), ns)
            .list(params)
            .await?
            .items
            .into_iter()
            .filter_map(|d| pair(d.metadata.name, d.spec.as_ref().map(|s| &s.selector)))
            .collect(),
        WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), ns)
            .list(params)
            .await?
            .items
            .into_iter()
            .filter_map(|d| pair(d.metadata.name, d.spec.as_ref().map(|s| &s.selector)))
            .collect(),
        WorkloadKind::DaemonSet => Api::<DaemonSet>::namespaced(client.clone(), ns)
            .list(params)
            .await?
            .items
            .into_iter()
            .filter_map(|d| pair(d.metadata.name, d.spec.as_ref().map(|s| &s.selector)))
            .collect(),
    })
}

/// A `spec.selector` as a label selector string, as kubectl writes it.
pub fn selector_string(s: &LabelSelector) -> String {
    let mut parts: Vec<String> = s
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in s.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

/// Starts following one workload: its private model, fed by its own watches, and a tap that
/// keeps its pods' names.
fn follow(client: &Client, found: Found, goal: Goal, since: Timestamp) -> Followed {
    let notes = Arc::new(Mutex::new(Notes::new()));
    let w = match found {
        Found::Failed(key, why) => {
            return Followed {
                tracker: Tracker::failed(key, goal, since, why),
                shared: None,
                notes,
                selector: String::new(),
                tasks: Vec::new(),
            };
        }
        Found::Watch(w) => w,
    };
    let config = ModelConfig::default()
        .with_namespaces(std::slice::from_ref(&w.namespace))
        .with_kinds(&[w.kind]);
    let tap_notes = notes.clone();
    let shared = Arc::new(Shared::new(Model::new(config)).with_tap(move |event, now| {
        let Event::Pod(change) = event else {
            return;
        };
        let (pod, gone) = match change {
            Change::Applied(p) | Change::Listed(p) => (p, false),
            Change::Deleted(p) => (p, true),
            _ => return,
        };
        let mut notes = tap_notes.lock().unwrap_or_else(PoisonError::into_inner);
        let note = notes.entry(pod.uid).or_default();
        if note.name.is_empty() {
            note.name = pod.key.name.clone();
        }
        if gone {
            note.gone = Some(now);
        }
    }));
    let tasks = watch::spawn_workload(client.clone(), &w, PAGE_SIZE, shared.clone());
    Followed {
        tracker: Tracker::new(WorkloadKey::new(w.kind, &w.namespace, &w.name), goal, since),
        shared: Some(shared),
        notes,
        selector: w.selector,
        tasks,
    }
}

/// Reads the finalizers and phase of the workload's pods once, for the failure report; an API
/// server that does not answer in time leaves them unknown.
async fn pod_details(client: &Client, ns: &str, selector: &str, notes: &Mutex<Notes>) {
    let params = ListParams {
        label_selector: Some(selector.to_string()).filter(|s| !s.is_empty()),
        ..ListParams::default()
    };
    let api = Api::<Pod>::namespaced(client.clone(), ns);
    let Ok(Ok(pods)) = tokio::time::timeout(DETAILS_WITHIN, api.list(&params)).await else {
        return;
    };
    let mut notes = notes.lock().unwrap_or_else(PoisonError::into_inner);
    for p in pods.items {
        let Some(uid) = p.metadata.uid.as_deref() else {
            continue;
        };
        let note = notes.entry(Uid::from(uid)).or_default();
        if note.name.is_empty() {
            note.name = p.metadata.name.clone().unwrap_or_default();
        }
        note.finalizers = p.metadata.finalizers.clone().unwrap_or_default();
        note.phase = p.status.and_then(|s| s.phase);
    }
}

/// The progress output: on a terminal, one line per workload redrawn in place (indicatif, which
/// handles the terminal's width and its redraws); otherwise one timestamped line per change,
/// with no control characters.
enum Progress {
    Terminal {
        bars: indicatif::MultiProgress,
        lines: Vec<indicatif::ProgressBar>,
        /// Drawn on stderr (with `--output json`), else stdout.
        stderr: bool,
    },
    Log {
        /// The key of the last line written per workload.
        last: BTreeMap<usize, String>,
    },
}

impl Progress {
    /// On a terminal (`stderr` or stdout), or a log.
    fn new(tty: bool, stderr: bool) -> Self {
        if !tty {
            return Progress::Log {
                last: BTreeMap::new(),
            };
        }
        let target = if stderr {
            indicatif::ProgressDrawTarget::stderr()
        } else {
            indicatif::ProgressDrawTarget::stdout()
        };
        Progress::Terminal {
            bars: indicatif::MultiProgress::with_draw_target(target),
            lines: Vec::new(),
            stderr,
        }
    }

    fn show(
        &mut self,
        out: &mut dyn Write,
        lines: &[(String, String)],
        now: Timestamp,
        since: Timestamp,
    ) -> std::io::Result<()> {
        match self {
            Progress::Terminal {
                bars, lines: drawn, ..
            } => {
                let elapsed = decide::secs(now.seconds_since(since).max(0.0));
                for (i, (_, line)) in lines.iter().enumerate() {
                    if drawn.len() <= i {
                        let bar = bars.add(indicatif::ProgressBar::new_spinner());
                        bar.set_style(
                            indicatif::ProgressStyle::with_template("{wide_msg}")
                                .map_err(std::io::Error::other)?,
                        );
                        drawn.push(bar);
                    }
                    drawn[i].set_message(terminal_line(line, &elapsed));
                }
                Ok(())
            }
            Progress::Log { last } => {
                for (i, (key, line)) in lines.iter().enumerate() {
                    if last.get(&i) != Some(key) {
                        writeln!(out, "{} {}", decide::rfc3339(now), plain(line))?;
                        last.insert(i, key.clone());
                    }
                }
                out.flush()
            }
        }
    }

    /// Leaves the last lines drawn on the terminal, and the cursor below them for the summary.
    fn finish(&self) {
        if let Progress::Terminal { lines, stderr, .. } = self {
            for bar in lines {
                bar.finish();
            }
            if !lines.is_empty() {
                // The last line drawn ends without a newline.
                let _ = if *stderr {
                    writeln!(std::io::stderr())
                } else {
                    writeln!(std::io::stdout())
                };
            }
        }
    }
}

/// One workload's line on a terminal: names come from the API server, so none of their control
/// characters reach it.
fn terminal_line(line: &str, elapsed: &str) -> String {
    format!("{}, {elapsed}", plain(line))
}

/// A line without control characters (names come from the API server).
fn plain(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workload named with a terminal escape (an OSC title change): neither the terminal's
    /// lines nor the log's carry its control characters.
    #[test]
    fn hostile_names_reach_no_terminal_as_control_characters() {
        let hostile = "shop/deployment/web\u{1b}]0;pwned\u{7}: progressing".to_string();
        let on_terminal = terminal_line(&hostile, "5.0s");
        assert_eq!(
            on_terminal,
            "shop/deployment/web]0;pwned: progressing, 5.0s"
        );
        let lines = [("k".to_string(), hostile)];
        let (t0, t1) = (
            Timestamp::from_secs(1_800_000_000),
            Timestamp::from_secs(1_800_000_005),
        );
        let mut out = Vec::new();
        let mut progress = Progress::new(false, false);
        progress.show(&mut out, &lines, t0, t0).expect("written");
        progress.show(&mut out, &lines, t1, t0).expect("written");
        let text = String::from_utf8(out).expect("UTF-8");
        assert_eq!(text.lines().count(), 1, "one line per change: {text:?}");
        assert!(
            text.contains("web]0;pwned"),
            "the name stays readable: {text:?}"
        );
        let controls = text
            .chars()
            .filter(|c| c.is_control() && *c != '\n')
            .count();
        assert_eq!(controls, 0, "{text:?}");
    }
}
