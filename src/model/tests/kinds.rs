//! StatefulSets and DaemonSets: one test per rule of the README's contract that the recordings
//! do not pin (held objects, partitions, OnDelete, nodes coming and going, restarts, the
//! fallback), over `db/pg` (StatefulSet, 3 replicas) and `infra/agent` (DaemonSet, 3 nodes).

use super::*;

// ----- Builders --------------------------------------------------------------------------------

fn owner(kind: &str, name: &str) -> Option<ControllerRef> {
    Some(ControllerRef {
        kind: kind.into(),
        name: name.into(),
    })
}

/// `db/pg` steady at template `v`: observed, 3 of 3 ready and updated, revision `pg-v{v}`.
fn sts(generation: i64, v: u64) -> StatefulSetState {
    StatefulSetState {
        images: String::new(),
        key: ObjectKey::new("db", "pg"),
        uid: "pg-uid".into(),
        created: None,
        generation,
        observed_generation: Some(generation),
        template: TemplateHash(v),
        spec_replicas: 3,
        strategy: UpdateStrategy::RollingUpdate,
        partition: None,
        replicas: 3,
        ready_replicas: 3,
        updated_replicas: 3,
        current_revision: Some(format!("pg-v{v}")),
        update_revision: Some(format!("pg-v{v}")),
        termination_grace_seconds: None,
    }
}

/// `db/pg` with template `v` at `generation`, the controller not acted yet.
fn sts_changed(generation: i64, v: u64) -> StatefulSetState {
    StatefulSetState {
        generation,
        observed_generation: Some(generation - 1),
        template: TemplateHash(v),
        ..sts(generation - 1, v - 1)
    }
}

/// `db/pg` rolling to `v`: observed, `updated` pods at `pg-v{v}`, every pod ready.
fn sts_rolling(generation: i64, v: u64, updated: i32) -> StatefulSetState {
    StatefulSetState {
        updated_replicas: updated,
        current_revision: Some(format!("pg-v{}", v - 1)),
        update_revision: Some(format!("pg-v{v}")),
        template: TemplateHash(v),
        ..sts(generation, v)
    }
}

fn sts_revision(v: u64, created: f64) -> ControllerRevisionState {
    ControllerRevisionState {
        key: ObjectKey::new("db", format!("pg-v{v}")),
        uid: format!("cr-pg-v{v}").into(),
        owner: owner("StatefulSet", "pg"),
        revision: v as i64,
        hash: Some(format!("h{v}")),
        created: Some(t(created)),
    }
}

/// Pod `pg-{ordinal}` of revision `v`; `incarnation` tells apart pods reusing the name.
fn sts_pod(ordinal: u32, v: u64) -> PodState {
    PodState {
        finalizers: Vec::new(),
        key: ObjectKey::new("db", format!("pg-{ordinal}")),
        uid: format!("pg-{ordinal}-v{v}").into(),
        owner: owner("StatefulSet", "pg"),
        deletion: None,
        revision_hash: Some(format!("pg-v{v}")),
        ready: None,
    }
}

/// `infra/agent` on 3 nodes, steady at template `v`.
fn ds(generation: i64, v: u64) -> DaemonSetState {
    DaemonSetState {
        images: String::new(),
        key: ObjectKey::new("infra", "agent"),
        uid: "agent-uid".into(),
        created: None,
        generation,
        observed_generation: Some(generation),
        template: TemplateHash(v),
        strategy: UpdateStrategy::RollingUpdate,
        desired_number_scheduled: 3,
        updated_number_scheduled: 3,
        number_available: 3,
        number_ready: 3,
        termination_grace_seconds: None,
    }
}

fn ds_revision(v: u64, revision: i64, created: f64) -> ControllerRevisionState {
    ControllerRevisionState {
        key: ObjectKey::new("infra", format!("agent-h{v}")),
        uid: format!("cr-agent-h{v}").into(),
        owner: owner("DaemonSet", "agent"),
        revision,
        hash: Some(format!("h{v}")),
        created: Some(t(created)),
    }
}

/// The agent pod on node `node` at template `v`.
fn ds_pod(node: u32, v: u64) -> PodState {
    PodState {
        finalizers: Vec::new(),
        key: ObjectKey::new("infra", format!("agent-{node}-v{v}")),
        uid: format!("agent-{node}-v{v}").into(),
        owner: owner("DaemonSet", "agent"),
        deletion: None,
        revision_hash: Some(format!("h{v}")),
        ready: None,
    }
}

// ----- Harness ---------------------------------------------------------------------------------

struct Kinds {
    model: Model,
}

impl Kinds {
    /// Synced at 0 s with these objects (every kind watched).
    fn synced(
        statefulsets: Vec<StatefulSetState>,
        daemonsets: Vec<DaemonSetState>,
        revisions: Vec<ControllerRevisionState>,
        pods: Vec<PodState>,
    ) -> Self {
        let mut model = Model::new(ModelConfig::default());
        for e in [
            Event::Deployment(Change::Relisted(vec![])),
            Event::ReplicaSet(Change::Relisted(vec![])),
            Event::StatefulSet(Change::Relisted(statefulsets)),
            Event::DaemonSet(Change::Relisted(daemonsets)),
            Event::ControllerRevision(Change::Relisted(revisions)),
            Event::Pod(Change::Relisted(pods)),
            Event::FinishedPod(Change::Relisted(vec![])),
        ] {
            model.handle(e, t(0.0));
        }
        assert!(model.is_live());
        model.assert_counts();
        Self { model }
    }

    /// `db/pg` steady at v1 with its three pods.
    fn pg_v1() -> Self {
        Self::synced(
            vec![sts(1, 1)],
            vec![],
            vec![sts_revision(1, -1000.0)],
            (0..3).map(|i| sts_pod(i, 1)).collect(),
        )
    }

    /// `infra/agent` steady at v1 on three nodes.
    fn agent_v1() -> Self {
        Self::synced(
            vec![],
            vec![ds(1, 1)],
            vec![ds_revision(1, 1, -1000.0)],
            (0..3).map(|n| ds_pod(n, 1)).collect(),
        )
    }

    #[track_caller]
    fn ev(&mut self, at: f64, e: Event) -> &mut Self {
        self.model.handle(e, t(at));
        self.model.assert_counts();
        self
    }

    fn sts(&mut self, at: f64, s: StatefulSetState) -> &mut Self {
        self.ev(at, Event::StatefulSet(Change::Applied(s)))
    }

    fn ds(&mut self, at: f64, d: DaemonSetState) -> &mut Self {
        self.ev(at, Event::DaemonSet(Change::Applied(d)))
    }

    fn cr(&mut self, at: f64, r: ControllerRevisionState) -> &mut Self {
        self.ev(at, Event::ControllerRevision(Change::Applied(r)))
    }

    fn pod(&mut self, at: f64, p: PodState) -> &mut Self {
        self.ev(at, Event::Pod(Change::Applied(p)))
    }

    fn gone(&mut self, at: f64, p: PodState) -> &mut Self {
        self.ev(at, Event::Pod(Change::Deleted(p)))
    }

    fn pg(&mut self, at: f64) -> WorkloadMetrics {
        self.find(at, WorkloadKey::new(WorkloadKind::StatefulSet, "db", "pg"))
    }

    fn agent(&mut self, at: f64) -> WorkloadMetrics {
        self.find(
            at,
            WorkloadKey::new(WorkloadKind::DaemonSet, "infra", "agent"),
        )
    }

    fn find(&mut self, at: f64, key: WorkloadKey) -> WorkloadMetrics {
        self.model
            .snapshot(t(at))
            .into_iter()
            .find(|m| m.key == key)
            .unwrap_or_else(|| panic!("{key:?} is exported"))
    }

    /// `db/pg` from v1 to v2 from 10 s: the revision first, then the template event; pg-2, pg-1,
    /// pg-0 replaced in turn, each old pod gone (5 s drains) before its successor.
    fn roll_pg_to_v2(&mut self) -> &mut Self {
        self.cr(9.99, sts_revision(2, 9.0))
            .sts(10.0, sts_changed(2, 2))
            .sts(10.02, sts_rolling(2, 2, 0));
        for (step, ordinal) in [2u32, 1, 0].into_iter().enumerate() {
            let at = 10.0 + 10.0 * step as f64;
            self.pod(at + 0.05, draining(sts_pod(ordinal, 1), at))
                .gone(at + 5.0, draining(sts_pod(ordinal, 1), at))
                .pod(at + 5.1, sts_pod(ordinal, 2))
                .sts(at + 6.0, sts_rolling(2, 2, step as i32 + 1));
        }
        self
    }
}

// ----- Rollout start ---------------------------------------------------------------------------

#[test]
fn a_statefulset_rollout_starts_at_the_template_event_and_completes_with_its_last_pod() {
    let mut c = Kinds::pg_v1();
    c.roll_pg_to_v2();
    let m = c.pg(36.5);
    assert_eq!((m.phase, m.started_total), (Phase::Progressing, 1));
    assert_eq!(m.revision, Some(2), "the update revision's number");
    assert_eq!(m.last_started_timestamp, Some(t(10.0).as_secs_f64()));
    assert_eq!(count(&m.pod_termination_duration), 3);
    // kubectl's test: the update revision became the current one.
    c.sts(37.0, sts(2, 2));
    let m = c.pg(37.0);
    assert_eq!(m.phase, Phase::Complete);
    assert_secs(sum(&m.ready_duration), 27.0);
    assert_secs(sum(&m.complete_duration), 27.0);
    assert_secs(sum(&m.drain_tail), 0.0);
}

#[test]
fn a_template_served_differently_without_a_generation_increase_starts_nothing() {
    let mut c = Kinds::pg_v1();
    // New server defaults after an upgrade: another template hash, the same generation.
    c.sts(
        10.0,
        StatefulSetState {
            template: TemplateHash(99),
            ..sts(1, 1)
        },
    );
    // A scale: the generation rises, the template does not change.
    c.sts(
        11.0,
        StatefulSetState {
            spec_replicas: 4,
            generation: 2,
            template: TemplateHash(99),
            ..sts(1, 1)
        },
    );
    let m = c.pg(12.0);
    assert_eq!((m.phase, m.started_total), (Phase::Complete, 0));
}

#[test]
fn a_partition_at_or_above_replicas_starts_nothing_until_it_is_lowered() {
    let mut c = Kinds::pg_v1();
    let held = |generation, partition| StatefulSetState {
        partition: Some(partition),
        ..sts_changed(generation, 2)
    };
    c.cr(9.9, sts_revision(2, 9.0)).sts(10.0, held(2, 3));
    assert_eq!(c.pg(11.0).started_total, 0, "no pod would be replaced");
    // Lowered to 2: the canary pg-2 is replaced; the rollout starts at this event.
    c.sts(20.0, held(3, 2));
    let m = c.pg(21.0);
    assert_eq!((m.phase, m.started_total), (Phase::Progressing, 1));
    assert_eq!(m.last_started_timestamp, Some(t(20.0).as_secs_f64()));
}

#[test]
fn a_canary_promotion_starts_a_rollout_but_a_partition_change_in_flight_only_moves_the_goal() {
    let mut c = Kinds::pg_v1();
    let partitioned = |generation, partition, updated| StatefulSetState {
        partition: Some(partition),
        ..sts_rolling(generation, 2, updated)
    };
    // The canary: partition 2, template v2.
    c.cr(9.9, sts_revision(2, 9.0)).sts(
        10.0,
        StatefulSetState {
            partition: Some(2),
            ..sts_changed(2, 2)
        },
    );
    c.pod(10.1, draining(sts_pod(2, 1), 10.0))
        .gone(15.0, draining(sts_pod(2, 1), 10.0))
        .pod(15.1, sts_pod(2, 2))
        .sts(16.0, partitioned(2, 2, 1));
    let m = c.pg(16.0);
    assert_eq!(
        (m.phase, m.started_total),
        (Phase::Complete, 1),
        "canary done"
    );
    assert_secs(sum(&m.complete_duration), 6.0);
    // Promotion: partition 0 while pg-0 and pg-1 are old. A second rollout, from this event.
    c.sts(20.0, partitioned(3, 0, 1));
    let m = c.pg(20.0);
    assert_eq!((m.phase, m.started_total), (Phase::Progressing, 2));
    // While it is in flight, raising the partition again only moves its goal.
    c.sts(21.0, partitioned(4, 1, 1));
    assert_eq!(c.pg(21.0).started_total, 2);
    // pg-1 replaced: the goal (partition 1) is reached; pg-0 below it stays old by design.
    c.pod(22.0, draining(sts_pod(1, 1), 22.0))
        .gone(27.0, draining(sts_pod(1, 1), 22.0))
        .pod(27.1, sts_pod(1, 2))
        .sts(28.0, partitioned(4, 1, 2));
    let m = c.pg(28.0);
    assert_eq!(
        (m.phase, m.started_total, m.superseded_total),
        (Phase::Complete, 2, 0)
    );
    assert_secs(sum(&m.complete_duration), 6.0 + 8.0);
}

#[test]
fn a_statefulset_created_after_the_sync_starts_a_rollout_one_merely_appearing_does_not() {
    let mut c = Kinds::synced(vec![], vec![], vec![], vec![]);
    // Appearing (a label now matching the selector): created long before the sync.
    c.sts(
        5.0,
        StatefulSetState {
            created: Some(t(-500.0)),
            ..sts(1, 1)
        },
    );
    assert_eq!(c.pg(5.0).started_total, 0);
    // Created after the sync: its first rollout, from this event.
    let mut c = Kinds::synced(vec![], vec![], vec![], vec![]);
    c.sts(
        5.0,
        StatefulSetState {
            created: Some(t(5.0)),
            observed_generation: None,
            ready_replicas: 0,
            updated_replicas: 0,
            ..sts(1, 1)
        },
    );
    let m = c.pg(5.0);
    assert_eq!((m.phase, m.started_total), (Phase::Progressing, 1));
}

#[test]
fn a_new_revision_the_template_rule_missed_starts_at_the_generation_rise_else_unknown() {
    // The generation rise seen live but with the listed template (its change happened while a
    // relist was replacing the baseline): the revision the controller writes starts it, at the
    // rise.
    let mut c = Kinds::pg_v1();
    c.sts(
        10.0,
        StatefulSetState {
            generation: 2,
            observed_generation: Some(1),
            ..sts(1, 1)
        },
    );
    c.cr(10.01, sts_revision(2, 10.0)).sts(
        10.03,
        StatefulSetState {
            template: TemplateHash(1),
            ..sts_rolling(2, 2, 0)
        },
    );
    let m = c.pg(11.0);
    assert_eq!((m.phase, m.started_total), (Phase::Progressing, 1));
    assert_eq!(m.last_started_timestamp, Some(t(10.0).as_secs_f64()));
    assert_eq!(c.model.stats().unknown_start_rollouts, 0);
    // The rise not seen live (it came with a relist): the start is unknown, and counted.
    let mut c = Kinds::pg_v1();
    c.ev(
        10.0,
        Event::StatefulSet(Change::Relisted(vec![StatefulSetState {
            template: TemplateHash(1),
            ..sts_rolling(2, 2, 0)
        }])),
    );
    c.cr(10.5, sts_revision(2, 10.0));
    let m = c.pg(11.0);
    assert_eq!(m.started_total, 1);
    assert_eq!(c.model.stats().unknown_start_rollouts, 1);
}

// ----- OnDelete --------------------------------------------------------------------------------

#[test]
fn an_ondelete_rollout_waits_for_people_and_observes_only_its_terminations() {
    let ondelete = |s: StatefulSetState| StatefulSetState {
        strategy: UpdateStrategy::OnDelete,
        ..s
    };
    let mut c = Kinds::synced(
        vec![ondelete(sts(1, 1))],
        vec![],
        vec![sts_revision(1, -1000.0)],
        (0..3).map(|i| sts_pod(i, 1)).collect(),
    );
    c.cr(9.9, sts_revision(2, 9.0))
        .sts(10.0, ondelete(sts_changed(2, 2)))
        .sts(10.1, ondelete(sts_rolling(2, 2, 0)));
    let m = c.pg(2000.0);
    assert_eq!((m.phase, m.started_total), (Phase::Waiting, 1));
    assert_eq!(
        (m.strategy, m.partition),
        (Some(UpdateStrategy::OnDelete), None)
    );
    assert_eq!(
        m.slow_total,
        vec![(900, 0)],
        "never slow: it waits for people"
    );
    // Someone deletes pg-2: it drains (progressing), its successor comes.
    c.pod(2000.0, draining(sts_pod(2, 1), 2000.0));
    assert_eq!(c.pg(2001.0).phase, Phase::Progressing);
    c.gone(2005.0, draining(sts_pod(2, 1), 2000.0))
        .pod(2005.1, sts_pod(2, 2))
        .sts(2006.0, ondelete(sts_rolling(2, 2, 1)));
    assert_eq!(c.pg(2006.0).phase, Phase::Waiting);
    for ordinal in [1, 0] {
        c.pod(3000.0, draining(sts_pod(ordinal, 1), 3000.0))
            .gone(3005.0, draining(sts_pod(ordinal, 1), 3000.0))
            .pod(3005.1, sts_pod(ordinal, 2));
    }
    c.sts(3006.0, ondelete(sts_rolling(2, 2, 3)));
    let m = c.pg(3006.0);
    assert_eq!(m.phase, Phase::Complete);
    assert_eq!(count(&m.pod_termination_duration), 3, "terminations count");
    assert!(
        m.ready_duration.is_none() && m.complete_duration.is_none() && m.drain_tail.is_none(),
        "durations that measure people are not observed"
    );
    assert_eq!(m.slow_total, vec![(900, 0)]);
}

// ----- DaemonSets ------------------------------------------------------------------------------

#[test]
fn a_daemonset_pod_before_its_controllerrevision_is_held_and_blocks_completion_until_known() {
    let mut c = Kinds::agent_v1();
    let rolling = |updated, available| DaemonSetState {
        generation: 2,
        template: TemplateHash(2),
        updated_number_scheduled: updated,
        number_available: available,
        ..ds(2, 2)
    };
    // Surge: the template event, then a new pod before its ControllerRevision.
    c.ds(
        10.0,
        DaemonSetState {
            observed_generation: Some(1),
            ..rolling(0, 3)
        },
    );
    c.pod(10.01, ds_pod(0, 2));
    let m = c.agent(10.02);
    assert_eq!((m.phase, m.started_total), (Phase::Progressing, 1));
    assert_eq!(m.revision, Some(1), "the update revision is not known yet");
    // Every old pod replaced and the status says done, but revision 2 is still unknown: the
    // pods of `h2` are not the update revision's as far as anyone knows. Not complete.
    for node in 0..3 {
        c.pod(11.0, ds_pod(node, 2))
            .pod(11.0, draining(ds_pod(node, 1), 11.0))
            .gone(12.0, draining(ds_pod(node, 1), 11.0));
    }
    c.ds(13.0, rolling(3, 3));
    assert_eq!(c.agent(13.0).phase, Phase::Draining, "ready, not complete");
    // The ControllerRevision: h2 is the update revision, and every pod is at it.
    c.cr(14.0, ds_revision(2, 2, 10.0));
    let m = c.agent(14.0);
    assert_eq!((m.phase, m.revision), (Phase::Complete, Some(2)));
    assert_secs(sum(&m.ready_duration), 3.0);
    assert_secs(sum(&m.complete_duration), 4.0);
}

#[test]
fn a_daemonset_whose_nodes_come_and_go_has_no_rollout_but_its_terminations_count() {
    let mut c = Kinds::agent_v1();
    // A node joins: desired 4, a new pod of the same revision.
    c.ds(
        10.0,
        DaemonSetState {
            desired_number_scheduled: 4,
            updated_number_scheduled: 4,
            number_available: 3,
            ..ds(1, 1)
        },
    );
    c.pod(10.1, ds_pod(3, 1));
    // A node leaves: its pod drains and goes.
    c.pod(20.0, draining(ds_pod(0, 1), 20.0))
        .gone(25.0, draining(ds_pod(0, 1), 20.0))
        .ds(25.1, ds(1, 1));
    let m = c.agent(26.0);
    assert_eq!((m.phase, m.started_total), (Phase::Complete, 0));
    assert_eq!(count(&m.pod_termination_duration), 1);
}

// ----- Restart recovery ------------------------------------------------------------------------

#[test]
fn a_restart_mid_rollout_recovers_the_start_from_the_newest_revision_only() {
    // Mid-rollout: pg-2 replaced, pg-1 terminating. Revision 2 is the newest by creation: its
    // creationTimestamp is the start.
    let listed = |revisions| {
        Kinds::synced(
            vec![sts_rolling(2, 2, 1)],
            vec![],
            revisions,
            vec![sts_pod(0, 1), draining(sts_pod(1, 1), -2.0), sts_pod(2, 2)],
        )
    };
    let mut c = listed(vec![sts_revision(1, -1000.0), sts_revision(2, -30.0)]);
    let m = c.pg(0.0);
    assert_eq!((m.phase, m.started_total), (Phase::Progressing, 0));
    assert_eq!(m.last_started_timestamp, Some(t(-30.0).as_secs_f64()));
    assert_eq!(c.model.stats().unknown_start_rollouts, 0);
    // A rollback: the update revision is an old one raised to number 3; its timestamp is old.
    let rolled_back = ControllerRevisionState {
        revision: 3,
        ..sts_revision(2, -2000.0)
    };
    let mut c = listed(vec![sts_revision(1, -1000.0), rolled_back]);
    let m = c.pg(0.0);
    assert_eq!(
        (m.phase, m.last_started_timestamp),
        (Phase::Progressing, None)
    );
    assert_eq!(m.revision, Some(3));
    assert_eq!(c.model.stats().unknown_start_rollouts, 1);
}

#[test]
fn availability_alone_never_makes_a_recovered_rollout() {
    // Every pod at the update revision, one crashlooping (not ready): no rollout in flight.
    let crashlooping = StatefulSetState {
        ready_replicas: 2,
        ..sts(1, 1)
    };
    let mut c = Kinds::synced(
        vec![crashlooping],
        vec![DaemonSetState {
            number_available: 2,
            ..ds(1, 1)
        }],
        vec![sts_revision(1, -1000.0), ds_revision(1, 1, -1000.0)],
        (0..3)
            .map(|i| sts_pod(i, 1))
            .chain((0..3).map(|n| ds_pod(n, 1)))
            .collect(),
    );
    assert_eq!(c.pg(0.0).phase, Phase::Complete);
    assert_eq!(c.agent(0.0).phase, Phase::Complete);
    assert_eq!(c.model.stats().unknown_start_rollouts, 0);
}

#[test]
fn a_recovered_daemonset_rollout_is_ready_unknown_and_completes_unobserved() {
    // Restarted with every node updated and available but an old pod still terminating.
    let mut c = Kinds::synced(
        vec![],
        vec![ds(2, 2)],
        vec![ds_revision(1, 1, -1000.0), ds_revision(2, 2, -20.0)],
        vec![
            ds_pod(0, 2),
            ds_pod(1, 2),
            ds_pod(2, 2),
            draining(ds_pod(2, 1), -3.0),
        ],
    );
    let m = c.agent(0.0);
    assert_eq!(
        m.phase,
        Phase::Draining,
        "ready, with no ready time to observe"
    );
    c.gone(2.0, draining(ds_pod(2, 1), -3.0));
    let m = c.agent(2.0);
    assert_eq!(m.phase, Phase::Complete);
    assert_secs(sum(&m.complete_duration), 22.0);
    assert!(m.ready_duration.is_none() && m.drain_tail.is_none());
}

#[test]
fn a_statefulset_reusing_a_pod_name_keeps_old_and_new_apart() {
    let mut c = Kinds::pg_v1();
    c.cr(9.9, sts_revision(2, 9.0))
        .sts(10.0, sts_changed(2, 2))
        .pod(10.1, draining(sts_pod(2, 1), 10.0))
        // The new pg-2 arrives before the old one's DELETED (independent streams).
        .pod(14.0, sts_pod(2, 2))
        .gone(15.0, draining(sts_pod(2, 1), 10.0));
    let m = c.pg(15.0);
    assert_eq!(m.terminating_pods, 0);
    assert_eq!(count(&m.pod_termination_duration), 1);
    assert_secs(sum(&m.pod_termination_duration), 5.0);
    assert_eq!(c.model.stats().pods, 3, "pg-0, pg-1 and the new pg-2");
}
