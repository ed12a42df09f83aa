//! Nodes: the objects (`v1 nodes`), which pods may run where (taints and tolerations, node
//! selectors), the scheduler's choice, and the pod garbage collector's removal of pods whose node
//! was deleted.
//!
//! A cluster starts without Node objects and binds every pod to [`NODE_NAME`], as before nodes
//! existed here; once nodes are added, pods are scheduled onto them (the first Ready one that
//! fits, by name) and a pod that fits none stays Pending, as on a real cluster.
//!
//! **The implicit node.** [`NODE_NAME`] is no object: it is never listed or watched, so the
//! DaemonSet controller, which runs a pod on every Node object, and every test that counts nodes
//! see exactly the nodes a test added. But a client that reads a pod's `spec.nodeName` and GETs
//! that node (the exporter does, to tell why a terminating pod is stuck) must not be told the
//! node is gone while its kubelet runs the pod: `GET /api/v1/nodes/sim-node` answers a Ready
//! node, built like the others, for as long as no Node object of that name exists and it was not
//! removed ([`World::remove_node`]). Its readiness can be changed like a real node's
//! ([`World::set_node_ready`]); it takes no place in the resourceVersion sequence (its
//! `resourceVersion` is the cluster's version when it last changed), since no watch shows it.
//! Adding a node named [`NODE_NAME`] replaces it with a real object.
//!
//! **Readiness.** A node's `Ready` condition is what its kubelet posts (True, KubeletReady; False,
//! KubeletNotReady) or, once the kubelet stops posting, what the node lifecycle controller writes
//! (Unknown, NodeStatusUnknown, on every condition). While a node is not Ready its kubelet does
//! nothing: pods bound to it neither start nor finish terminating, and a deleted one stays
//! Running with its deletionTimestamp until the node is Ready again or the pod is force-deleted
//! (grace 0). The node lifecycle controller marks the node's pods not Ready
//! (`MarkPodsNotReady`), and the scheduler binds nothing new to it. Not simulated: the
//! `node.kubernetes.io/not-ready` and `unreachable` taints and the taint-based eviction that
//! follows after 300 s (the DaemonSet controller here has no `shouldContinueRunning`, so such
//! taints would make it delete the node's daemon pods, which a real one does not do).

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::core::v1::{
    Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo, Pod, PodCondition,
    Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::{NODE_NAME, World, is_finished, key_of, phase};
use crate::clock;
use crate::store::{Kind, Object};

/// Whether a toleration tolerates a taint, as `v1.Toleration.ToleratesTaint` decides: the same
/// effect (or none given), and the same key with `Exists` or the same value (an empty key with
/// `Exists` tolerates everything).
pub(super) fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        _ => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
    }
}

/// Whether pods with these tolerations may be placed on the node: every `NoSchedule` and
/// `NoExecute` taint is tolerated (`PreferNoSchedule` only steers).
pub(super) fn tolerates_node(tolerations: &[Toleration], node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_none_or(|taints| {
            taints
                .iter()
                .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
                .all(|taint| tolerations.iter().any(|t| tolerates(t, taint)))
        })
}

/// Whether a node's labels satisfy a pod's `nodeSelector`.
pub(super) fn selects(selector: Option<&BTreeMap<String, String>>, node: &Node) -> bool {
    let labels = node.metadata.labels.as_ref();
    selector.is_none_or(|sel| {
        sel.iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
    })
}

/// A node condition as the kubelet first writes it, heartbeat and transition at `t`.
fn node_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    t: &Time,
) -> NodeCondition {
    NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(t.clone()),
        last_transition_time: Some(t.clone()),
    }
}

/// The node a pod is bound to, or, for an unscheduled DaemonSet pod, the one its node affinity
/// names (`matchFields metadata.name In [node]`, as the DaemonSet controller writes it).
pub(super) fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = &spec.node_name {
        return Some(n.clone());
    }
    spec.affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name" && r.operator == "In")
        .and_then(|r| r.values.as_ref()?.first().cloned())
}

/// A node as the kubelet registers it and keeps its status: Ready, its addresses, capacity and
/// system info.
pub fn node_object(
    name: &str,
    labels: &BTreeMap<String, String>,
    taints: &[Taint],
    now: f64,
) -> Node {
    let mut all_labels = BTreeMap::from([
        ("beta.kubernetes.io/arch".to_string(), "amd64".to_string()),
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), "amd64".to_string()),
        ("kubernetes.io/hostname".to_string(), name.to_string()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
    ]);
    all_labels.extend(labels.clone());
    let t = Time(clock::now_timestamp(now));
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        node_condition(type_, status, reason, message, &t)
    };
    let resources = BTreeMap::from([
        ("cpu".to_string(), Quantity("8".into())),
        ("ephemeral-storage".to_string(), Quantity("102400Mi".into())),
        ("memory".to_string(), Quantity("16Gi".into())),
        ("pods".to_string(), Quantity("110".into())),
    ]);
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(all_labels),
            annotations: Some(BTreeMap::from([(
                "node.alpha.kubernetes.io/ttl".to_string(),
                "0".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: (!taints.is_empty()).then(|| taints.to_vec()),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: "127.0.0.1".into(),
                },
                NodeAddress {
                    type_: "Hostname".into(),
                    address: name.into(),
                },
            ]),
            allocatable: Some(resources.clone()),
            capacity: Some(resources),
            conditions: Some(vec![
                condition(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                condition(
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                ),
                condition(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
                condition(
                    "Ready",
                    "True",
                    "KubeletReady",
                    "kubelet is posting ready status",
                ),
            ]),
            node_info: Some(NodeSystemInfo {
                architecture: "amd64".into(),
                boot_id: String::new(),
                container_runtime_version: "sim://1.0.0".into(),
                kernel_version: "6.1.0".into(),
                kube_proxy_version: String::new(),
                kubelet_version: "v1.36.0".into(),
                machine_id: String::new(),
                operating_system: "linux".into(),
                os_image: "Simulated Linux".into(),
                system_uuid: String::new(),
                swap: None,
            }),
            ..Default::default()
        }),
    }
}

/// The `Ready` condition a node can be given with [`World::set_node_ready`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeReadiness {
    /// `True`, KubeletReady: the kubelet posts a healthy status.
    Ready,
    /// `False`, KubeletNotReady: the kubelet posts, but its runtime is down.
    NotReady,
    /// `Unknown`, NodeStatusUnknown: the kubelet stopped posting (node lost, partitioned); the
    /// node lifecycle controller says so on every condition.
    Unknown,
}

/// The uid of the implicit node (a constant: drawing it from the store's uid sequence would
/// shift every uid the recorded scenarios compare).
const IMPLICIT_NODE_UID: &str = "5e3b1c2a-0000-4000-a000-00000000000a";

/// The implicit node (see the module documentation) as a GET shows it at cluster start.
pub(super) fn implicit_node(now: f64, resource_version: u64) -> Node {
    let mut node = node_object(NODE_NAME, &BTreeMap::new(), &[], now);
    node.metadata.uid = Some(IMPLICIT_NODE_UID.into());
    node.metadata.creation_timestamp = Some(Time(clock::now_timestamp(now)));
    node.metadata.resource_version = Some(resource_version.to_string());
    node
}

/// Whether a node's `Ready` condition is `True` (a node without one is not Ready).
pub(super) fn node_is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The condition types the node lifecycle controller turns Unknown when the kubelet stops
/// posting (`NetworkUnavailable`, managed elsewhere, is left alone), with what the kubelet
/// posts for each while healthy.
const KUBELET_CONDITIONS: [(&str, &str, &str, &str); 4] = [
    (
        "MemoryPressure",
        "False",
        "KubeletHasSufficientMemory",
        "kubelet has sufficient memory available",
    ),
    (
        "DiskPressure",
        "False",
        "KubeletHasNoDiskPressure",
        "kubelet has no disk pressure",
    ),
    (
        "PIDPressure",
        "False",
        "KubeletHasSufficientPID",
        "kubelet has sufficient PID available",
    ),
    (
        "Ready",
        "True",
        "KubeletReady",
        "kubelet is posting ready status",
    ),
];

/// Writes `readiness` into a node's conditions as the kubelet (Ready, NotReady) or the node
/// lifecycle controller (Unknown) does: `lastTransitionTime` moves only for a condition whose
/// status changes; a kubelet post (a change of Ready or NotReady) renews `lastHeartbeatTime` of
/// every condition, the controller's Unknown keeps the last heartbeat the kubelet sent. Answers whether anything
/// changed (setting the readiness a node already has writes nothing).
fn apply_readiness(node: &mut Node, readiness: NodeReadiness, now: f64) -> bool {
    let t = Time(clock::now_timestamp(now));
    let conditions = node
        .status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new);
    let mut changed = false;
    for (type_, healthy, reason, message) in KUBELET_CONDITIONS {
        let (status, reason, message) = match readiness {
            NodeReadiness::Ready => (healthy, reason, message),
            NodeReadiness::NotReady if type_ == "Ready" => {
                ("False", "KubeletNotReady", "container runtime is down")
            }
            NodeReadiness::NotReady => (healthy, reason, message),
            NodeReadiness::Unknown => (
                "Unknown",
                "NodeStatusUnknown",
                "Kubelet stopped posting node status.",
            ),
        };
        let same = |c: &NodeCondition| {
            c.status == status
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(message)
        };
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) if same(c) => continue,
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = Some(t.clone());
                }
                c.status = status.into();
                c.reason = Some(reason.into());
                c.message = Some(message.into());
            }
            None => conditions.push(node_condition(type_, status, reason, message, &t)),
        }
        changed = true;
    }
    if changed && readiness != NodeReadiness::Unknown {
        for c in conditions.iter_mut() {
            if KUBELET_CONDITIONS
                .iter()
                .any(|(type_, ..)| c.type_ == *type_)
            {
                c.last_heartbeat_time = Some(t.clone());
            }
        }
    }
    changed
}

impl World {
    /// The node named `name` as a GET answers it: the Node object, or the implicit node.
    pub fn node(&self, name: &str) -> Option<Node> {
        match self
            .store
            .get(Kind::Node, &(String::new(), name.to_string()))
            .as_deref()
        {
            Some(Object::Node(n)) => Some(n.clone()),
            _ => self.implicit_node(name).cloned(),
        }
    }

    /// The implicit node, if `name` is [`NODE_NAME`] and it still stands in for a missing object.
    pub fn implicit_node(&self, name: &str) -> Option<&Node> {
        (name == NODE_NAME)
            .then_some(self.implicit_node.as_ref())
            .flatten()
    }

    /// Nodes (objects and the implicit one) whose `Ready` condition is not `True`: their kubelets
    /// do nothing. Empty, and cheap, while every node is Ready.
    pub(super) fn not_ready_nodes(&self) -> HashSet<String> {
        self.store
            .nodes()
            .filter(|n| !node_is_ready(n))
            .filter_map(|n| n.metadata.name.clone())
            .chain(
                self.implicit_node
                    .as_ref()
                    .filter(|n| !node_is_ready(n))
                    .map(|_| NODE_NAME.to_string()),
            )
            .collect()
    }

    /// Sets a node's `Ready` condition (a Node object, or the implicit node); watches of nodes
    /// see the object MODIFIED. When the node stops being Ready, the node lifecycle controller
    /// marks its pods not Ready (`MarkPodsNotReady`: the `Ready` condition False, nothing else);
    /// when it is Ready again, its kubelet reports its running pods Ready again. Answers whether
    /// the node exists.
    pub fn set_node_ready(&mut self, name: &str, readiness: NodeReadiness, now: f64) -> bool {
        let key = (String::new(), name.to_string());
        let was_ready = match self.store.get(Kind::Node, &key).as_deref() {
            Some(Object::Node(n)) => {
                let mut node = n.clone();
                let was_ready = node_is_ready(&node);
                if apply_readiness(&mut node, readiness, now) {
                    self.store.update(Object::Node(node));
                }
                was_ready
            }
            _ => {
                let rv = self.store.resource_version();
                let Some(node) = self.implicit_node.as_mut().filter(|_| name == NODE_NAME) else {
                    return false;
                };
                let was_ready = node_is_ready(node);
                if apply_readiness(node, readiness, now) {
                    node.metadata.resource_version = Some(rv.to_string());
                }
                was_ready
            }
        };
        let ready = readiness == NodeReadiness::Ready;
        if was_ready != ready {
            self.set_pods_ready_on(name, ready, now);
        }
        true
    }

    /// Sets the `Ready` condition of the pods bound to `node`: False for every pod
    /// (`MarkPodsNotReady`), or True again for the running ones (the kubelet's next status sync).
    fn set_pods_ready_on(&mut self, node: &str, ready: bool, now: f64) {
        let status = if ready { "True" } else { "False" };
        let pods: Vec<Pod> = self
            .store
            .pods()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
            .filter(|p| !ready || phase(p) == "Running")
            .cloned()
            .collect();
        for mut pod in pods {
            let Some(c) = pod
                .status
                .as_mut()
                .and_then(|s| s.conditions.as_mut())
                .and_then(|cs| cs.iter_mut().find(|c| c.type_ == "Ready"))
            else {
                continue;
            };
            if c.status == status {
                continue;
            }
            c.status = status.into();
            c.last_transition_time = Some(Time(clock::now_timestamp(now)));
            self.store.update(Object::Pod(pod));
        }
    }

    /// Where the scheduler binds a pod: its DaemonSet target if that node exists; otherwise the
    /// first node by name that is Ready, schedulable and whose taints the pod tolerates (a real
    /// node that is not Ready carries the `not-ready`/`unreachable` NoSchedule taint, which
    /// keeps pods off it); [`NODE_NAME`] in a cluster without nodes, while the implicit node is
    /// there and Ready. `None`: the pod stays Pending.
    pub(super) fn pick_node(&self, pod: &Pod) -> Option<String> {
        let spec = pod.spec.as_ref();
        let daemon_target = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|_| target_node(pod));
        if let Some(target) = daemon_target {
            return self
                .store
                .get(Kind::Node, &(String::new(), target.clone()))
                .map(|_| target);
        }
        if self.store.count(Kind::Node) == 0 {
            return self
                .implicit_node
                .as_ref()
                .filter(|n| node_is_ready(n))
                .map(|_| NODE_NAME.into());
        }
        let tolerations = spec.and_then(|s| s.tolerations.clone()).unwrap_or_default();
        let selector = spec.and_then(|s| s.node_selector.as_ref());
        self.store
            .nodes()
            .find(|n| {
                n.spec.as_ref().and_then(|s| s.unschedulable) != Some(true)
                    && node_is_ready(n)
                    && tolerates_node(&tolerations, n)
                    && selects(selector, n)
            })
            .and_then(|n| n.metadata.name.clone())
    }

    /// The pod garbage collector's orphan pass: a pod bound to (or, unscheduled, meant for) a
    /// node that was removed is marked Failed with a `DisruptionTarget` condition and deleted
    /// at once (grace 0), as `PodGC` does after a node object is deleted.
    pub(super) fn collect_orphaned_pods(&mut self, now: f64) {
        if self.removed_nodes.is_empty() {
            return;
        }
        let orphans: Vec<Pod> = self
            .store
            .pods()
            .filter(|p| target_node(p).is_some_and(|n| self.removed_nodes.contains(&n)))
            .cloned()
            .collect();
        for mut pod in orphans {
            let key = key_of(&pod.metadata);
            if !is_finished(&pod) {
                let st = pod.status.get_or_insert_with(Default::default);
                st.phase = Some("Failed".into());
                st.conditions
                    .get_or_insert_with(Vec::new)
                    .push(PodCondition {
                        type_: "DisruptionTarget".into(),
                        status: "True".into(),
                        reason: Some("DeletionByPodGC".into()),
                        message: Some("PodGC: node no longer exists".into()),
                        last_transition_time: Some(Time(clock::now_timestamp(now))),
                        ..Default::default()
                    });
                self.store.update(Object::Pod(pod));
            }
            self.delete_pod(&key, Some(0), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: value.map(Into::into),
            effect: effect.into(),
            time_added: None,
        }
    }

    fn toleration(key: &str, op: &str, value: Option<&str>, effect: Option<&str>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some(op.into()),
            value: value.map(Into::into),
            effect: effect.map(Into::into),
            toleration_seconds: None,
        }
    }

    fn conditions(node: &Node) -> Vec<(String, String, String, i64, i64)> {
        let secs = |t: &Option<Time>| t.as_ref().map_or(0, |t| t.0.as_second());
        node.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone().unwrap_or_default(),
                    secs(&c.last_transition_time),
                    secs(&c.last_heartbeat_time),
                )
            })
            .collect()
    }

    #[test]
    fn readiness_moves_transition_times_only_on_a_change_of_status() {
        let mut node = node_object("n", &BTreeMap::new(), &[], 100.0);
        assert!(node_is_ready(&node));
        assert!(
            !apply_readiness(&mut node, NodeReadiness::Ready, 200.0),
            "already Ready: nothing written"
        );
        assert!(apply_readiness(&mut node, NodeReadiness::NotReady, 300.0));
        assert!(!node_is_ready(&node));
        let after = conditions(&node);
        assert!(after.contains(&(
            "Ready".into(),
            "False".into(),
            "KubeletNotReady".into(),
            300,
            300
        )));
        assert!(
            after.contains(&(
                "MemoryPressure".into(),
                "False".into(),
                "KubeletHasSufficientMemory".into(),
                100,
                300
            )),
            "a kubelet post renews every heartbeat: {after:?}"
        );
        assert!(apply_readiness(&mut node, NodeReadiness::Unknown, 400.0));
        for (type_, status, reason, transition, heartbeat) in conditions(&node) {
            assert_eq!(
                (status.as_str(), reason.as_str(), transition, heartbeat),
                ("Unknown", "NodeStatusUnknown", 400, 300),
                "{type_}: the controller keeps the last heartbeat"
            );
        }
        assert!(apply_readiness(&mut node, NodeReadiness::Ready, 500.0));
        for (type_, _, _, transition, heartbeat) in conditions(&node) {
            assert_eq!((transition, heartbeat), (500, 500), "{type_}");
        }
        assert!(node_is_ready(&node));
    }

    #[test]
    fn tolerations_match_taints_as_the_api_defines() {
        let t = taint("lab.example/extra-node", Some("true"), "NoSchedule");
        assert!(tolerates(
            &toleration("lab.example/extra-node", "Exists", None, Some("NoSchedule")),
            &t
        ));
        assert!(tolerates(
            &toleration("lab.example/extra-node", "Equal", Some("true"), None),
            &t
        ));
        assert!(!tolerates(
            &toleration("lab.example/extra-node", "Equal", Some("false"), None),
            &t
        ));
        assert!(!tolerates(
            &toleration("lab.example/extra-node", "Exists", None, Some("NoExecute")),
            &t
        ));
        assert!(tolerates(&toleration("", "Exists", None, None), &t));
        let node = node_object("n", &BTreeMap::new(), &[t], 0.0);
        assert!(!tolerates_node(&[], &node));
        let soft = node_object(
            "n",
            &BTreeMap::new(),
            &[taint("x", None, "PreferNoSchedule")],
            0.0,
        );
        assert!(tolerates_node(&[], &soft));
    }
}
