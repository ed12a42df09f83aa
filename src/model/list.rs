//! Lists: the initial sync and every relist after a watch gap, streamed through the model.
//!
//! A list's objects are applied as they arrive and stamped with its epoch; at its end, whatever
//! in its namespace (or the whole cluster) was not stamped went away during the gap and is swept
//! by its kind's [`Item::sweep`]. Milestones its objects move are evaluated at its end, on all of
//! it, never on a half-applied list. When every resource has finished its first list, the rollouts
//! in flight are recovered and the model starts counting ([`Model::is_live`]).

use super::milestones;
use super::namespace::Name;
use super::{Deferred, Item, Model, Resource, Timestamp, Timing, WorkloadKind};

/// A list in progress.
#[derive(Clone, Debug)]
pub(super) struct List {
    resource: Resource,
    /// The namespace listed; `None`: the whole cluster.
    namespace: Option<String>,
    epoch: u32,
    /// Workloads whose milestones wait for the end of the list.
    deferred: Deferred,
}

/// Whether `namespace` is inside a list of `listed` (`None`: the whole cluster).
fn covers(listed: &Option<String>, namespace: &str) -> bool {
    listed.as_deref().is_none_or(|s| s == namespace)
}

impl Model {
    /// A whole list at once (tests only; see [`super::Change::Relisted`]).
    #[cfg(any(test, feature = "test-support"))]
    pub(super) fn relist<T: Item>(
        &mut self,
        resource: Resource,
        namespace: Option<String>,
        items: Vec<T>,
        now: Timestamp,
    ) {
        self.list_started(resource, namespace.clone());
        for item in items {
            self.listed(resource, item, now);
        }
        self.list_done::<T>(resource, namespace, now);
    }

    pub(super) fn list_started(&mut self, resource: Resource, namespace: Option<String>) {
        self.epoch = self.epoch.wrapping_add(1).max(1);
        let epoch = self.epoch;
        match self
            .lists
            .iter_mut()
            .find(|l| l.resource == resource && l.namespace == namespace)
        {
            // A list that restarts (an error part way): the objects it applied stay applied, and
            // what it deferred is still evaluated at the end.
            Some(list) => list.epoch = epoch,
            None => self.lists.push(List {
                resource,
                namespace,
                epoch,
                deferred: Deferred::new(),
            }),
        }
    }

    /// One object of a list in progress: applied now, its milestones evaluated at the list's end.
    pub(super) fn listed<T: Item>(&mut self, resource: Resource, item: T, now: Timestamp) {
        let ns = self.intern(item.namespace());
        let list = self
            .lists
            .iter()
            .position(|l| l.resource == resource && covers(&l.namespace, &ns));
        let Some(i) = list else {
            // No list in progress (not sent by the watch adapters): an ordinary change.
            self.in_namespace(&ns, now, Timing::Relist, None, |n, cx| {
                item.apply(n, cx, None)
            });
            self.prune(&ns);
            return;
        };
        let epoch = self.lists[i].epoch;
        let mut deferred = std::mem::take(&mut self.lists[i].deferred);
        self.in_namespace(&ns, now, Timing::Relist, Some(&mut deferred), |n, cx| {
            item.apply(n, cx, Some(epoch))
        });
        self.lists[i].deferred = deferred;
        self.prune(&ns);
    }

    /// A list finished: what it covers and did not list is gone, milestones are evaluated on the
    /// whole of it, and the resource may now be synced.
    pub(super) fn list_done<T: Item>(
        &mut self,
        resource: Resource,
        namespace: Option<String>,
        now: Timestamp,
    ) {
        let position = self
            .lists
            .iter()
            .position(|l| l.resource == resource && l.namespace == namespace);
        let i = match position {
            Some(i) => i,
            None => {
                // Done without a start: an empty list.
                self.list_started(resource, namespace.clone());
                self.lists.len() - 1
            }
        };
        let list = self.lists.remove(i);
        let mut deferred = list.deferred;
        self.sweep::<T>(&namespace, list.epoch, now, &mut deferred);
        for (ns, kind, w) in deferred {
            self.evaluate(&ns, kind, &w, now, Timing::Relist);
        }
        self.namespaces.retain(|_, n| !n.is_empty());
        self.mark_synced(resource, namespace.clone(), now);
        if resource == Resource::FinishedPods {
            for (ns, kind, w) in self.workload_names(&namespace) {
                self.evaluate(&ns, kind, &w, now, Timing::Relist);
            }
        }
    }

    /// Sweeps what the list of `epoch` covers and did not list, in a fixed order (not the maps'),
    /// so replays give the same observations in the same order.
    fn sweep<T: Item>(
        &mut self,
        listed: &Option<String>,
        epoch: u32,
        now: Timestamp,
        deferred: &mut Deferred,
    ) {
        let mut gone: Vec<(Name, T::Key)> = self
            .namespaces
            .iter()
            .filter(|(ns, _)| covers(listed, ns))
            .flat_map(|(ns, n)| {
                T::unlisted(n, epoch)
                    .into_iter()
                    .map(|key| (ns.clone(), key))
            })
            .collect();
        gone.sort();
        for (ns, key) in gone {
            self.in_namespace(&ns, now, Timing::Relist, Some(deferred), |n, cx| {
                T::sweep(n, cx, &key)
            });
        }
        for (ns, n) in self.namespaces.iter_mut() {
            if covers(listed, ns) {
                T::swept(n, epoch);
            }
        }
    }

    /// Evaluates workload `w`'s milestones now (no list defers it).
    fn evaluate(
        &mut self,
        ns: &Name,
        kind: WorkloadKind,
        w: &Name,
        now: Timestamp,
        timing: Timing,
    ) {
        self.in_namespace(ns, now, timing, None, |n, cx| {
            milestones::evaluate(n, cx, kind, w)
        });
    }

    /// Every workload a list of `listed` covers, in order.
    fn workload_names(&self, listed: &Option<String>) -> Vec<(Name, WorkloadKind, Name)> {
        self.namespaces
            .iter()
            .filter(|(ns, _)| covers(listed, ns))
            .flat_map(|(ns, n)| {
                n.workloads()
                    .map(|(kind, w, _)| (ns.clone(), kind, w.clone()))
            })
            .collect()
    }

    fn mark_synced(&mut self, resource: Resource, namespace: Option<String>, now: Timestamp) {
        let i = resource.index();
        match namespace {
            None => self.synced[i] = true,
            Some(ns) => {
                self.synced_namespaces[i].insert(ns);
                let all = self.cfg.namespaces();
                if !all.is_empty() && all.iter().all(|n| self.synced_namespaces[i].contains(n)) {
                    self.synced[i] = true;
                }
            }
        }
        let needed = Resource::ALL
            .into_iter()
            .filter(|&r| self.cfg.watches(r))
            .all(|r| self.synced[r.index()]);
        if !self.all_synced && needed {
            for n in self.namespaces.values_mut() {
                milestones::recover(n, &self.cfg, &mut self.stats, now);
            }
            self.all_synced = true;
            self.synced_at = Some(now);
            for (ns, kind, w) in self.workload_names(&None) {
                self.evaluate(&ns, kind, &w, now, Timing::Watch);
            }
        }
    }
}
