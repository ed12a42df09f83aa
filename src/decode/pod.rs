//! Pods, from their metadata alone (watched metadata-only): key, uid, controller, deletion and,
//! for StatefulSet and DaemonSet pods, their revision (`controller-revision-hash`), a string only
//! when the label is there.

use super::object::Object;
use super::wire::Str;
use crate::error::ConvertError;
use crate::model::{Deletion, PodState};

/// The model's view of a Pod, from its metadata alone.
pub fn pod(o: &mut Object<'_>) -> Result<PodState, ConvertError> {
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
    })
}
