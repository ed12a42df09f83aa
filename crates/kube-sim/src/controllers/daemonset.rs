//! The DaemonSet controller, as the recorded v1.36 one behaves
//! (`tests/fixtures/k8s-recordings/daemonset-*`): one pod per node that should run it (its
//! taints tolerated, its labels matching the template's `nodeSelector`), aimed at the node by a
//! `matchFields metadata.name` node affinity and bound by the scheduler; a rolling update with
//! maxUnavailable (an old pod is deleted, and its replacement created as soon as the old one is
//! `Succeeded`, before its object is gone) or with maxSurge (the new pod first, the old one
//! deleted once the new one is available); OnDelete replaces only what the user deleted.
//!
//! The controller never counts a finished pod that is being deleted (`getNodesToDaemonPods`
//! without terminal pods); of the rest, a node's oldest pod (scheduled first, then by
//! creationTimestamp, then name) decides whether the node counts as ready and as updated. So a
//! terminating old pod that still runs hides the node's new pod: `updatedNumberScheduled` rises
//! only as old pods finish. A sync that creates or deletes pods leaves the rolling update to the
//! next sync (the real controller waits for its expectations), and every sync ends with the
//! status counted from the pods as they are then.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, DaemonSetStatus};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodStatus, Toleration,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::nodes::{selects, target_node, tolerates_node};
use super::revision::{CONTROLLER_REVISION_HASH, Owner, labels_with};
use super::{World, admit, controller_ref, is_finished, is_ready, key_of, label, nonzero, phase};
use crate::store::{Object, TEMPLATE_GENERATION};

/// The label holding the DaemonSet template generation a pod was made from.
pub const POD_TEMPLATE_GENERATION: &str = "pod-template-generation";

/// The tolerations the controller adds to every daemon pod (`AddOrUpdateDaemonPodTolerations`),
/// so that node conditions do not evict or keep out what every node needs.
const DAEMON_TOLERATIONS: &[(&str, &str)] = &[
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
];

/// The template's tolerations plus the daemon ones it lacks.
fn daemon_tolerations(spec: &DaemonSetSpec) -> Vec<Toleration> {
    let mut tolerations = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    for (key, effect) in DAEMON_TOLERATIONS {
        let present = tolerations
            .iter()
            .any(|t| t.key.as_deref() == Some(key) && t.effect.as_deref() == Some(effect));
        if !present {
            tolerations.push(Toleration {
                key: Some((*key).into()),
                operator: Some("Exists".into()),
                effect: Some((*effect).into()),
                value: None,
                toleration_seconds: None,
            });
        }
    }
    tolerations
}

/// `NodeShouldRunDaemonPod`, for what the simulated nodes have: taints and labels.
fn should_run(spec: &DaemonSetSpec, node: &Node) -> bool {
    let selector = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.node_selector.as_ref());
    tolerates_node(&daemon_tolerations(spec), node) && selects(selector, node)
}

/// `podByCreationTimestampAndPhase`: scheduled pods first, then the oldest, then by name.
fn sort_pods(pods: &mut [Pod]) {
    pods.sort_by(|a, b| {
        let scheduled = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none();
        let created = |p: &Pod| {
            p.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
        };
        (scheduled(a), created(a), &a.metadata.name).cmp(&(
            scheduled(b),
            created(b),
            &b.metadata.name,
        ))
    });
}

/// `IsPodUpdated`: the pod carries the update revision's hash or the current template generation.
fn is_updated(p: &Pod, hash: &str, generation: &str) -> bool {
    label(&p.metadata, CONTROLLER_REVISION_HASH).map(String::as_str) == Some(hash)
        || label(&p.metadata, POD_TEMPLATE_GENERATION).map(String::as_str) == Some(generation)
}

fn is_deleted(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

/// `findUpdatedPodsOnNode`: the node's one new and one old pod, skipping pods being deleted;
/// `None` when it has more than one of either (the manage loop cleans that up).
fn updated_pods_on_node<'a>(
    pods: &'a [Pod],
    hash: &str,
    generation: &str,
) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for p in pods.iter().filter(|p| !is_deleted(p)) {
        let slot = if is_updated(p, hash, generation) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(p);
    }
    Some((new, old))
}

/// maxSurge and maxUnavailable against the number of nodes that should run the pod, both rounded
/// up (`GetScaledValueFromIntOrPercent(.., true)`); a RollingUpdate that allows neither gets
/// maxUnavailable 1, as the real controller does. OnDelete: both 0.
fn surge_and_unavailable(spec: &DaemonSetSpec, desired: i32) -> (i32, i32) {
    let strategy = spec.update_strategy.as_ref();
    if strategy
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
        != "RollingUpdate"
    {
        return (0, 0);
    }
    let ru = strategy.and_then(|s| s.rolling_update.as_ref());
    let resolve = |v: Option<&IntOrString>, default: i32| match v {
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => {
            let pct: i32 = s.trim_end_matches('%').parse().unwrap_or(0);
            (desired * pct + 99) / 100
        }
        None => default,
    };
    let surge = resolve(ru.and_then(|r| r.max_surge.as_ref()), 0);
    let unavailable = resolve(ru.and_then(|r| r.max_unavailable.as_ref()), 1);
    if desired > 0 && surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// `AllowsSurge`: a RollingUpdate whose maxSurge is not zero (a percentage of one node).
fn allows_surge(spec: &DaemonSetSpec) -> bool {
    let strategy = spec.update_strategy.as_ref();
    strategy
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate"
        && match strategy
            .and_then(|s| s.rolling_update.as_ref())
            .and_then(|r| r.max_surge.as_ref())
        {
            Some(IntOrString::Int(n)) => *n != 0,
            Some(IntOrString::String(s)) => {
                s.trim_end_matches('%').parse::<i32>().unwrap_or(0) != 0
            }
            None => false,
        }
}

/// What one sync decided: pods to delete (by key) and nodes to create a pod on.
#[derive(Default)]
struct Plan {
    delete: Vec<Pod>,
    create: Vec<String>,
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.delete.is_empty() && self.create.is_empty()
    }
}

impl World {
    pub(super) fn daemonset_controller(&mut self, now: f64) {
        let sets: Vec<DaemonSet> = self.store.daemonsets().cloned().collect();
        for ds in sets {
            self.sync_daemonset(ds, now);
        }
    }

    /// The DaemonSet's pods by the node they are on (or meant for), without finished pods that
    /// are being deleted, each node's sorted oldest first.
    fn daemon_pods_by_node(&self, uid: &str) -> BTreeMap<String, Vec<Pod>> {
        let mut by_node: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
        for p in self.owned_pods(uid) {
            if is_finished(&p) && is_deleted(&p) {
                continue;
            }
            if let Some(node) = target_node(&p) {
                by_node.entry(node).or_default().push(p);
            }
        }
        for pods in by_node.values_mut() {
            sort_pods(pods);
        }
        by_node
    }

    fn sync_daemonset(&mut self, ds: DaemonSet, now: f64) {
        let Some(spec) = ds.spec.clone() else {
            return;
        };
        let uid = ds.metadata.uid.clone().unwrap_or_default();
        let generation = ds
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(TEMPLATE_GENERATION))
            .cloned()
            .unwrap_or_else(|| "1".into());
        let owner = Owner {
            kind: "DaemonSet",
            meta: &ds.metadata,
            template: &spec.template,
            history_limit: spec.revision_history_limit.unwrap_or(10),
        };
        let Some(update) = self.sync_revisions(&owner) else {
            return;
        };
        let Some(hash) = label(&update.metadata, CONTROLLER_REVISION_HASH).cloned() else {
            return;
        };
        let nodes: Vec<Node> = self.store.nodes().cloned().collect();

        let by_node = self.daemon_pods_by_node(&uid);
        let plan = manage(&spec, &nodes, &by_node, &hash);
        let plan = if plan.is_empty() {
            rolling_update(&spec, &nodes, &by_node, &hash, &generation)
        } else {
            plan
        };
        for p in &plan.delete {
            self.delete_pod(&key_of(&p.metadata), None, now);
        }
        for node in &plan.create {
            let pod = self.daemon_pod(&ds, &spec, node, &hash, &generation);
            self.store.create(Object::Pod(pod));
        }

        let status = daemonset_status(
            &ds,
            &spec,
            &nodes,
            &self.daemon_pods_by_node(&uid),
            &hash,
            &generation,
        );
        if ds.status.as_ref() != Some(&status) {
            let mut ds = ds.clone();
            ds.status = Some(status);
            self.store.update(Object::DaemonSet(ds));
        }
        let in_use: Vec<String> = self
            .owned_pods(&uid)
            .iter()
            .filter_map(|p| label(&p.metadata, CONTROLLER_REVISION_HASH).cloned())
            .chain([hash])
            .collect();
        self.cleanup_revisions(&owner, |r| {
            label(&r.metadata, CONTROLLER_REVISION_HASH).is_some_and(|h| in_use.contains(h))
        });
    }

    /// A daemon pod for one node, named as generateName names it.
    fn daemon_pod(
        &mut self,
        ds: &DaemonSet,
        spec: &DaemonSetSpec,
        node: &str,
        hash: &str,
        generation: &str,
    ) -> Pod {
        let name = format!(
            "{}-{}",
            ds.metadata.name.as_deref().unwrap_or_default(),
            self.suffix()
        );
        daemon_pod(ds, spec, node, hash, generation, name)
    }
}

/// A daemon pod for one node, as `syncNodes` creates it: the template with the revision hash and
/// template generation labels, aimed at the node, with the daemon tolerations.
pub(crate) fn daemon_pod(
    ds: &DaemonSet,
    spec: &DaemonSetSpec,
    node: &str,
    hash: &str,
    generation: &str,
    name: String,
) -> Pod {
    let ds_name = ds.metadata.name.clone().unwrap_or_default();
    let template = &spec.template;
    let mut meta = template.metadata.clone().unwrap_or_default();
    meta.labels = Some(labels_with(
        template,
        &[
            (CONTROLLER_REVISION_HASH, hash.to_string()),
            (POD_TEMPLATE_GENERATION, generation.to_string()),
        ],
    ));
    meta.name = Some(name);
    meta.generate_name = Some(format!("{ds_name}-"));
    meta.namespace = ds.metadata.namespace.clone();
    meta.owner_references = Some(vec![controller_ref("apps/v1", "DaemonSet", &ds.metadata)]);
    let mut pod_spec = template.spec.clone().unwrap_or_default();
    let affinity = pod_spec.affinity.get_or_insert_with(Affinity::default);
    affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default)
        .required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.to_string()]),
            }]),
        }],
    });
    pod_spec.tolerations = Some(daemon_tolerations(spec));
    Pod {
        metadata: meta,
        spec: Some(admit(pod_spec)),
        status: Some(PodStatus {
            phase: Some("Pending".into()),
            qos_class: Some("BestEffort".into()),
            ..Default::default()
        }),
    }
}

/// `podsShouldBeOnNode` over every node: a pod where one should run and none is; none where none
/// should; failed pods replaced; extra pods removed (with surge, a node keeps its oldest new and
/// oldest old pod, and the old one goes once the new one is available or the old one not ready).
fn manage(
    spec: &DaemonSetSpec,
    nodes: &[Node],
    by_node: &BTreeMap<String, Vec<Pod>>,
    hash: &str,
) -> Plan {
    let mut plan = Plan::default();
    let surge = allows_surge(spec);
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let pods = by_node.get(&name).map(Vec::as_slice).unwrap_or_default();
        let run = should_run(spec, node);
        if !run {
            plan.delete
                .extend(pods.iter().filter(|p| !is_deleted(p)).cloned());
            continue;
        }
        if pods.is_empty() {
            plan.create.push(name);
            continue;
        }
        let mut running: Vec<&Pod> = Vec::new();
        for p in pods.iter().filter(|p| !is_deleted(p)) {
            if phase(p) == "Failed" {
                plan.delete.push(p.clone());
            } else {
                running.push(p);
            }
        }
        // `pods` is sorted oldest first, and so is `running`.
        if !surge {
            plan.delete
                .extend(running.iter().skip(1).map(|p| (*p).clone()));
            continue;
        }
        if running.is_empty() {
            plan.create.push(name);
            continue;
        }
        let (mut oldest_new, mut oldest_old) = (None, None);
        for p in &running {
            let slot =
                if label(&p.metadata, CONTROLLER_REVISION_HASH).map(String::as_str) == Some(hash) {
                    &mut oldest_new
                } else {
                    &mut oldest_old
                };
            if slot.is_none() {
                *slot = Some(*p);
            } else {
                plan.delete.push((*p).clone());
            }
        }
        if let (Some(new), Some(old)) = (oldest_new, oldest_old)
            && (!is_ready(old) || is_ready(new))
        {
            plan.delete.push(old.clone());
        }
    }
    plan
}

/// `rollingUpdate`: without surge, old pods are deleted while fewer than maxUnavailable nodes are
/// unavailable (an unavailable old pod may always go); with surge, a new pod is created next to
/// an old one on at most maxSurge nodes at a time (at once where the old one is unavailable),
/// and an old pod is deleted once the new one beside it is available.
fn rolling_update(
    spec: &DaemonSetSpec,
    nodes: &[Node],
    by_node: &BTreeMap<String, Vec<Pod>>,
    hash: &str,
    generation: &str,
) -> Plan {
    let mut plan = Plan::default();
    if spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
        != "RollingUpdate"
    {
        return plan;
    }
    let desired = nodes.iter().filter(|n| should_run(spec, n)).count() as i32;
    let (max_surge, max_unavailable) = surge_and_unavailable(spec, desired);
    let node = |name: &str| {
        nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name))
    };
    if max_surge == 0 {
        let mut unavailable = 0;
        let mut replace_now: Vec<Pod> = Vec::new();
        let mut candidates: Vec<Pod> = Vec::new();
        for pods in by_node.values() {
            match updated_pods_on_node(pods, hash, generation) {
                None | Some((None, None)) | Some((Some(_), Some(_))) => unavailable += 1,
                Some((Some(new), None)) => {
                    if !is_ready(new) {
                        unavailable += 1;
                    }
                }
                Some((None, Some(old))) => {
                    if !is_ready(old) {
                        replace_now.push(old.clone());
                    } else if unavailable < max_unavailable {
                        candidates.push(old.clone());
                    }
                }
            }
        }
        let room = (max_unavailable - unavailable).clamp(0, candidates.len() as i32);
        plan.delete = replace_now;
        plan.delete
            .extend(candidates.into_iter().take(room as usize));
        return plan;
    }
    let mut surged = 0;
    let mut replace_now: Vec<String> = Vec::new();
    let mut candidates: Vec<String> = Vec::new();
    for (name, pods) in by_node {
        let Some((new, old)) = updated_pods_on_node(pods, hash, generation) else {
            surged += 1;
            continue;
        };
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) => {
                let Some(n) = node(name) else {
                    continue;
                };
                if !should_run(spec, n) {
                    plan.delete.push(old.clone());
                } else if !is_ready(old) {
                    replace_now.push(name.clone());
                } else if surged < max_surge {
                    candidates.push(name.clone());
                }
            }
            (Some(new), Some(old)) => {
                if is_ready(new) {
                    plan.delete.push(old.clone());
                } else {
                    surged += 1;
                }
            }
        }
    }
    let room = (max_surge - surged).clamp(0, candidates.len() as i32);
    plan.create = replace_now;
    plan.create
        .extend(candidates.into_iter().take(room as usize));
    plan
}

/// `updateDaemonSetStatus`: per node that should run the pod, whether it has one, and whether
/// its oldest pod is ready and updated; pods on nodes that should not run it are misscheduled.
fn daemonset_status(
    ds: &DaemonSet,
    spec: &DaemonSetSpec,
    nodes: &[Node],
    by_node: &BTreeMap<String, Vec<Pod>>,
    hash: &str,
    generation: &str,
) -> DaemonSetStatus {
    let (mut desired, mut current, mut ready, mut updated, mut misscheduled) = (0, 0, 0, 0, 0);
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let pods = by_node.get(&name).map(Vec::as_slice).unwrap_or_default();
        if !should_run(spec, node) {
            if !pods.is_empty() {
                misscheduled += 1;
            }
            continue;
        }
        desired += 1;
        let Some(oldest) = pods.first() else {
            continue;
        };
        current += 1;
        if is_ready(oldest) {
            ready += 1;
        }
        if is_updated(oldest, hash, generation) {
            updated += 1;
        }
    }
    let old = ds.status.clone().unwrap_or_default();
    DaemonSetStatus {
        current_number_scheduled: current,
        desired_number_scheduled: desired,
        number_misscheduled: misscheduled,
        number_ready: ready,
        observed_generation: ds.metadata.generation,
        updated_number_scheduled: nonzero(updated),
        // Available is ready here: minReadySeconds is 0.
        number_available: nonzero(ready),
        number_unavailable: nonzero(desired - ready),
        collision_count: old.collision_count,
        conditions: old.conditions,
    }
}
