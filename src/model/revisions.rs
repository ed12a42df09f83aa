//! ControllerRevisions: apply, delete and sweep. Each is kept by the StatefulSet or DaemonSet
//! that controls it, which may arrive later (the recordings show a revision received before the
//! workload event that caused it): the workload's entry holds it until then. A DaemonSet's update
//! revision is its revision with the highest number: a new one moves the revision its pods are
//! compared with.

use super::milestones::{evaluate, revision_arrived};
use super::namespace::Namespace;
use super::workload::RevisionRecord;
use super::{ControllerRevisionState, Ctx, Item, OwnerKind, WorkloadKind};

impl Item for ControllerRevisionState {
    type Key = String;

    fn namespace(&self) -> &str {
        &self.key.namespace
    }

    fn apply(self, n: &mut Namespace, cx: &mut Ctx<'_>, listed: Option<u32>) {
        let Some(kind) = owner_kind(&self) else {
            return;
        };
        let Some(owner) = self.owner.as_ref().map(|o| o.name.as_str()) else {
            return;
        };
        let thresholds = cx.thresholds().len();
        let (workload, w) = n.workload_entry(kind, owner, thresholds);
        let name = match w.revisions.get_key_value(self.key.name.as_str()) {
            Some((name, _)) => name.clone(),
            None => self.key.name.as_str().into(),
        };
        let listed = listed.or_else(|| w.revisions.get(&name).map(|r| r.listed));
        w.revisions.insert(
            name,
            RevisionRecord {
                revision: self.revision,
                hash: self.hash.map(String::into_boxed_str),
                created: self.created,
                listed: listed.unwrap_or(0),
            },
        );
        revision_arrived(n, cx, kind, &workload);
        evaluate(n, cx, kind, &workload);
    }

    fn delete(self, n: &mut Namespace, cx: &mut Ctx<'_>) {
        if let (Some(kind), Some(owner)) = (owner_kind(&self), &self.owner) {
            remove(n, cx, kind, &owner.name, &self.key.name);
        }
    }

    fn unlisted(n: &Namespace, epoch: u32) -> Vec<String> {
        [WorkloadKind::StatefulSet, WorkloadKind::DaemonSet]
            .into_iter()
            .flat_map(|kind| n.workloads_of(kind).values())
            .flat_map(|w| w.revisions.iter())
            .filter(|(_, r)| r.listed != epoch)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    fn sweep(n: &mut Namespace, cx: &mut Ctx<'_>, name: &String) {
        // Gone during a watch gap: its owner is whichever workload keeps it.
        let owner = [WorkloadKind::StatefulSet, WorkloadKind::DaemonSet]
            .into_iter()
            .find_map(|kind| {
                n.workloads_of(kind)
                    .iter()
                    .find(|(_, w)| w.revisions.contains_key(name.as_str()))
                    .map(|(w, _)| (kind, w.to_string()))
            });
        if let Some((kind, owner)) = owner {
            remove(n, cx, kind, &owner, name);
        }
    }
}

/// The workload kind of the revision's controller; revisions of anything else are not read.
fn owner_kind(cr: &ControllerRevisionState) -> Option<WorkloadKind> {
    match cr.owner.as_ref()?.kind {
        OwnerKind::StatefulSet => Some(WorkloadKind::StatefulSet),
        OwnerKind::DaemonSet => Some(WorkloadKind::DaemonSet),
        _ => None,
    }
}

fn remove(n: &mut Namespace, cx: &mut Ctx<'_>, kind: WorkloadKind, owner: &str, name: &str) {
    let Some(w) = n.workload_mut(kind, owner) else {
        return;
    };
    if w.revisions.remove(name).is_none() {
        return;
    }
    let Some((workload, _)) = n
        .workloads_of(kind)
        .get_key_value(owner)
        .map(|(k, v)| (k.clone(), v))
    else {
        return;
    };
    evaluate(n, cx, kind, &workload);
    n.remove_workload_if_gone(kind, owner, cx.thresholds().len());
}
