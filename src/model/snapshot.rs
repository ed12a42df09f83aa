//! What the model answers at scrape time: plain values copied out, so the caller can release the
//! model's lock before it encodes or writes anything.

use std::collections::BTreeMap;

use super::namespace::{Parts, RsOwner, Termination};
use super::stuck::{Stuck, StuckReason};
use super::workload::{Object, Workload};
use super::{
    Histogram, Model, Phase, RolloutState, Timestamp, UpdateStrategy, WorkloadKey, WorkloadKind,
};

/// Every metric value of one workload at one instant (the `kube_rollout_*` families).
///
/// Each field is the value of the metric family named on it; what a family means is written
/// once, in its help text in the metrics tables (`src/metrics/rollout.rs`, and
/// `src/metrics/exporter.rs` for [`ModelStats`]). The comments here add only what the model
/// decides.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadMetrics {
    pub key: WorkloadKey,
    /// `kube_rollout_terminating_pods`, counting the pods of every ReplicaSet of the workload.
    pub terminating_pods: u64,
    /// `kube_rollout_terminating_pods_overdue`.
    pub terminating_pods_overdue: u64,
    /// `kube_rollout_terminating_pods_overdue_by_reason`, indexed by [`StuckReason::index`].
    pub overdue_by_reason: [u64; StuckReason::ALL.len()],
    /// `kube_rollout_oldest_termination_seconds`, at the snapshot's time.
    pub oldest_termination_seconds: f64,
    /// `kube_rollout_in_progress_seconds`, at the snapshot's time.
    pub in_progress_seconds: f64,
    /// `kube_rollout_phase`.
    pub phase: Phase,
    /// `kube_rollout_revision`, when the annotation is known.
    pub revision: Option<u64>,
    /// `kube_rollout_last_started_timestamp_seconds`, when known.
    pub last_started_timestamp: Option<f64>,
    /// `kube_rollout_last_completed_timestamp_seconds`, once this process saw one.
    pub last_completed_timestamp: Option<f64>,
    /// `kube_rollout_started_total`.
    pub started_total: u64,
    /// `kube_rollout_superseded_total`.
    pub superseded_total: u64,
    /// Rollouts started with an unknown start (not exported per workload: the exporter's
    /// `unknown_start_rollouts_total` sums them); the last start is then not `last_started`.
    pub unknown_starts: u64,
    /// `kube_rollout_slow_total`: `(threshold seconds, count)` for each configured SLO threshold.
    pub slow_total: Vec<(u64, u64)>,
    /// `kube_rollout_pod_termination_duration_seconds`, present from the workload's first
    /// observation on.
    pub pod_termination_duration: Option<Histogram>,
    /// `kube_rollout_duration_seconds{milestone="ready"}`.
    pub ready_duration: Option<Histogram>,
    /// `kube_rollout_duration_seconds{milestone="complete"}`.
    pub complete_duration: Option<Histogram>,
    /// `kube_rollout_drain_tail_seconds`.
    pub drain_tail: Option<Histogram>,
    /// `kube_rollout_workload_info{strategy}`: the update strategy, while the object is known.
    pub strategy: Option<UpdateStrategy>,
    /// `kube_rollout_partition`: a RollingUpdate StatefulSet's `rollingUpdate.partition`, when
    /// set (0 included).
    pub partition: Option<i32>,
    /// `kube_rollout_termination_grace_period_seconds`: the pod template's, 30 when unset (the
    /// API default), while the object is known.
    pub grace_period_seconds: Option<i64>,
    /// `kube_rollout_pod_termination_grace_exhausted_total`.
    pub grace_exhausted_total: u64,
    /// `kube_rollout_revision_info`, while the object is known.
    pub revision_info: Option<RevisionInfo>,
    /// New pods ready and wanted (see `Object::new_pods`), while the object is known: the
    /// board's "new pods N/M", not a metric.
    pub new_pods: Option<(i32, i32)>,
    /// The last rollout, once complete: the board's recent completions, not a metric.
    pub last_rollout: Option<CompletedRollout>,
}

/// A completed rollout's milestones, as the board shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompletedRollout {
    /// When it completed (receive time, Unix seconds).
    pub completed_at: f64,
    /// Start to ready, start to complete, ready to complete; `None` where the start or the ready
    /// time is unknown.
    pub ready_seconds: Option<f64>,
    pub complete_seconds: Option<f64>,
    pub drain_tail_seconds: Option<f64>,
}

/// What identifies a workload's current template: its revision and its containers' images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionInfo {
    pub revision: Option<u64>,
    /// The template's container images, comma-separated, capped (see
    /// [`super::inputs::IMAGES_MAX_LEN`]).
    pub images: String,
}

/// Counts that tell an operator how much the exporter itself could see (`kube_rollout_exporter_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// `..._imprecise_observations_total{reason="gap_termination"}`: terminations whose end fell
    /// in a watch gap.
    pub imprecise_gap_terminations: u64,
    /// `..._imprecise_observations_total{reason="unknown_request"}`: terminations first seen as
    /// the kubelet's final grace-0 rewrite.
    pub imprecise_unknown_request: u64,
    /// `..._imprecise_observations_total{reason="gap_milestone"}`: ready or complete milestones
    /// reached during a relist.
    pub imprecise_gap_milestones: u64,
    /// `kube_rollout_exporter_unknown_start_rollouts_total`; the start is unknown when the
    /// rollout's ReplicaSet was reused.
    pub unknown_start_rollouts: u64,
    /// `kube_rollout_exporter_objects{resource=...}`, the counts below.
    pub deployments: u64,
    pub statefulsets: u64,
    pub daemonsets: u64,
    pub replicasets: u64,
    pub controllerrevisions: u64,
    pub pods: u64,
    pub finished_pods: u64,
}

impl ModelStats {
    fn objects_of(&mut self, kind: WorkloadKind) -> &mut u64 {
        match kind {
            WorkloadKind::Deployment => &mut self.deployments,
            WorkloadKind::StatefulSet => &mut self.statefulsets,
            WorkloadKind::DaemonSet => &mut self.daemonsets,
        }
    }
}

impl Model {
    /// Every exported workload's metric values at `now`, sorted by workload. Takes `&mut self`
    /// because rollouts age: a rollout in flight that passed an SLO threshold is counted slow
    /// here if no event did it.
    pub fn snapshot(&mut self, now: Timestamp) -> Vec<WorkloadMetrics> {
        // Until every resource has been listed, rollouts are not recovered yet: a phase or a
        // gauge would be a guess. Nothing is exported before the first full sync.
        if !self.all_synced {
            return Vec::new();
        }
        let thresholds = self.cfg.slo_thresholds();
        let stuck = &self.stuck;
        let mut out = Vec::new();
        for (ns, n) in self.namespaces.iter_mut() {
            let Parts {
                workloads,
                slots,
                pods,
            } = n.parts_mut();
            // Terminating pods, per workload: one pass over the namespace's pods.
            let mut terminations: BTreeMap<(WorkloadKind, &str), Terminating> = BTreeMap::new();
            for record in pods.values() {
                let Some(t) = record.termination.as_deref() else {
                    continue;
                };
                if let Some(RsOwner::Workload(kind, w)) = slots.get(&record.rs).map(|s| &s.owner) {
                    terminations
                        .entry((*kind, w))
                        .or_default()
                        .add(t, record.finished, stuck, now);
                }
            }
            out.reserve(workloads.iter().map(|w| w.len()).sum());
            for kind in WorkloadKind::ALL {
                for (name, w) in workloads[kind.index()].iter_mut() {
                    w.advance(now, thresholds);
                    if !w.exported() {
                        continue;
                    }
                    let t = terminations
                        .get(&(kind, &**name))
                        .copied()
                        .unwrap_or_default();
                    out.push(metrics(
                        WorkloadKey::new(kind, &**ns, &**name),
                        w,
                        t,
                        now,
                        thresholds,
                    ));
                }
            }
        }
        out
    }

    /// The exporter's view of itself: imprecise observations and objects tracked.
    pub fn stats(&self) -> ModelStats {
        let mut stats = self.stats;
        for n in self.namespaces.values() {
            for (kind, _, w) in n.workloads() {
                if w.object.is_some() {
                    *stats.objects_of(kind) += 1;
                }
                stats.controllerrevisions += w.revisions.len() as u64;
            }
            stats.replicasets += n.slots().filter(|(_, s)| s.exists).count() as u64;
            stats.pods += n.pod_count() as u64;
            stats.finished_pods += n.pods().filter(|(_, p)| p.finished).count() as u64
                + n.pending_finish_count() as u64;
        }
        stats
    }

    /// Whether the model holds nothing at all (every object gone). A namespace's state is
    /// dropped as soon as nothing is left in it, so nothing at all means no namespace.
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
    }
}

/// The terminating pods of one workload at one instant.
#[derive(Clone, Copy, Debug, Default)]
struct Terminating {
    count: u64,
    overdue: u64,
    by_reason: [u64; StuckReason::ALL.len()],
    oldest: Option<Timestamp>,
}

impl Terminating {
    fn add(&mut self, t: &Termination, finished: bool, stuck: &Stuck, now: Timestamp) {
        self.count += 1;
        if now > t.first_deadline {
            self.overdue += 1;
            self.by_reason[Model::stuck_reason_of(stuck, t, finished).index()] += 1;
        }
        self.oldest = Some(self.oldest.map_or(t.since(), |o| o.min(t.since())));
    }
}

/// One workload's metric values at `now`, given its terminating pods.
fn metrics(
    key: WorkloadKey,
    w: &Workload,
    t: Terminating,
    now: Timestamp,
    thresholds: &[u64],
) -> WorkloadMetrics {
    let in_flight = w.rollout.as_ref().filter(|r| r.in_flight());
    let object = w.object.as_ref();
    let phase = phase_of(w, t.count);
    WorkloadMetrics {
        key,
        terminating_pods: t.count,
        terminating_pods_overdue: t.overdue,
        overdue_by_reason: t.by_reason,
        oldest_termination_seconds: t.oldest.map_or(0.0, |o| now.seconds_since(o).max(0.0)),
        in_progress_seconds: in_flight.map_or(0.0, |r| r.age(now)),
        phase,
        revision: w.revision,
        last_started_timestamp: w.last_started.map(Timestamp::as_secs_f64),
        last_completed_timestamp: w.last_completed.map(Timestamp::as_secs_f64),
        started_total: w.started_total,
        superseded_total: w.superseded_total,
        unknown_starts: w.unknown_starts,
        slow_total: thresholds
            .iter()
            .copied()
            .zip(w.slow_total.iter().copied())
            .collect(),
        pod_termination_duration: w.termination.as_deref().cloned(),
        ready_duration: w.ready.as_deref().cloned(),
        complete_duration: w.complete.as_deref().cloned(),
        drain_tail: w.drain_tail.as_deref().cloned(),
        strategy: object.map(Object::strategy),
        partition: object
            .filter(|o| o.strategy() == UpdateStrategy::RollingUpdate)
            .and_then(Object::spec_partition),
        grace_period_seconds: object.map(Object::grace_seconds),
        grace_exhausted_total: w.grace_exhausted,
        revision_info: object.map(|o| RevisionInfo {
            revision: w.revision,
            images: w
                .revision_images
                .as_deref()
                .unwrap_or(o.images())
                .to_string(),
        }),
        new_pods: object.map(Object::new_pods),
        last_rollout: w.rollout.as_ref().and_then(completed),
    }
}

/// A rollout's milestones once it is complete.
fn completed(r: &super::Rollout) -> Option<CompletedRollout> {
    let RolloutState::Complete(done) = r.state else {
        return None;
    };
    let ready = r.ready.time();
    Some(CompletedRollout {
        completed_at: done.as_secs_f64(),
        ready_seconds: r.start.zip(ready).map(|(s, t)| t.seconds_since(s).max(0.0)),
        complete_seconds: r.start.map(|s| done.seconds_since(s).max(0.0)),
        drain_tail_seconds: ready.map(|t| done.seconds_since(t).max(0.0)),
    })
}

/// The phase of workload `w` with `terminating` pods (`kube_rollout_phase`): the first that
/// applies wins.
pub(super) fn phase_of(w: &Workload, terminating: u64) -> Phase {
    let object = w.object.as_ref();
    match w.rollout.as_ref().filter(|r| r.in_flight()) {
        _ if object.is_some_and(Object::stalled) => Phase::Stalled,
        _ if object.is_some_and(Object::paused) => Phase::Paused,
        Some(r)
            if r.waits_for_people && terminating == 0 && object.is_some_and(Object::all_ready) =>
        {
            Phase::Waiting
        }
        Some(r) if r.ready.is_reached() => Phase::Draining,
        Some(_) => Phase::Progressing,
        None => Phase::Complete,
    }
}
