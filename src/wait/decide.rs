//! The pure part of `wait`: whether a workload reached the milestone waited for, failed, or is
//! still pending, from the model's [`WorkloadView`] and the time (passed in); the drains it saw;
//! and what it shows (a progress line, the summary, the JSON document). No I/O, no clock.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::model::{
    Milestone, RolloutState, Timestamp, Uid, UpdateStrategy, WorkloadKey, WorkloadKind,
    WorkloadView,
};

/// The milestone waited for (`--for`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Goal {
    /// kubectl's moment: its `rollout status` test passes, evaluated live on the workload.
    Ready,
    /// Ready, and every pod of another revision gone (or a finished leftover).
    Complete,
}

impl Goal {
    pub const fn as_str(self) -> &'static str {
        match self {
            Goal::Ready => "ready",
            Goal::Complete => "complete",
        }
    }
}

/// Why a workload did not reach the milestone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// `--timeout` passed first.
    Timeout,
    /// A Deployment's Progressing=False, ProgressDeadlineExceeded, once the controller observed
    /// the latest generation (a stale condition of the previous rollout does not count).
    Stalled,
    /// The workload was not found when the command started, or deleted since.
    NotFound,
    /// The API server never answered the lists it needs before the timeout.
    Unreachable(String),
    /// The API server refused the credentials or the permission (401, 403): retrying cannot
    /// help, so it fails at once.
    Forbidden(String),
}

impl Failure {
    /// The `reason` of the JSON document.
    pub const fn code(&self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Stalled => "stalled",
            Failure::NotFound => "not_found",
            Failure::Unreachable(_) => "unreachable",
            Failure::Forbidden(_) => "forbidden",
        }
    }
}

/// Where a workload stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Pending,
    /// Reached at this time (the command's clock).
    Reached(Timestamp),
    Failed(Failure, Timestamp),
}

impl Status {
    pub fn is_done(&self) -> bool {
        !matches!(self, Status::Pending)
    }
}

/// Decides where a workload stands at `now` from its view (`None`: the model has not synced
/// yet). The order matters: a milestone reached wins over a deadline passed at the same check.
pub fn judge(
    view: Option<&WorkloadView>,
    goal: Goal,
    now: Timestamp,
    deadline: Timestamp,
) -> Status {
    let late = now >= deadline;
    let Some(view) = view else {
        return if late {
            Status::Failed(
                Failure::Unreachable("the API server did not answer every list".into()),
                now,
            )
        } else {
            Status::Pending
        };
    };
    let Some(object) = &view.object else {
        return Status::Failed(Failure::NotFound, now);
    };
    // kubectl's test, live: the generation rule keeps a change the controller has not observed
    // yet from passing on the previous rollout's status.
    let ready = object.passes_ready_test;
    let in_flight = view.rollout.as_ref().is_some_and(|r| r.in_flight());
    let reached = match goal {
        Goal::Ready => ready,
        Goal::Complete => ready && !in_flight,
    };
    if reached {
        Status::Reached(now)
    } else if object.stalled && object.observed {
        Status::Failed(Failure::Stalled, now)
    } else if late {
        Status::Failed(Failure::Timeout, now)
    } else {
        Status::Pending
    }
}

/// What the command knows of a pod beyond the model: its name (from the watch events) and, on
/// failure, its finalizers and phase (read once from the API).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodNote {
    pub name: String,
    /// Receive time of its DELETED event.
    pub gone: Option<Timestamp>,
    pub finalizers: Vec<String>,
    /// `status.phase`, when read.
    pub phase: Option<String>,
}

/// Pod notes by uid.
pub type Notes = BTreeMap<Uid, PodNote>;

/// One old pod's drain the command saw end.
#[derive(Clone, Debug, PartialEq)]
pub struct Drain {
    pub pod: String,
    pub revision: String,
    pub requested: Option<Timestamp>,
    pub gone: Timestamp,
}

impl Drain {
    /// Gone receive time minus request time (the model's `pod_termination_duration`).
    pub fn seconds(&self) -> Option<f64> {
        self.requested.map(|r| self.gone.seconds_since(r).max(0.0))
    }
}

/// One workload followed by the command.
#[derive(Clone, Debug)]
pub struct Tracker {
    pub key: WorkloadKey,
    pub goal: Goal,
    /// When the command started: anything earlier is reported as unknown.
    pub since: Timestamp,
    pub status: Status,
    /// The latest view.
    pub view: Option<WorkloadView>,
    /// Old pods seen terminating, until they are gone.
    terminating: BTreeMap<Uid, (String, Option<Timestamp>)>,
    pub drains: Vec<Drain>,
}

impl Tracker {
    pub fn new(key: WorkloadKey, goal: Goal, since: Timestamp) -> Self {
        Self {
            key,
            goal,
            since,
            status: Status::Pending,
            view: None,
            terminating: BTreeMap::new(),
            drains: Vec::new(),
        }
    }

    /// A workload that failed before it could be followed (not found, unreachable).
    pub fn failed(key: WorkloadKey, goal: Goal, since: Timestamp, why: Failure) -> Self {
        Self {
            status: Status::Failed(why, since),
            ..Self::new(key, goal, since)
        }
    }

    /// Takes a new view at `now`; the status stays once reached or failed.
    pub fn update(
        &mut self,
        view: Option<WorkloadView>,
        notes: &Notes,
        now: Timestamp,
        deadline: Timestamp,
    ) {
        if self.status.is_done() {
            return;
        }
        if let Some(v) = &view {
            for p in v.pods.iter().filter(|p| p.terminating() && !p.current) {
                self.terminating
                    .entry(p.uid)
                    .or_insert_with(|| (p.revision.clone(), p.requested));
            }
            let present: Vec<Uid> = v.pods.iter().map(|p| p.uid).collect();
            let ended: Vec<Uid> = self
                .terminating
                .keys()
                .filter(|u| !present.contains(u))
                .copied()
                .collect();
            for uid in ended {
                if let Some((revision, requested)) = self.terminating.remove(&uid) {
                    let note = notes.get(&uid);
                    self.drains.push(Drain {
                        pod: note.map_or_else(|| "?".into(), |n| n.name.clone()),
                        revision,
                        requested,
                        gone: note.and_then(|n| n.gone).unwrap_or(now),
                    });
                }
            }
        }
        self.status = judge(
            view.as_ref().or(self.view.as_ref()),
            self.goal,
            now,
            deadline,
        );
        if view.is_some() {
            self.view = view;
        }
    }

    /// The workload as `kind/name`, as kubectl names it.
    pub fn name(&self) -> String {
        format!("{}/{}", self.key.kind.as_str(), self.key.name)
    }

    /// The rollout's times, each only when the command saw it (at or after [`Self::since`]).
    pub fn times(&self) -> Times {
        let seen = |t: Option<Timestamp>| t.filter(|&t| t >= self.since);
        let rollout = self.view.as_ref().and_then(|v| v.rollout.as_ref());
        let start = seen(rollout.and_then(|r| r.start));
        let ready = seen(rollout.and_then(|r| match r.ready {
            Milestone::Reached(t) => t,
            Milestone::NotReached => None,
        }));
        let complete = seen(rollout.and_then(|r| match r.state {
            RolloutState::Complete(t) => Some(t),
            _ => None,
        }));
        Times {
            start,
            ready,
            complete,
        }
    }

    /// The live line: phase, new pods N/M, old pods still terminating (oldest, overdue).
    pub fn progress(&self, now: Timestamp) -> String {
        self.line(now, true)
    }

    /// The live line without the age of the oldest termination, which changes at every
    /// check: a change of it is a change worth a line in a log.
    pub fn progress_key(&self, now: Timestamp) -> String {
        self.line(now, false)
    }

    fn line(&self, now: Timestamp, ages: bool) -> String {
        let state = match &self.status {
            Status::Reached(_) => format!("{} reached", self.goal.as_str()),
            Status::Failed(f, _) => format!("failed: {}", failure_text(f)),
            Status::Pending => match &self.view {
                None => "waiting for the first lists".into(),
                Some(v) if v.object.as_ref().is_some_and(|o| !o.observed) => {
                    "waiting for the controller to observe the latest generation".into()
                }
                Some(v) if v.object.as_ref().is_some_and(|o| !o.passes_ready_test) => {
                    format!("{}, not ready", v.phase.as_str())
                }
                Some(v) => v.phase.as_str().into(),
            },
        };
        let mut line = format!("{}: {state}", self.name());
        if let Some(v) = &self.view {
            let new = v.pods.iter().filter(|p| p.current && p.up()).count();
            let desired = v.object.as_ref().map_or(0, |o| o.desired);
            line.push_str(&format!(", new pods {new}/{desired}"));
            let old: Vec<_> = v
                .pods
                .iter()
                .filter(|p| !p.current && p.terminating())
                .collect();
            if !old.is_empty() {
                let oldest = old
                    .iter()
                    .filter_map(|p| p.requested.or(p.deadline))
                    .min()
                    .map_or(0.0, |t| now.seconds_since(t).max(0.0));
                let overdue = old
                    .iter()
                    .filter(|p| p.deadline.is_some_and(|d| now > d))
                    .count();
                let oldest = if ages {
                    format!("oldest {}, ", secs(oldest))
                } else {
                    String::new()
                };
                line.push_str(&format!(
                    ", old pods terminating {} ({oldest}{overdue} overdue)",
                    old.len(),
                ));
            }
        }
        line
    }

    /// The pods that keep the rollout from completing, with what is known of each.
    pub fn blocking(&self, notes: &Notes, now: Timestamp) -> Vec<Blocking> {
        let Some(v) = &self.view else {
            return Vec::new();
        };
        v.pods
            .iter()
            .filter(|p| p.blocks)
            .map(|p| {
                let note = notes.get(&p.uid);
                Blocking {
                    pod: note.map_or_else(|| "?".into(), |n| n.name.clone()),
                    revision: p.revision.clone(),
                    phase: note
                        .and_then(|n| n.phase.clone())
                        .unwrap_or_else(|| if p.finished { "Finished" } else { "Running" }.into()),
                    terminating_since: p.requested.or(p.deadline.filter(|_| p.terminating())),
                    past_deadline: p
                        .deadline
                        .map(|d| now.seconds_since(d))
                        .filter(|&s| s > 0.0),
                    finalizers: note.map(|n| n.finalizers.clone()).unwrap_or_default(),
                }
            })
            .collect()
    }

    /// The reason in words, with what blocks, for the summary and stderr.
    pub fn explain(&self, notes: &Notes, now: Timestamp, timeout_secs: u64) -> String {
        match &self.status {
            Status::Pending => "still waiting".into(),
            Status::Reached(_) => format!("{} reached", self.goal.as_str()),
            Status::Failed(Failure::Timeout, _) => {
                let mut why = format!(
                    "not {} within {}",
                    self.goal.as_str(),
                    secs(timeout_secs as f64)
                );
                let object = self.view.as_ref().and_then(|v| v.object.as_ref());
                if object.is_some_and(|o| !o.passes_ready_test) {
                    why.push_str(": kubectl's ready test does not pass");
                    if object.is_some_and(|o| !o.observed) {
                        why.push_str(" (the controller has not observed the latest generation)");
                    }
                }
                let blocking = self.blocking(notes, now);
                if self.goal == Goal::Complete && !blocking.is_empty() {
                    let on_delete = object.is_some_and(|o| o.strategy == UpdateStrategy::OnDelete);
                    let not_deleted = blocking
                        .iter()
                        .filter(|b| b.terminating_since.is_none())
                        .count();
                    if on_delete && not_deleted > 0 {
                        why.push_str(&format!(": OnDelete: {not_deleted} pods not yet deleted"));
                    }
                    let names: Vec<String> = blocking.iter().map(Blocking::describe).collect();
                    let (pods, verb) = if blocking.len() == 1 {
                        ("pod", "blocks")
                    } else {
                        ("pods", "block")
                    };
                    why.push_str(&format!(
                        "; {} {pods} {verb} completion: {}",
                        blocking.len(),
                        names.join("; ")
                    ));
                }
                why
            }
            Status::Failed(f, _) => failure_text(f),
        }
    }
}

/// A failure in words, as the verdict line and the summary say it.
pub fn failure_text(f: &Failure) -> String {
    match f {
        Failure::Timeout => "timed out".into(),
        Failure::Stalled => {
            "ProgressDeadlineExceeded: the Deployment exceeded its progress deadline".into()
        }
        Failure::NotFound => "not found (or deleted)".into(),
        Failure::Unreachable(why) => format!("API server unreachable: {why}"),
        Failure::Forbidden(why) => format!(
            "refused by the API server: {why}; `wait` needs get, list and watch on the workload, \
             its ReplicaSets or ControllerRevisions and pods in this namespace"
        ),
    }
}

/// A rollout's times the command saw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Times {
    pub start: Option<Timestamp>,
    pub ready: Option<Timestamp>,
    pub complete: Option<Timestamp>,
}

impl Times {
    fn between(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<f64> {
        Some(b?.seconds_since(a?).max(0.0))
    }
    pub fn ready_seconds(&self) -> Option<f64> {
        Self::between(self.start, self.ready)
    }
    pub fn complete_seconds(&self) -> Option<f64> {
        Self::between(self.start, self.complete)
    }
    pub fn drain_tail_seconds(&self) -> Option<f64> {
        Self::between(self.ready, self.complete)
    }
}

/// A pod that keeps a rollout from completing.
#[derive(Clone, Debug, PartialEq)]
pub struct Blocking {
    pub pod: String,
    pub revision: String,
    /// `Running`, or `Finished` (Succeeded or Failed, but not removed), or the phase read.
    pub phase: String,
    /// Its deletion request (or first deadline seen); `None`: not being deleted.
    pub terminating_since: Option<Timestamp>,
    /// Seconds past its deletionTimestamp.
    pub past_deadline: Option<f64>,
    pub finalizers: Vec<String>,
}

impl Blocking {
    fn describe(&self) -> String {
        let mut s = format!("{} (revision {}, {}", self.pod, self.revision, self.phase);
        match self.terminating_since {
            Some(t) => s.push_str(&format!(", terminating since {}", rfc3339(t))),
            None => s.push_str(", not deleted"),
        }
        if let Some(p) = self.past_deadline {
            s.push_str(&format!(", past its deadline by {}", secs(p)));
        }
        if !self.finalizers.is_empty() {
            s.push_str(&format!(", finalizers {}", self.finalizers.join(",")));
        }
        s.push(')');
        s
    }
}

/// Seconds for people: `3.4s`, `2m05s`.
pub fn secs(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1}s")
    } else {
        let whole = s.round() as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// A timestamp as RFC 3339 UTC, to the millisecond.
pub fn rfc3339(t: Timestamp) -> String {
    jiff::Timestamp::from_millisecond(t.as_micros().div_euclid(1000)).map_or_else(
        |_| t.to_string(),
        |ts| ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    )
}

/// The summary in text, one block per workload.
pub fn summary(trackers: &[Tracker], notes: &[&Notes], now: Timestamp, timeout: u64) -> String {
    let mut out = String::new();
    for (t, n) in trackers.iter().zip(notes) {
        let verdict = match &t.status {
            Status::Reached(_) => t.goal.as_str().to_string(),
            _ => format!("FAILED: {}", t.explain(n, now, timeout)),
        };
        out.push_str(&format!("{}/{}: {verdict}\n", t.key.namespace, t.name()));
        if let Some(o) = t.view.as_ref().and_then(|v| v.object.as_ref())
            && let Some(p) = o
                .partition
                .filter(|_| t.key.kind == WorkloadKind::StatefulSet)
        {
            out.push_str(&format!("  partition {p}\n"));
        }
        let times = t.times();
        let unknown = "unknown (before the command started)";
        let when = |x: Option<Timestamp>| x.map_or_else(|| unknown.to_string(), rfc3339);
        out.push_str(&format!("  start     {}\n", when(times.start)));
        let dur = |d: Option<f64>| d.map_or_else(|| "-".to_string(), secs);
        if times.ready.is_some() {
            let after = times
                .ready_seconds()
                .map(|d| format!(" ({} after start)", secs(d)))
                .unwrap_or_default();
            out.push_str(&format!("  ready     {}{after}\n", when(times.ready)));
        }
        if times.complete.is_some() {
            let mut after = Vec::new();
            if let Some(d) = times.complete_seconds() {
                after.push(format!("{} after start", secs(d)));
            }
            if let Some(d) = times.drain_tail_seconds() {
                after.push(format!("drain tail {}", secs(d)));
            }
            let after = if after.is_empty() {
                String::new()
            } else {
                format!(" ({})", after.join(", "))
            };
            out.push_str(&format!("  complete  {}{after}\n", when(times.complete)));
        }
        for d in &t.drains {
            out.push_str(&format!(
                "  drained   {} (revision {}) in {}\n",
                d.pod,
                d.revision,
                dur(d.seconds())
            ));
        }
        if !matches!(t.status, Status::Reached(_)) && t.goal == Goal::Complete {
            for b in t.blocking(n, now) {
                out.push_str(&format!("  blocking  {}\n", b.describe()));
            }
        }
    }
    out
}

/// The JSON document of `--output json` (docs/wait-output.schema.json).
pub fn document(
    trackers: &[Tracker],
    notes: &[&Notes],
    started: Timestamp,
    now: Timestamp,
    timeout: u64,
) -> Value {
    let ts = |t: Option<Timestamp>| t.map(rfc3339);
    let workloads: Vec<Value> = trackers
        .iter()
        .zip(notes)
        .map(|(t, n)| {
            let times = t.times();
            let object = t.view.as_ref().and_then(|v| v.object.as_ref());
            let (status, reason, message) = match &t.status {
                Status::Reached(_) => ("reached", None, None),
                Status::Pending => ("pending", None, None),
                Status::Failed(f, _) => {
                    ("failed", Some(f.code()), Some(t.explain(n, now, timeout)))
                }
            };
            let blocking: Vec<Value> = t
                .blocking(n, now)
                .into_iter()
                .map(|b| {
                    json!({
                        "pod": b.pod,
                        "revision": b.revision,
                        "phase": b.phase,
                        "terminating_since": ts(b.terminating_since),
                        "past_deadline_seconds": b.past_deadline,
                        "finalizers": b.finalizers,
                    })
                })
                .collect();
            let drains: Vec<Value> = t
                .drains
                .iter()
                .map(|d| {
                    json!({
                        "pod": d.pod,
                        "revision": d.revision,
                        "requested_at": ts(d.requested),
                        "gone_at": rfc3339(d.gone),
                        "seconds": d.seconds(),
                    })
                })
                .collect();
            json!({
                "kind": t.key.kind.as_str(),
                "namespace": t.key.namespace,
                "name": t.key.name,
                "status": status,
                "reason": reason,
                "message": message,
                "phase": t.view.as_ref().map(|v| v.phase.as_str()),
                "revision": t.view.as_ref().and_then(|v| v.revision),
                "strategy": object.map(|o| o.strategy.as_str()),
                "partition": object.and_then(|o| o.partition),
                "rollout": {
                    "start": ts(times.start),
                    "ready": ts(times.ready),
                    "complete": ts(times.complete),
                    "ready_seconds": times.ready_seconds(),
                    "complete_seconds": times.complete_seconds(),
                    "drain_tail_seconds": times.drain_tail_seconds(),
                },
                "drains": drains,
                "blocking_pods": blocking,
            })
        })
        .collect();
    let all = trackers
        .iter()
        .all(|t| matches!(t.status, Status::Reached(_)));
    json!({
        "schema_version": 1,
        "for": trackers.first().map_or("complete", |t| t.goal.as_str()),
        "result": if all { "reached" } else { "failed" },
        "started_at": rfc3339(started),
        "finished_at": rfc3339(now),
        "timeout_seconds": timeout,
        "workloads": workloads,
    })
}

/// The exit code and the one stderr line: 0 when every workload reached the milestone, else 1
/// naming each that did not, and why.
pub fn verdict(
    trackers: &[Tracker],
    notes: &[&Notes],
    now: Timestamp,
    timeout: u64,
) -> (u8, Option<String>) {
    let failed: Vec<String> = trackers
        .iter()
        .zip(notes)
        .filter(|(t, _)| !matches!(t.status, Status::Reached(_)))
        .map(|(t, n)| {
            format!(
                "{}/{}: {}",
                t.key.namespace,
                t.name(),
                t.explain(n, now, timeout)
            )
        })
        .collect();
    if failed.is_empty() {
        (0, None)
    } else {
        (1, Some(format!("error: {}", failed.join(" | "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ObjectView, Phase, PodView, Rollout};

    fn t(s: f64) -> Timestamp {
        Timestamp::from_secs_f64(1_800_000_000.0 + s)
    }

    fn object(ready: bool, observed: bool, stalled: bool) -> ObjectView {
        ObjectView {
            passes_ready_test: ready,
            observed,
            stalled,
            strategy: UpdateStrategy::RollingUpdate,
            partition: None,
            desired: 2,
        }
    }

    fn rollout(state: RolloutState, start: f64, ready: Option<f64>) -> Rollout {
        Rollout {
            revision: Some(2),
            start: Some(t(start)),
            known_since: t(start),
            ready: ready.map_or(Milestone::NotReached, |r| Milestone::Reached(Some(t(r)))),
            state,
            waits_for_people: false,
            slow_counted: vec![],
        }
    }

    fn old_pod(uid: &str, requested: Option<f64>) -> PodView {
        PodView {
            uid: uid.into(),
            revision: "web-a".into(),
            current: false,
            blocks: true,
            deadline: requested.map(|r| t(r + 30.0)),
            requested: requested.map(t),
            finished: false,
            ready: None,
        }
    }

    fn view(object: Option<ObjectView>, r: Option<Rollout>, pods: Vec<PodView>) -> WorkloadView {
        WorkloadView {
            object,
            rollout: r,
            phase: Phase::Progressing,
            revision: Some(2),
            pods,
        }
    }

    #[test]
    fn complete_needs_kubectls_test_live_and_nothing_in_flight() {
        let deadline = t(100.0);
        let check = |v: &WorkloadView, goal| judge(Some(v), goal, t(10.0), deadline);
        let draining = view(
            Some(object(true, true, false)),
            Some(rollout(RolloutState::InFlight, 1.0, Some(5.0))),
            vec![old_pod("a", Some(6.0))],
        );
        assert_eq!(check(&draining, Goal::Ready), Status::Reached(t(10.0)));
        assert_eq!(check(&draining, Goal::Complete), Status::Pending);
        // Already complete (nothing recovered in flight): at once.
        let steady = view(Some(object(true, true, false)), None, vec![]);
        assert_eq!(check(&steady, Goal::Complete), Status::Reached(t(10.0)));
        // Right after kubectl apply: the previous rollout is complete, but the controller has
        // not observed the new generation, so kubectl's test fails and nothing is done.
        let applied = view(
            Some(object(false, false, false)),
            Some(rollout(RolloutState::Complete(t(0.5)), 0.0, Some(0.2))),
            vec![],
        );
        assert_eq!(check(&applied, Goal::Ready), Status::Pending);
        assert_eq!(check(&applied, Goal::Complete), Status::Pending);
    }

    #[test]
    fn stalled_fails_only_once_observed_and_the_deadline_fails_the_rest() {
        let deadline = t(100.0);
        let stale = view(Some(object(false, false, true)), None, vec![]);
        assert_eq!(
            judge(Some(&stale), Goal::Complete, t(10.0), deadline),
            Status::Pending,
            "a stale condition of the last rollout"
        );
        let stalled = view(Some(object(false, true, true)), None, vec![]);
        assert_eq!(
            judge(Some(&stalled), Goal::Complete, t(10.0), deadline),
            Status::Failed(Failure::Stalled, t(10.0))
        );
        assert_eq!(
            judge(Some(&stale), Goal::Complete, t(100.0), deadline),
            Status::Failed(Failure::Timeout, t(100.0))
        );
        let gone = view(None, None, vec![]);
        assert_eq!(
            judge(Some(&gone), Goal::Ready, t(1.0), deadline),
            Status::Failed(Failure::NotFound, t(1.0))
        );
        assert_eq!(judge(None, Goal::Ready, t(1.0), deadline), Status::Pending);
        assert!(matches!(
            judge(None, Goal::Ready, t(100.0), deadline),
            Status::Failed(Failure::Unreachable(_), _)
        ));
    }

    #[test]
    fn new_pods_count_only_when_ready() {
        let key = WorkloadKey::deployment("shop", "web");
        let mut tr = Tracker::new(key, Goal::Complete, t(0.0));
        let new_pod = |uid: &str, ready: Option<bool>| PodView {
            current: true,
            blocks: false,
            deadline: None,
            requested: None,
            ready,
            ..old_pod(uid, None)
        };
        // One new pod Ready, one not yet (a DaemonSet's status would count neither until the
        // old pods finished); readiness unknown (a metadata-only watch) counts the pod as up.
        let live = view(
            Some(object(false, true, false)),
            Some(rollout(RolloutState::InFlight, 1.0, None)),
            vec![new_pod("a", Some(true)), new_pod("b", Some(false))],
        );
        tr.update(Some(live), &Notes::new(), t(3.0), t(100.0));
        assert!(
            tr.progress(t(3.0)).contains("new pods 1/2"),
            "{}",
            tr.progress(t(3.0))
        );
        let unknown = view(
            Some(object(false, true, false)),
            Some(rollout(RolloutState::InFlight, 1.0, None)),
            vec![new_pod("a", None), new_pod("b", None)],
        );
        tr.update(Some(unknown), &Notes::new(), t(4.0), t(100.0));
        assert!(
            tr.progress(t(4.0)).contains("new pods 2/2"),
            "{}",
            tr.progress(t(4.0))
        );
    }

    #[test]
    fn drains_the_command_saw_and_times_before_it_started_are_unknown() {
        let key = WorkloadKey::deployment("shop", "web");
        let mut tr = Tracker::new(key, Goal::Complete, t(0.0));
        let mut notes = Notes::new();
        notes.insert(
            "a".into(),
            PodNote {
                name: "web-a-1".into(),
                ..PodNote::default()
            },
        );
        let live = view(
            Some(object(true, true, false)),
            Some(rollout(RolloutState::InFlight, 1.0, Some(5.0))),
            vec![old_pod("a", Some(6.0))],
        );
        tr.update(Some(live), &notes, t(7.0), t(100.0));
        assert_eq!(tr.status, Status::Pending);
        assert!(
            tr.progress(t(8.0))
                .contains("old pods terminating 1 (oldest 2.0s, 0 overdue)")
        );
        let blocking = tr.blocking(&notes, t(40.0));
        assert_eq!(blocking[0].pod, "web-a-1");
        assert_eq!(blocking[0].phase, "Running");
        assert!(
            blocking[0]
                .past_deadline
                .is_some_and(|s| (s - 4.0).abs() < 1e-6)
        );
        notes.get_mut(&Uid::from("a")).expect("noted").gone = Some(t(9.0));
        let done = view(
            Some(object(true, true, false)),
            Some(rollout(RolloutState::Complete(t(9.0)), 1.0, Some(5.0))),
            vec![],
        );
        tr.update(Some(done), &notes, t(9.1), t(100.0));
        assert_eq!(tr.status, Status::Reached(t(9.1)));
        assert_eq!(tr.drains.len(), 1);
        assert!(
            tr.drains[0]
                .seconds()
                .is_some_and(|s| (s - 3.0).abs() < 1e-6)
        );
        let times = tr.times();
        assert!(
            times
                .complete_seconds()
                .is_some_and(|s| (s - 8.0).abs() < 1e-6)
        );
        assert!(
            times
                .drain_tail_seconds()
                .is_some_and(|s| (s - 4.0).abs() < 1e-6)
        );
        // The same rollout when the command started only at 3 s: its start is unknown.
        let mut late = tr.clone();
        late.since = t(3.0);
        assert_eq!(late.times().start, None);
        assert_eq!(late.times().complete_seconds(), None);
        assert!(late.times().drain_tail_seconds().is_some());
        let (code, line) = verdict(&[tr], &[&notes], t(9.1), 60);
        assert_eq!((code, line), (0, None));
    }

    #[test]
    fn a_timeout_names_the_blocking_pod_with_its_finalizers() {
        let key = WorkloadKey::deployment("shop", "web");
        let mut tr = Tracker::new(key, Goal::Complete, t(0.0));
        let mut notes = Notes::new();
        notes.insert(
            "a".into(),
            PodNote {
                name: "web-a-1".into(),
                finalizers: vec!["example.com/hold".into()],
                phase: Some("Running".into()),
                gone: None,
            },
        );
        let stuck = view(
            Some(object(true, true, false)),
            Some(rollout(RolloutState::InFlight, 1.0, Some(5.0))),
            vec![old_pod("a", Some(6.0))],
        );
        tr.update(Some(stuck), &notes, t(60.0), t(60.0));
        assert_eq!(tr.status, Status::Failed(Failure::Timeout, t(60.0)));
        let (code, line) = verdict(std::slice::from_ref(&tr), &[&notes], t(60.0), 60);
        let line = line.expect("a line");
        assert_eq!(code, 1);
        assert!(
            line.contains("deployment/web: not complete within 1m00s"),
            "{line}"
        );
        assert!(
            line.contains("web-a-1 (revision web-a, Running, terminating since"),
            "{line}"
        );
        assert!(
            line.contains("past its deadline by 24.0s, finalizers example.com/hold"),
            "{line}"
        );
        let doc = document(&[tr], &[&notes], t(0.0), t(60.0), 60);
        assert_eq!(doc["result"], "failed");
        assert_eq!(doc["workloads"][0]["reason"], "timeout");
        assert_eq!(
            doc["workloads"][0]["blocking_pods"][0]["finalizers"][0],
            "example.com/hold"
        );
    }
}
