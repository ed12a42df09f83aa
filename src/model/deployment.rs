//! Deployments: apply, delete and sweep. A Deployment whose revision changes starts a rollout of
//! its workload; one deleted abandons the rollout in flight.

use super::milestones::{evaluate, start_rollout};
use super::namespace::Namespace;
use super::{Ctx, DeploymentState, Item, RolloutState};

impl Item for DeploymentState {
    type Key = String;

    fn namespace(&self) -> &str {
        &self.key.namespace
    }

    fn apply(self, n: &mut Namespace, cx: &mut Ctx<'_>, listed: Option<u32>) {
        let d = self;
        let replaced = n
            .workload(&d.key.name)
            .and_then(|w| w.deployment.as_ref())
            .is_some_and(|old| old.uid != d.uid);
        if replaced {
            // Deleted and created again under the same name while we were not looking.
            delete(n, cx, &d.key.name);
        }
        let (name, w) = n.workload_entry(&d.key.name, cx.thresholds().len());
        let recreated = w.deployment.is_none() && w.deleted;
        if recreated {
            w.revision = None;
        }
        let revision_changed = d.revision.is_some() && d.revision != w.revision;
        if d.revision.is_some() {
            w.revision = d.revision;
        }
        w.deployment = Some(d);
        w.deleted = false;
        if let Some(epoch) = listed {
            w.listed = epoch;
        }
        if cx.all_synced && revision_changed {
            start_rollout(n, cx, &name);
        }
        evaluate(n, cx, &name);
    }

    fn delete(self, n: &mut Namespace, cx: &mut Ctx<'_>) {
        delete(n, cx, &self.key.name);
    }

    fn unlisted(n: &Namespace, epoch: u32) -> Vec<String> {
        n.workloads()
            .filter(|(_, w)| w.deployment.is_some() && w.listed != epoch)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    fn sweep(n: &mut Namespace, cx: &mut Ctx<'_>, name: &String) {
        delete(n, cx, name);
    }
}

fn delete(n: &mut Namespace, cx: &mut Ctx<'_>, name: &str) {
    let Some(w) = n.workload_mut(name) else {
        return;
    };
    if w.deployment.is_none() {
        return;
    }
    w.advance(cx.now, cx.thresholds());
    if let Some(r) = w.in_flight() {
        r.state = RolloutState::Abandoned(cx.now);
    }
    w.deployment = None;
    w.deleted = true;
    n.remove_workload_if_gone(name, cx.thresholds().len());
}
