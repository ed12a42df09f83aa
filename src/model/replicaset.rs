//! ReplicaSets: apply, delete and sweep. A ReplicaSet fills its slot (a placeholder when its pods
//! came first) and joins the workload of its controlling Deployment; one owned by anything else
//! takes its pods out of every rollout.

use super::{OwnerKind, WorkloadKind};

const DEPLOYMENT: WorkloadKind = WorkloadKind::Deployment;
use super::milestones::evaluate;
use super::namespace::{Namespace, RsOwner};
use super::{Ctx, Item, ReplicaSetState};

impl Item for ReplicaSetState {
    type Key = String;

    fn namespace(&self) -> &str {
        &self.key.namespace
    }

    fn apply(self, n: &mut Namespace, cx: &mut Ctx<'_>, listed: Option<u32>) {
        let rs = self;
        let thresholds = cx.thresholds().len();
        let owner = match &rs.owner {
            Some(o) if o.kind == OwnerKind::Deployment => RsOwner::Workload(
                DEPLOYMENT,
                n.workload_entry(DEPLOYMENT, &o.name, thresholds).0,
            ),
            _ => RsOwner::Other,
        };
        let (rs_name, slot) = n.slot_entry(&rs.key.name);
        slot.exists = true;
        if let Some(epoch) = listed {
            slot.listed = epoch;
        }
        slot.revision = rs.revision;
        slot.created = rs.created;
        let previous = std::mem::replace(&mut slot.owner, owner.clone());
        if let Some((kind, old)) = previous.workload()
            && previous != owner
        {
            // Orphaned or adopted by another Deployment.
            if let Some(w) = n.workload_mut(kind, old) {
                w.replicasets.remove(&rs_name);
            }
            evaluate(n, cx, kind, old);
            n.remove_workload_if_gone(kind, old, thresholds);
        }
        match owner {
            RsOwner::Workload(kind, name) => {
                if n.workload(kind, &name).is_none() {
                    return;
                }
                n.adopt_slot(&rs_name, kind, &name, cx.cfg.buckets());
                evaluate(n, cx, kind, &name);
            }
            RsOwner::Other | RsOwner::Unknown => {
                if let Some(slot) = n.slot_mut(&rs_name) {
                    slot.early_observations.clear();
                }
                n.drop_pods_of(&rs_name);
            }
        }
    }

    fn delete(self, n: &mut Namespace, cx: &mut Ctx<'_>) {
        delete(n, cx, &self.key.name);
    }

    fn unlisted(n: &Namespace, epoch: u32) -> Vec<String> {
        n.slots()
            .filter(|(_, s)| s.listed != epoch && (s.exists || s.owner == RsOwner::Unknown))
            .map(|(name, _)| name.to_string())
            .collect()
    }

    fn sweep(n: &mut Namespace, cx: &mut Ctx<'_>, name: &String) {
        // A placeholder whose ReplicaSet is not listed never arrives: drop what it kept.
        if let Some(slot) = n.slot_mut(name) {
            slot.early_observations.clear();
        }
        delete(n, cx, name);
    }
}

fn delete(n: &mut Namespace, cx: &mut Ctx<'_>, name: &str) {
    let Some(slot) = n.slot_mut(name) else {
        return;
    };
    slot.exists = false;
    let owner = slot.owner.clone();
    n.drop_slot_if_garbage(name);
    if let Some((kind, w)) = owner.workload() {
        evaluate(n, cx, kind, w);
        n.remove_workload_if_gone(kind, w, cx.thresholds().len());
    }
}
