//! Odd and hostile objects (issue 9): each case asserts what the model does with it, and that
//! nothing panics. The builders and the harness are the parent module's.

use std::time::Instant;

use super::*;
use crate::model::namespace::RsOwner;

/// Equal up to a relative error of 1e-12 (values far too large for `assert_secs`' absolute 1e-6).
#[track_caller]
fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() <= expected.abs() * 1e-12,
        "expected {expected}, got {actual}"
    );
}

fn with_owner(p: PodState, owner: Option<(&str, &str)>) -> PodState {
    PodState {
        owner: owner.map(|(kind, name)| ControllerRef {
            kind: kind.into(),
            name: name.into(),
        }),
        ..p
    }
}

#[test]
fn pods_outside_deployments_are_ignored_in_either_arrival_order() {
    struct Case {
        name: &'static str,
        /// The pods' controller.
        pod_owner: Option<(&'static str, &'static str)>,
        /// The ReplicaSet `web-x` the pods may point at, with its own controller.
        replicaset_owner: Option<Option<(&'static str, &'static str)>>,
    }
    for case in [
        Case {
            name: "no controller",
            pod_owner: None,
            replicaset_owner: None,
        },
        Case {
            name: "a Job",
            pod_owner: Some(("Job", "batch")),
            replicaset_owner: None,
        },
        Case {
            name: "a StatefulSet (not watched)",
            pod_owner: Some(("StatefulSet", "db")),
            replicaset_owner: None,
        },
        Case {
            name: "a bare ReplicaSet",
            pod_owner: Some(("ReplicaSet", "web-x")),
            replicaset_owner: Some(None),
        },
        Case {
            name: "a ReplicaSet controlled by a StatefulSet",
            pod_owner: Some(("ReplicaSet", "web-x")),
            replicaset_owner: Some(Some(("StatefulSet", "db"))),
        },
        Case {
            name: "a ReplicaSet controlled by another kind named like the Deployment",
            pod_owner: Some(("ReplicaSet", "web-x")),
            replicaset_owner: Some(Some(("CloneSet", "web"))),
        },
    ] {
        for replicaset_first in [true, false] {
            let name = format!("{}, ReplicaSet first: {replicaset_first}", case.name);
            let x = |n| with_owner(pod("x", n), case.pod_owner);
            let replicaset = case.replicaset_owner.map(|owner| ReplicaSetState {
                key: key("web-x"),
                owner: owner.map(|(kind, name)| ControllerRef {
                    kind: kind.into(),
                    name: name.into(),
                }),
                revision: Some(1),
                created: Some(t(-5.0)),
            });
            // Only Deployments watched: a StatefulSet's pods are outside too.
            let mut c = Cluster::steady_v1_with(deployments_only());
            if replicaset_first && let Some(r) = &replicaset {
                c.rs(0.5, r.clone());
            }
            c.pod(1.0, x(1))
                .pod(1.0, draining(x(2), 1.0))
                .pod(1.0, draining(x(3), 1.0))
                .finished(1.5, &x(1));
            // A termination that ends while the owner may still be unknown.
            c.gone(3.0, draining(x(2), 1.0));
            if !replicaset_first && let Some(r) = &replicaset {
                c.rs(4.0, r.clone());
            }
            let snapshot = c.model.snapshot(t(5.0));
            assert_eq!(snapshot.len(), 1, "{name}: only shop/web is exported");
            let m = &snapshot[0];
            assert_eq!(m.key, WorkloadKey::deployment("shop", "web"), "{name}");
            assert_eq!(m.terminating_pods, 0, "{name}");
            assert!(m.pod_termination_duration.is_none(), "{name}");
            assert_eq!(
                c.model.stats().pods,
                3,
                "{name}: only web's pods are tracked"
            );
            // They all go: nothing of them is left behind.
            c.gone(6.0, draining(x(3), 1.0)).gone(6.0, x(1));
            c.event(6.0, Event::FinishedPod(Change::Deleted(finished(&x(1)))));
            if let Some(r) = replicaset {
                c.event(6.0, Event::ReplicaSet(Change::Deleted(r)));
            }
            assert_eq!(c.model.slots().count(), 1, "{name}: only web-a's slot");
            assert_eq!(c.model.pod_count(), 3, "{name}");
            assert_eq!(c.model.pending_count(), 0, "{name}");
            assert_eq!(c.model.workload_count(), 1, "{name}");
            let m = c.web(7.0);
            assert_eq!(
                (m.phase, m.terminating_pods),
                (Phase::Complete, 0),
                "{name}"
            );
            assert!(m.pod_termination_duration.is_none(), "{name}");
        }
    }
}

#[test]
fn a_pod_whose_replicaset_never_appears_is_held_until_the_next_replicaset_relist() {
    // A dangling controller reference (or a ReplicaSet event that never comes): the pod is held,
    // its termination too, as for any owner not known yet. Only a relist of ReplicaSets proves
    // the owner does not exist; until then the held slot stays. A known limit, not a promise.
    let mut c = Cluster::steady_v1();
    let ghost = draining(pod("ghost", 1), 1.0);
    c.pod(1.0, ghost.clone()).gone(5.0, ghost);
    assert_eq!(c.model.stats().pods, 3);
    assert_eq!(
        c.model
            .slot(&key("web-ghost"))
            .expect("held")
            .early_observations
            .len(),
        1
    );
    assert!(c.web(6.0).pod_termination_duration.is_none());
    c.event(
        600.0,
        Event::ReplicaSet(Change::Relisted(vec![rs("a", 1, -1000.0)])),
    );
    assert_eq!(c.model.slots().count(), 1, "dropped at the relist");
    assert!(c.web(601.0).pod_termination_duration.is_none());
    assert_eq!(c.model.stats().imprecise_gap_terminations, 0);
}

#[test]
fn a_replicaset_without_a_revision_is_never_current_and_its_active_pods_block_completion() {
    // README: the current ReplicaSet is the one whose revision equals the Deployment's; every
    // other one's terminating or active pods block completion. A ReplicaSet without the
    // annotation is therefore never current.
    let unannotated = |r: ReplicaSetState| ReplicaSetState {
        revision: None,
        ..r
    };

    // The new ReplicaSet as first seen, before the controller's annotation reaches us.
    let mut c = Cluster::steady_v1();
    c.dep(10.0, started(2))
        .rs(10.0, unannotated(rs("b", 2, 10.0)));
    for n in 1..=3 {
        c.pod(10.5, pod("b", n))
            .gone(11.0, draining(pod("a", n), 10.5));
    }
    c.dep(12.0, ready(2));
    let m = c.web(13.0);
    assert_eq!(
        m.phase,
        Phase::Draining,
        "web-b is not current, and its running pods are those of a non-current ReplicaSet"
    );
    assert_eq!(count(&m.complete_duration), 0);
    c.rs(14.0, rs("b", 2, 10.0));
    let m = c.web(14.0);
    assert_eq!(m.phase, Phase::Complete);
    assert_secs(sum(&m.complete_duration), 4.0);

    // An adopted ReplicaSet that never gets a revision: its running pod blocks until it
    // finishes (or goes).
    let mut c = Cluster::steady_v1();
    c.rs(1.0, unannotated(rs("x", 1, -50.0)))
        .pod(1.0, pod("x", 1));
    assert_eq!(
        c.web(2.0).phase,
        Phase::Complete,
        "no rollout, nothing to block"
    );
    c.roll_to_v2();
    for n in 1..=3 {
        c.gone(20.0, draining(pod("a", n), 10.0 + n as f64));
    }
    assert_eq!(c.web(21.0).phase, Phase::Draining);
    c.finished(22.0, &pod("x", 1));
    let m = c.web(22.0);
    assert_eq!(m.phase, Phase::Complete);
    assert_secs(sum(&m.complete_duration), 12.0);

    // After an exporter restart, a steady Deployment whose only ReplicaSet has no revision: that
    // ReplicaSet is not current, so its running pods make a rollout in flight, with an unknown
    // start, until the annotation arrives.
    let mut c = Cluster::synced(
        vec![steady(1)],
        vec![unannotated(rs("a", 1, -1000.0))],
        vec![pod("a", 1), pod("a", 2), pod("a", 3)],
    );
    assert_eq!(c.model.stats().unknown_start_rollouts, 1);
    let m = c.web(100.0);
    assert_eq!(m.phase, Phase::Draining);
    assert_secs(m.in_progress_seconds, 100.0);
    c.rs(101.0, rs("a", 1, -1000.0));
    let m = c.web(101.0);
    assert_eq!(m.phase, Phase::Complete);
    assert!(m.complete_duration.is_none(), "start unknown");
    // Ready at the condition's lastUpdateTime (-1000 s), as for any rollout recovered ready.
    assert_secs(sum(&m.drain_tail), 1101.0);
}

#[test]
fn only_the_first_deletion_state_seen_decides_whether_the_request_time_is_known() {
    struct Case {
        name: &'static str,
        /// Grace of the first state seen (deadline 40 s, at 10 s).
        first: Option<i64>,
        /// Grace of a later state (deadline 20 s, at 20 s): the kubelet's rewrite, a shorter
        /// delete, or garbage.
        later: Option<i64>,
        observed: bool,
    }
    for case in [
        Case {
            name: "grace 30, then the grace-0 rewrite",
            first: Some(30),
            later: Some(0),
            observed: true,
        },
        Case {
            name: "grace 30, then the grace missing",
            first: Some(30),
            later: None,
            observed: true,
        },
        Case {
            name: "grace 30, then a negative grace",
            first: Some(30),
            later: Some(-5),
            observed: true,
        },
        Case {
            name: "grace 30, then a shorter delete (requested later)",
            first: Some(30),
            later: Some(5),
            observed: true,
        },
        Case {
            name: "grace missing, then 30",
            first: None,
            later: Some(30),
            observed: false,
        },
        Case {
            name: "grace 0 (force delete), then 30",
            first: Some(0),
            later: Some(30),
            observed: false,
        },
        Case {
            name: "negative grace",
            first: Some(-5),
            later: Some(-5),
            observed: false,
        },
    ] {
        let name = case.name;
        let mut c = Cluster::steady_v1();
        c.pod(10.0, deleting(pod("a", 1), 40.0, case.first));
        // Known: requested at 10 s. Unknown: counted from the first receive time, also 10 s.
        assert_secs(c.web(12.0).oldest_termination_seconds, 2.0);
        c.pod(20.0, deleting(pod("a", 1), 20.0, case.later));
        let m = c.web(30.0);
        assert_eq!(
            (m.terminating_pods, m.terminating_pods_overdue),
            (1, 0),
            "{name}: the first deadline (40 s) decides overdue"
        );
        assert_secs(m.oldest_termination_seconds, 20.0);
        assert_eq!(c.web(41.0).terminating_pods_overdue, 1, "{name}");
        c.gone(45.0, deleting(pod("a", 1), 20.0, case.later));
        let m = c.web(45.0);
        assert_eq!(m.terminating_pods, 0, "{name}");
        if case.observed {
            assert_eq!(count(&m.pod_termination_duration), 1, "{name}");
            assert_secs(sum(&m.pod_termination_duration), 35.0);
        } else {
            assert!(m.pod_termination_duration.is_none(), "{name}");
        }
        assert_eq!(
            c.model.stats().imprecise_unknown_request,
            u64::from(!case.observed),
            "{name}"
        );
    }
}

#[test]
fn a_deletion_request_far_in_the_past_is_reported_as_it_is() {
    // Decades of clock skew, or a hand-made object: requested at the Unix epoch.
    let ancient = PodState {
        deletion: Some(Deletion {
            deadline: Timestamp::from_secs(60),
            grace_seconds: Some(60),
        }),
        ..pod("a", 1)
    };
    let mut c = Cluster::steady_v1();
    c.pod(10.0, ancient.clone());
    let m = c.web(20.0);
    assert_eq!((m.terminating_pods, m.terminating_pods_overdue), (1, 1));
    assert_close(m.oldest_termination_seconds, t(20.0).as_secs_f64());
    c.gone(30.0, ancient);
    let h = c
        .web(30.0)
        .pod_termination_duration
        .expect("observed, not dropped");
    assert_eq!(h.count(), 1);
    assert_close(h.sum(), t(30.0).as_secs_f64());
    let buckets: Vec<(f64, u64)> = h.cumulative_buckets().collect();
    assert_eq!(buckets[buckets.len() - 2].1, 0, "above the largest bound");
    assert_eq!(buckets[buckets.len() - 1], (f64::INFINITY, 1));
}

#[test]
fn extreme_deletion_timestamps_and_grace_periods_saturate_and_never_go_negative() {
    const MAX_SECS: f64 = i64::MAX as f64 / 1e6;
    struct Case {
        name: &'static str,
        deadline: Timestamp,
        grace: Option<i64>,
        /// Oldest termination at 10 s (just seen).
        oldest: f64,
        /// Overdue a million seconds later.
        overdue_later: u64,
        /// The observation when gone at 20 s.
        observed: Option<f64>,
    }
    for case in [
        Case {
            name: "a year ahead",
            deadline: t(365.0 * 86_400.0),
            grace: Some(30),
            oldest: 0.0,
            overdue_later: 0,
            observed: Some(0.0),
        },
        Case {
            name: "the largest timestamp",
            deadline: Timestamp::from_micros(i64::MAX),
            grace: Some(30),
            oldest: 0.0,
            overdue_later: 0,
            observed: Some(0.0),
        },
        Case {
            name: "the smallest timestamp",
            deadline: Timestamp::from_micros(i64::MIN),
            grace: Some(30),
            oldest: MAX_SECS,
            overdue_later: 1,
            observed: Some(MAX_SECS),
        },
        Case {
            name: "the largest grace",
            deadline: t(40.0),
            grace: Some(i64::MAX),
            oldest: MAX_SECS - 30.0,
            overdue_later: 1,
            observed: Some(MAX_SECS - 20.0),
        },
        Case {
            name: "the smallest grace",
            deadline: t(40.0),
            grace: Some(i64::MIN),
            oldest: 0.0,
            overdue_later: 1,
            observed: None,
        },
        Case {
            name: "the largest timestamp and grace",
            deadline: Timestamp::from_micros(i64::MAX),
            grace: Some(i64::MAX),
            oldest: t(10.0).as_secs_f64(),
            overdue_later: 0,
            observed: Some(t(20.0).as_secs_f64()),
        },
    ] {
        let name = case.name;
        let p = PodState {
            deletion: Some(Deletion {
                deadline: case.deadline,
                grace_seconds: case.grace,
            }),
            ..pod("a", 1)
        };
        let mut c = Cluster::steady_v1();
        c.pod(10.0, p.clone());
        let m = c.web(10.0);
        assert_eq!(m.terminating_pods, 1, "{name}");
        assert_close(m.oldest_termination_seconds, case.oldest);
        let later = c.model.clone().snapshot(t(1e6)).remove(0);
        assert_eq!(later.terminating_pods_overdue, case.overdue_later, "{name}");
        assert!(
            later.oldest_termination_seconds.is_finite() && later.oldest_termination_seconds >= 0.0,
            "{name}"
        );
        c.gone(20.0, p);
        let m = c.web(20.0);
        assert_eq!(m.terminating_pods, 0, "{name}");
        match case.observed {
            Some(v) => assert_close(sum(&m.pod_termination_duration), v),
            None => assert!(m.pod_termination_duration.is_none(), "{name}"),
        }
    }
}

#[test]
fn a_finalizer_that_never_goes_keeps_the_pod_overdue_and_the_rollout_draining_without_growth() {
    let mut c = Cluster::steady_v1();
    c.roll_to_v2();
    c.gone(70.0, draining(pod("a", 2), 12.0))
        .gone(71.0, draining(pod("a", 3), 13.0));
    // a-1 carries a finalizer nobody removes: the kubelet's grace-0 rewrite comes, the object
    // stays, and a day of updates follows (retries, status writes, hourly relists).
    let stuck = || deleting(pod("a", 1), 72.0, Some(0));
    c.pod(72.0, stuck());
    // What a record says about its pod (the list that last listed it aside).
    let state = |m: &Model| {
        m.pod_record(&pod("a", 1))
            .map(|r| (r.rs.clone(), r.termination.clone(), r.finished))
    };
    let record = state(&c.model);
    let stats = c.model.stats();
    for i in 1..=8640 {
        let at = 72.0 + 10.0 * i as f64;
        c.pod(at, deleting(pod("a", 1), at, Some(0)));
        if i % 360 == 0 {
            let listed = vec![
                deleting(pod("a", 1), at, Some(0)),
                pod("b", 1),
                pod("b", 2),
                pod("b", 3),
            ];
            c.event(at, Event::Pod(Change::Relisted(listed)));
        }
    }
    let end = 72.0 + 86_400.0;
    let m = c.web(end);
    assert_eq!((m.terminating_pods, m.terminating_pods_overdue), (1, 1));
    assert_secs(m.oldest_termination_seconds, end - 11.0);
    assert_eq!(m.phase, Phase::Draining);
    assert_secs(m.in_progress_seconds, end - 10.0);
    assert_eq!(m.slow_total, vec![(900, 1)], "counted once");
    assert_eq!(count(&m.complete_duration), 0);
    assert_eq!(count(&m.pod_termination_duration), 2);
    // Nothing grew: one record, as first seen (request 11 s, first deadline 71 s).
    assert_eq!(state(&c.model), record);
    assert!(record.is_some());
    assert_eq!(c.model.slots().count(), 2);
    assert!(c.model.slots().all(|s| s.early_observations.is_empty()));
    assert_eq!(c.model.stats(), stats);
    // The finalizer goes at last: one observation, and the rollout completes.
    c.gone(end + 1.0, stuck());
    let m = c.web(end + 1.0);
    assert_eq!(count(&m.pod_termination_duration), 3);
    assert_eq!(count(&m.complete_duration), 1);
    assert_eq!(m.phase, Phase::Complete);
    assert_eq!(m.slow_total, vec![(900, 1)]);
}

#[test]
fn evicted_leftovers_never_block_but_a_finished_pod_being_deleted_does() {
    // Evicted (Failed, no deletionTimestamp): ignored by completion; deleted much later, it is a
    // plain termination of the workload.
    let mut c = Cluster::steady_v1();
    c.dep(10.0, started(2)).rs(10.0, rs("b", 2, 10.0));
    c.finished(10.5, &pod("a", 3));
    c.gone(11.0, draining(pod("a", 1), 11.0))
        .gone(11.0, draining(pod("a", 2), 11.0));
    c.dep(12.0, ready(2));
    assert_eq!(c.web(12.0).phase, Phase::Complete);
    c.pod(100.0, draining(pod("a", 3), 100.0));
    let m = c.web(101.0);
    assert_eq!((m.phase, m.terminating_pods), (Phase::Complete, 1));
    c.gone(105.0, draining(pod("a", 3), 100.0));
    let m = c.web(105.0);
    assert_eq!(count(&m.pod_termination_duration), 3);
    assert_eq!(count(&m.complete_duration), 1);

    // Finished and being deleted (terminating in any phase): blocks until gone.
    let mut c = Cluster::steady_v1();
    c.dep(10.0, started(2)).rs(10.0, rs("b", 2, 10.0));
    c.finished(10.5, &pod("a", 3))
        .pod(10.6, draining(pod("a", 3), 10.0));
    c.gone(11.0, draining(pod("a", 1), 11.0))
        .gone(11.0, draining(pod("a", 2), 11.0));
    c.dep(12.0, ready(2));
    assert_eq!(c.web(12.0).phase, Phase::Draining);
    c.gone(15.0, draining(pod("a", 3), 10.0));
    assert_eq!(c.web(15.0).phase, Phase::Complete);

    // After a restart, evicted leftovers in an old ReplicaSet do not make a rollout in flight;
    // the same pods still running do.
    for (evicted, in_flight) in [(true, false), (false, true)] {
        let done = if evicted {
            vec![finished(&pod("a", 1)), finished(&pod("a", 2))]
        } else {
            vec![]
        };
        let mut c = Cluster::synced_at(
            0.0,
            vec![steady(2)],
            vec![rs("a", 1, -2000.0), rs("b", 2, -1000.0)],
            vec![
                pod("a", 1),
                pod("a", 2),
                pod("b", 1),
                pod("b", 2),
                pod("b", 3),
            ],
            done,
        );
        let m = c.web(10.0);
        assert_eq!(m.in_progress_seconds > 0.0, in_flight, "evicted: {evicted}");
        assert_eq!(m.phase == Phase::Complete, !in_flight, "evicted: {evicted}");
    }
}

#[test]
fn an_eviction_seen_only_at_a_relist_of_the_phase_source_completes_as_imprecise() {
    // The last old pod was evicted while the phase-source watch was down: completion is found
    // at its relist, timed there, and counted as imprecise like any milestone of a gap.
    for namespaced in [false, true] {
        let mut c = Cluster::steady_v1();
        c.dep(10.0, started(2)).rs(10.0, rs("b", 2, 10.0));
        c.gone(11.0, draining(pod("a", 1), 11.0))
            .gone(11.0, draining(pod("a", 2), 11.0));
        c.dep(12.0, ready(2));
        assert_eq!(c.web(12.0).phase, Phase::Draining);
        let listed = vec![finished(&pod("a", 3))];
        let relist = if namespaced {
            Change::RelistedNamespace("shop".into(), listed)
        } else {
            Change::Relisted(listed)
        };
        c.event(30.0, Event::FinishedPod(relist));
        let m = c.web(30.0);
        assert_eq!(m.phase, Phase::Complete, "namespaced: {namespaced}");
        assert_secs(sum(&m.complete_duration), 20.0);
        assert_eq!(
            c.model.stats().imprecise_gap_milestones,
            1,
            "namespaced: {namespaced}"
        );
    }
}

#[test]
fn thousands_of_replicasets_per_deployment() {
    // revisionHistoryLimit is 10 by default; a Deployment with it unset to a huge value, or a
    // controller gone wild, can leave thousands. Correctness only: timings are printed, never
    // asserted.
    const N: u64 = 3000;
    let history: Vec<ReplicaSetState> = (1..=N)
        .map(|r| rs(&format!("h{r}"), r, -100_000.0 + r as f64))
        .collect();
    let current = |n| pod(&format!("h{N}"), n);
    let clock = Instant::now();
    let mut c = Cluster::synced(
        vec![steady(N)],
        history.clone(),
        vec![current(1), current(2), current(3)],
    );
    let synced = clock.elapsed();
    let m = c.web(1.0);
    assert_eq!((m.phase, m.revision), (Phase::Complete, Some(N)));
    assert_eq!(
        m.in_progress_seconds, 0.0,
        "the current one found among {N}"
    );

    // A rollout to revision N+1.
    let clock = Instant::now();
    c.dep(10.0, started(N + 1)).rs(10.0, rs("new", N + 1, 10.0));
    for n in 1..=3 {
        c.pod(11.0, pod("new", n))
            .pod(11.5, draining(current(n), 11.0));
    }
    c.dep(12.0, ready(N + 1));
    assert_eq!(c.web(12.0).phase, Phase::Draining);
    for n in 1..=3 {
        c.gone(20.0, draining(current(n), 11.0));
    }
    let m = c.web(20.0);
    assert_eq!(m.phase, Phase::Complete);
    assert_secs(sum(&m.complete_duration), 10.0);
    let rolled = clock.elapsed();

    // A live relist of all of them (after a watch gap) changes nothing.
    let mut all = history.clone();
    all.push(rs("new", N + 1, 10.0));
    let clock = Instant::now();
    c.event(30.0, Event::ReplicaSet(Change::Relisted(all.clone())));
    let relisted = clock.elapsed();
    let m = c.web(30.0);
    assert_eq!(
        (count(&m.complete_duration), m.started_total),
        (1, 1),
        "nothing observed again"
    );

    // A rollback to the oldest: h1 becomes revision N+2 and current.
    c.dep(40.0, started(N + 2));
    c.pod(41.0, pod("h1", 1))
        .pod(41.5, draining(pod("new", 1), 41.0));
    c.dep(42.0, ready(N + 2));
    // A live relist while the rollout is in flight: every ReplicaSet re-evaluates it.
    let clock = Instant::now();
    c.event(42.5, Event::ReplicaSet(Change::Relisted(all)));
    let relisted_in_flight = clock.elapsed();
    assert_eq!(c.web(42.5).phase, Phase::Draining);
    c.gone(43.0, draining(pod("new", 1), 41.0))
        .gone(43.0, pod("new", 2))
        .gone(43.0, pod("new", 3));
    assert_eq!(c.web(43.0).phase, Phase::Draining, "h1 still at revision 1");
    c.rs(44.0, rs("h1", N + 2, -100_000.0 + 1.0));
    let m = c.web(44.0);
    assert_eq!(m.phase, Phase::Complete);
    assert_eq!(count(&m.complete_duration), 2);
    assert_secs(sum(&m.complete_duration), 10.0 + 4.0);
    eprintln!(
        "{N} ReplicaSets: initial sync {synced:?}, one rollout {rolled:?}, live relist \
         {relisted:?}, live relist in flight {relisted_in_flight:?}"
    );
}

#[test]
fn names_of_253_characters_and_unicode_are_keys_like_any_other() {
    fn padded(prefix: &str) -> String {
        let mut s = prefix.to_string();
        while s.chars().count() < 253 {
            s.push('x');
        }
        s
    }
    let unicode_ns = "名前空間-ñ-🚀";
    let long = padded("d");
    let deployments = [
        ("shop", long.clone()),
        (unicode_ns, long.clone()),
        (unicode_ns, "wéb-部署-🚀".to_string()),
    ];
    let dep = |ns: &str, name: &str, d: DeploymentState| DeploymentState {
        key: ObjectKey::new(ns, name),
        uid: format!("{ns}/{name}").into(),
        ..d
    };
    let prefix = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    let replicaset = |ns: &str, name: &str, hash: &str, revision: u64| ReplicaSetState {
        key: ObjectKey::new(ns, padded(&format!("{}-{hash}", prefix(name, 230)))),
        owner: Some(ControllerRef {
            kind: "Deployment".into(),
            name: name.into(),
        }),
        revision: Some(revision),
        created: Some(t(-100.0 + revision as f64)),
    };
    let member = |r: &ReplicaSetState, n: u32| PodState {
        finalizers: Vec::new(),
        key: ObjectKey::new(
            r.key.namespace.clone(),
            padded(&format!("{}-{n}", prefix(&r.key.name, 240))),
        ),
        uid: format!("{}/{}/{n}", r.key.namespace, r.key.name).into(),
        owner: Some(ControllerRef {
            kind: "ReplicaSet".into(),
            name: r.key.name.clone(),
        }),
        deletion: None,
        revision_hash: None,
        ready: None,
    };
    let mut c = Cluster::synced(
        deployments
            .iter()
            .map(|(ns, name)| dep(ns, name, steady(1)))
            .collect(),
        deployments
            .iter()
            .map(|(ns, name)| replicaset(ns, name, "a", 1))
            .collect(),
        deployments
            .iter()
            .map(|(ns, name)| member(&replicaset(ns, name, "a", 1), 1))
            .collect(),
    );
    // The same names in two namespaces stay apart: only the unicode namespace rolls out.
    for (ns, name) in deployments.iter().skip(1) {
        let (old, new) = (replicaset(ns, name, "a", 1), replicaset(ns, name, "b", 2));
        c.dep(10.0, dep(ns, name, started(2))).rs(10.0, new.clone());
        c.pod(11.0, member(&new, 1))
            .pod(11.0, draining(member(&old, 1), 11.0));
        c.dep(12.0, dep(ns, name, ready(2)));
        c.gone(15.0, draining(member(&old, 1), 11.0));
    }
    let snapshot = c.model.snapshot(t(20.0));
    let keys: Vec<WorkloadKey> = snapshot.iter().map(|m| m.key.clone()).collect();
    let mut expected: Vec<WorkloadKey> = deployments
        .iter()
        .map(|(ns, name)| WorkloadKey::deployment(*ns, name.clone()))
        .collect();
    expected.sort();
    assert_eq!(keys, expected);
    for m in &snapshot {
        let rolled = m.key.namespace == unicode_ns;
        assert_eq!(m.started_total, u64::from(rolled), "{:?}", m.key);
        assert_eq!(count(&m.complete_duration), u64::from(rolled));
        assert_eq!(count(&m.pod_termination_duration), u64::from(rolled));
        assert_eq!(m.phase, Phase::Complete);
    }
    assert_eq!(c.model.stats().pods, 3);
}

#[test]
fn a_pod_first_seen_after_its_replicaset_was_deleted_is_held_until_the_next_replicaset_relist() {
    // The ReplicaSet stream runs ahead: a ReplicaSet created and deleted (a Deployment deleted
    // right after a scale-up) before the pod stream delivers its newest pod. The model no longer
    // knows the ReplicaSet, so the pod is held as if its owner were still to come: its
    // termination counts nowhere, its observation waits, and the held slot stays after every
    // object is gone, until a relist of ReplicaSets. A known limit, not a promise: the model
    // keeps nothing of deleted ReplicaSets, so a late pod's owner is unknown again.
    let mut c = Cluster::steady_v1();
    c.rs(1.0, rs("b", 2, 1.0));
    c.event(2.0, Event::ReplicaSet(Change::Deleted(rs("b", 2, 1.0))));
    assert!(c.model.slot(&key("web-b")).is_none());
    c.pod(3.0, pod("b", 1)).pod(3.0, draining(pod("b", 1), 2.0));
    assert_eq!(c.web(4.0).terminating_pods, 0, "held: not attributed");
    c.gone(5.0, draining(pod("b", 1), 2.0));
    assert!(c.web(6.0).pod_termination_duration.is_none());
    let held = c.model.slot(&key("web-b")).expect("held");
    assert_eq!((held.owner.clone(), held.exists), (RsOwner::Unknown, false));
    assert_eq!(held.early_observations.len(), 1);
    c.event(
        60.0,
        Event::ReplicaSet(Change::Relisted(vec![rs("a", 1, -1000.0)])),
    );
    assert!(c.model.slot(&key("web-b")).is_none());
    assert!(
        c.web(61.0).pod_termination_duration.is_none(),
        "never observed"
    );
}

#[test]
fn a_deployment_created_again_while_its_old_replicaset_lingers_still_sees_that_replicaset() {
    // Deleted and created again under the same name (kubectl replace --force, a CI pipeline)
    // before the garbage collector removed the old ReplicaSet, whose pod the pod stream reports
    // late. That ReplicaSet still names the Deployment: its pods block completion and their
    // terminations count, as for any ReplicaSet of it.
    let mut c = Cluster::synced(vec![steady(3)], vec![rs("a", 3, -1000.0)], vec![]);
    c.event(10.0, Event::Deployment(Change::Deleted(steady(3))));
    assert!(c.find(10.0, "web").is_none(), "no pod: its series go");
    c.pod(10.5, pod("a", 1));
    let again = |d: DeploymentState| DeploymentState {
        uid: "web-uid-2".into(),
        ..d
    };
    c.dep(
        11.0,
        again(DeploymentState {
            created: Some(t(11.0)),
            ..started(1)
        }),
    )
    .rs(11.0, rs("b", 1, 11.0))
    .pod(11.5, pod("b", 1));
    c.dep(
        12.0,
        again(DeploymentState {
            created: Some(t(11.0)),
            ..ready(1)
        }),
    );
    let m = c.web(12.0);
    assert_eq!(m.started_total, 1, "the new Deployment starts afresh");
    assert_eq!(m.phase, Phase::Draining, "web-a-1 still runs");
    // The garbage collector deletes the old pod, then the old ReplicaSet.
    c.pod(13.0, draining(pod("a", 1), 13.0));
    assert_eq!(c.web(13.5).terminating_pods, 1);
    c.gone(20.0, draining(pod("a", 1), 13.0));
    c.event(
        20.0,
        Event::ReplicaSet(Change::Deleted(rs("a", 3, -1000.0))),
    );
    let m = c.web(20.0);
    assert_eq!(m.phase, Phase::Complete);
    assert_secs(sum(&m.complete_duration), 9.0);
    assert_eq!(count(&m.pod_termination_duration), 1);
    for e in [
        Event::Deployment(Change::Relisted(vec![])),
        Event::ReplicaSet(Change::Relisted(vec![])),
        Event::Pod(Change::Relisted(vec![])),
    ] {
        c.event(30.0, e);
    }
    assert!(c.model.is_empty());
}

#[test]
fn a_relist_is_judged_as_one_state_not_half_applied() {
    // Revision 2 is ready and draining when the pod watch drops. During the gap the old pods go
    // and a rollback to web-a gives it a new pod; the Deployment stream has not told us yet. The
    // relisted pods say web-a has a running pod, so revision 2 is not complete: it is superseded
    // when the rollback's revision arrives.
    let mut c = Cluster::steady_v1();
    c.roll_to_v2();
    assert_eq!(c.web(14.0).phase, Phase::Draining);
    let listed = vec![pod("b", 1), pod("b", 2), pod("b", 3), pod("a", 4)];
    c.event(30.0, Event::Pod(Change::Relisted(listed)));
    let m = c.web(30.0);
    assert_eq!(m.phase, Phase::Draining, "web-a-4 runs");
    assert_eq!(count(&m.complete_duration), 0);
    assert_eq!(count(&m.pod_termination_duration), 3);
    c.dep(31.0, started(3));
    let m = c.web(31.0);
    assert_eq!((m.started_total, m.superseded_total), (2, 1));
    assert_eq!(count(&m.complete_duration), 0);
}

#[test]
fn a_relist_observes_in_the_same_order_every_time() {
    // Terminations found gone at a relist are observed in key order, not in a hash map's order
    // (random per map): replaying the same events gives bit-for-bit the same histogram sums.
    let replay = || {
        let mut c = Cluster::steady_v1();
        for n in 1..=12 {
            c.pod(1.0, deleting(pod("a", n), 2.0 + 0.1 * n as f64, Some(1)));
        }
        c.event(1e6 + 0.3, Event::Pod(Change::Relisted(vec![])));
        sum(&c.web(1e6 + 0.3).pod_termination_duration)
    };
    let first = replay();
    for _ in 0..20 {
        assert_eq!(replay().to_bits(), first.to_bits());
    }
}
