//! Workload objects of every kind (Deployments, StatefulSets, DaemonSets): apply, delete and sweep,
//! one rule set for all (see [`super::milestones::object_changed`]); and kubectl's ready test of
//! the two kinds whose status the Deployment's test does not cover.

use super::milestones::{Before, evaluate, object_changed};
use super::namespace::Namespace;
use super::workload::Object;
use super::{
    Ctx, DaemonSetState, DeploymentState, Item, ObjectKey, RolloutState, StatefulSetState,
    UpdateStrategy, WorkloadKind,
};

impl StatefulSetState {
    /// kubectl's `rollout status` test: the controller has seen the spec (`observedGeneration`
    /// present and current) and every replica is ready; with a partition, the pods from it up
    /// are updated, otherwise the update revision is the current one (the API stores no default
    /// partition, and kubectl tells the two apart). OnDelete, which kubectl refuses, is ready
    /// once every replica is ready and updated.
    pub fn passes_ready_test(&self) -> bool {
        let observed = self
            .observed_generation
            .is_some_and(|o| o >= self.generation);
        if !observed || self.ready_replicas < self.spec_replicas {
            return false;
        }
        match (self.strategy, self.partition) {
            (UpdateStrategy::OnDelete, _) => self.updated_replicas >= self.spec_replicas,
            (_, Some(partition)) => self.updated_replicas >= self.spec_replicas - partition,
            (_, None) => {
                self.update_revision.is_some() && self.update_revision == self.current_revision
            }
        }
    }
}

impl DaemonSetState {
    /// kubectl's `rollout status` test (also used for OnDelete, which kubectl refuses): the
    /// controller has seen the spec, and every node that should run the pod runs it updated and
    /// available. A node counts as updated only once its old pod has finished.
    pub fn passes_ready_test(&self) -> bool {
        self.observed_generation
            .is_some_and(|o| o >= self.generation)
            && self.updated_number_scheduled >= self.desired_number_scheduled
            && self.number_available >= self.desired_number_scheduled
    }
}

/// One workload kind's state: its key and the [`Object`] it becomes.
trait WorkloadState: Sized {
    const KIND: WorkloadKind;
    fn key(&self) -> &ObjectKey;
    fn into_object(self) -> Object;
}

impl WorkloadState for DeploymentState {
    const KIND: WorkloadKind = WorkloadKind::Deployment;
    fn key(&self) -> &ObjectKey {
        &self.key
    }
    fn into_object(self) -> Object {
        Object::Deployment(self)
    }
}

impl WorkloadState for StatefulSetState {
    const KIND: WorkloadKind = WorkloadKind::StatefulSet;
    fn key(&self) -> &ObjectKey {
        &self.key
    }
    fn into_object(self) -> Object {
        Object::StatefulSet(self)
    }
}

impl WorkloadState for DaemonSetState {
    const KIND: WorkloadKind = WorkloadKind::DaemonSet;
    fn key(&self) -> &ObjectKey {
        &self.key
    }
    fn into_object(self) -> Object {
        Object::DaemonSet(self)
    }
}

/// The [`Item`] of each workload kind: the same rules for all.
macro_rules! workload_item {
    ($state:ty) => {
        impl Item for $state {
            type Key = String;

            fn namespace(&self) -> &str {
                &self.key.namespace
            }

            fn apply(self, n: &mut Namespace, cx: &mut Ctx<'_>, listed: Option<u32>) {
                apply(n, cx, self, listed);
            }

            fn delete(self, n: &mut Namespace, cx: &mut Ctx<'_>) {
                delete(n, cx, <$state as WorkloadState>::KIND, &self.key.name);
            }

            fn unlisted(n: &Namespace, epoch: u32) -> Vec<String> {
                unlisted(n, <$state as WorkloadState>::KIND, epoch)
            }

            fn sweep(n: &mut Namespace, cx: &mut Ctx<'_>, name: &String) {
                delete(n, cx, <$state as WorkloadState>::KIND, name);
            }
        }
    };
}

workload_item!(DeploymentState);
workload_item!(StatefulSetState);
workload_item!(DaemonSetState);

fn apply<S: WorkloadState>(n: &mut Namespace, cx: &mut Ctx<'_>, state: S, listed: Option<u32>) {
    let kind = S::KIND;
    let key_name = state.key().name.clone();
    let object = state.into_object();
    let replaced = n
        .workload(kind, &key_name)
        .and_then(|w| w.object.as_ref())
        .is_some_and(|old| old.uid() != object.uid());
    if replaced {
        // Deleted and created again under the same name while we were not looking.
        delete(n, cx, kind, &key_name);
    }
    let (name, w) = n.workload_entry(kind, &key_name, cx.thresholds().len());
    if w.object.is_none() && w.deleted {
        // Created again: nothing of the deleted one's revisions carries over.
        w.revision = None;
        w.revision_images = None;
        w.update = None;
        w.baseline = None;
        w.rise = None;
    }
    let before = Before {
        generation: w.object.as_ref().map(Object::generation),
        template: w.object.as_ref().map(Object::template),
        partition: w.object.as_ref().and_then(Object::spec_partition),
    };
    let revision = match &object {
        Object::Deployment(d) => d.revision,
        _ => None,
    };
    w.object = Some(object);
    if revision.is_some() {
        w.set_revision(revision);
    }
    w.deleted = false;
    if let Some(epoch) = listed {
        w.listed = epoch;
    }
    object_changed(n, cx, kind, &name, before);
    evaluate(n, cx, kind, &name);
}

fn delete(n: &mut Namespace, cx: &mut Ctx<'_>, kind: WorkloadKind, name: &str) {
    let Some(w) = n.workload_mut(kind, name) else {
        return;
    };
    if w.object.is_none() {
        return;
    }
    w.advance(cx.now, cx.thresholds());
    if let Some(r) = w.in_flight() {
        r.state = RolloutState::Abandoned(cx.now);
    }
    w.object = None;
    w.deleted = true;
    n.remove_workload_if_gone(kind, name, cx.thresholds().len());
}

fn unlisted(n: &Namespace, kind: WorkloadKind, epoch: u32) -> Vec<String> {
    n.workloads_of(kind)
        .iter()
        .filter(|(_, w)| w.object.is_some() && w.listed != epoch)
        .map(|(name, _)| name.to_string())
        .collect()
}
