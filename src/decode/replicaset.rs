//! ReplicaSets, from their metadata alone (watched metadata-only): key, revision, creation
//! time and controlling Deployment.

use super::object::Object;
use crate::error::ConvertError;
use crate::model::ReplicaSetState;

/// The model's view of a ReplicaSet, from its metadata alone.
pub fn replicaset(o: &mut Object<'_>) -> Result<ReplicaSetState, ConvertError> {
    let meta = &mut o.metadata;
    Ok(ReplicaSetState {
        key: meta.key("ReplicaSet")?,
        revision: meta.revision(),
        created: meta.creation_timestamp.map(|t| t.0),
        owner: meta.take_controller(),
    })
}
