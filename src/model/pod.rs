//! Pods: apply, delete and sweep. A pod counts in the slot of its controlling ReplicaSet (or of
//! its StatefulSet's or DaemonSet's revision, from its `controller-revision-hash` label); its
//! first deletionTimestamp starts a termination, and its disappearance observes the termination's
//! duration for its workload (or keeps it in the slot until the ReplicaSet arrives). Pods are
//! kept by uid, never by name: see [`PodRecord`].

use std::borrow::Cow;

use super::milestones::evaluate;
use super::namespace::{
    Drained, NO_ORDINAL, Namespace, PodRecord, RsOwner, Termination, revision_slot,
};
use super::stuck::Inspection;
use super::{Ctx, Item, OwnerKind, PodState, Timing, Uid, WorkloadKind};

impl Item for PodState {
    type Key = Uid;

    fn namespace(&self) -> &str {
        &self.key.namespace
    }

    fn apply(self, n: &mut Namespace, cx: &mut Ctx<'_>, listed: Option<u32>) {
        apply(n, cx, &self, listed);
    }

    fn delete(self, n: &mut Namespace, cx: &mut Ctx<'_>) {
        apply(n, cx, &self, None);
        finish(n, cx, self.uid);
    }

    fn unlisted(n: &Namespace, epoch: u32) -> Vec<Uid> {
        n.pods()
            .filter(|(_, p)| p.listed != epoch)
            .map(|(uid, _)| uid)
            .collect()
    }

    fn sweep(n: &mut Namespace, cx: &mut Ctx<'_>, uid: &Uid) {
        finish(n, cx, *uid);
    }
}

fn apply(n: &mut Namespace, cx: &mut Ctx<'_>, p: &PodState, listed: Option<u32>) {
    let uid = p.uid;
    let thresholds = cx.thresholds().len();
    // The slot of its controller: its ReplicaSet, or its StatefulSet's or DaemonSet's revision.
    let owner = p.owner.as_ref().map(|o| (o, watched_workload(o.kind, cx)));
    let (slot_name, workload) = match owner {
        Some((o, _)) if o.kind == OwnerKind::ReplicaSet => (Cow::Borrowed(o.name.as_str()), None),
        Some((o, Some(kind))) => {
            let revision = p.revision_hash.as_deref().unwrap_or("");
            let slot = revision_slot(kind, &o.name, revision);
            (Cow::Owned(slot), Some((kind, o.name.as_str())))
        }
        _ => {
            // Not (or no longer) controlled by a workload: not part of any rollout.
            forget(n, cx, uid);
            return;
        }
    };
    if n.pod(uid).is_some_and(|r| *r.rs != *slot_name) {
        forget(n, cx, uid);
    }
    let rs = match workload {
        None => {
            let (rs, slot) = n.slot_entry(&slot_name);
            if slot.owner == RsOwner::Other {
                return;
            }
            rs
        }
        Some((kind, workload)) => n.revision_slot_entry(kind, workload, &slot_name, thresholds),
    };
    let owner = n.slot(&rs).map_or(RsOwner::Unknown, |s| s.owner.clone());
    if n.pod(uid).is_none() {
        let pending = n.take_pending_finish(uid);
        let ordinal = match workload {
            Some((WorkloadKind::StatefulSet, sts)) => ordinal(&p.key.name, sts),
            _ => NO_ORDINAL,
        };
        let record = PodRecord {
            rs,
            termination: None,
            finished: pending.is_some(),
            ready: p.ready,
            ordinal,
            listed: 0,
            // A finished-pod list in progress listed it before the pod came.
            finished_listed: pending.map_or(0, |f| f.listed),
        };
        n.insert_pod(uid, record);
    }
    if let Some(epoch) = listed {
        n.update_pod(uid, |record| record.listed = epoch);
    }
    if p.ready.is_some() {
        n.update_pod(uid, |record| record.ready = p.ready);
    }
    if let Some(deletion) = p.deletion {
        let requested = deletion.requested_at();
        let first = n.update_pod(uid, |record| match &mut record.termination {
            None => {
                record.termination = Some(Box::new(Termination {
                    requested,
                    first_deadline: deletion.deadline,
                    first_seen: cx.now,
                    grace: requested.and(deletion.grace_seconds),
                    name: p.key.name.as_str().into(),
                    finalizers: p.finalizers.iter().map(|f| f.as_str().into()).collect(),
                    inspection: Inspection::None,
                    announced: false,
                }));
                true
            }
            Some(t) => {
                // The kubelet's final grace-0 delete, or a second shorter delete, rewrites both
                // fields: keep the earliest request.
                if let (Some(known), Some(new)) = (t.requested, requested) {
                    t.requested = Some(known.min(new));
                }
                if !t
                    .finalizers
                    .iter()
                    .map(|f| &**f)
                    .eq(p.finalizers.iter().map(String::as_str))
                {
                    t.finalizers = p.finalizers.iter().map(|f| f.as_str().into()).collect();
                }
                false
            }
        });
        if first == Some(true) {
            cx.stuck.terminating(cx.ns, uid, deletion.deadline);
            if requested.is_none() {
                cx.stats.imprecise_unknown_request += 1;
            }
        }
    }
    if let Some((kind, w)) = owner.workload() {
        evaluate(n, cx, kind, w);
    }
}

/// The workload kind of a pod's StatefulSet or DaemonSet controller, when that kind is watched.
fn watched_workload(owner: OwnerKind, cx: &Ctx<'_>) -> Option<WorkloadKind> {
    let kind = match owner {
        OwnerKind::StatefulSet => WorkloadKind::StatefulSet,
        OwnerKind::DaemonSet => WorkloadKind::DaemonSet,
        _ => return None,
    };
    cx.cfg.kinds().contains(&kind).then_some(kind)
}

/// A StatefulSet pod's ordinal: its name is `<statefulset>-<ordinal>`.
fn ordinal(pod: &str, statefulset: &str) -> u32 {
    pod.strip_prefix(statefulset)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(NO_ORDINAL)
}

/// The pod object is gone: a termination in progress is observed.
fn finish(n: &mut Namespace, cx: &mut Ctx<'_>, uid: Uid) {
    let Some(record) = n.remove_pod(uid) else {
        return;
    };
    let Some(slot) = n.slot_mut(&record.rs) else {
        return;
    };
    let drained = record.termination.as_deref().and_then(|t| {
        let seconds = cx.now.seconds_since(t.requested?).max(0.0);
        Some(Drained {
            seconds,
            // Within the 1 s resolution of the request time: at least the whole grace.
            grace_exhausted: t.grace.is_some_and(|g| seconds >= g as f64),
        })
    });
    let owner = slot.owner.clone();
    match (&owner, drained) {
        (RsOwner::Unknown, Some(d)) => slot.early_observations.push(d),
        (RsOwner::Workload(kind, w), Some(d)) => {
            if let Some(w) = n.workload_mut(*kind, w) {
                w.drained(cx.cfg.buckets(), d);
            }
        }
        _ => {}
    }
    if drained.is_some() && cx.timing == Timing::Relist {
        cx.stats.imprecise_gap_terminations += 1;
    }
    left(n, cx, &record.rs, &owner);
}

/// The pod stopped counting for its workload without being gone (its controller changed).
fn forget(n: &mut Namespace, cx: &mut Ctx<'_>, uid: Uid) {
    let Some(record) = n.remove_pod(uid) else {
        return;
    };
    let owner = n
        .slot(&record.rs)
        .map_or(RsOwner::Unknown, |s| s.owner.clone());
    left(n, cx, &record.rs, &owner);
}

/// After a pod left slot `rs`: the slot may be garbage, and its workload may have completed.
fn left(n: &mut Namespace, cx: &mut Ctx<'_>, rs: &str, owner: &RsOwner) {
    n.drop_slot_if_garbage(rs);
    if let Some((kind, w)) = owner.workload() {
        evaluate(n, cx, kind, w);
        n.remove_workload_if_gone(kind, w, cx.thresholds().len());
    }
}
