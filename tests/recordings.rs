//! The model over real traffic recorded from a Kubernetes v1.36 control plane
//! (`tests/fixtures/k8s-recordings/`, with its `timeline.md` ground truth per scenario).
//!
//! One table row per scenario: what each metric must be after the replay, and when each phase
//! change must happen. Expected values follow from the definitions in the README; each row states
//! how. Durations are checked to the microsecond: receive times are exact, request times are
//! whole seconds. [`check`] makes every assertion for every row.

mod common;

use common::{Replay, assert_secs, replay};
use kube_rollout_exporter::model::{Phase, Timestamp};

/// What a recorded scenario must replay to.
struct Expected {
    /// The directory under `tests/fixtures/k8s-recordings/`.
    scenario: &'static str,
    /// T0 of the scenario's timeline.md; offsets below are from it (ms resolution).
    t0: f64,
    /// `kube_rollout_revision` at the end.
    revision: u64,
    /// The template's images at the end (`kube_rollout_revision_info`).
    images: &'static str,
    /// Each rollout, in order.
    rollouts: &'static [Rollout],
    /// Each old pod's termination duration, in the order the replay observes them.
    drains: &'static [f64],
    /// The most old pods terminating at once.
    max_terminating: u64,
    /// Every phase change, the first at the initial list (T0 - 1 s), with its timeline offset.
    phases: &'static [(Phase, f64)],
}

/// One rollout: its start (a timeline offset) and its three durations (to the microsecond).
struct Rollout {
    start: f64,
    ready: f64,
    complete: f64,
    drain_tail: f64,
}

/// Lists are delivered one second before T0: the exporter had just synced.
const LISTED: f64 = -1.0;

const TABLE: &[Expected] = &[
    // RollingUpdate 3 replicas, maxSurge 1, maxUnavailable 0, 8 s drains.
    // Start: the generation-2 event with the new template at T0+0.020 (the revision annotation
    // follows at T0+0.037). Ready: kubectl's test passes at T0+3.397, while all three old pods
    // still exist. Complete: the last old pod object is gone at T0+11.539 (metadata stream).
    // Drains: gone time minus (deletionTimestamp - 60 s), the first grace-60 value, not the
    // grace-0 rewrite.
    Expected {
        scenario: "rolling-update-drain",
        t0: 1_795_800_841.137,
        revision: 2,
        images: "registry.local/app:v2",
        rollouts: &[Rollout {
            start: 0.020,
            ready: 3.377_322,
            complete: 11.519_091,
            drain_tail: 8.141_769,
        }],
        drains: &[8.449_460, 8.530_417, 8.676_165],
        max_terminating: 3,
        phases: &[
            (Phase::Complete, LISTED),
            (Phase::Progressing, 0.020),
            (Phase::Draining, 3.397),
            (Phase::Complete, 11.539),
        ],
    },
    // v2 back to v1: the template returns to v1's with generation 3 at T0+0.026, the start. The
    // first ReplicaSet is reused, its revision annotation turns 3 17 ms before the Deployment's.
    // Ready T0+3.789, last old pod gone T0+8.876; 5 s drains.
    Expected {
        scenario: "rollback",
        t0: 1_795_802_531.984,
        revision: 3,
        images: "registry.local/app:v1",
        rollouts: &[Rollout {
            start: 0.026,
            ready: 3.763_104,
            complete: 8.850_453,
            drain_tail: 5.087_349,
        }],
        drains: &[5.460_885, 5.651_587, 5.860_305],
        max_terminating: 3,
        phases: &[
            (Phase::Complete, LISTED),
            (Phase::Progressing, 0.026),
            (Phase::Draining, 3.789),
            (Phase::Complete, 8.876),
        ],
    },
    // Recreate: the rollout starts at the user's change (generation 2, T0+0.019), not at the
    // revision the controller writes only once every old pod has stopped (T0+5.230). The old
    // pods drain inside the rollout; the last is gone at T0+5.273, before ready at T0+6.508, so
    // complete equals ready (6.489 s, where the revision-based start gave 1.28 s) and the drain
    // tail is 0.
    Expected {
        scenario: "recreate",
        t0: 1_795_802_590.462,
        revision: 2,
        images: "registry.local/app:v2",
        rollouts: &[Rollout {
            start: 0.019,
            ready: 6.489_127,
            complete: 6.489_127,
            drain_tail: 0.0,
        }],
        drains: &[5.620_714, 5.664_154, 5.734_906],
        max_terminating: 3,
        phases: &[
            (Phase::Complete, LISTED),
            (Phase::Progressing, 0.019),
            (Phase::Complete, 6.508),
        ],
    },
    // Pause (T0+0.020), change the image while paused (generation 3, nothing starts), resume 4 s
    // later: the resume event (generation 4, T0+4.059) is the start; the revision turns 2 at
    // T0+4.095. Ready T0+7.771, last old pod gone T0+12.986.
    Expected {
        scenario: "pause",
        t0: 1_795_802_706.274,
        revision: 2,
        images: "registry.local/app:v2",
        rollouts: &[Rollout {
            start: 4.059,
            ready: 3.712_424,
            complete: 8.927_588,
            drain_tail: 5.215_164,
        }],
        drains: &[5.816_480, 5.924_438, 5.260_712],
        max_terminating: 3,
        phases: &[
            (Phase::Complete, LISTED),
            (Phase::Paused, 0.020),
            (Phase::Progressing, 4.059),
            (Phase::Draining, 7.771),
            (Phase::Complete, 12.986),
        ],
    },
    // StatefulSet db/pg, 3 replicas, RollingUpdate: one pod at a time in reverse ordinal order,
    // each old pod gone before its successor is created, so every drain sits inside the rollout.
    // Start T0 (the template event); kubectl's test passes at T0+19.208 (currentRevision turns),
    // after the last old pod is gone (T0+18.020 on the metadata stream): ready = complete, no
    // drain tail. `pg-2` old and new are two pods (uids 25e009d3 and 342ed917).
    Expected {
        scenario: "statefulset-rolling",
        t0: 1_796_460_326.230_914,
        revision: 2,
        images: "registry.local/app:v2",
        rollouts: &[Rollout {
            start: 0.0,
            ready: 19.208_180,
            complete: 19.208_180,
            drain_tail: 0.0,
        }],
        drains: &[5.460_239, 5.854_282, 5.250_784],
        max_terminating: 1,
        phases: &[
            (Phase::Complete, LISTED),
            (Phase::Progressing, 0.0),
            (Phase::Complete, 19.208),
        ],
    },
    // Partition 2 with the template change: a canary (pg-2) replaced; ready and complete at
    // T0+6.304 (kubectl: updated >= replicas - partition). Partition 2 -> 0 at T0+9.517 with
    // pg-0 and pg-1 still old: a promotion, a second rollout from that event; ready and complete
    // at T0+22.339 (12.822 s).
    Expected {
        scenario: "statefulset-partition",
        t0: 1_796_460_397.448_696,
        revision: 2,
        images: "registry.local/app:v2",
        rollouts: &[
            Rollout {
                start: 0.0,
                ready: 6.304_374,
                complete: 6.304_374,
                drain_tail: 0.0,
            },
            Rollout {
                start: 9.517,
                ready: 12.821_880,
                complete: 12.821_880,
                drain_tail: 0.0,
            },
        ],
        drains: &[5.585_834, 6.146_311, 5.595_472],
        max_terminating: 1,
        phases: &[
            (Phase::Complete, LISTED),
            (Phase::Progressing, 0.0),
            (Phase::Complete, 6.304),
            (Phase::Progressing, 9.517),
            (Phase::Complete, 22.339),
        ],
    },
    // DaemonSet infra/agent on 3 nodes, maxUnavailable 1: a node counts as updated only once its
    // old pod has finished, so kubectl's moment (T0+18.894) comes after the last old pod is gone
    // (T0+17.848 on the metadata stream): ready = complete. The ControllerRevision arrives 27 ms
    // before the template event.
    Expected {
        scenario: "daemonset-rolling",
        t0: 1_796_460_470.300_781,
        revision: 2,
        images: "registry.local/app:v2",
        rollouts: &[Rollout {
            start: 0.0,
            ready: 18.893_966,
            complete: 18.893_966,
            drain_tail: 0.0,
        }],
        drains: &[5.581_272, 5.879_838, 6.148_518],
        max_terminating: 1,
        phases: &[
            (Phase::Complete, LISTED),
            (Phase::Progressing, 0.0),
            (Phase::Complete, 18.894),
        ],
    },
    // maxSurge 1, maxUnavailable 0: new pods start before old ones are deleted (the first new pod
    // arrives before its ControllerRevision, and is held until it comes). kubectl's moment
    // T0+8.572; the last old pod object is gone at T0+8.604 on the metadata stream the exporter
    // watches (T0+8.653 on the full stream the timeline lists): a 32 ms drain tail.
    Expected {
        scenario: "daemonset-surge",
        t0: 1_796_460_550.333_879,
        revision: 2,
        images: "registry.local/app:v2",
        rollouts: &[Rollout {
            start: 0.0,
            ready: 8.571_710,
            complete: 8.604_014,
            drain_tail: 0.032_304,
        }],
        drains: &[5.561_428, 5.928_106, 5.937_893],
        max_terminating: 3,
        phases: &[
            (Phase::Complete, LISTED),
            (Phase::Progressing, 0.0),
            (Phase::Draining, 8.572),
            (Phase::Complete, 8.604),
        ],
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
fn statefulset_rolling_replays_to_its_ground_truth() {
    replays_to_its_ground_truth("statefulset-rolling");
}

#[test]
fn statefulset_partition_replays_to_its_ground_truth() {
    replays_to_its_ground_truth("statefulset-partition");
}

#[test]
fn daemonset_rolling_replays_to_its_ground_truth() {
    replays_to_its_ground_truth("daemonset-rolling");
}

#[test]
fn daemonset_surge_replays_to_its_ground_truth() {
    replays_to_its_ground_truth("daemonset-surge");
}

#[test]
fn every_table_row_has_its_test() {
    let tested = [
        "rolling-update-drain",
        "rollback",
        "recreate",
        "pause",
        "statefulset-rolling",
        "statefulset-partition",
        "daemonset-rolling",
        "daemonset-surge",
    ];
    let rows: Vec<&str> = TABLE.iter().map(|e| e.scenario).collect();
    assert_eq!(rows, tested, "add a #[test] for each new row");
}

/// Every assertion for one scenario; a failure names the scenario.
fn check(e: &Expected, r: &Replay) {
    let what = e.scenario;
    let m = &r.last;
    // The expected rollouts, none superseded, of the expected revision.
    assert_eq!(m.started_total, e.rollouts.len() as u64, "{what}: started");
    assert_eq!(m.superseded_total, 0, "{what}: superseded");
    assert_eq!(m.revision, Some(e.revision), "{what}: revision");
    let starts = r.starts();
    assert_eq!(starts.len(), e.rollouts.len(), "{what}: starts");
    let ready = r.observations(|m| &m.ready_duration);
    let complete = r.observations(|m| &m.complete_duration);
    let tail = r.observations(|m| &m.drain_tail);
    for (what, got) in [("ready", &ready), ("complete", &complete), ("tail", &tail)] {
        assert_eq!(
            got.len(),
            e.rollouts.len(),
            "{}: {what} observations",
            e.scenario
        );
    }
    for (i, want) in e.rollouts.iter().enumerate() {
        assert_at(starts[i], e.t0, want.start);
        assert_secs(ready[i], want.ready);
        assert_secs(complete[i], want.complete);
        assert_secs(tail[i], want.drain_tail);
    }
    let drains: Vec<f64> = r.drains.iter().map(|d| d.1).collect();
    assert_eq!(
        drains.len(),
        e.drains.len(),
        "{what}: one drain per old pod"
    );
    for (got, want) in drains.iter().zip(e.drains) {
        assert_secs(*got, *want);
    }
    let phases: Vec<Phase> = r.phases.iter().map(|p| p.1).collect();
    let want: Vec<Phase> = e.phases.iter().map(|p| p.0).collect();
    assert_eq!(phases, want, "{what}: phases");
    for ((got, _), (_, offset)) in r.phases.iter().zip(e.phases) {
        assert_at(*got, e.t0, *offset);
    }
    // The completion is the receive time of the last phase change, to the microsecond.
    let (done, _) = r.phases.last().expect("phases");
    assert_secs(
        m.last_completed_timestamp.expect("completed"),
        done.as_secs_f64(),
    );
    assert_eq!(
        r.max_terminating, e.max_terminating,
        "{what}: most terminating at once"
    );
    assert_eq!(m.terminating_pods, 0, "{what}: terminating at the end");
    assert_eq!(m.in_progress_seconds, 0.0, "{what}: in progress at the end");
    assert_eq!(m.slow_total, vec![(900, 0)], "{what}: slow rollouts");
    let stats = r.model.stats();
    assert_eq!(
        stats.imprecise_gap_terminations + stats.imprecise_unknown_request,
        0,
        "{what}: every observation precise"
    );
    assert_eq!(stats.unknown_start_rollouts, 0, "{what}: every start known");
    // Grace-period fit: every recorded template has a 60 s grace, and every drain (5 or 8 s)
    // ended well within it; nothing was ever overdue.
    assert_eq!(m.grace_period_seconds, Some(60), "{what}: grace period");
    assert_eq!(
        m.grace_exhausted_total, 0,
        "{what}: no drain used up its grace"
    );
    assert!(
        r.history
            .iter()
            .all(|(_, m)| m.terminating_pods_overdue == 0),
        "{what}: never overdue"
    );
    let info = m.revision_info.as_ref().expect("the workload is known");
    assert_eq!(info.revision, Some(e.revision), "{what}: info revision");
    assert_eq!(
        info.images, e.images,
        "{what}: the update template's images"
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
