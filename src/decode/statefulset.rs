//! StatefulSets, watched as full objects: what kubectl's `rollout status` test reads (replicas,
//! partition, generations, the ready and updated counters, the current and update revisions),
//! the template's hash and grace period, and the strategy. An absent `spec.replicas` is 1 and
//! absent counters are 0, the API's documented defaults; an absent partition or
//! `observedGeneration` stays absent, as kubectl tells absent from 0 for both.

use serde::Deserialize;

use super::object::{Object, Spec, Status};
use super::wire::Str;
use super::workload::{Strategy, Template};
use crate::error::ConvertError;
use crate::model::StatefulSetState;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatefulSetSpec {
    pub replicas: Option<i32>,
    pub template: Option<Template>,
    pub update_strategy: Option<Strategy>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatefulSetStatus<'a> {
    pub observed_generation: Option<i64>,
    pub replicas: Option<i32>,
    pub ready_replicas: Option<i32>,
    pub updated_replicas: Option<i32>,
    #[serde(borrow)]
    pub current_revision: Option<Str<'a>>,
    #[serde(borrow)]
    pub update_revision: Option<Str<'a>>,
}

/// The model's view of a StatefulSet.
pub fn statefulset(o: &mut Object<'_>) -> Result<StatefulSetState, ConvertError> {
    let meta = &mut o.metadata;
    let spec = match o.spec.take() {
        Some(Spec::StatefulSet(spec)) => spec,
        _ => StatefulSetSpec::default(),
    };
    let status = match o.status.take() {
        Some(Status::StatefulSet(status)) => status,
        _ => StatefulSetStatus::default(),
    };
    let template = spec.template.unwrap_or_default();
    Ok(StatefulSetState {
        key: meta.key("StatefulSet")?,
        uid: meta.uid(),
        created: meta.creation_timestamp.map(|t| t.0),
        generation: meta.generation.unwrap_or(0),
        observed_generation: status.observed_generation,
        template: template.hash,
        spec_replicas: spec.replicas.unwrap_or(1),
        strategy: Strategy::of(spec.update_strategy.as_ref()),
        partition: spec
            .update_strategy
            .and_then(|s| s.rolling_update)
            .and_then(|r| r.partition),
        replicas: status.replicas.unwrap_or(0),
        ready_replicas: status.ready_replicas.unwrap_or(0),
        updated_replicas: status.updated_replicas.unwrap_or(0),
        current_revision: status.current_revision.map(Str::into_string),
        update_revision: status.update_revision.map(Str::into_string),
        termination_grace_seconds: template.grace_seconds,
        images: template.images,
    })
}
