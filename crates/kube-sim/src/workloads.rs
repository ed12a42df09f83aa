//! Builders of the StatefulSets, DaemonSets and Nodes tests put into the simulated cluster, shaped
//! like the recorded ones (`tests/fixtures/k8s-recordings/statefulset-*`, `daemonset-*`): the
//! fields a user writes plus what the API server defaults, nothing else.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet,
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::controllers::{DRAIN_SECONDS, START_SECONDS};

/// The pod template every builder writes: one container `app`, the drain and start annotations
/// the kubelet stand-in reads, and the fields the API server defaults.
fn template(
    selector: &BTreeMap<String, String>,
    image: &str,
    grace_seconds: i64,
    start_seconds: f64,
    drain_seconds: f64,
    tolerations: Option<Vec<Toleration>>,
    node_selector: Option<BTreeMap<String, String>>,
) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(selector.clone()),
            annotations: Some(BTreeMap::from([
                (DRAIN_SECONDS.to_string(), drain_seconds.to_string()),
                (START_SECONDS.to_string(), start_seconds.to_string()),
            ])),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some(image.into()),
                image_pull_policy: Some("IfNotPresent".into()),
                termination_message_path: Some("/dev/termination-log".into()),
                termination_message_policy: Some("File".into()),
                resources: Some(Default::default()),
                ..Default::default()
            }],
            restart_policy: Some("Always".into()),
            termination_grace_period_seconds: Some(grace_seconds),
            dns_policy: Some("ClusterFirst".into()),
            scheduler_name: Some("default-scheduler".into()),
            security_context: Some(Default::default()),
            tolerations,
            node_selector,
            ..Default::default()
        }),
    }
}

/// A StatefulSet for the simulated cluster: OrderedReady, a headless Service of its own name.
#[derive(Clone, Debug)]
pub struct SimStatefulSet {
    pub namespace: String,
    pub name: String,
    pub replicas: i32,
    pub image: String,
    pub grace_seconds: i64,
    pub start_seconds: f64,
    pub drain_seconds: f64,
    /// `rollingUpdate.partition`; `None` writes no `rollingUpdate` at all, as the recorded
    /// `statefulset-rolling` does (the API server then stores none).
    pub partition: Option<i32>,
    /// `updateStrategy.type: OnDelete` instead of RollingUpdate.
    pub on_delete: bool,
    /// `podManagementPolicy: Parallel` instead of OrderedReady.
    pub parallel: bool,
    pub labels: BTreeMap<String, String>,
}

impl SimStatefulSet {
    /// 3 replicas, RollingUpdate without partition, grace 60 s, 1 s start, 5 s drain: the
    /// recorded `db/pg` when called as `new("db", "pg")`.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            replicas: 3,
            image: "registry.local/app:v1".into(),
            grace_seconds: 60,
            start_seconds: 1.0,
            drain_seconds: 5.0,
            partition: None,
            on_delete: false,
            parallel: false,
            labels: BTreeMap::from([("app".to_string(), name.to_string())]),
        }
    }

    pub fn replicas(mut self, n: i32) -> Self {
        self.replicas = n;
        self
    }

    pub fn image(mut self, image: &str) -> Self {
        self.image = image.into();
        self
    }

    pub fn drain_seconds(mut self, s: f64) -> Self {
        self.drain_seconds = s;
        self
    }

    pub fn start_seconds(mut self, s: f64) -> Self {
        self.start_seconds = s;
        self
    }

    pub fn grace_seconds(mut self, s: i64) -> Self {
        self.grace_seconds = s;
        self
    }

    pub fn partition(mut self, p: i32) -> Self {
        self.partition = Some(p);
        self
    }

    pub fn on_delete(mut self) -> Self {
        self.on_delete = true;
        self
    }

    pub fn parallel(mut self) -> Self {
        self.parallel = true;
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    pub(crate) fn build(&self) -> StatefulSet {
        let selector = BTreeMap::from([("app".to_string(), self.name.clone())]);
        let mut labels = self.labels.clone();
        labels.insert("app".into(), self.name.clone());
        let update_strategy = if self.on_delete {
            StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                rolling_update: None,
            }
        } else {
            StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: self.partition.map(|p| RollingUpdateStatefulSetStrategy {
                    partition: Some(p),
                    max_unavailable: None,
                }),
            }
        };
        StatefulSet {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                ..Default::default()
            },
            spec: Some(StatefulSetSpec {
                replicas: Some(self.replicas),
                selector: LabelSelector {
                    match_labels: Some(selector.clone()),
                    match_expressions: None,
                },
                template: template(
                    &selector,
                    &self.image,
                    self.grace_seconds,
                    self.start_seconds,
                    self.drain_seconds,
                    None,
                    None,
                ),
                service_name: Some(self.name.clone()),
                pod_management_policy: Some(
                    if self.parallel {
                        "Parallel"
                    } else {
                        "OrderedReady"
                    }
                    .into(),
                ),
                update_strategy: Some(update_strategy),
                revision_history_limit: Some(10),
                persistent_volume_claim_retention_policy: Some(
                    StatefulSetPersistentVolumeClaimRetentionPolicy {
                        when_deleted: Some("Retain".into()),
                        when_scaled: Some("Retain".into()),
                    },
                ),
                ..Default::default()
            }),
            status: None,
        }
    }
}

/// A DaemonSet for the simulated cluster.
#[derive(Clone, Debug)]
pub struct SimDaemonSet {
    pub namespace: String,
    pub name: String,
    pub image: String,
    pub grace_seconds: i64,
    pub start_seconds: f64,
    pub drain_seconds: f64,
    pub max_unavailable: IntOrString,
    pub max_surge: IntOrString,
    /// `updateStrategy.type: OnDelete` instead of RollingUpdate.
    pub on_delete: bool,
    /// Taints the pods tolerate, as (key, effect) with operator Exists.
    pub tolerations: Vec<(String, String)>,
    /// The template's `nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

impl SimDaemonSet {
    /// RollingUpdate maxUnavailable 1 / maxSurge 0 (what the API server defaults), grace 60 s,
    /// 1 s start, 5 s drain.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            image: "registry.local/app:v1".into(),
            grace_seconds: 60,
            start_seconds: 1.0,
            drain_seconds: 5.0,
            max_unavailable: IntOrString::Int(1),
            max_surge: IntOrString::Int(0),
            on_delete: false,
            tolerations: Vec::new(),
            node_selector: BTreeMap::new(),
            labels: BTreeMap::from([("app".to_string(), name.to_string())]),
        }
    }

    pub fn image(mut self, image: &str) -> Self {
        self.image = image.into();
        self
    }

    pub fn drain_seconds(mut self, s: f64) -> Self {
        self.drain_seconds = s;
        self
    }

    pub fn start_seconds(mut self, s: f64) -> Self {
        self.start_seconds = s;
        self
    }

    pub fn grace_seconds(mut self, s: i64) -> Self {
        self.grace_seconds = s;
        self
    }

    pub fn max_unavailable(mut self, v: IntOrString) -> Self {
        self.max_unavailable = v;
        self
    }

    pub fn max_surge(mut self, v: IntOrString) -> Self {
        self.max_surge = v;
        self
    }

    /// RollingUpdate with both bounds, like [`crate::SimDeployment::rolling`].
    pub fn rolling(self, max_surge: IntOrString, max_unavailable: IntOrString) -> Self {
        self.max_surge(max_surge).max_unavailable(max_unavailable)
    }

    pub fn on_delete(mut self) -> Self {
        self.on_delete = true;
        self
    }

    /// Tolerates taints with this key and effect (operator Exists).
    pub fn toleration(mut self, key: &str, effect: &str) -> Self {
        self.tolerations.push((key.into(), effect.into()));
        self
    }

    pub fn node_selector(mut self, key: &str, value: &str) -> Self {
        self.node_selector.insert(key.into(), value.into());
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    pub(crate) fn build(&self) -> DaemonSet {
        let selector = BTreeMap::from([("app".to_string(), self.name.clone())]);
        let mut labels = self.labels.clone();
        labels.insert("app".into(), self.name.clone());
        let update_strategy = if self.on_delete {
            DaemonSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                rolling_update: None,
            }
        } else {
            DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_surge: Some(self.max_surge.clone()),
                    max_unavailable: Some(self.max_unavailable.clone()),
                }),
            }
        };
        let tolerations = (!self.tolerations.is_empty()).then(|| {
            self.tolerations
                .iter()
                .map(|(key, effect)| Toleration {
                    key: Some(key.clone()),
                    operator: Some("Exists".into()),
                    effect: Some(effect.clone()),
                    value: None,
                    toleration_seconds: None,
                })
                .collect()
        });
        DaemonSet {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                ..Default::default()
            },
            spec: Some(DaemonSetSpec {
                selector: LabelSelector {
                    match_labels: Some(selector.clone()),
                    match_expressions: None,
                },
                template: template(
                    &selector,
                    &self.image,
                    self.grace_seconds,
                    self.start_seconds,
                    self.drain_seconds,
                    tolerations,
                    (!self.node_selector.is_empty()).then(|| self.node_selector.clone()),
                ),
                update_strategy: Some(update_strategy),
                revision_history_limit: Some(10),
                min_ready_seconds: None,
            }),
            status: None,
        }
    }
}

/// A node for the simulated cluster: Ready, with the usual well-known labels.
#[derive(Clone, Debug)]
pub struct SimNode {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
}

impl SimNode {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
        }
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// A taint, e.g. `taint("lab.example/extra-node", Some("true"), "NoSchedule")` as on the
    /// recorded extra nodes.
    pub fn taint(mut self, key: &str, value: Option<&str>, effect: &str) -> Self {
        self.taints.push(Taint {
            key: key.into(),
            value: value.map(Into::into),
            effect: effect.into(),
            time_added: None,
        });
        self
    }
}
