//! From Kubernetes API objects (k8s-openapi types) to the model's lean inputs.
//!
//! This is the only place that knows both sides, so the watch adapters and the recorded-traffic
//! tests share one decoding. Each function takes the object and moves out only the fields the
//! model reads (no copy per event); annotations that are not integers and absent status fields are
//! read the way the API documents them (absent counters are 0, absent `spec.replicas` is 1); an
//! object without a name or namespace is an error.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

use crate::error::ConvertError;
use crate::model::{
    ConditionStatus, ControllerRef, Deletion, DeploymentState, FinishedPod, ObjectKey, PodState,
    ProgressingCondition, ReplicaSetState, Timestamp,
};

/// The annotation the Deployment controller writes on Deployments and their ReplicaSets.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

fn timestamp(t: &Time) -> Timestamp {
    Timestamp::from_micros(t.0.as_microsecond())
}

/// Takes the name and namespace out of `meta` (the watch adapters hand over owned metadata, so
/// nothing is copied per event).
fn object_key(meta: &mut ObjectMeta, kind: &'static str) -> Result<ObjectKey, ConvertError> {
    let name = meta.name.take().ok_or(ConvertError::MissingField {
        kind,
        field: "metadata.name",
    })?;
    let namespace = meta.namespace.take().ok_or(ConvertError::MissingField {
        kind,
        field: "metadata.namespace",
    })?;
    Ok(ObjectKey { namespace, name })
}

fn revision(meta: &ObjectMeta) -> Option<u64> {
    meta.annotations
        .as_ref()?
        .get(REVISION_ANNOTATION)?
        .trim()
        .parse()
        .ok()
}

fn controller(refs: Option<Vec<OwnerReference>>) -> Option<ControllerRef> {
    refs?
        .into_iter()
        .find(|r| r.controller == Some(true))
        .map(|r| ControllerRef {
            kind: r.kind,
            name: r.name,
        })
}

fn progressing(conditions: Option<&Vec<DeploymentCondition>>) -> Option<ProgressingCondition> {
    let c = conditions?.iter().find(|c| c.type_ == "Progressing")?;
    Some(ProgressingCondition {
        status: match c.status.as_str() {
            "True" => ConditionStatus::True,
            "False" => ConditionStatus::False,
            _ => ConditionStatus::Unknown,
        },
        reason: c.reason.clone().unwrap_or_default(),
        last_update: c.last_update_time.as_ref().map(timestamp),
    })
}

/// The model's view of a Deployment.
pub fn deployment(d: Deployment) -> Result<DeploymentState, ConvertError> {
    let mut meta = d.metadata;
    let spec = d.spec.as_ref();
    let status = d.status.as_ref();
    Ok(DeploymentState {
        key: object_key(&mut meta, "Deployment")?,
        uid: meta.uid.take().unwrap_or_default(),
        revision: revision(&meta),
        generation: meta.generation.unwrap_or(0),
        observed_generation: status.and_then(|s| s.observed_generation).unwrap_or(0),
        spec_replicas: spec.and_then(|s| s.replicas).unwrap_or(1),
        paused: spec.and_then(|s| s.paused).unwrap_or(false),
        replicas: status.and_then(|s| s.replicas).unwrap_or(0),
        updated_replicas: status.and_then(|s| s.updated_replicas).unwrap_or(0),
        available_replicas: status.and_then(|s| s.available_replicas).unwrap_or(0),
        progressing: progressing(status.and_then(|s| s.conditions.as_ref())),
    })
}

/// The model's view of a ReplicaSet, from its metadata alone (taken, not copied).
pub fn replicaset(mut meta: ObjectMeta) -> Result<ReplicaSetState, ConvertError> {
    Ok(ReplicaSetState {
        key: object_key(&mut meta, "ReplicaSet")?,
        revision: revision(&meta),
        created: meta.creation_timestamp.as_ref().map(timestamp),
        owner: controller(meta.owner_references),
    })
}

/// The model's view of a Pod, from its metadata alone (taken, not copied).
pub fn pod(mut meta: ObjectMeta) -> Result<PodState, ConvertError> {
    Ok(PodState {
        key: object_key(&mut meta, "Pod")?,
        uid: meta.uid.unwrap_or_default(),
        owner: controller(meta.owner_references),
        deletion: meta.deletion_timestamp.as_ref().map(|t| Deletion {
            deadline: timestamp(t),
            grace_seconds: meta.deletion_grace_period_seconds,
        }),
    })
}

/// A pod reported by the phase source (phase Succeeded or Failed).
pub fn finished_pod(mut meta: ObjectMeta) -> Result<FinishedPod, ConvertError> {
    Ok(FinishedPod {
        key: object_key(&mut meta, "Pod")?,
        uid: meta.uid.unwrap_or_default(),
    })
}
