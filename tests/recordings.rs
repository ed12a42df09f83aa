//! The model over real traffic recorded from a Kubernetes v1.36 control plane
//! (`tests/fixtures/k8s-recordings/`, with its `timeline.md` ground truth per scenario).
//!
//! Expected values follow from the definitions in the README; each scenario states how. Durations
//! are checked to the microsecond: receive times are exact, request times are whole seconds.

mod common;

use common::{assert_secs, replay};
use kube_rollout_exporter::model::{Phase, Timestamp};

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

fn only(h: &Option<kube_rollout_exporter::model::Histogram>) -> f64 {
    let h = h.as_ref().expect("histogram present");
    assert_eq!(h.count(), 1, "exactly one observation");
    h.sum()
}

/// RollingUpdate 3 replicas, maxSurge 1, maxUnavailable 0, 8 s drains.
/// Start: the revision annotation turns 2 at T0+0.037 (the generation bump at T0+0.020 is not it).
/// Ready: kubectl's test passes at T0+3.397, while all three old pods still exist.
/// Complete: the last old pod object is gone at T0+11.539 (metadata stream).
/// Drains: gone time minus (deletionTimestamp - 60 s), the first grace-60 value, not the grace-0
/// rewrite.
#[test]
fn rolling_update_drain_matches_the_ground_truth() {
    let t0 = 1_795_800_841.137;
    let r = replay("rolling-update-drain", at(t0, -1.0));
    let m = &r.last;
    assert_eq!(m.started_total, 1);
    assert_eq!(m.superseded_total, 0);
    assert_eq!(m.revision, Some(2));
    assert_secs(only(&m.ready_duration), 3.360_137);
    assert_secs(only(&m.complete_duration), 11.501_906);
    assert_secs(only(&m.drain_tail), 8.141_769);
    let drains: Vec<f64> = r.drains.iter().map(|d| d.1).collect();
    assert_eq!(drains.len(), 3);
    for (got, want) in drains.iter().zip([8.449_460, 8.530_417, 8.676_165]) {
        assert_secs(*got, want);
    }
    // The receive times of the revision-2 Deployment event and of the last old pod's DELETED.
    assert_secs(
        m.last_started_timestamp.expect("start known"),
        1_795_800_841.174_259,
    );
    assert_secs(
        m.last_completed_timestamp.expect("completion"),
        1_795_800_852.676_165,
    );
    let phases: Vec<Phase> = r.phases.iter().map(|p| p.1).collect();
    assert_eq!(
        phases,
        [
            Phase::Complete,
            Phase::Progressing,
            Phase::Draining,
            Phase::Complete
        ]
    );
    assert_at(r.phases[1].0, t0, 0.037);
    assert_at(r.phases[2].0, t0, 3.397);
    assert_at(r.phases[3].0, t0, 11.539);
    assert_eq!(r.max_terminating, 3);
    assert_eq!(m.terminating_pods, 0);
    assert_eq!(m.in_progress_seconds, 0.0);
    assert_eq!(m.slow_total, vec![(900, 0)]);
    let stats = r.model.stats();
    assert_eq!(
        stats.imprecise_gap_terminations + stats.imprecise_unknown_request,
        0
    );
    assert_eq!(stats.pods, 3, "three new pods remain");
}

/// v2 back to v1: the first ReplicaSet is reused, its revision annotation turns 3 (with
/// revision-history "1") 17 ms before the Deployment's, so it is current at the start.
/// Start T0+0.038, ready T0+3.789, last old pod gone T0+8.876; 5 s drains.
#[test]
fn rollback_reuses_the_old_replicaset_and_completes_when_v2_pods_are_gone() {
    let t0 = 1_795_802_531.984;
    let r = replay("rollback", at(t0, -1.0));
    let m = &r.last;
    assert_eq!(m.started_total, 1);
    assert_eq!(m.revision, Some(3));
    assert_secs(only(&m.ready_duration), 3.750_682);
    assert_secs(only(&m.complete_duration), 8.838_031);
    assert_secs(only(&m.drain_tail), 5.087_349);
    let drains: Vec<f64> = r.drains.iter().map(|d| d.1).collect();
    assert_eq!(drains.len(), 3);
    for (got, want) in drains.iter().zip([5.460_885, 5.651_587, 5.860_305]) {
        assert_secs(*got, want);
    }
    let phases: Vec<Phase> = r.phases.iter().map(|p| p.1).collect();
    assert_eq!(
        phases,
        [
            Phase::Complete,
            Phase::Progressing,
            Phase::Draining,
            Phase::Complete
        ]
    );
    assert_at(r.phases[1].0, t0, 0.038);
    assert_at(r.phases[2].0, t0, 3.789);
    assert_at(r.phases[3].0, t0, 8.876);
}

/// Recreate: the controller deletes every old pod first and writes the new revision only when they
/// have stopped running (T0+5.230), so by the definition the rollout starts then, not at the
/// PATCH. The last old pod object goes at T0+5.273, before ready at T0+6.508, so complete equals
/// ready and the drain tail is 0. The three terminations (requested at 18:03:10) are still
/// measured, and the phase stays `complete` while they drain before the start: a documented
/// limit of the revision-based start.
#[test]
fn recreate_starts_at_the_new_revision_and_completes_at_ready() {
    let t0 = 1_795_802_590.462;
    let r = replay("recreate", at(t0, -1.0));
    let m = &r.last;
    assert_eq!(m.started_total, 1);
    assert_secs(only(&m.ready_duration), 1.277_939);
    assert_secs(only(&m.complete_duration), 1.277_939);
    assert_secs(only(&m.drain_tail), 0.0);
    let drains: Vec<f64> = r.drains.iter().map(|d| d.1).collect();
    assert_eq!(drains.len(), 3);
    for (got, want) in drains.iter().zip([5.620_714, 5.664_154, 5.734_906]) {
        assert_secs(*got, want);
    }
    let phases: Vec<Phase> = r.phases.iter().map(|p| p.1).collect();
    assert_eq!(
        phases,
        [Phase::Complete, Phase::Progressing, Phase::Complete]
    );
    assert_at(r.phases[1].0, t0, 5.230);
    assert_at(r.phases[2].0, t0, 6.508);
    assert_eq!(r.max_terminating, 3);
}

/// Pause, change the image, resume 4 s later: the revision (and so the start) comes only after
/// the resume, at T0+4.095; the phase is `paused` before. Ready T0+7.771, last old pod gone
/// T0+12.986.
#[test]
fn pause_starts_the_rollout_at_resume() {
    let t0 = 1_795_802_706.274;
    let r = replay("pause", at(t0, -1.0));
    let m = &r.last;
    assert_eq!(m.started_total, 1);
    assert_secs(only(&m.ready_duration), 3.676_653);
    assert_secs(only(&m.complete_duration), 8.891_817);
    assert_secs(only(&m.drain_tail), 5.215_164);
    let drains: Vec<f64> = r.drains.iter().map(|d| d.1).collect();
    for (got, want) in drains.iter().zip([5.816_480, 5.924_438, 5.260_712]) {
        assert_secs(*got, want);
    }
    assert_eq!(drains.len(), 3);
    let phases: Vec<Phase> = r.phases.iter().map(|p| p.1).collect();
    assert_eq!(
        phases,
        [
            Phase::Complete,
            Phase::Paused,
            Phase::Complete,
            Phase::Progressing,
            Phase::Draining,
            Phase::Complete
        ]
    );
    assert_at(r.phases[1].0, t0, 0.020);
    // Resume clears spec.paused at T0+4.059; nothing is in flight until the revision turns 2 at
    // T0+4.095, which is the start.
    assert_at(r.phases[2].0, t0, 4.059);
    assert_at(r.phases[3].0, t0, 4.095);
    assert_secs(
        m.last_started_timestamp.expect("start"),
        1_795_802_710.368_895,
    );
    assert_at(r.phases[4].0, t0, 7.771);
    assert_at(r.phases[5].0, t0, 12.986);
}
