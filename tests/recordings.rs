//! The model over real traffic recorded from a Kubernetes v1.36 control plane
//! (`tests/fixtures/k8s-recordings/`, with its `timeline.md` ground truth per scenario).
//!
//! One table row per scenario: what each metric must be after the replay, and when each phase
//! change must happen. Expected values follow from the definitions in the README; each row states
//! how. Durations are checked to the microsecond: receive times are exact, request times are
//! whole seconds. [`check`] makes every assertion for every row.

mod common;

use common::{Replay, assert_secs, replay};
use kube_rollout_exporter::model::{Histogram, Phase, Timestamp};

/// What a recorded scenario must replay to.
struct Expected {
    /// The directory under `tests/fixtures/k8s-recordings/`.
    scenario: &'static str,
    /// T0 of the scenario's timeline.md; offsets below are from it (ms resolution).
    t0: f64,
    revision: u64,
    ready: f64,
    complete: f64,
    drain_tail: f64,
    /// Each old pod's termination duration, in the order the replay observes them.
    drains: [f64; 3],
    /// Every phase change, the first at the initial list (T0 - 1 s), with its timeline offset.
    phases: &'static [(Phase, f64)],
    /// The receive time of the event that started the rollout, where the row pins it.
    started_at: Option<f64>,
    /// The receive time of the event that completed it, where the row pins it.
    completed_at: Option<f64>,
}

/// Lists are delivered one second before T0: the exporter had just synced.
const LISTED: f64 = -1.0;

const TABLE: &[Expected] = &[
    // RollingUpdate 3 replicas, maxSurge 1, maxUnavailable 0, 8 s drains.
    // Start: the revision annotation turns 2 at T0+0.037 (the generation bump at T0+0.020 is not
    // it). Ready: kubectl's test passes at T0+3.397, while all three old pods still exist.
    // Complete: the last old pod object is gone at T0+11.539 (metadata stream). Drains: gone time
    // minus (deletionTimestamp - 60 s), the first grace-60 value, not the grace-0 rewrite. The
    // start and completion are the receive times of the revision-2 Deployment event and of the
    // last old pod's DELETED.
    Expected {
        scenario: "rolling-update-drain",
        t0: 1_795_800_841.137,
        revision: 2,
        ready: 3.360_137,
        complete: 11.501_906,
        drain_tail: 8.141_769,
        drains: [8.449_460, 8.530_417, 8.676_165],
        phases: &[
            (Phase::Complete, LISTED),
            (Phase::Progressing, 0.037),
            (Phase::Draining, 3.397),
            (Phase::Complete, 11.539),
        ],
        started_at: Some(1_795_800_841.174_259),
        completed_at: Some(1_795_800_852.676_165),
    },
    // v2 back to v1: the first ReplicaSet is reused, its revision annotation turns 3 (with
    // revision-history "1") 17 ms before the Deployment's, so it is current at the start.
    // Start T0+0.038, ready T0+3.789, last old pod gone T0+8.876; 5 s drains.
    Expected {
        scenario: "rollback",
        t0: 1_795_802_531.984,
        revision: 3,
        ready: 3.750_682,
        complete: 8.838_031,
        drain_tail: 5.087_349,
        drains: [5.460_885, 5.651_587, 5.860_305],
        phases: &[
            (Phase::Complete, LISTED),
            (Phase::Progressing, 0.038),
            (Phase::Draining, 3.789),
            (Phase::Complete, 8.876),
        ],
        started_at: None,
        completed_at: None,
    },
    // Recreate: the controller deletes every old pod first and writes the new revision only when
    // they have stopped running (T0+5.230), so by the definition the rollout starts then, not at
    // the PATCH. The last old pod object goes at T0+5.273, before ready at T0+6.508, so complete
    // equals ready and the drain tail is 0. The three terminations (requested at 18:03:10) are
    // still measured, and the phase stays `complete` while they drain before the start: a
    // documented limit of the revision-based start.
    Expected {
        scenario: "recreate",
        t0: 1_795_802_590.462,
        revision: 2,
        ready: 1.277_939,
        complete: 1.277_939,
        drain_tail: 0.0,
        drains: [5.620_714, 5.664_154, 5.734_906],
        phases: &[
            (Phase::Complete, LISTED),
            (Phase::Progressing, 5.230),
            (Phase::Complete, 6.508),
        ],
        started_at: None,
        completed_at: None,
    },
    // Pause, change the image, resume 4 s later: the revision (and so the start) comes only after
    // the resume, at T0+4.095; the phase is `paused` before (from T0+0.020). Resume clears
    // spec.paused at T0+4.059; nothing is in flight until the revision turns 2 at T0+4.095, which
    // is the start. Ready T0+7.771, last old pod gone T0+12.986.
    Expected {
        scenario: "pause",
        t0: 1_795_802_706.274,
        revision: 2,
        ready: 3.676_653,
        complete: 8.891_817,
        drain_tail: 5.215_164,
        drains: [5.816_480, 5.924_438, 5.260_712],
        phases: &[
            (Phase::Complete, LISTED),
            (Phase::Paused, 0.020),
            (Phase::Complete, 4.059),
            (Phase::Progressing, 4.095),
            (Phase::Draining, 7.771),
            (Phase::Complete, 12.986),
        ],
        started_at: Some(1_795_802_710.368_895),
        completed_at: None,
    },
];

/// Replays the table's row for `scenario` and checks all of it.
fn replays_to_its_ground_truth(scenario: &str) {
    let expected = TABLE
        .iter()
        .find(|e| e.scenario == scenario)
        .unwrap_or_else(|| panic!("no table row for {scenario}"));
    let r = replay(expected.scenario, at(expected.t0, LISTED));
    check(expected, &r);
}

#[test]
fn rolling_update_drain_replays_to_its_ground_truth() {
    replays_to_its_ground_truth("rolling-update-drain");
}

#[test]
fn rollback_replays_to_its_ground_truth() {
    replays_to_its_ground_truth("rollback");
}

#[test]
fn recreate_replays_to_its_ground_truth() {
    replays_to_its_ground_truth("recreate");
}

#[test]
fn pause_replays_to_its_ground_truth() {
    replays_to_its_ground_truth("pause");
}

#[test]
fn every_table_row_has_its_test() {
    let tested = ["rolling-update-drain", "rollback", "recreate", "pause"];
    let rows: Vec<&str> = TABLE.iter().map(|e| e.scenario).collect();
    assert_eq!(rows, tested, "add a #[test] for each new row");
}

/// Every assertion for one scenario; a failure names the scenario.
fn check(e: &Expected, r: &Replay) {
    let what = e.scenario;
    let m = &r.last;
    // One rollout, not superseded, of the expected revision.
    assert_eq!(m.started_total, 1, "{what}: started");
    assert_eq!(m.superseded_total, 0, "{what}: superseded");
    assert_eq!(m.revision, Some(e.revision), "{what}: revision");
    assert_secs(only(&m.ready_duration, what), e.ready);
    assert_secs(only(&m.complete_duration, what), e.complete);
    assert_secs(only(&m.drain_tail, what), e.drain_tail);
    let drains: Vec<f64> = r.drains.iter().map(|d| d.1).collect();
    assert_eq!(
        drains.len(),
        e.drains.len(),
        "{what}: one drain per old pod"
    );
    for (got, want) in drains.iter().zip(e.drains) {
        assert_secs(*got, want);
    }
    if let Some(started) = e.started_at {
        assert_secs(m.last_started_timestamp.expect("start known"), started);
    }
    if let Some(completed) = e.completed_at {
        assert_secs(m.last_completed_timestamp.expect("completion"), completed);
    }
    let phases: Vec<Phase> = r.phases.iter().map(|p| p.1).collect();
    let want: Vec<Phase> = e.phases.iter().map(|p| p.0).collect();
    assert_eq!(phases, want, "{what}: phases");
    for ((got, _), (_, offset)) in r.phases.iter().zip(e.phases) {
        assert_at(*got, e.t0, *offset);
    }
    // All three old pods terminated at once at some point; nothing is left in flight.
    assert_eq!(r.max_terminating, 3, "{what}: most terminating at once");
    assert_eq!(m.terminating_pods, 0, "{what}: terminating at the end");
    assert_eq!(m.in_progress_seconds, 0.0, "{what}: in progress at the end");
    assert_eq!(m.slow_total, vec![(900, 0)], "{what}: slow rollouts");
    let stats = r.model.stats();
    assert_eq!(
        stats.imprecise_gap_terminations + stats.imprecise_unknown_request,
        0,
        "{what}: every observation precise"
    );
    assert_eq!(stats.pods, 3, "{what}: three new pods remain");
}

/// `T0 + offset`, with T0 and offsets as the scenario's timeline.md gives them (ms resolution).
fn at(t0: f64, offset: f64) -> Timestamp {
    Timestamp::from_secs_f64(t0 + offset)
}

/// Asserts a receive time equals a timeline offset, within the timeline's 1 ms resolution.
#[track_caller]
fn assert_at(actual: Timestamp, t0: f64, offset: f64) {
    let diff = actual.seconds_since(at(t0, offset)).abs();
    assert!(
        diff <= 0.0015,
        "expected T0+{offset:.3}, got T0+{:.6}",
        actual.as_secs_f64() - t0
    );
}

/// The one observation of a histogram.
fn only(h: &Option<Histogram>, what: &str) -> f64 {
    let h = h.as_ref().expect("histogram present");
    assert_eq!(h.count(), 1, "{what}: exactly one observation");
    h.sum()
}
