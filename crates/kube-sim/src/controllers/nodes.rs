//! Nodes: the objects (`v1 nodes`), which pods may run where (taints and tolerations, node
//! selectors), the scheduler's choice, and the pod garbage collector's removal of pods whose node
//! was deleted.
//!
//! A cluster starts without Node objects and binds every pod to [`NODE_NAME`], as before nodes
//! existed here; once nodes are added, pods are scheduled onto them (the first that fits, by
//! name) and a pod that fits none stays Pending, as on a real cluster.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo, Pod, PodCondition,
    Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::{NODE_NAME, World, is_finished, key_of};
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
    let condition = |type_: &str, status: &str, reason: &str, message: &str| NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(t.clone()),
        last_transition_time: Some(t.clone()),
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

impl World {
    /// Where the scheduler binds a pod: its DaemonSet target if that node exists; otherwise the
    /// first node by name that is schedulable and whose taints the pod tolerates; [`NODE_NAME`]
    /// in a cluster without nodes. `None`: the pod stays Pending.
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
            return Some(NODE_NAME.into());
        }
        let tolerations = spec.and_then(|s| s.tolerations.clone()).unwrap_or_default();
        let selector = spec.and_then(|s| s.node_selector.as_ref());
        self.store
            .nodes()
            .find(|n| {
                n.spec.as_ref().and_then(|s| s.unschedulable) != Some(true)
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
