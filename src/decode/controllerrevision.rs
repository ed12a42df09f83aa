//! ControllerRevisions, watched as full objects because `revision` is not metadata: name, uid,
//! owner, the hash label, `revision` and creation time. Their `data` (a whole template) is
//! skipped unread, as every field the seed does not ask for.

use super::object::Object;
use super::wire::Str;
use crate::error::ConvertError;
use crate::model::ControllerRevisionState;

/// The model's view of a ControllerRevision. An absent `revision` (the API requires one) is 0.
pub fn controllerrevision(o: &mut Object<'_>) -> Result<ControllerRevisionState, ConvertError> {
    let meta = &mut o.metadata;
    let labels = &mut meta.labels;
    // A DaemonSet's revisions carry the label its pods carry; a StatefulSet's carry the other.
    let hash = labels
        .controller_revision_hash
        .take()
        .or_else(|| labels.controller_hash.take())
        .map(Str::into_string);
    Ok(ControllerRevisionState {
        key: meta.key("ControllerRevision")?,
        uid: meta.uid(),
        owner: meta.take_controller(),
        revision: o.revision.unwrap_or(0),
        hash,
        created: meta.creation_timestamp.map(|t| t.0),
    })
}
