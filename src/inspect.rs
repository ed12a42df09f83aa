//! Why a drain is stuck: the shell around [`Model::stuck_work`](crate::model::Model::stuck_work).
//!
//! About once a second it asks the model what is due, logs one line per pod that became overdue
//! (once its reason is as known as it will get), GETs the overdue pods and their nodes the model
//! asks for, and hands the answers back. The model decides everything else (see
//! `src/model/stuck.rs`): which pod is overdue, when a node is read again, what the reason is.
//! Nothing is asked for a pod that is not overdue, so the cost follows the stuck pods, never the
//! cluster's size. With `--no-stuck-reasons` the model asks for no GET, and this only logs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{Api, Client};
use tracing::{debug, warn};

use crate::model::{NodeHealth, OverdueNotice, PodInspection, PodRef, Resource, Uid};
use crate::shared::Shared;

/// How often the model is asked what is due: the delay between a pod's deadline and its log line
/// and reason.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The longest a GET may take; a slower answer counts as failed and is asked again later.
const TIMEOUT: Duration = Duration::from_secs(10);

/// GETs in flight at once, so a node lost with a hundred pods does not queue them one by one nor
/// burst the API server.
const CONCURRENCY: usize = 8;

/// Runs until the task is dropped.
pub async fn run(client: Client, shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let warned = Warned::default();
    loop {
        tick.tick().await;
        let work = shared.stuck_work();
        for notice in &work.notices {
            log_overdue(notice);
        }
        futures::stream::iter(work.pods)
            .for_each_concurrent(CONCURRENCY, |pod| {
                let (client, shared, warned) = (&client, &shared, &warned);
                async move {
                    let inspection = get_pod(client, shared, warned, &pod).await;
                    shared.pod_inspected(&pod, inspection);
                }
            })
            .await;
        futures::stream::iter(work.nodes)
            .for_each_concurrent(CONCURRENCY, |node| {
                let (client, shared, warned) = (&client, &shared, &warned);
                async move {
                    let health = get_node(client, warned, &node).await;
                    shared.node_inspected(&node, health);
                }
            })
            .await;
    }
}

/// One line per pod when it becomes overdue.
fn log_overdue(n: &OverdueNotice) {
    warn!(
        namespace = %n.workload.namespace,
        pod = %n.pod,
        workload = %n.workload.name,
        workload_type = n.workload.kind.as_str(),
        reason = n.reason.as_str(),
        finalizers = %n.finalizers.join(","),
        node = n.node.as_deref().unwrap_or(""),
        overdue_seconds = n.overdue_seconds.round() as i64,
        "pod termination overdue"
    );
}

/// Permission problems are logged once each, not once per pod.
#[derive(Default)]
struct Warned {
    pods: AtomicBool,
    nodes: AtomicBool,
}

impl Warned {
    fn first(flag: &AtomicBool) -> bool {
        !flag.swap(true, Ordering::Relaxed)
    }
}

/// An error's HTTP status, when the API server answered one.
fn status_of(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

async fn get_pod(client: &Client, shared: &Shared, warned: &Warned, pod: &PodRef) -> PodInspection {
    let api = Api::<Pod>::namespaced(client.clone(), &pod.namespace);
    let answer = tokio::time::timeout(TIMEOUT, api.get(&pod.name)).await;
    let stats = shared.watch_stats(Resource::Pods);
    match answer {
        Ok(Ok(read)) => {
            stats.request("get", 200);
            pod_inspection(&read, pod.uid)
        }
        Ok(Err(e)) => {
            let code = status_of(&e);
            stats.request("get", code.unwrap_or(0));
            match code {
                Some(404) => PodInspection::Gone,
                Some(401 | 403) => {
                    if Warned::first(&warned.pods) {
                        warn!(error = %e, "cannot get pods to tell why a termination is stuck: grant get on pods, or pass --no-stuck-reasons");
                    }
                    PodInspection::Failed
                }
                _ => {
                    debug!(namespace = %pod.namespace, pod = %pod.name, error = %e, "pod GET failed");
                    PodInspection::Failed
                }
            }
        }
        Err(_) => {
            stats.request("get", 0);
            PodInspection::Failed
        }
    }
}

async fn get_node(client: &Client, warned: &Warned, node: &str) -> NodeHealth {
    let api = Api::<Node>::all(client.clone());
    match tokio::time::timeout(TIMEOUT, api.get(node)).await {
        Ok(Ok(read)) => node_health(&read),
        Ok(Err(e)) => match status_of(&e) {
            Some(404) => NodeHealth::Gone,
            Some(401 | 403) => {
                if Warned::first(&warned.nodes) {
                    warn!(error = %e, "cannot get nodes: stuck pods whose node is lost or which still run are reported as reason unknown (grant get on nodes)");
                }
                NodeHealth::Unreadable
            }
            _ => {
                debug!(node, error = %e, "node GET failed");
                NodeHealth::Unreadable
            }
        },
        Err(_) => NodeHealth::Unreadable,
    }
}

/// What a pod read tells: its node and whether its containers finished. Another pod under the
/// same name (a StatefulSet's next one) means the one asked about is gone.
pub fn pod_inspection(pod: &Pod, uid: Uid) -> PodInspection {
    if pod.metadata.uid.as_deref().map(Uid::from) != Some(uid) {
        return PodInspection::Gone;
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    PodInspection::Read {
        node: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        finished: matches!(phase, Some("Succeeded" | "Failed")),
    }
}

/// A node's `Ready` condition: True is Ready, False NotReady, Unknown or absent Unresponsive.
pub fn node_health(node: &Node) -> NodeHealth {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    match ready.map(|c| c.status.as_str()) {
        Some("True") => NodeHealth::Ready,
        Some("False") => NodeHealth::NotReady,
        _ => NodeHealth::Unresponsive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(uid: &str, node: Option<&str>, phase: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(str::to_string),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..PodStatus::default()
            }),
        }
    }

    fn node(ready: Option<&str>) -> Node {
        Node {
            status: Some(NodeStatus {
                conditions: Some(
                    ready
                        .map(|s| NodeCondition {
                            type_: "Ready".into(),
                            status: s.into(),
                            ..NodeCondition::default()
                        })
                        .into_iter()
                        .collect(),
                ),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }
    }

    #[test]
    fn a_pod_read_gives_its_node_and_whether_its_containers_finished() {
        let uid = Uid::from("u1");
        assert_eq!(
            pod_inspection(&pod("u1", Some("n1"), "Running"), uid),
            PodInspection::Read {
                node: Some("n1".into()),
                finished: false
            }
        );
        for phase in ["Succeeded", "Failed"] {
            assert_eq!(
                pod_inspection(&pod("u1", None, phase), uid),
                PodInspection::Read {
                    node: None,
                    finished: true
                }
            );
        }
    }

    #[test]
    fn another_pod_under_the_same_name_means_the_one_asked_about_is_gone() {
        let read = pod("u2", Some("n1"), "Running");
        assert_eq!(pod_inspection(&read, Uid::from("u1")), PodInspection::Gone);
    }

    #[test]
    fn a_node_is_lost_unless_its_ready_condition_is_true() {
        assert_eq!(node_health(&node(Some("True"))), NodeHealth::Ready);
        assert_eq!(node_health(&node(Some("False"))), NodeHealth::NotReady);
        assert_eq!(
            node_health(&node(Some("Unknown"))),
            NodeHealth::Unresponsive
        );
        assert_eq!(node_health(&node(None)), NodeHealth::Unresponsive);
        assert_eq!(node_health(&Node::default()), NodeHealth::Unresponsive);
    }
}
