//! The StatefulSet controller, as the recorded v1.36 one behaves
//! (`tests/fixtures/k8s-recordings/statefulset-*`): pods `<set>-<ordinal>` created in order, each
//! once the one before is Running and Ready (OrderedReady; Parallel does not wait); a rolling
//! update replaces one pod at a time from the highest ordinal down, deleting it, waiting until
//! its object is gone, creating its successor under the same name (a new uid) and waiting until
//! that is Ready; ordinals below `rollingUpdate.partition` keep the current revision; OnDelete
//! replaces nothing itself.
//!
//! Each sync takes at most one step (OrderedReady) and then writes the status the way the
//! recorded controller does: counted from the pods as they were at the start of the sync, minus
//! a pod it just deleted for the update (so the first status after a template change already has
//! `currentReplicas` one lower), while a pod it just created is not counted until the next sync
//! (the recording shows `replicas` drop to 2 and return to 3 with `updatedReplicas` one higher).
//! `currentRevision` becomes `updateRevision` in the same write that sees every desired pod
//! updated and Ready. Zero counts are omitted; `collisionCount: 0` is written.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    ControllerRevision, StatefulSet, StatefulSetSpec, StatefulSetStatus,
};
use k8s_openapi::api::core::v1::{Pod, PodStatus, PodTemplateSpec};

use super::revision::{CONTROLLER_REVISION_HASH, Owner, labels_with, revision_template};
use super::{World, admit, controller_ref, is_finished, is_ready, key_of, label, nonzero, phase};
use crate::store::Object;

/// The label naming a StatefulSet pod (its Service's DNS name).
pub const STATEFULSET_POD_NAME: &str = "statefulset.kubernetes.io/pod-name";
/// The label holding a StatefulSet pod's ordinal.
pub const POD_INDEX: &str = "apps.kubernetes.io/pod-index";

/// The status counts, as `computeReplicaStatus` makes them.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    replicas: i32,
    ready: i32,
    available: i32,
    current: i32,
    updated: i32,
}

fn is_terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

/// Running and Ready (available too: `minReadySeconds` is 0 here).
fn running_and_ready(p: &Pod) -> bool {
    phase(p) == "Running" && is_ready(p)
}

fn pod_revision(p: &Pod) -> Option<&String> {
    label(&p.metadata, CONTROLLER_REVISION_HASH)
}

/// The ordinal of a pod named `<set>-<ordinal>`.
fn ordinal(set: &str, p: &Pod) -> Option<i32> {
    let name = p.metadata.name.as_deref()?;
    let n = name.strip_prefix(set)?.strip_prefix('-')?;
    n.parse().ok().filter(|o: &i32| *o >= 0)
}

fn count(pods: &BTreeMap<i32, Pod>, current: &str, update: &str) -> Counts {
    let mut c = Counts::default();
    for p in pods.values() {
        c.replicas += 1;
        if running_and_ready(p) {
            c.ready += 1;
            c.available += 1;
        }
        if !is_terminating(p) {
            let rev = pod_revision(p).map(String::as_str);
            if rev == Some(current) {
                c.current += 1;
            }
            if rev == Some(update) {
                c.updated += 1;
            }
        }
    }
    c
}

fn strategy(spec: &StatefulSetSpec) -> (bool, Option<i32>) {
    let s = spec.update_strategy.as_ref();
    let rolling = s
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate";
    let partition = s
        .and_then(|s| s.rolling_update.as_ref())
        .map(|r| r.partition.unwrap_or(0));
    (rolling, partition)
}

/// The revisions one sync works with.
struct Revisions {
    current: ControllerRevision,
    update: ControllerRevision,
}

impl Revisions {
    fn current_name(&self) -> String {
        self.current.metadata.name.clone().unwrap_or_default()
    }

    fn update_name(&self) -> String {
        self.update.metadata.name.clone().unwrap_or_default()
    }
}

impl World {
    pub(super) fn statefulset_controller(&mut self, now: f64) {
        let sets: Vec<StatefulSet> = self.store.statefulsets().cloned().collect();
        for set in sets {
            self.sync_statefulset(set, now);
        }
    }

    fn sync_statefulset(&mut self, set: StatefulSet, now: f64) {
        let Some(spec) = set.spec.clone() else {
            return;
        };
        let uid = set.metadata.uid.clone().unwrap_or_default();
        let name = set.metadata.name.clone().unwrap_or_default();
        let owner = Owner {
            kind: "StatefulSet",
            meta: &set.metadata,
            template: &spec.template,
            history_limit: spec.revision_history_limit.unwrap_or(10),
        };
        let Some(update) = self.sync_revisions(&owner) else {
            return;
        };
        let stored = set.status.clone().unwrap_or_default();
        let current = stored
            .current_revision
            .as_ref()
            .and_then(|n| {
                self.owned_revisions(&uid)
                    .into_iter()
                    .find(|r| r.metadata.name.as_ref() == Some(n))
            })
            .unwrap_or_else(|| update.clone());
        let revs = Revisions { current, update };
        let pods: BTreeMap<i32, Pod> = self
            .owned_pods(&uid)
            .into_iter()
            .filter_map(|p| Some((ordinal(&name, &p)?, p)))
            .collect();
        let mut counts = count(&pods, &revs.current_name(), &revs.update_name());
        self.statefulset_step(&set, &spec, &stored, &pods, &revs, &mut counts, now);

        // completeRollingUpdate, against the desired replicas: the status a pod creation leaves
        // behind (replicas one short, every counted pod updated and ready) switches nothing.
        let (rolling, _) = strategy(&spec);
        let want = spec.replicas.unwrap_or(1).max(0);
        let mut current_name = revs.current_name();
        if rolling && counts.updated == want && counts.ready == want && counts.replicas == want {
            counts.current = counts.updated;
            current_name = revs.update_name();
        }
        let status = StatefulSetStatus {
            observed_generation: set.metadata.generation,
            replicas: counts.replicas,
            ready_replicas: nonzero(counts.ready),
            current_replicas: nonzero(counts.current),
            updated_replicas: nonzero(counts.updated),
            current_revision: Some(current_name.clone()),
            update_revision: Some(revs.update_name()),
            collision_count: Some(stored.collision_count.unwrap_or(0)),
            available_replicas: nonzero(counts.available),
            conditions: stored.conditions.clone(),
        };
        if set.status.as_ref() != Some(&status) {
            let mut set = set.clone();
            set.status = Some(status);
            self.store.update(Object::StatefulSet(set));
        }
        // Revisions in use: the current and update ones, and any a pod still carries.
        let in_use: Vec<String> = self
            .owned_pods(&uid)
            .iter()
            .filter_map(|p| pod_revision(p).cloned())
            .chain([current_name, revs.update_name()])
            .collect();
        self.cleanup_revisions(&owner, |r| {
            r.metadata.name.as_ref().is_some_and(|n| in_use.contains(n))
        });
    }

    /// One pass of `updateStatefulSet`: create or replace the pods of ordinals below `replicas`
    /// in order, then remove the condemned ones (highest first), then the rolling update.
    /// OrderedReady returns after any step, and while any pod is not Running and Ready.
    #[allow(clippy::too_many_arguments)]
    fn statefulset_step(
        &mut self,
        set: &StatefulSet,
        spec: &StatefulSetSpec,
        stored: &StatefulSetStatus,
        pods: &BTreeMap<i32, Pod>,
        revs: &Revisions,
        counts: &mut Counts,
        now: f64,
    ) {
        let monotonic = spec.pod_management_policy.as_deref() != Some("Parallel");
        let replicas = spec.replicas.unwrap_or(1).max(0);
        let (rolling, partition) = strategy(spec);
        for ord in 0..replicas {
            match pods.get(&ord) {
                None => {
                    let pod = self.versioned_pod(set, spec, stored, revs, ord);
                    self.store.create(Object::Pod(pod));
                    if monotonic {
                        return;
                    }
                }
                // A finished pod is deleted; its successor comes once its object is gone.
                Some(p) if is_finished(p) => {
                    if !is_terminating(p) {
                        self.delete_pod(&key_of(&p.metadata), None, now);
                    }
                    if monotonic {
                        return;
                    }
                }
                Some(p) if monotonic && (is_terminating(p) || !running_and_ready(p)) => return,
                Some(_) => {}
            }
        }
        // Scale down: the condemned ordinals, highest first.
        let condemned: Vec<(&i32, &Pod)> = pods.range(replicas..).collect();
        let first_unhealthy = condemned
            .iter()
            .find(|(_, p)| !running_and_ready(p))
            .map(|(o, _)| **o);
        for (ord, p) in condemned.into_iter().rev() {
            if is_terminating(p) {
                if monotonic {
                    return;
                }
                continue;
            }
            if monotonic && !running_and_ready(p) && Some(*ord) != first_unhealthy {
                return;
            }
            self.delete_pod(&key_of(&p.metadata), None, now);
            let rev = pod_revision(p);
            if rev == Some(&revs.current_name()) {
                counts.current -= 1;
            }
            if rev == Some(&revs.update_name()) {
                counts.updated -= 1;
            }
            if monotonic {
                return;
            }
        }
        if !rolling {
            return;
        }
        // The rolling update: the highest ordinal not at the update revision is deleted, one at
        // a time, never below the partition.
        let update_min = partition.unwrap_or(0).max(0);
        for target in (update_min..replicas).rev() {
            let Some(p) = pods.get(&target) else {
                return;
            };
            if pod_revision(p) != Some(&revs.update_name()) && !is_terminating(p) {
                self.delete_pod(&key_of(&p.metadata), None, now);
                counts.current -= 1;
                return;
            }
            if is_terminating(p) || !running_and_ready(p) {
                return;
            }
        }
    }

    /// `newVersionedStatefulSetPod`: the current revision's pod for an ordinal below the partition
    /// (or, without `rollingUpdate`, below the stored `currentReplicas`), else the update
    /// revision's.
    fn versioned_pod(
        &self,
        set: &StatefulSet,
        spec: &StatefulSetSpec,
        stored: &StatefulSetStatus,
        revs: &Revisions,
        ord: i32,
    ) -> Pod {
        let (rolling, partition) = strategy(spec);
        let keep_current = rolling
            && match partition {
                None => ord < stored.current_replicas.unwrap_or(0),
                Some(p) => ord < p,
            };
        let (template, revision) = if keep_current {
            (
                revision_template(&revs.current).unwrap_or_else(|| spec.template.clone()),
                revs.current_name(),
            )
        } else {
            (spec.template.clone(), revs.update_name())
        };
        statefulset_pod(set, spec, &template, ord, &revision)
    }
}

/// A pod as `newStatefulSetPod` makes it: named by ordinal, labelled with its name, index and
/// revision, its hostname and subdomain for the Service's DNS.
pub(crate) fn statefulset_pod(
    set: &StatefulSet,
    spec: &StatefulSetSpec,
    template: &PodTemplateSpec,
    ord: i32,
    revision: &str,
) -> Pod {
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let name = format!("{set_name}-{ord}");
    let mut meta = template.metadata.clone().unwrap_or_default();
    meta.labels = Some(labels_with(
        template,
        &[
            (CONTROLLER_REVISION_HASH, revision.to_string()),
            (POD_INDEX, ord.to_string()),
            (STATEFULSET_POD_NAME, name.clone()),
        ],
    ));
    meta.name = Some(name.clone());
    meta.generate_name = Some(format!("{set_name}-"));
    meta.namespace = set.metadata.namespace.clone();
    meta.owner_references = Some(vec![controller_ref(
        "apps/v1",
        "StatefulSet",
        &set.metadata,
    )]);
    let mut pod_spec = admit(template.spec.clone().unwrap_or_default());
    pod_spec.hostname = Some(name);
    pod_spec.subdomain = spec.service_name.clone();
    Pod {
        metadata: meta,
        spec: Some(pod_spec),
        status: Some(PodStatus {
            phase: Some("Pending".into()),
            qos_class: Some("BestEffort".into()),
            ..Default::default()
        }),
    }
}
