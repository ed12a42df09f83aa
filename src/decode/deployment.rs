//! Deployments, watched as full objects, as the model reads a few fields of their spec and status
//! (replicas, paused, the template's hash and grace period, the strategy, the status counters and
//! the Progressing condition). An absent `spec.replicas` is 1 and absent counters are 0, the API's
//! documented defaults.

use serde::Deserialize;

use super::object::{Object, Spec, Status};
use super::wire::{Str, Time};
use super::workload::{Strategy, Template};
use crate::error::ConvertError;
use crate::model::{ConditionStatus, DeploymentState, ProgressingCondition};

#[derive(Clone, Debug, Default, Deserialize)]
pub struct DeploymentSpec {
    pub replicas: Option<i32>,
    pub paused: Option<bool>,
    pub template: Option<Template>,
    pub strategy: Option<Strategy>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition<'a> {
    #[serde(rename = "type", borrow)]
    pub type_: Str<'a>,
    #[serde(borrow)]
    pub status: Str<'a>,
    #[serde(borrow)]
    pub reason: Option<Str<'a>>,
    pub last_update_time: Option<Time>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStatus<'a> {
    pub observed_generation: Option<i64>,
    pub replicas: Option<i32>,
    pub updated_replicas: Option<i32>,
    pub available_replicas: Option<i32>,
    #[serde(borrow, default)]
    pub conditions: Option<Vec<Condition<'a>>>,
}

/// The model's view of a Deployment.
pub fn deployment(o: &mut Object<'_>) -> Result<DeploymentState, ConvertError> {
    let meta = &mut o.metadata;
    let spec = match o.spec.take() {
        Some(Spec::Deployment(spec)) => spec,
        _ => DeploymentSpec::default(),
    };
    let status = match o.status.take() {
        Some(Status::Deployment(status)) => status,
        _ => DeploymentStatus::default(),
    };
    let template = spec.template.unwrap_or_default();
    Ok(DeploymentState {
        key: meta.key("Deployment")?,
        uid: meta.uid(),
        revision: meta.revision(),
        created: meta.creation_timestamp.map(|t| t.0),
        generation: meta.generation.unwrap_or(0),
        observed_generation: status.observed_generation.unwrap_or(0),
        template: template.hash,
        strategy: Strategy::of(spec.strategy.as_ref()),
        spec_replicas: spec.replicas.unwrap_or(1),
        paused: spec.paused.unwrap_or(false),
        termination_grace_seconds: template.grace_seconds,
        images: template.images,
        replicas: status.replicas.unwrap_or(0),
        updated_replicas: status.updated_replicas.unwrap_or(0),
        available_replicas: status.available_replicas.unwrap_or(0),
        progressing: status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_.as_str() == "Progressing")
            .map(|c| ProgressingCondition {
                status: match c.status.as_str() {
                    "True" => ConditionStatus::True,
                    "False" => ConditionStatus::False,
                    _ => ConditionStatus::Unknown,
                },
                reason: c.reason.map(Str::into_string).unwrap_or_default(),
                last_update: c.last_update_time.map(|t| t.0),
            }),
    })
}
