//! Pods, from their metadata (the exporter watches them metadata-only): key, uid, controller,
//! deletion and, for StatefulSet and DaemonSet pods, their revision (`controller-revision-hash`),
//! a string only when the label is there; with [`super::ObjectSeed::Pod`], their Ready condition
//! too.

use serde::Deserialize;

use super::object::{Object, Status};
use super::wire::Str;
use crate::error::ConvertError;
use crate::model::{Deletion, PodState};

/// What is read of a full Pod's `status`: its conditions.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PodStatus<'a> {
    #[serde(borrow, default)]
    conditions: Option<Vec<PodCondition<'a>>>,
}

#[derive(Clone, Debug, Deserialize)]
struct PodCondition<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Str<'a>>,
    #[serde(borrow)]
    status: Option<Str<'a>>,
}

impl PodStatus<'_> {
    /// The Ready condition is True; `false` when absent (a pod not yet scheduled has none).
    fn ready(&self) -> bool {
        self.conditions.iter().flatten().any(|c| {
            c.kind.as_ref().is_some_and(|k| k.as_str() == "Ready")
                && c.status.as_ref().is_some_and(|s| s.as_str() == "True")
        })
    }
}

/// The model's view of a Pod, from its metadata (and its Ready condition when it was read).
pub fn pod(o: &mut Object<'_>) -> Result<PodState, ConvertError> {
    let ready = match &o.status {
        Some(Status::Pod(s)) => Some(s.ready()),
        _ => None,
    };
    let meta = &mut o.metadata;
    Ok(PodState {
        key: meta.key("Pod")?,
        uid: meta.uid(),
        owner: meta.take_controller(),
        deletion: meta.deletion_timestamp.map(|t| Deletion {
            deadline: t.0,
            grace_seconds: meta.deletion_grace_period_seconds,
        }),
        revision_hash: meta
            .labels
            .controller_revision_hash
            .take()
            .map(Str::into_string),
        // Only a termination keeps them: a pod not being deleted costs no allocation for them.
        finalizers: match meta.deletion_timestamp {
            Some(_) => meta
                .finalizers
                .take()
                .map(|f| f.into_iter().map(Str::into_string).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        },
        ready,
    })
}
