//! A rollout's life, for every workload kind: its start (the user's change to the pod template,
//! with the generation; a fallback on the revision the controller writes), its milestones (ready:
//! kubectl's test of the kind; complete: ready and every pod of every other revision gone or a
//! finished leftover), and its recovery from the initial lists after an exporter (re)start.

use std::collections::BTreeMap;

use super::namespace::{Map, revision_slot};
use super::namespace::{Name, Namespace, Parts, PodRecord, RsSlot, Workloads, observe};
use super::workload::{GenerationRise, Object, RevisionRecord, Workload};
use super::{
    Ctx, Milestone, ModelConfig, ModelStats, REASON_NEW_RS_AVAILABLE, REASON_PAUSED, Rollout,
    RolloutState, TemplateHash, Timestamp, Timing, Uid, WorkloadKind,
};

/// The update revision of a workload as the controller wrote it last.
struct Update {
    /// What identifies it: a Deployment's revision number; a hash of the StatefulSet's
    /// `updateRevision` or of the name of the DaemonSet's highest ControllerRevision.
    id: u64,
    /// `kube_rollout_revision`: the revision number, when known.
    number: Option<u64>,
    /// A StatefulSet's or DaemonSet's: the slot of its pods.
    slot: Option<String>,
    /// A StatefulSet's or DaemonSet's: its ControllerRevision's creationTimestamp.
    created: Option<Timestamp>,
    /// It is the newest of the workload's ControllerRevisions by creationTimestamp (a rollback
    /// raises an old revision's number but keeps its old timestamp).
    newest: bool,
}

fn name_id(name: &str) -> u64 {
    TemplateHash::of(name.as_bytes()).0
}

/// The update revision of workload `name`, per kind (see the README's contract): a Deployment's
/// revision annotation; a StatefulSet's `status.updateRevision`, whose pods' revision label holds
/// that whole name; a DaemonSet's ControllerRevision with the highest `revision`, whose pods'
/// label holds its hash label.
fn update_of(name: &str, w: &Workload) -> Option<Update> {
    update_in(name, w.object.as_ref(), &w.revisions)
}

/// [`update_of`] from the two fields it reads, so a caller holding the workload's rollout
/// mutably can still ask (its slot name is a new string: ask only when it is needed).
fn update_in(
    name: &str,
    object: Option<&Object>,
    revisions: &BTreeMap<Name, RevisionRecord>,
) -> Option<Update> {
    let newest_created = revisions.values().filter_map(|r| r.created).max();
    match object? {
        Object::Deployment(d) => d.revision.map(|r| Update {
            id: r,
            number: Some(r),
            slot: None,
            created: None,
            newest: false,
        }),
        Object::StatefulSet(s) => {
            let update = s.update_revision.as_deref()?;
            let record = revisions.get(update);
            Some(Update {
                id: name_id(update),
                number: record.and_then(|r| u64::try_from(r.revision).ok()),
                slot: Some(revision_slot(WorkloadKind::StatefulSet, name, update)),
                created: record.and_then(|r| r.created),
                newest: record.is_some_and(|r| r.created.is_some() && r.created == newest_created),
            })
        }
        Object::DaemonSet(_) => {
            let (cr, record) = revisions.iter().max_by_key(|(_, r)| r.revision)?;
            let hash = record.hash.as_deref()?;
            Some(Update {
                id: name_id(cr),
                number: u64::try_from(record.revision).ok(),
                slot: Some(revision_slot(WorkloadKind::DaemonSet, name, hash)),
                created: record.created,
                newest: record.created.is_some() && record.created == newest_created,
            })
        }
    }
}

/// What a workload object looked like before the event being applied.
#[derive(Clone, Copy, Debug)]
pub(super) struct Before {
    /// Its generation; `None` when the object was not known (new, or appearing).
    pub generation: Option<i64>,
    /// Its pod template's hash.
    pub template: Option<TemplateHash>,
    /// A StatefulSet's partition.
    pub partition: Option<i32>,
}

/// A workload object was applied: the rollout rules of every kind. A rollout starts at the first
/// event whose generation rose and whose pod template differs from the most recently started
/// rollout's (the listed one at sync); a paused Deployment, or a StatefulSet whose partition
/// leaves every pod at the old revision, starts nothing until that changes. A promoted canary (a
/// lowered partition) starts one when none is in flight. Then the fallback on the revision the
/// controller writes, and the milestones.
pub(super) fn object_changed(
    n: &mut Namespace,
    cx: &mut Ctx<'_>,
    kind: WorkloadKind,
    name: &Name,
    before: Before,
) {
    let Parts {
        workloads,
        slots,
        pods,
    } = n.parts_mut();
    let Some(w) = workloads[kind.index()].get_mut(&**name) else {
        return;
    };
    let Some(obj) = w.object.as_ref() else {
        return;
    };
    let template = obj.template();
    if !cx.all_synced {
        // The sync: what is listed is the baseline; recovery decides what is in flight.
        w.baseline = Some(template);
        w.update = update_of(name, w).map(|u| u.id);
        return;
    }
    let Some(generation) = before.generation else {
        // First seen after the sync: created since (a new workload, a rollout), or merely
        // appearing (a label now matching): a baseline.
        let created_after_sync = obj
            .created()
            .zip(cx.synced_at)
            .is_some_and(|(created, synced)| created >= synced.truncated());
        w.baseline = Some(template);
        w.update = update_of(name, w).map(|u| u.id);
        if created_after_sync {
            w.rise = Some(GenerationRise {
                at: Some(cx.now),
                started: true,
            });
            start_rollout(w, cx, Some(cx.now));
        }
        return;
    };
    let rose = obj.generation() > generation;
    if rose {
        w.rise = Some(GenerationRise {
            at: (cx.timing == Timing::Watch).then_some(cx.now),
            started: false,
        });
    }
    let changed = w.baseline != Some(template);
    let replaces_no_pod = matches!(obj, Object::StatefulSet(s)
        if s.partition.is_some_and(|p| p >= s.spec_replicas) && obj.partition().is_some());
    if !rose {
        // The same template served otherwise (new server defaults after an upgrade): it stands
        // for the baseline when the template before did; a change held back (paused, or a
        // partition replacing no pod) stays held.
        if before.template != Some(template) && before.template == w.baseline {
            w.baseline = Some(template);
        }
    } else if changed && !obj.paused() && !replaces_no_pod {
        w.baseline = Some(template);
        start_at_rise(w, cx);
    } else if rose
        && kind == WorkloadKind::StatefulSet
        && before.partition != obj.spec_partition()
        && w.in_flight().is_none()
        && canary_promoted(name, w, slots, pods)
    {
        start_at_rise(w, cx);
    }
    revision_written(name, w, cx, true);
}

/// A ControllerRevision of workload `name` arrived or changed. It may come before the workload
/// event that caused it: it triggers the fallback only when a generation increase was seen
/// without a rollout starting; it updates the number of a rollout in flight; otherwise it is
/// held until the workload event starts the rollout and reads it.
pub(super) fn revision_arrived(
    n: &mut Namespace,
    cx: &mut Ctx<'_>,
    kind: WorkloadKind,
    name: &Name,
) {
    if !cx.all_synced {
        return;
    }
    let Some(w) = n.workload_mut(kind, name) else {
        return;
    };
    if w.object.is_none() {
        return;
    }
    let rise_pending = w.rise.is_some_and(|r| !r.started);
    if rise_pending || w.in_flight().is_some() {
        revision_written(name, w, cx, rise_pending);
    }
}

/// A StatefulSet's partition was lowered: some pod at an ordinal in `[partition, replicas)` is
/// not at the update revision.
fn canary_promoted(
    name: &str,
    w: &Workload,
    slots: &Map<Name, RsSlot>,
    pods: &Map<Uid, PodRecord>,
) -> bool {
    let Some(Object::StatefulSet(s)) = &w.object else {
        return false;
    };
    let current = update_of(name, w).and_then(|u| u.slot);
    let low = u32::try_from(s.partition.unwrap_or(0)).unwrap_or(0);
    let high = u32::try_from(s.spec_replicas).unwrap_or(0);
    let old: Vec<&Name> = w
        .replicasets
        .iter()
        .filter(|rs| Some(&***rs) != current.as_deref() && slots.contains_key(*rs))
        .collect();
    !old.is_empty()
        && pods.values().any(|p| {
            (low..high).contains(&p.ordinal) && p.blocks_completion() && old.contains(&&p.rs)
        })
}

/// Starts a rollout at the event being applied, marking the generation increase as started.
fn start_at_rise(w: &mut Workload, cx: &mut Ctx<'_>) {
    if let Some(rise) = w.rise.as_mut() {
        rise.started = true;
    }
    start_rollout(w, cx, Some(cx.now));
}

/// The controller wrote the update revision (or it changed): record its number; and when no
/// rollout started since the workload's last generation increase, the fallback starts one, at
/// that increase if it was seen live, else with an unknown start. This covers what the template
/// rule cannot see: a change made before a restart, or inside a watch gap.
fn revision_written(name: &str, w: &mut Workload, cx: &mut Ctx<'_>, may_fall_back: bool) {
    let Some(update) = update_of(name, w) else {
        return;
    };
    if update.number.is_some() {
        w.set_revision(update.number);
    }
    let previous = w.update.replace(update.id);
    let new = previous.is_some_and(|p| p != update.id);
    if new && may_fall_back && cx.all_synced && !w.rise.is_some_and(|r| r.started) {
        let start = w.rise.and_then(|r| r.at);
        if let Some(rise) = w.rise.as_mut() {
            rise.started = true;
        }
        if let Some(obj) = &w.object {
            w.baseline = Some(obj.template());
        }
        start_rollout(w, cx, start);
        if start.is_none() {
            cx.stats.unknown_start_rollouts += 1;
            w.unknown_starts += 1;
        }
    }
    if let Some(r) = w.in_flight() {
        r.revision = update.number;
    }
}

/// Starts a rollout: the rollout in flight, if any, is superseded.
fn start_rollout(w: &mut Workload, cx: &mut Ctx<'_>, start: Option<Timestamp>) {
    let thresholds = cx.cfg.slo_thresholds();
    let now = cx.now;
    w.advance(now, thresholds);
    if let Some(old) = w.in_flight() {
        old.state = RolloutState::Superseded(now);
        w.superseded_total += 1;
    }
    w.started_total += 1;
    w.last_started = start.or(w.last_started);
    let waits_for_people = w.object.as_ref().is_some_and(Object::waits_for_people);
    w.rollout = Some(Rollout {
        revision: None,
        start,
        known_since: now,
        ready: Milestone::NotReached,
        state: RolloutState::InFlight,
        waits_for_people,
        slow_counted: vec![false; thresholds.len()],
    });
    if cx.timing == Timing::Relist {
        cx.stats.imprecise_gap_milestones += 1;
    }
}

/// Checks the milestones of workload `name`'s rollout in flight after anything that may have
/// moved them; while a list is applied, only notes the workload for the list's end.
pub(super) fn evaluate(n: &mut Namespace, cx: &mut Ctx<'_>, kind: WorkloadKind, name: &Name) {
    if let Some(deferred) = cx.deferred.as_deref_mut() {
        deferred.insert((cx.ns.clone(), kind, name.clone()));
        return;
    }
    let Parts {
        workloads,
        slots,
        pods,
    } = n.parts_mut();
    let Some(w) = workloads[kind.index()].get_mut(&**name) else {
        return;
    };
    evaluate_workload(w, slots, pods, cx, kind, name);
}

fn evaluate_workload(
    w: &mut Workload,
    slots: &Map<Name, RsSlot>,
    pods: &Map<Uid, PodRecord>,
    cx: &mut Ctx<'_>,
    kind: WorkloadKind,
    name: &str,
) {
    let (cfg, now) = (cx.cfg, cx.now);
    w.advance(now, cfg.slo_thresholds());
    if !cx.all_synced {
        return;
    }
    let Some(obj) = w.object.as_ref() else {
        return;
    };
    let passes = obj.passes_ready_test();
    let partition = obj.partition();
    let Some(rollout) = w.rollout.as_mut().filter(|r| r.in_flight()) else {
        return;
    };
    let observed = !rollout.waits_for_people;
    if !rollout.ready.is_reached() && passes {
        rollout.ready = Milestone::Reached(Some(now));
        if let Some(start) = rollout.start.filter(|_| observed) {
            observe(
                &mut w.ready,
                cfg.buckets(),
                now.seconds_since(start).max(0.0),
            );
        }
        if cx.timing == Timing::Relist {
            cx.stats.imprecise_gap_milestones += 1;
        }
    }
    if !rollout.ready.is_reached() {
        return;
    }
    // Never conclude from one watch alone: the update revision must be known, and every pod of
    // every other revision must be gone or a finished leftover. Asked only now: most events
    // find no rollout in flight, or one not ready yet.
    let update = update_in(name, w.object.as_ref(), &w.revisions);
    let Some(current) = current_slot(kind, w.object.as_ref(), update, &w.replicasets, slots) else {
        return;
    };
    if old_pods_block(&w.replicasets, current.as_deref(), slots, pods, partition) {
        return;
    }
    rollout.state = RolloutState::Complete(now);
    w.last_completed = Some(now);
    if let Some(start) = rollout.start.filter(|_| observed) {
        observe(
            &mut w.complete,
            cfg.buckets(),
            now.seconds_since(start).max(0.0),
        );
    }
    if let Some(ready) = rollout.ready.time().filter(|_| observed) {
        observe(
            &mut w.drain_tail,
            cfg.buckets(),
            now.seconds_since(ready).max(0.0),
        );
    }
    if cx.timing == Timing::Relist {
        cx.stats.imprecise_gap_milestones += 1;
    }
}

/// The slot of the update revision's pods, when the update revision is known: `Some(None)` when
/// it is known but holds no pod (a DaemonSet on no node, a StatefulSet scaled to 0).
fn current_slot(
    kind: WorkloadKind,
    obj: Option<&Object>,
    update: Option<Update>,
    own: &std::collections::BTreeSet<Name>,
    slots: &Map<Name, RsSlot>,
) -> Option<Option<String>> {
    match kind {
        WorkloadKind::Deployment => {
            let Some(Object::Deployment(d)) = obj else {
                return None;
            };
            own.iter()
                .find(|rs| slots.get(*rs).is_some_and(|s| s.is_current(d.revision)))
                .map(|rs| Some(rs.to_string()))
        }
        WorkloadKind::StatefulSet | WorkloadKind::DaemonSet => update.map(|u| u.slot),
    }
}

/// The slot of workload `name`'s update revision, as [`evaluate`] finds it: `None` while the
/// update revision is not known, `Some(None)` when it is known but holds no pod.
pub(super) fn update_slot(
    kind: WorkloadKind,
    name: &str,
    w: &Workload,
    slots: &Map<Name, RsSlot>,
) -> Option<Option<String>> {
    current_slot(
        kind,
        w.object.as_ref(),
        update_of(name, w),
        &w.replicasets,
        slots,
    )
}

/// Whether a pod of a revision other than `current` still runs or terminates; a partitioned
/// StatefulSet's pods below the partition keep the old revision by design.
fn old_pods_block(
    own: &std::collections::BTreeSet<Name>,
    current: Option<&str>,
    slots: &Map<Name, RsSlot>,
    pods: &Map<Uid, PodRecord>,
    partition: Option<i32>,
) -> bool {
    let old_blocking = own
        .iter()
        .filter(|rs| Some(&***rs) != current)
        .any(|rs| slots.get(rs).is_some_and(|s| s.blocking() > 0));
    let Some(partition) = partition.and_then(|p| u32::try_from(p).ok()) else {
        return old_blocking;
    };
    // Only while a partitioned StatefulSet's old pods block: one pass over its namespace's pods.
    old_blocking
        && pods.values().any(|p| {
            p.blocks_completion()
                && p.ordinal >= partition
                && Some(&*p.rs) != current
                && own.contains(&p.rs)
        })
}

/// Rebuilds the rollout in flight of every workload of namespace `n` from the initial lists after
/// an exporter (re)start. Nothing that happened before is counted or observed: counters start at
/// 0, slow thresholds already passed are marked counted.
pub(super) fn recover(
    n: &mut Namespace,
    cfg: &ModelConfig,
    stats: &mut ModelStats,
    now: Timestamp,
) {
    let thresholds = cfg.slo_thresholds();
    let Parts {
        workloads,
        slots,
        pods,
    } = n.parts_mut();
    recover_deployments(workloads, slots, stats, now, thresholds);
    for kind in [WorkloadKind::StatefulSet, WorkloadKind::DaemonSet] {
        for (name, w) in workloads[kind.index()].iter_mut() {
            if w.object.is_none() {
                continue;
            }
            let update = update_of(name, w);
            if let Some(number) = update.as_ref().and_then(|u| u.number) {
                w.set_revision(Some(number));
            }
            w.update = update.as_ref().map(|u| u.id);
            let Some(obj) = &w.object else {
                continue;
            };
            let partition = obj.partition();
            let (unobserved, behind) = match obj {
                Object::StatefulSet(s) => (
                    s.observed_generation.is_none_or(|o| o < s.generation),
                    s.updated_replicas < s.spec_replicas - partition.unwrap_or(0),
                ),
                Object::DaemonSet(d) => (
                    d.observed_generation.is_none_or(|o| o < d.generation),
                    d.updated_number_scheduled < d.desired_number_scheduled,
                ),
                Object::Deployment(_) => continue,
            };
            let current = update.as_ref().and_then(|u| u.slot.as_deref());
            let old = old_pods_block(&w.replicasets, current, slots, pods, partition);
            // Availability alone never makes a rollout: a crashlooping pod or a node joining is
            // not one.
            if !(unobserved || behind || old) {
                w.last_started = update.as_ref().and_then(|u| u.created);
                continue;
            }
            let start = update
                .as_ref()
                .filter(|u| u.newest && partition.is_none())
                .and_then(|u| u.created);
            w.last_started = start;
            if start.is_none() {
                stats.unknown_start_rollouts += 1;
                w.unknown_starts += 1;
            }
            let ready = if obj.passes_ready_test() {
                // These kinds have no condition with a ready time.
                Milestone::Reached(None)
            } else {
                Milestone::NotReached
            };
            w.rollout = Some(recovered(
                update.and_then(|u| u.number),
                start,
                ready,
                obj.waits_for_people(),
                now,
                thresholds,
            ));
        }
    }
}

fn recovered(
    revision: Option<u64>,
    start: Option<Timestamp>,
    ready: Milestone,
    waits_for_people: bool,
    now: Timestamp,
    thresholds: &[u64],
) -> Rollout {
    let mut rollout = Rollout {
        revision,
        start,
        known_since: now,
        ready,
        state: RolloutState::InFlight,
        waits_for_people,
        slow_counted: Vec::new(),
    };
    let age = rollout.age(now);
    rollout.slow_counted = thresholds
        .iter()
        .map(|&t| waits_for_people || age >= t as f64)
        .collect();
    rollout
}

/// Deployments: in flight while old pods remain or the Progressing condition says so; the start is
/// the current ReplicaSet's creation when it is the newest.
fn recover_deployments(
    workloads: &mut Workloads,
    slots: &Map<Name, RsSlot>,
    stats: &mut ModelStats,
    now: Timestamp,
    thresholds: &[u64],
) {
    for w in workloads[WorkloadKind::Deployment.index()].values_mut() {
        let Some(Object::Deployment(dep)) = &w.object else {
            continue;
        };
        let revision = dep.revision;
        w.set_revision(revision);
        let Some(Object::Deployment(dep)) = &w.object else {
            continue;
        };
        let mut current_created = None;
        let mut others_newest: Option<Timestamp> = None;
        let mut old_pods_remain = false;
        for slot in w.replicasets.iter().filter_map(|rs| slots.get(rs)) {
            if slot.is_current(dep.revision) {
                current_created = slot.created;
            } else {
                old_pods_remain |= slot.blocking() > 0;
                if slot.exists {
                    others_newest = others_newest.max(slot.created);
                }
            }
        }
        let in_flight = old_pods_remain
            || match &dep.progressing {
                Some(c) if c.reason == REASON_NEW_RS_AVAILABLE => false,
                Some(c) if c.reason == REASON_PAUSED => !dep.is_fully_updated(),
                None => !dep.is_fully_updated(),
                Some(_) => true,
            };
        // The current ReplicaSet's creation is the rollout start only when it is newer than
        // every other: a reused (rolled back) ReplicaSet was created long before.
        let start = current_created.filter(|&c| others_newest.is_none_or(|o| c > o));
        w.last_started = start;
        if !in_flight {
            continue;
        }
        if start.is_none() {
            stats.unknown_start_rollouts += 1;
            w.unknown_starts += 1;
        }
        let ready = if dep.passes_ready_test() {
            Milestone::Reached(
                dep.progressing
                    .as_ref()
                    .filter(|c| c.reason == REASON_NEW_RS_AVAILABLE)
                    .and_then(|c| c.last_update),
            )
        } else {
            Milestone::NotReached
        };
        w.rollout = Some(recovered(
            dep.revision,
            start,
            ready,
            false,
            now,
            thresholds,
        ));
    }
}
