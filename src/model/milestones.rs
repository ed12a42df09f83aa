//! A rollout's life: its start (a new revision), its milestones (ready: kubectl's test; complete:
//! ready and every pod of every other ReplicaSet gone or a finished leftover), and its recovery
//! from the initial lists after an exporter (re)start.

use super::namespace::Name;
use super::namespace::{Namespace, Parts, observe};
use super::{
    Ctx, Milestone, ModelConfig, ModelStats, REASON_NEW_RS_AVAILABLE, REASON_PAUSED, Rollout,
    RolloutState, Timestamp, Timing,
};

/// A new revision: the rollout in flight, if any, is superseded.
pub(super) fn start_rollout(n: &mut Namespace, cx: &mut Ctx<'_>, name: &str) {
    let Some(w) = n.workload_mut(name) else {
        return;
    };
    let thresholds = cx.cfg.slo_thresholds();
    let now = cx.now;
    w.advance(now, thresholds);
    if let Some(old) = w.in_flight() {
        old.state = RolloutState::Superseded(now);
        w.superseded_total += 1;
    }
    w.started_total += 1;
    w.last_started = Some(now);
    w.rollout = Some(Rollout {
        revision: w.revision,
        start: Some(now),
        known_since: now,
        ready: Milestone::NotReached,
        state: RolloutState::InFlight,
        slow_counted: vec![false; thresholds.len()],
    });
    if cx.timing == Timing::Relist {
        cx.stats.imprecise_gap_milestones += 1;
    }
}

/// Checks the milestones of workload `name`'s rollout in flight after anything that may have
/// moved them; while a list is applied, only notes the workload for the list's end.
pub(super) fn evaluate(n: &mut Namespace, cx: &mut Ctx<'_>, name: &Name) {
    if let Some(deferred) = cx.deferred.as_deref_mut() {
        deferred.insert((cx.ns.clone(), name.clone()));
        return;
    }
    let Parts {
        workloads, slots, ..
    } = n.parts_mut();
    let Some(w) = workloads.get_mut(&**name) else {
        return;
    };
    let (cfg, now) = (cx.cfg, cx.now);
    w.advance(now, cfg.slo_thresholds());
    if !cx.all_synced {
        return;
    }
    let Some(dep) = w.deployment.as_ref() else {
        return;
    };
    let Some(rollout) = w.rollout.as_mut().filter(|r| r.in_flight()) else {
        return;
    };
    if !rollout.ready.is_reached() && dep.revision == rollout.revision && dep.passes_ready_test() {
        rollout.ready = Milestone::Reached(Some(now));
        if let Some(start) = rollout.start {
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
    // Never conclude from one watch alone: the current ReplicaSet must be known, and every
    // pod of every other ReplicaSet must be gone or a finished leftover.
    let mut current_known = false;
    for slot in w.replicasets.iter().filter_map(|rs| slots.get(rs)) {
        if slot.is_current(rollout.revision) {
            current_known = true;
        } else if slot.blocking() > 0 {
            return;
        }
    }
    if !current_known {
        return;
    }
    rollout.state = RolloutState::Complete(now);
    w.last_completed = Some(now);
    if let Some(start) = rollout.start {
        observe(
            &mut w.complete,
            cfg.buckets(),
            now.seconds_since(start).max(0.0),
        );
    }
    if let Some(ready) = rollout.ready.time() {
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

/// Rebuilds the rollout in flight of every Deployment of namespace `n` from the initial lists
/// after an exporter (re)start. Nothing that happened before is counted or observed: counters
/// start at 0, slow thresholds already passed are marked counted.
pub(super) fn recover(
    n: &mut Namespace,
    cfg: &ModelConfig,
    stats: &mut ModelStats,
    now: Timestamp,
) {
    let thresholds = cfg.slo_thresholds();
    let Parts {
        workloads, slots, ..
    } = n.parts_mut();
    for w in workloads.values_mut() {
        let Some(dep) = &w.deployment else {
            continue;
        };
        w.revision = dep.revision;
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
        let mut rollout = Rollout {
            revision: dep.revision,
            start,
            known_since: now,
            ready,
            state: RolloutState::InFlight,
            slow_counted: Vec::new(),
        };
        let age = rollout.age(now);
        rollout.slow_counted = thresholds.iter().map(|&t| age >= t as f64).collect();
        w.rollout = Some(rollout);
    }
}
