//! Table-driven scenarios, one or more per definition in the README. Each builds a small cluster
//! from plain inputs, feeds events at chosen times and checks metric values: no server, no clock.

use super::*;

mod hostile;
mod kinds;
mod stuck;

/// The model's internals, for the tests that check nothing is left behind.
impl Model {
    fn slots(&self) -> impl Iterator<Item = &namespace::RsSlot> {
        self.namespaces
            .values()
            .flat_map(|n| n.slots().map(|(_, s)| s))
    }

    fn slot(&self, key: &ObjectKey) -> Option<&namespace::RsSlot> {
        self.namespaces
            .get(key.namespace.as_str())?
            .slot(key.name.as_str())
    }

    fn pod_record(&self, pod: &PodState) -> Option<&namespace::PodRecord> {
        self.namespaces
            .get(pod.key.namespace.as_str())?
            .pod(pod.uid)
    }

    fn pod_count(&self) -> usize {
        self.namespaces.values().map(|n| n.pod_count()).sum()
    }

    fn pending_count(&self) -> usize {
        self.namespaces
            .values()
            .map(|n| n.pending_finish_count())
            .sum()
    }

    fn workload_count(&self) -> usize {
        self.namespaces
            .values()
            .map(|n| n.workloads().count())
            .sum()
    }

    /// The counts each slot keeps as pods come and go equal a recount of the pod records, and
    /// every record's slot exists. Checked after every event of every scenario.
    #[track_caller]
    fn assert_counts(&self) {
        for n in self.namespaces.values() {
            n.assert_counts();
        }
    }
}

// ----- Builders --------------------------------------------------------------------------------

/// Seconds after an arbitrary epoch, so scenarios read as "at 10 s".
/// The configuration of the Deployment-only scenarios that feed lists by hand.
fn deployments_only() -> ModelConfig {
    ModelConfig::default().with_kinds(&[WorkloadKind::Deployment])
}

fn t(secs: f64) -> Timestamp {
    Timestamp::from_secs_f64(1_800_000_000.0 + secs)
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::new("shop", name)
}

fn progressing(status: ConditionStatus, reason: &str, at: f64) -> Option<ProgressingCondition> {
    Some(ProgressingCondition {
        status,
        reason: reason.to_string(),
        last_update: Some(t(at)),
    })
}

/// `shop/web` at `revision`, steady: observed, 3 of 3 updated and available.
fn steady(revision: u64) -> DeploymentState {
    DeploymentState {
        images: String::new(),
        key: key("web"),
        uid: "web-uid".into(),
        revision: Some(revision),
        created: None,
        generation: revision as i64,
        observed_generation: revision as i64,
        template: TemplateHash(revision),
        strategy: UpdateStrategy::RollingUpdate,
        spec_replicas: 3,
        paused: false,
        termination_grace_seconds: None,
        replicas: 3,
        updated_replicas: 3,
        available_replicas: 3,
        progressing: progressing(ConditionStatus::True, REASON_NEW_RS_AVAILABLE, -1000.0),
    }
}

/// `shop/web` just after its revision changed: the controller has not acted yet.
fn started(revision: u64) -> DeploymentState {
    DeploymentState {
        observed_generation: revision as i64 - 1,
        updated_replicas: 0,
        progressing: progressing(ConditionStatus::True, "ReplicaSetUpdated", 0.0),
        ..steady(revision)
    }
}

/// `shop/web` passing kubectl's test for `revision` (old pods may still be terminating).
fn ready(revision: u64) -> DeploymentState {
    steady(revision)
}

fn rs(hash: &str, revision: u64, created: f64) -> ReplicaSetState {
    ReplicaSetState {
        key: key(&format!("web-{hash}")),
        owner: Some(ControllerRef {
            kind: "Deployment".into(),
            name: "web".into(),
        }),
        revision: Some(revision),
        created: Some(t(created)),
    }
}

fn pod(hash: &str, n: u32) -> PodState {
    PodState {
        finalizers: Vec::new(),
        key: key(&format!("web-{hash}-{n}")),
        uid: format!("uid-{hash}-{n}").into(),
        owner: Some(ControllerRef {
            kind: "ReplicaSet".into(),
            name: format!("web-{hash}"),
        }),
        deletion: None,
        revision_hash: None,
        ready: None,
    }
}

/// The pod with a deletionTimestamp of `deadline` and a grace period.
fn deleting(mut p: PodState, deadline: f64, grace: Option<i64>) -> PodState {
    p.deletion = Some(Deletion {
        deadline: Timestamp::from_secs_f64(1_800_000_000.0 + deadline),
        grace_seconds: grace,
    });
    p
}

/// Deleted with grace 60 at `requested` (whole seconds, as the API server writes them).
fn draining(p: PodState, requested: f64) -> PodState {
    deleting(p, requested + 60.0, Some(60))
}

fn finished(p: &PodState) -> FinishedPod {
    FinishedPod {
        key: p.key.clone(),
        uid: p.uid,
    }
}

// ----- Harness ---------------------------------------------------------------------------------

struct Cluster {
    model: Model,
}

impl Cluster {
    /// A model that has just synced these objects at 0 s.
    fn synced(
        deployments: Vec<DeploymentState>,
        rss: Vec<ReplicaSetState>,
        pods: Vec<PodState>,
    ) -> Self {
        Self::synced_at(0.0, deployments, rss, pods, vec![])
    }

    fn synced_at(
        at: f64,
        deployments: Vec<DeploymentState>,
        rss: Vec<ReplicaSetState>,
        pods: Vec<PodState>,
        done: Vec<FinishedPod>,
    ) -> Self {
        Self::synced_with(ModelConfig::default(), at, deployments, rss, pods, done)
    }

    /// Every kind is watched by default; `cfg` may drop some (their lists are then not sent).
    fn synced_with(
        cfg: ModelConfig,
        at: f64,
        deployments: Vec<DeploymentState>,
        rss: Vec<ReplicaSetState>,
        pods: Vec<PodState>,
        done: Vec<FinishedPod>,
    ) -> Self {
        let mut model = Model::new(cfg);
        model.handle(Event::Deployment(Change::Relisted(deployments)), t(at));
        model.handle(Event::ReplicaSet(Change::Relisted(rss)), t(at));
        model.handle(Event::Pod(Change::Relisted(pods)), t(at));
        for e in [
            Event::StatefulSet(Change::Relisted(vec![])),
            Event::DaemonSet(Change::Relisted(vec![])),
            Event::ControllerRevision(Change::Relisted(vec![])),
        ] {
            if model.config().watches(e.resource()) {
                model.handle(e, t(at));
            }
        }
        assert!(!model.is_live(), "not live before every resource listed");
        model.handle(Event::FinishedPod(Change::Relisted(done)), t(at));
        assert!(model.is_live());
        model.assert_counts();
        Self { model }
    }

    /// The usual starting point: `shop/web` steady at revision 1 with three pods of `web-a`.
    fn steady_v1() -> Self {
        Self::steady_v1_with(ModelConfig::default())
    }

    fn steady_v1_with(cfg: ModelConfig) -> Self {
        Self::synced_with(
            cfg,
            0.0,
            vec![steady(1)],
            vec![rs("a", 1, -1000.0)],
            vec![pod("a", 1), pod("a", 2), pod("a", 3)],
            vec![],
        )
    }

    fn dep(&mut self, at: f64, d: DeploymentState) -> &mut Self {
        self.event(at, Event::Deployment(Change::Applied(d)))
    }

    fn rs(&mut self, at: f64, r: ReplicaSetState) -> &mut Self {
        self.event(at, Event::ReplicaSet(Change::Applied(r)))
    }

    fn pod(&mut self, at: f64, p: PodState) -> &mut Self {
        self.event(at, Event::Pod(Change::Applied(p)))
    }

    fn gone(&mut self, at: f64, p: PodState) -> &mut Self {
        self.event(at, Event::Pod(Change::Deleted(p)))
    }

    fn finished(&mut self, at: f64, p: &PodState) -> &mut Self {
        self.event(at, Event::FinishedPod(Change::Applied(finished(p))))
    }

    /// Applies one event, then checks the model's kept counts against a recount.
    #[track_caller]
    fn event(&mut self, at: f64, e: Event) -> &mut Self {
        self.model.handle(e, t(at));
        self.model.assert_counts();
        self
    }

    /// `shop/web`'s metrics at `at`.
    fn web(&mut self, at: f64) -> WorkloadMetrics {
        self.find(at, "web").expect("shop/web is exported")
    }

    fn find(&mut self, at: f64, name: &str) -> Option<WorkloadMetrics> {
        self.model
            .snapshot(t(at))
            .into_iter()
            .find(|m| m.key == WorkloadKey::deployment("shop", name))
    }

    /// The usual rollout from revision 1 to 2: starts at 10 s (RS `web-b` created), new pods
    /// b-1..3 appear, old pods a-1..3 are deleted at 11, 12 and 13 s; ready at 13.5 s.
    fn roll_to_v2(&mut self) -> &mut Self {
        self.dep(10.0, started(2)).rs(10.01, rs("b", 2, 10.0));
        for n in 1..=3 {
            let at = 10.0 + n as f64;
            self.pod(at - 0.5, pod("b", n))
                .pod(at, draining(pod("a", n), at));
        }
        self.dep(13.5, ready(2))
    }
}

fn count(h: &Option<Histogram>) -> u64 {
    h.as_ref().map_or(0, Histogram::count)
}

fn sum(h: &Option<Histogram>) -> f64 {
    h.as_ref().map_or(0.0, Histogram::sum)
}

#[track_caller]
fn assert_secs(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-6,
        "expected {expected} s, got {actual} s"
    );
}

// ----- Scenarios -------------------------------------------------------------------------------

#[test]
fn counters_exist_at_zero_from_the_first_sync_and_histograms_wait_for_data() {
    let mut c = Cluster::steady_v1();
    let m = c.web(1.0);
    assert_eq!((m.started_total, m.superseded_total), (0, 0));
    assert_eq!(m.slow_total, vec![(900, 0)]);
    assert_eq!(m.phase, Phase::Complete);
    assert_eq!(m.revision, Some(1));
    assert_eq!(m.in_progress_seconds, 0.0);
    assert!(m.ready_duration.is_none() && m.complete_duration.is_none());
    assert!(m.pod_termination_duration.is_none() && m.drain_tail.is_none());
}

#[test]
fn rolling_update_is_draining_after_ready_and_complete_when_the_last_old_pod_is_gone() {
    let mut c = Cluster::steady_v1();
    c.roll_to_v2();
    let m = c.web(14.0);
    assert_eq!(m.started_total, 1);
    assert_eq!(m.phase, Phase::Draining);
    assert_secs(sum(&m.ready_duration), 3.5);
    assert_eq!(count(&m.complete_duration), 0);
    assert_eq!(m.terminating_pods, 3);
    assert_secs(m.in_progress_seconds, 4.0);
    assert_secs(m.oldest_termination_seconds, 3.0);

    c.gone(19.0, draining(pod("a", 1), 11.0));
    c.gone(20.0, draining(pod("a", 2), 12.0));
    assert_eq!(c.web(20.5).phase, Phase::Draining);
    c.gone(21.0, draining(pod("a", 3), 13.0));
    let m = c.web(22.0);
    assert_eq!(m.phase, Phase::Complete);
    assert_eq!(m.terminating_pods, 0);
    assert_eq!(m.in_progress_seconds, 0.0);
    assert_eq!(count(&m.complete_duration), 1);
    assert_secs(sum(&m.complete_duration), 11.0);
    assert_secs(sum(&m.drain_tail), 7.5);
    assert_eq!(count(&m.pod_termination_duration), 3);
    assert_secs(sum(&m.pod_termination_duration), 8.0 * 3.0);
    assert_eq!(m.last_started_timestamp, Some(t(10.0).as_secs_f64()));
    assert_eq!(m.last_completed_timestamp, Some(t(21.0).as_secs_f64()));
    // A later event changes nothing already observed.
    c.dep(30.0, ready(2));
    let again = c.web(30.0);
    assert_eq!(count(&again.ready_duration), 1);
    assert_eq!(count(&again.complete_duration), 1);
}

#[test]
fn a_reused_pod_name_is_two_pods_kept_apart_by_uid() {
    // Recording (statefulset-rolling): the new `pg-2` is ADDED 8 ms before the old `pg-2`'s
    // DELETED arrives. Here the new object takes an old pod's name in the new ReplicaSet.
    let mut c = Cluster::steady_v1();
    c.dep(10.0, started(2)).rs(10.0, rs("b", 2, 10.0));
    c.pod(11.0, draining(pod("a", 1), 11.0));
    let reused = PodState {
        uid: "uid-reused".into(),
        owner: pod("b", 1).owner,
        ..pod("a", 1)
    };
    c.pod(18.992, reused.clone());
    // The new object neither ends the old one's drain nor is taken for it.
    let m = c.web(18.995);
    assert_eq!(m.terminating_pods, 1);
    assert_eq!(count(&m.pod_termination_duration), 0);
    // A finish reported for the old object does not make the new one finished.
    c.finished(18.996, &pod("a", 1));
    assert!(c.model.pod_record(&reused).is_some_and(|r| !r.finished));
    c.gone(19.0, draining(pod("a", 1), 11.0));
    let m = c.web(19.0);
    assert_eq!(m.terminating_pods, 0);
    assert_eq!(count(&m.pod_termination_duration), 1);
    assert_secs(sum(&m.pod_termination_duration), 8.0);
    assert!(c.model.pod_record(&reused).is_some());
    assert!(c.model.pod_record(&pod("a", 1)).is_none());
}

#[test]
fn the_ready_deployment_event_before_the_last_pod_event_does_not_complete() {
    // Recording: the Deployment says ready at T0+3.397 s, the last old pod's deletion arrives at
    // T0+3.399 s. Until then that pod is running: it blocks completion.
    let mut c = Cluster::steady_v1();
    c.dep(10.0, started(2)).rs(10.0, rs("b", 2, 10.0));
    c.pod(11.0, draining(pod("a", 1), 11.0));
    c.pod(12.0, draining(pod("a", 2), 12.0));
    c.gone(12.5, draining(pod("a", 1), 11.0));
    c.gone(12.6, draining(pod("a", 2), 12.0));
    c.dep(13.0, ready(2));
    assert_eq!(c.web(13.001).phase, Phase::Draining);
    c.pod(13.002, draining(pod("a", 3), 13.0));
    assert_eq!(c.web(13.003).phase, Phase::Draining);
    c.gone(20.0, draining(pod("a", 3), 13.0));
    assert_eq!(c.web(20.0).phase, Phase::Complete);
}

#[test]
fn completion_waits_for_the_current_replicaset_to_be_seen() {
    // The Deployment and pod streams ran ahead of the ReplicaSet stream.
    let mut c = Cluster::steady_v1();
    c.dep(10.0, started(2));
    for n in 1..=3 {
        c.gone(11.0, draining(pod("a", n), 11.0));
    }
    c.dep(12.0, ready(2));
    assert_eq!(c.web(12.5).phase, Phase::Draining);
    c.rs(13.0, rs("b", 2, 10.0));
    let m = c.web(13.5);
    assert_eq!(m.phase, Phase::Complete);
    assert_secs(sum(&m.complete_duration), 3.0);
}

#[test]
fn a_new_revision_supersedes_the_rollout_in_flight() {
    struct Case {
        name: &'static str,
        v2_ready_first: bool,
        ready_v2_observations: u64,
    }
    for case in [
        Case {
            name: "superseded while progressing",
            v2_ready_first: false,
            ready_v2_observations: 0,
        },
        Case {
            name: "superseded while draining keeps its ready milestone",
            v2_ready_first: true,
            ready_v2_observations: 1,
        },
    ] {
        let mut c = Cluster::steady_v1();
        c.dep(10.0, started(2)).rs(10.0, rs("b", 2, 10.0));
        c.pod(11.0, pod("b", 1))
            .pod(11.0, draining(pod("a", 1), 11.0));
        if case.v2_ready_first {
            c.dep(12.0, ready(2));
        }
        c.dep(20.0, started(3)).rs(20.0, rs("c", 3, 20.0));
        let m = c.web(20.5);
        assert_eq!(m.started_total, 2, "{}", case.name);
        assert_eq!(m.superseded_total, 1, "{}", case.name);
        assert_eq!(m.phase, Phase::Progressing, "{}", case.name);
        assert_secs(m.in_progress_seconds, 0.5);
        assert_eq!(
            count(&m.ready_duration),
            case.ready_v2_observations,
            "{}",
            case.name
        );
        // Revision 3 goes through; revision 2 never completes.
        c.gone(21.0, draining(pod("a", 1), 11.0));
        for n in [2, 3] {
            c.gone(21.0, pod("a", n));
        }
        c.gone(21.0, pod("b", 1));
        c.dep(25.0, ready(3));
        let m = c.web(25.0);
        assert_eq!(m.phase, Phase::Complete, "{}", case.name);
        assert_eq!(count(&m.ready_duration), case.ready_v2_observations + 1);
        assert_eq!(count(&m.complete_duration), 1, "{}", case.name);
        assert_secs(sum(&m.complete_duration), 5.0);
    }
}

#[test]
fn rollback_to_a_reused_replicaset_completes_once_it_is_current_again() {
    // v1 (web-a) → v2 (web-b) done; then the template goes back to v1: web-a becomes revision 3.
    let mut c = Cluster::synced(
        vec![steady(2)],
        vec![rs("a", 1, -2000.0), rs("b", 2, -1000.0)],
        vec![pod("b", 1), pod("b", 2), pod("b", 3)],
    );
    c.dep(10.0, started(3));
    assert_eq!(c.web(10.0).phase, Phase::Progressing);
    for n in 1..=3 {
        c.pod(10.0 + n as f64, pod("a", n + 3))
            .pod(10.5 + n as f64, draining(pod("b", n), 10.0 + n as f64));
    }
    c.dep(14.0, ready(3));
    for n in 1..=3 {
        c.gone(20.0 + n as f64, draining(pod("b", n), 10.0 + n as f64));
    }
    // web-a still carries revision 1 in our view: it is not yet the current ReplicaSet.
    assert_eq!(c.web(23.5).phase, Phase::Draining);
    c.rs(24.0, rs("a", 3, -2000.0));
    let m = c.web(24.0);
    assert_eq!(m.phase, Phase::Complete);
    assert_eq!(m.revision, Some(3));
    assert_eq!(m.started_total, 1);
    assert_secs(sum(&m.ready_duration), 4.0);
    assert_secs(sum(&m.complete_duration), 14.0);
}

#[test]
fn scaling_moves_no_rollout_metric_but_its_terminations_count() {
    let mut c = Cluster::steady_v1();
    let scaled = DeploymentState {
        generation: 2,
        observed_generation: 2,
        spec_replicas: 2,
        ..steady(1)
    };
    c.dep(10.0, scaled.clone());
    c.pod(10.1, draining(pod("a", 3), 10.0));
    let m = c.web(11.0);
    assert_eq!(m.phase, Phase::Complete);
    assert_eq!(m.terminating_pods, 1);
    assert_eq!(m.started_total, 0);
    c.gone(15.0, draining(pod("a", 3), 10.0));
    let m = c.web(15.0);
    assert_eq!(count(&m.pod_termination_duration), 1);
    assert_secs(sum(&m.pod_termination_duration), 5.0);
    assert_eq!(m.started_total, 0);
    assert!(m.ready_duration.is_none() && m.complete_duration.is_none());
}

#[test]
fn pause_holds_the_revision_until_resume_and_paused_time_counts_toward_age() {
    let mut c = Cluster::steady_v1();
    // Paused (generation 2), then the template edited (3): nothing starts, no revision yet.
    let paused = |generation, template| DeploymentState {
        generation,
        template: TemplateHash(template),
        paused: true,
        progressing: progressing(ConditionStatus::Unknown, REASON_PAUSED, 1.0),
        ..steady(1)
    };
    c.dep(1.0, paused(2, 1)).dep(2.0, paused(3, 2));
    let m = c.web(3.0);
    assert_eq!(
        (m.phase, m.started_total, m.in_progress_seconds),
        (Phase::Paused, 0, 0.0)
    );
    // Resume (generation 4, the template unchanged since 3): the rollout starts at this event.
    let resumed = DeploymentState {
        generation: 4,
        observed_generation: 3,
        ..started(2)
    };
    c.dep(10.0, resumed.clone()).rs(10.0, rs("b", 2, 10.0));
    assert_eq!(c.web(10.0).phase, Phase::Progressing);
    // Paused again in the middle of the rollout: the age keeps growing.
    let paused_mid = DeploymentState {
        paused: true,
        ..resumed
    };
    c.dep(11.0, paused_mid);
    let m = c.web(111.0);
    assert_eq!(m.phase, Phase::Paused);
    assert_secs(m.in_progress_seconds, 101.0);
    assert_eq!(m.started_total, 1);
}

#[test]
fn a_template_matching_an_old_replicaset_gets_its_revision_even_while_paused() {
    let mut c = Cluster::synced(
        vec![steady(2)],
        vec![rs("a", 1, -2000.0), rs("b", 2, -1000.0)],
        vec![pod("b", 1)],
    );
    let paused_rollback = DeploymentState {
        paused: true,
        ..started(3)
    };
    c.dep(5.0, paused_rollback);
    let m = c.web(6.0);
    assert_eq!((m.phase, m.started_total), (Phase::Paused, 1));
    assert_secs(m.in_progress_seconds, 1.0);
}

#[test]
fn stalled_wins_over_every_other_phase_and_the_slo_counts_once_at_the_threshold() {
    let mut c = Cluster::steady_v1();
    c.dep(10.0, started(2)).rs(10.0, rs("b", 2, 10.0));
    let stalled = DeploymentState {
        paused: true,
        progressing: progressing(ConditionStatus::False, REASON_DEADLINE_EXCEEDED, 610.0),
        ..started(2)
    };
    c.dep(610.0, stalled);
    let m = c.web(909.0);
    assert_eq!(m.phase, Phase::Stalled);
    assert_eq!(m.slow_total, vec![(900, 0)], "899 s old is not slow");
    assert_eq!(c.web(910.0).slow_total, vec![(900, 1)], "900 s old is slow");
    assert_eq!(c.web(2000.0).slow_total, vec![(900, 1)], "counted once");
    // It completes eventually; still counted once.
    for n in 1..=3 {
        c.gone(2001.0, pod("a", n));
    }
    c.dep(2002.0, ready(2));
    let m = c.web(2003.0);
    assert_eq!(m.phase, Phase::Complete);
    assert_eq!(m.slow_total, vec![(900, 1)]);
    assert_secs(sum(&m.complete_duration), 1992.0);
}

#[test]
fn slow_counts_superseded_rollouts_only_if_they_passed_the_threshold_first() {
    for (supersede_at, slow) in [(909.0, 0), (910.0, 1)] {
        let mut c = Cluster::steady_v1();
        c.dep(10.0, started(2)).rs(10.0, rs("b", 2, 10.0));
        c.dep(supersede_at, started(3));
        let m = c.web(supersede_at + 1.0);
        assert_eq!(
            m.slow_total,
            vec![(900, slow)],
            "superseded at {supersede_at}"
        );
        // The new rollout starts fresh: not slow 1 s later.
        assert_secs(m.in_progress_seconds, 1.0);
    }
}

#[test]
fn each_configured_slo_threshold_has_its_own_counter_and_bucket() {
    let mut model =
        Model::new(ModelConfig::new(&[600, 300, 600]).with_kinds(&[WorkloadKind::Deployment]));
    assert_eq!(model.config().slo_thresholds(), &[300, 600]);
    assert!(model.config().buckets().contains(&300.0));
    for e in [
        Event::Deployment(Change::Relisted(vec![steady(1)])),
        Event::ReplicaSet(Change::Relisted(vec![rs("a", 1, -10.0)])),
        Event::Pod(Change::Relisted(vec![])),
        Event::FinishedPod(Change::Relisted(vec![])),
    ] {
        model.handle(e, t(0.0));
    }
    model.handle(Event::Deployment(Change::Applied(started(2))), t(10.0));
    let m = model.snapshot(t(400.0)).remove(0);
    assert_eq!(m.slow_total, vec![(300, 1), (600, 0)]);
}

#[test]
fn finished_leftovers_do_not_block_completion_but_running_old_pods_do() {
    struct Case {
        name: &'static str,
        leftover_finished: bool,
        complete: bool,
    }
    for case in [
        Case {
            name: "evicted pod (Failed, no deletionTimestamp) left behind",
            leftover_finished: true,
            complete: true,
        },
        Case {
            name: "old pod still running",
            leftover_finished: false,
            complete: false,
        },
    ] {
        let mut c = Cluster::steady_v1();
        c.dep(10.0, started(2)).rs(10.0, rs("b", 2, 10.0));
        if case.leftover_finished {
            c.finished(10.5, &pod("a", 3));
        }
        c.gone(11.0, draining(pod("a", 1), 11.0))
            .gone(11.0, draining(pod("a", 2), 11.0));
        c.dep(12.0, ready(2));
        let m = c.web(12.0);
        assert_eq!(m.phase == Phase::Complete, case.complete, "{}", case.name);
        assert_eq!(m.terminating_pods, 0, "{}", case.name);
    }
}

#[test]
fn a_finished_pod_reported_before_the_pod_itself_is_remembered() {
    let mut c = Cluster::synced(vec![steady(1)], vec![rs("a", 1, -10.0)], vec![]);
    c.dep(10.0, started(2)).rs(10.0, rs("b", 2, 10.0));
    c.finished(10.1, &pod("a", 1));
    c.pod(10.2, pod("a", 1));
    c.dep(11.0, ready(2));
    assert_eq!(c.web(11.0).phase, Phase::Complete);
}

#[test]
fn overdue_means_past_the_first_deadline_and_oldest_counts_from_the_request() {
    let mut c = Cluster::steady_v1();
    // Requested at 10 s with a 30 s grace: deadline 40 s.
    c.pod(10.2, deleting(pod("a", 1), 40.0, Some(30)));
    for (at, overdue, oldest) in [
        (39.0, 0, 29.0),
        (40.0, 0, 30.0),
        (40.5, 1, 30.5),
        (100.0, 1, 90.0),
    ] {
        let m = c.web(at);
        assert_eq!(m.terminating_pods, 1);
        assert_eq!(m.terminating_pods_overdue, overdue, "at {at}");
        assert_secs(m.oldest_termination_seconds, oldest);
    }
    // A shorter second delete moves the deadline earlier in the object, but overdue keeps the
    // first deadline and oldest keeps the earliest request.
    c.pod(50.0, deleting(pod("a", 1), 55.0, Some(5)));
    let m = c.web(52.0);
    assert_eq!(m.terminating_pods_overdue, 1);
    assert_secs(m.oldest_termination_seconds, 42.0);
    c.gone(60.0, deleting(pod("a", 1), 55.0, Some(5)));
    assert_secs(sum(&c.web(60.0).pod_termination_duration), 50.0);
}

#[test]
fn the_kubelets_grace_zero_rewrite_keeps_the_first_request_time() {
    let mut c = Cluster::steady_v1();
    c.pod(10.0, draining(pod("a", 1), 10.0));
    // The kubelet's final delete: deletionTimestamp ≈ now, grace 0.
    c.pod(18.0, deleting(pod("a", 1), 18.0, Some(0)));
    c.gone(18.1, deleting(pod("a", 1), 18.0, Some(0)));
    let m = c.web(19.0);
    assert_eq!(count(&m.pod_termination_duration), 1);
    assert_secs(sum(&m.pod_termination_duration), 8.1);
    assert_eq!(c.model.stats().imprecise_unknown_request, 0);
}

#[test]
fn a_termination_first_seen_as_the_grace_zero_rewrite_is_imprecise_and_not_observed() {
    for (name, grace) in [("grace-0 rewrite", Some(0)), ("grace missing", None)] {
        let mut c = Cluster::steady_v1();
        c.pod(18.0, deleting(pod("a", 1), 18.0, grace));
        let m = c.web(18.05);
        assert_eq!(m.terminating_pods, 1, "{name}");
        assert_secs(m.oldest_termination_seconds, 0.05);
        c.gone(18.1, deleting(pod("a", 1), 18.0, grace));
        let m = c.web(19.0);
        assert!(m.pod_termination_duration.is_none(), "{name}");
        assert_eq!(m.terminating_pods, 0);
        assert_eq!(c.model.stats().imprecise_unknown_request, 1, "{name}");
    }
}

#[test]
fn a_deletion_request_in_the_future_never_gives_negative_values() {
    // Clock skew: the API server's clock runs 30 s ahead of the exporter's.
    let mut c = Cluster::steady_v1();
    c.pod(10.0, draining(pod("a", 1), 40.0));
    let m = c.web(11.0);
    assert_eq!(m.oldest_termination_seconds, 0.0);
    c.gone(12.0, draining(pod("a", 1), 40.0));
    let m = c.web(12.0);
    assert_eq!(sum(&m.pod_termination_duration), 0.0);
    assert_eq!(count(&m.pod_termination_duration), 1);
}

#[test]
fn restart_mid_rollout_recovers_the_start_from_the_new_replicaset() {
    // Revision 2 rolling, not ready; web-b (created at -5 s) is newer than web-a.
    let rolling = DeploymentState {
        updated_replicas: 1,
        replicas: 4,
        progressing: progressing(ConditionStatus::True, "ReplicaSetUpdated", -4.0),
        ..steady(2)
    };
    let mut c = Cluster::synced(
        vec![rolling],
        vec![rs("a", 1, -1000.0), rs("b", 2, -5.0)],
        vec![pod("a", 1), pod("a", 2), pod("a", 3), pod("b", 1)],
    );
    let m = c.web(1.0);
    assert_eq!(m.phase, Phase::Progressing);
    assert_eq!(
        (m.started_total, m.superseded_total),
        (0, 0),
        "nothing before the restart counts"
    );
    assert_secs(m.in_progress_seconds, 6.0);
    assert_eq!(m.last_started_timestamp, Some(t(-5.0).as_secs_f64()));
    assert_eq!(c.model.stats().unknown_start_rollouts, 0);
    for n in 1..=3 {
        c.gone(5.0, pod("a", n));
    }
    c.dep(10.0, ready(2));
    let m = c.web(10.0);
    assert_eq!(m.phase, Phase::Complete);
    assert_secs(sum(&m.ready_duration), 15.0);
    assert_secs(sum(&m.complete_duration), 15.0);
    assert_eq!(m.started_total, 0);
}

#[test]
fn restart_mid_drain_takes_ready_from_the_progressing_condition() {
    let ready_at_minus_3 = DeploymentState {
        progressing: progressing(ConditionStatus::True, REASON_NEW_RS_AVAILABLE, -3.0),
        ..ready(2)
    };
    let mut c = Cluster::synced(
        vec![ready_at_minus_3],
        vec![rs("a", 1, -1000.0), rs("b", 2, -10.0)],
        vec![
            draining(pod("a", 1), -4.0),
            pod("b", 1),
            pod("b", 2),
            pod("b", 3),
        ],
    );
    let m = c.web(1.0);
    assert_eq!(m.phase, Phase::Draining);
    assert!(
        m.ready_duration.is_none(),
        "ready happened before the restart"
    );
    assert_eq!(m.terminating_pods, 1);
    assert_secs(m.oldest_termination_seconds, 5.0);
    c.gone(5.0, draining(pod("a", 1), -4.0));
    let m = c.web(5.0);
    assert_eq!(m.phase, Phase::Complete);
    assert!(m.ready_duration.is_none());
    assert_secs(sum(&m.complete_duration), 15.0);
    assert_secs(sum(&m.drain_tail), 8.0);
    assert_secs(sum(&m.pod_termination_duration), 9.0);
}

#[test]
fn restart_after_a_rollback_has_an_unknown_start_and_observes_no_duration() {
    // web-a (created long ago) is current again at revision 3; web-b's pods drain.
    let rolling = DeploymentState {
        progressing: progressing(ConditionStatus::True, "ReplicaSetUpdated", -2.0),
        ..ready(3)
    };
    let mut c = Cluster::synced(
        vec![rolling],
        vec![rs("a", 3, -2000.0), rs("b", 2, -1000.0)],
        vec![draining(pod("b", 1), -2.0), pod("a", 4)],
    );
    assert_eq!(c.model.stats().unknown_start_rollouts, 1);
    let m = c.web(100.0);
    assert_eq!(m.phase, Phase::Draining);
    assert_eq!(m.last_started_timestamp, None);
    assert_secs(m.in_progress_seconds, 100.0);
    c.gone(101.0, draining(pod("b", 1), -2.0));
    let m = c.web(101.0);
    assert_eq!(m.phase, Phase::Complete);
    assert!(m.ready_duration.is_none() && m.complete_duration.is_none());
    assert!(
        m.drain_tail.is_none(),
        "ready time unknown: the condition is not NewReplicaSetAvailable"
    );
    assert_eq!(m.last_completed_timestamp, Some(t(101.0).as_secs_f64()));
}

#[test]
fn restart_classifies_steady_deployments_as_not_in_flight() {
    struct Case {
        name: &'static str,
        deployment: DeploymentState,
        in_flight: bool,
    }
    let crashlooping = DeploymentState {
        available_replicas: 2,
        ..steady(1)
    };
    let no_condition = DeploymentState {
        progressing: None,
        ..steady(1)
    };
    let paused_steady = DeploymentState {
        paused: true,
        progressing: progressing(ConditionStatus::Unknown, REASON_PAUSED, -1.0),
        ..steady(1)
    };
    let paused_mid = DeploymentState {
        updated_replicas: 1,
        ..paused_steady.clone()
    };
    let stalled = DeploymentState {
        available_replicas: 2,
        progressing: progressing(ConditionStatus::False, REASON_DEADLINE_EXCEEDED, -1.0),
        ..steady(1)
    };
    for case in [
        Case {
            name: "crashlooping steady",
            deployment: crashlooping,
            in_flight: false,
        },
        Case {
            name: "no progress deadline",
            deployment: no_condition,
            in_flight: false,
        },
        Case {
            name: "paused, nothing to roll",
            deployment: paused_steady,
            in_flight: false,
        },
        Case {
            name: "paused mid-rollout",
            deployment: paused_mid,
            in_flight: true,
        },
        Case {
            name: "stalled",
            deployment: stalled,
            in_flight: true,
        },
    ] {
        let mut c = Cluster::synced(
            vec![case.deployment],
            vec![rs("a", 1, -1000.0)],
            vec![pod("a", 1), pod("a", 2), pod("a", 3)],
        );
        let m = c.web(10.0);
        assert_eq!(m.in_progress_seconds > 0.0, case.in_flight, "{}", case.name);
        assert_eq!(m.started_total, 0, "{}", case.name);
    }
}

#[test]
fn restart_marks_thresholds_already_passed_as_counted() {
    let rolling = DeploymentState {
        updated_replicas: 1,
        progressing: progressing(ConditionStatus::True, "ReplicaSetUpdated", -1.0),
        ..steady(2)
    };
    let mut c = Cluster::synced(
        vec![rolling],
        vec![rs("a", 1, -5000.0), rs("b", 2, -1000.0)],
        vec![pod("a", 1), pod("b", 1)],
    );
    assert_eq!(
        c.web(10.0).slow_total,
        vec![(900, 0)],
        "passed 900 s before the restart"
    );
    assert_secs(c.web(10.0).in_progress_seconds, 1010.0);
}

#[test]
fn a_termination_that_ended_in_a_watch_gap_is_observed_at_the_relist() {
    let mut c = Cluster::steady_v1();
    c.dep(10.0, started(2)).rs(10.0, rs("b", 2, 10.0));
    c.pod(11.0, draining(pod("a", 1), 11.0));
    c.dep(12.0, ready(2));
    // The pod watch drops; a-1 goes, a-2 and a-3 start and end inside the gap; b pods appear.
    let relisted = vec![pod("b", 1), pod("b", 2), pod("b", 3)];
    c.event(30.0, Event::Pod(Change::Relisted(relisted)));
    let m = c.web(30.0);
    assert_eq!(m.phase, Phase::Complete);
    assert_eq!(
        count(&m.pod_termination_duration),
        1,
        "a-2 and a-3 were never seen terminating"
    );
    assert_secs(sum(&m.pod_termination_duration), 19.0);
    assert_secs(sum(&m.complete_duration), 20.0);
    let stats = c.model.stats();
    assert_eq!(stats.imprecise_gap_terminations, 1);
    assert_eq!(stats.imprecise_gap_milestones, 1);
}

#[test]
fn a_revision_change_missed_in_a_gap_starts_at_the_relist() {
    let mut c = Cluster::steady_v1();
    c.event(50.0, Event::Deployment(Change::Relisted(vec![started(2)])));
    let m = c.web(51.0);
    assert_eq!(m.started_total, 1);
    assert_eq!(m.last_started_timestamp, Some(t(50.0).as_secs_f64()));
    assert_eq!(c.model.stats().imprecise_gap_milestones, 1);
}

#[test]
fn a_deployment_deleted_in_a_gap_ends_its_rollout() {
    let mut c = Cluster::steady_v1();
    c.dep(10.0, started(2));
    c.event(20.0, Event::Deployment(Change::Relisted(vec![])));
    let m = c.web(21.0);
    assert_eq!(m.phase, Phase::Complete);
    assert_eq!(m.superseded_total, 0);
    assert_eq!(m.in_progress_seconds, 0.0);
}

#[test]
fn a_deleted_deployment_keeps_its_series_until_its_last_pod_is_gone() {
    let mut c = Cluster::steady_v1();
    c.dep(10.0, started(2)).rs(10.0, rs("b", 2, 10.0));
    c.event(20.0, Event::Deployment(Change::Deleted(started(2))));
    let m = c.web(20.0);
    assert_eq!(
        (m.phase, m.superseded_total, m.in_progress_seconds),
        (Phase::Complete, 0, 0.0)
    );
    // Cascade: the ReplicaSets go, then their pods terminate.
    c.event(
        21.0,
        Event::ReplicaSet(Change::Deleted(rs("a", 1, -1000.0))),
    );
    c.event(21.0, Event::ReplicaSet(Change::Deleted(rs("b", 2, 10.0))));
    for n in 1..=3 {
        c.pod(22.0, draining(pod("a", n), 22.0));
    }
    assert_eq!(c.web(23.0).terminating_pods, 3);
    c.gone(30.0, draining(pod("a", 1), 22.0));
    c.gone(30.0, draining(pod("a", 2), 22.0));
    assert_eq!(count(&c.web(30.0).pod_termination_duration), 2);
    c.gone(31.0, draining(pod("a", 3), 22.0));
    assert!(
        c.find(31.0, "web").is_none(),
        "series gone with the last pod"
    );
    assert!(c.model.is_empty());
}

#[test]
fn a_deployment_recreated_under_the_same_name_starts_a_new_rollout() {
    let mut c = Cluster::steady_v1();
    c.dep(10.0, started(2));
    let recreated = DeploymentState {
        uid: "web-uid-2".into(),
        created: Some(t(20.0)),
        ..started(1)
    };
    c.dep(20.0, recreated);
    let m = c.web(20.0);
    assert_eq!(m.started_total, 2);
    assert_eq!(
        m.superseded_total, 0,
        "the first was abandoned, not superseded"
    );
    assert_eq!(m.revision, Some(1));
}

#[test]
fn pods_and_replicasets_arriving_before_their_owner_are_attributed_later() {
    let mut c = Cluster::synced(vec![], vec![], vec![]);
    // Pod stream ahead of everything: a pod of an unknown ReplicaSet drains and goes.
    c.pod(1.0, draining(pod("a", 1), 1.0));
    c.gone(6.0, draining(pod("a", 1), 1.0));
    c.pod(6.5, draining(pod("a", 2), 6.0));
    assert!(c.find(7.0, "web").is_none());
    // Then the ReplicaSet (its Deployment still unknown): not exported yet.
    c.rs(8.0, rs("a", 1, -10.0));
    assert!(c.find(8.0, "web").is_none());
    // Then the Deployment, created after the sync.
    c.dep(
        9.0,
        DeploymentState {
            created: Some(t(8.0)),
            ..steady(1)
        },
    );
    let m = c.web(9.0);
    assert_eq!(count(&m.pod_termination_duration), 1);
    assert_secs(sum(&m.pod_termination_duration), 5.0);
    assert_eq!(m.terminating_pods, 1);
    assert_eq!(
        m.started_total, 1,
        "a Deployment created after the sync starts its first rollout"
    );
}

#[test]
fn pods_outside_deployments_are_ignored() {
    let bare = ReplicaSetState {
        key: key("bare"),
        owner: None,
        revision: None,
        created: Some(t(-1.0)),
    };
    let job_pod = PodState {
        owner: Some(ControllerRef {
            kind: "Job".into(),
            name: "batch".into(),
        }),
        ..pod("x", 1)
    };
    let no_owner = PodState {
        owner: None,
        ..pod("y", 1)
    };
    let bare_pod = PodState {
        owner: Some(ControllerRef {
            kind: "ReplicaSet".into(),
            name: "bare".into(),
        }),
        ..pod("z", 1)
    };
    let mut c = Cluster::synced(
        vec![],
        vec![bare],
        vec![job_pod.clone(), no_owner, bare_pod.clone()],
    );
    c.pod(1.0, draining(job_pod, 1.0))
        .pod(1.0, draining(bare_pod, 1.0));
    assert!(c.model.snapshot(t(2.0)).is_empty());
    assert_eq!(c.model.stats().pods, 0);
}

#[test]
fn the_model_is_empty_once_every_object_is_gone() {
    let mut c = Cluster::steady_v1();
    c.roll_to_v2();
    for e in [
        Event::Deployment(Change::Relisted(vec![])),
        Event::ReplicaSet(Change::Relisted(vec![])),
        Event::Pod(Change::Relisted(vec![])),
        Event::FinishedPod(Change::Relisted(vec![])),
    ] {
        c.event(100.0, e);
    }
    assert!(c.model.is_empty());
    assert!(c.model.snapshot(t(101.0)).is_empty());
}

#[test]
fn per_namespace_relists_sync_and_reconcile_only_their_namespace() {
    let cfg = deployments_only().with_namespaces(&["shop".into(), "blog".into()]);
    let mut model = Model::new(cfg);
    let blog_dep = DeploymentState {
        key: ObjectKey::new("blog", "web"),
        ..steady(1)
    };
    let ns = |n: &str| n.to_string();
    for n in ["shop", "blog"] {
        let deps = if n == "shop" {
            vec![steady(1)]
        } else {
            vec![blog_dep.clone()]
        };
        model.handle(
            Event::Deployment(Change::RelistedNamespace(ns(n), deps)),
            t(0.0),
        );
        model.handle(
            Event::ReplicaSet(Change::RelistedNamespace(ns(n), vec![])),
            t(0.0),
        );
        model.handle(Event::Pod(Change::RelistedNamespace(ns(n), vec![])), t(0.0));
        assert!(
            !model.is_live(),
            "not live before every namespace listed every resource"
        );
        model.handle(
            Event::FinishedPod(Change::RelistedNamespace(ns(n), vec![])),
            t(0.0),
        );
    }
    assert!(model.is_live());
    assert!(model.is_synced(Resource::Pods));
    // A relist of `blog` that no longer has its Deployment leaves `shop` alone.
    model.handle(
        Event::Deployment(Change::RelistedNamespace(ns("blog"), vec![])),
        t(5.0),
    );
    let names: Vec<String> = model
        .snapshot(t(6.0))
        .iter()
        .filter(|m| m.revision.is_some() && m.key.namespace == "shop")
        .map(|m| m.key.name.clone())
        .collect();
    assert_eq!(names, ["web"]);
    assert_eq!(model.stats().deployments, 1);
}

#[test]
fn nothing_is_exported_before_every_resource_is_listed() {
    let mut model = Model::new(deployments_only());
    model.handle(
        Event::Deployment(Change::Relisted(vec![started(2)])),
        t(0.0),
    );
    model.handle(
        Event::ReplicaSet(Change::Relisted(vec![rs("a", 1, -10.0), rs("b", 2, -1.0)])),
        t(0.0),
    );
    model.handle(
        Event::Pod(Change::Relisted(vec![draining(pod("a", 1), -1.0)])),
        t(0.0),
    );
    assert!(
        model.snapshot(t(0.5)).is_empty(),
        "phase and gauges would be guesses before the sync"
    );
    model.handle(Event::FinishedPod(Change::Relisted(vec![])), t(1.0));
    let m = model.snapshot(t(1.0)).remove(0);
    assert_eq!(
        m.phase,
        Phase::Progressing,
        "recovered as in flight once synced"
    );
    assert_eq!(m.terminating_pods, 1);
}

// ----- Streamed lists --------------------------------------------------------------------------

#[test]
fn a_streamed_list_judges_its_milestones_at_its_end_and_other_events_at_once() {
    let mut c = Cluster::steady_v1();
    c.dep(10.0, started(2)).rs(10.0, rs("b", 2, 10.0));
    c.pod(11.0, draining(pod("a", 1), 11.0));
    c.dep(12.0, ready(2));
    // The pod watch drops; a-1 goes, a-2 and a-3 start and end inside the gap; b pods appear.
    // The relist streams in, and a Deployment event arrives in the middle of it.
    c.event(30.0, Event::Pod(Change::ListStarted(None)));
    c.event(30.0, Event::Pod(Change::Listed(pod("b", 1))));
    c.event(30.5, Event::Pod(Change::Listed(pod("b", 2))));
    c.dep(31.0, ready(2));
    let m = c.web(31.0);
    assert_eq!(
        m.phase,
        Phase::Draining,
        "half a list: the old pods are not known gone yet"
    );
    assert_eq!(m.terminating_pods, 1);
    c.event(32.0, Event::Pod(Change::Listed(pod("b", 3))));
    assert_eq!(c.web(32.0).phase, Phase::Draining);
    c.event(33.0, Event::Pod(Change::ListDone(None)));
    let m = c.web(33.0);
    assert_eq!(m.phase, Phase::Complete);
    assert_eq!(count(&m.pod_termination_duration), 1);
    assert_secs(sum(&m.pod_termination_duration), 22.0);
    assert_secs(sum(&m.complete_duration), 23.0);
    let stats = c.model.stats();
    assert_eq!(stats.imprecise_gap_terminations, 1);
    assert_eq!(
        stats.imprecise_gap_milestones, 1,
        "completion timed at the end"
    );
    assert_eq!(stats.pods, 3);
}

#[test]
fn a_list_that_starts_again_keeps_what_it_applied_and_sweeps_at_its_end() {
    let mut c = Cluster::steady_v1();
    c.event(20.0, Event::Pod(Change::ListStarted(None)));
    c.event(
        20.0,
        Event::Pod(Change::Listed(draining(pod("a", 1), 20.0))),
    );
    // The list fails part way and starts over; a-1 is gone by then.
    c.event(21.0, Event::Pod(Change::ListStarted(None)));
    assert_eq!(
        c.web(21.0).terminating_pods,
        1,
        "still known, still draining"
    );
    c.event(21.0, Event::Pod(Change::Listed(pod("a", 2))));
    c.event(21.0, Event::Pod(Change::Listed(pod("a", 3))));
    assert_eq!(c.model.stats().pods, 3, "nothing swept before the end");
    c.event(22.0, Event::Pod(Change::ListDone(None)));
    let m = c.web(22.0);
    assert_eq!(m.terminating_pods, 0);
    assert_eq!(count(&m.pod_termination_duration), 1);
    assert_secs(sum(&m.pod_termination_duration), 2.0);
    assert_eq!(c.model.stats().pods, 2);
}

#[test]
fn namespace_lists_in_flight_together_sweep_only_their_own_namespace() {
    let cfg = deployments_only().with_namespaces(&["shop".into(), "blog".into()]);
    let mut model = Model::new(cfg);
    let in_blog = |p: PodState| PodState {
        key: ObjectKey::new("blog", p.key.name.clone()),
        ..p
    };
    for n in ["shop", "blog"] {
        let pods = if n == "shop" {
            vec![pod("a", 1), pod("a", 2)]
        } else {
            vec![in_blog(pod("a", 1))]
        };
        let ns = Some(n.to_string());
        model.handle(Event::Deployment(Change::ListDone(ns.clone())), t(0.0));
        model.handle(Event::ReplicaSet(Change::ListDone(ns.clone())), t(0.0));
        model.handle(Event::Pod(Change::ListStarted(ns.clone())), t(0.0));
        for p in pods {
            model.handle(Event::Pod(Change::Listed(p)), t(0.0));
        }
        model.handle(Event::Pod(Change::ListDone(ns.clone())), t(0.0));
        model.handle(Event::FinishedPod(Change::ListDone(ns)), t(0.0));
    }
    assert!(model.is_live());
    assert_eq!(model.stats().pods, 3);
    let (shop, blog) = (Some("shop".to_string()), Some("blog".to_string()));
    model.handle(Event::Pod(Change::ListStarted(shop.clone())), t(5.0));
    model.handle(Event::Pod(Change::ListStarted(blog.clone())), t(5.0));
    model.handle(Event::Pod(Change::Listed(pod("a", 1))), t(5.0));
    model.handle(Event::Pod(Change::ListDone(blog)), t(6.0));
    assert_eq!(
        model.stats().pods,
        2,
        "blog's pod is gone, shop's list is open"
    );
    model.handle(Event::Pod(Change::ListDone(shop)), t(7.0));
    assert_eq!(model.stats().pods, 1, "shop's a-2 was not listed");
    assert!(model.pod_record(&pod("a", 1)).is_some());
}

#[test]
fn a_finished_pod_listed_before_the_pod_itself_stays_finished_at_the_lists_end() {
    let mut c = Cluster::steady_v1();
    c.dep(10.0, started(2)).rs(10.0, rs("b", 2, 10.0));
    for n in 1..=3 {
        c.pod(11.0, pod("b", n)).gone(11.0, pod("a", n));
    }
    c.dep(12.0, ready(2));
    assert_eq!(c.web(12.0).phase, Phase::Complete);
    // An evicted old pod: finished, no deletionTimestamp. The finished-pod list reports it
    // before the pod watch does.
    let evicted = pod("a", 9);
    c.event(20.0, Event::FinishedPod(Change::ListStarted(None)));
    c.event(20.0, Event::FinishedPod(Change::Listed(finished(&evicted))));
    c.pod(21.0, evicted.clone());
    c.event(22.0, Event::FinishedPod(Change::ListDone(None)));
    assert_eq!(
        c.model.stats().finished_pods,
        1,
        "still finished after the list"
    );
    c.dep(23.0, started(3)).rs(23.0, rs("c", 3, 23.0));
    for n in 1..=3 {
        c.pod(24.0, pod("c", n)).gone(24.0, pod("b", n));
    }
    c.dep(
        25.0,
        DeploymentState {
            revision: Some(3),
            ..ready(3)
        },
    );
    assert_eq!(
        c.web(25.0).phase,
        Phase::Complete,
        "a finished leftover does not block"
    );
}

#[test]
fn the_wait_view_shows_the_live_ready_test_and_the_pods_that_block_completion() {
    let web = WorkloadKey::deployment("shop", "web");
    let mut c = Cluster::steady_v1();
    let v = c.model.view(&web, t(1.0)).expect("synced");
    let o = v.object.as_ref().expect("seen");
    assert!(o.passes_ready_test && o.observed && v.rollout.is_none());
    assert_eq!((v.phase, v.pods.len()), (Phase::Complete, 3));
    // The template changed, the controller has not acted: not observed, not ready.
    c.dep(10.0, started(2));
    let v = c.model.view(&web, t(10.0)).expect("synced");
    let o = v.object.as_ref().expect("seen");
    assert!(!o.observed && !o.passes_ready_test);
    assert!(v.rollout.as_ref().is_some_and(Rollout::in_flight));
    c.rs(10.01, rs("b", 2, 10.0));
    for n in 1..=3 {
        let at = 10.0 + n as f64;
        c.pod(at - 0.5, pod("b", n))
            .pod(at, draining(pod("a", n), at));
    }
    c.dep(13.5, ready(2));
    let v = c.model.view(&web, t(14.0)).expect("synced");
    assert_eq!(v.phase, Phase::Draining);
    let blocking: Vec<_> = v.pods.iter().filter(|p| p.blocks).collect();
    assert_eq!(blocking.len(), 3);
    assert!(
        blocking
            .iter()
            .all(|p| p.revision == "web-a" && p.terminating())
    );
    let mut requested: Vec<_> = blocking.iter().filter_map(|p| p.requested).collect();
    requested.sort();
    assert_eq!(requested, [t(11.0), t(12.0), t(13.0)]);
    assert!(
        v.pods
            .iter()
            .filter(|p| p.current)
            .all(|p| p.revision == "web-b")
    );
    for n in 1..=3 {
        c.gone(18.0 + n as f64, draining(pod("a", n), 10.0 + n as f64));
    }
    let v = c.model.view(&web, t(22.0)).expect("synced");
    assert_eq!(v.phase, Phase::Complete);
    assert!(v.pods.iter().all(|p| p.current && !p.blocks));
    assert_eq!(
        v.rollout.map(|r| r.state),
        Some(RolloutState::Complete(t(21.0)))
    );
    let gone = c
        .model
        .view(&WorkloadKey::deployment("shop", "api"), t(22.0));
    assert!(gone.is_some_and(|v| v.object.is_none()), "never listed");
}

#[test]
fn a_pods_ready_condition_reaches_the_wait_view_and_metadata_only_events_keep_it() {
    let web = WorkloadKey::deployment("shop", "web");
    let mut c = Cluster::steady_v1();
    let a1 = pod("a", 1).uid;
    // (a-1's readiness, the others') as `wait` reads them.
    let ready_of = |c: &mut Cluster| -> (Option<bool>, Vec<Option<bool>>) {
        let v = c.model.view(&web, t(5.0)).expect("synced");
        let of = |p: &&view::PodView| p.uid == a1;
        let mine = v.pods.iter().find(of).expect("a-1").ready;
        let others = v
            .pods
            .iter()
            .filter(|p| p.uid != a1)
            .map(|p| p.ready)
            .collect();
        (mine, others)
    };
    assert_eq!(
        ready_of(&mut c),
        (None, vec![None, None]),
        "metadata-only: unknown"
    );
    // Read whole (wait's watch): not ready, then ready.
    c.pod(
        1.0,
        PodState {
            ready: Some(false),
            ..pod("a", 1)
        },
    );
    assert_eq!(ready_of(&mut c), (Some(false), vec![None, None]));
    c.pod(
        2.0,
        PodState {
            ready: Some(true),
            ..pod("a", 1)
        },
    );
    assert_eq!(ready_of(&mut c), (Some(true), vec![None, None]));
    // An event that cannot see readiness does not forget it.
    c.pod(3.0, pod("a", 1));
    assert_eq!(ready_of(&mut c), (Some(true), vec![None, None]));
}
