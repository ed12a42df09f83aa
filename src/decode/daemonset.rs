//! DaemonSets, watched as full objects: what kubectl's `rollout status` test reads (generations,
//! the desired, updated, available and ready counts), the template's hash and grace period, and
//! the strategy. Their status names no revision (the update revision is a ControllerRevision's).
//! Absent counters are 0, the API's documented default; an absent `observedGeneration` stays
//! absent.

use serde::Deserialize;

use super::object::{Object, Spec, Status};
use super::workload::{Strategy, Template};
use crate::error::ConvertError;
use crate::model::DaemonSetState;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonSetSpec {
    pub template: Option<Template>,
    pub update_strategy: Option<Strategy>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonSetStatus {
    pub observed_generation: Option<i64>,
    pub desired_number_scheduled: Option<i32>,
    pub updated_number_scheduled: Option<i32>,
    pub number_available: Option<i32>,
    pub number_ready: Option<i32>,
}

/// The model's view of a DaemonSet.
pub fn daemonset(o: &mut Object<'_>) -> Result<DaemonSetState, ConvertError> {
    let meta = &mut o.metadata;
    let spec = match o.spec.take() {
        Some(Spec::DaemonSet(spec)) => spec,
        _ => DaemonSetSpec::default(),
    };
    let status = match o.status.take() {
        Some(Status::DaemonSet(status)) => status,
        _ => DaemonSetStatus::default(),
    };
    let template = spec.template.unwrap_or_default();
    Ok(DaemonSetState {
        key: meta.key("DaemonSet")?,
        uid: meta.uid(),
        created: meta.creation_timestamp.map(|t| t.0),
        generation: meta.generation.unwrap_or(0),
        observed_generation: status.observed_generation,
        template: template.hash,
        strategy: Strategy::of(spec.update_strategy.as_ref()),
        desired_number_scheduled: status.desired_number_scheduled.unwrap_or(0),
        updated_number_scheduled: status.updated_number_scheduled.unwrap_or(0),
        number_available: status.number_available.unwrap_or(0),
        number_ready: status.number_ready.unwrap_or(0),
        termination_grace_seconds: template.grace_seconds,
        images: template.images,
    })
}
