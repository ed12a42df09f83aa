//! Finished pods (phase Succeeded or Failed), from the second pod watch: a finished pod without a
//! deletionTimestamp (an evicted leftover) no longer blocks its rollout's completion. A finish
//! reported before the pod itself waits in its namespace until the pod arrives. Both are matched
//! by uid: a finished `pg-2` says nothing about the new `pg-2`.

use super::milestones::evaluate;
use super::namespace::{Namespace, PendingFinish, RsOwner};
use super::{Ctx, FinishedPod, Item, Uid};

impl Item for FinishedPod {
    type Key = Uid;

    fn namespace(&self) -> &str {
        &self.key.namespace
    }

    fn apply(self, n: &mut Namespace, cx: &mut Ctx<'_>, listed: Option<u32>) {
        set_finished(n, cx, &self, true, listed);
    }

    fn delete(self, n: &mut Namespace, cx: &mut Ctx<'_>) {
        set_finished(n, cx, &self, false, None);
    }

    fn unlisted(n: &Namespace, epoch: u32) -> Vec<Uid> {
        n.pods()
            .filter(|(_, p)| p.finished && p.finished_listed != epoch)
            .map(|(uid, _)| uid)
            .collect()
    }

    /// Pods not listed as finished are not finished (any more).
    fn sweep(n: &mut Namespace, _cx: &mut Ctx<'_>, uid: &Uid) {
        n.update_pod(*uid, |r| r.finished = false);
    }

    fn swept(n: &mut Namespace, epoch: u32) {
        n.keep_pending_finishes_of(epoch);
    }
}

fn set_finished(
    n: &mut Namespace,
    cx: &mut Ctx<'_>,
    f: &FinishedPod,
    finished: bool,
    listed: Option<u32>,
) {
    let uid = f.uid;
    n.take_pending_finish(uid);
    let Some(rs) = n.pod(uid).map(|r| r.rs.clone()) else {
        if finished {
            let listed = listed.unwrap_or(0);
            n.add_pending_finish(uid, PendingFinish { listed });
        }
        return;
    };
    n.update_pod(uid, |record| {
        record.finished = finished;
        if let Some(epoch) = listed {
            record.finished_listed = epoch;
        }
    });
    if let Some(RsOwner::Workload(kind, w)) = n.slot(&rs).map(|s| s.owner.clone()) {
        // A completion found while a list is applied is timed at its end: imprecise.
        evaluate(n, cx, kind, &w);
    }
}
