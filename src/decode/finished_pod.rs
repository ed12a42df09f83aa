//! Finished pods, from the phase source (a metadata-only pod watch that sees only pods whose
//! phase is Succeeded or Failed): key and uid.

use super::object::Object;
use crate::error::ConvertError;
use crate::model::FinishedPod;

/// A pod reported by the phase source (phase Succeeded or Failed).
pub fn finished_pod(o: &mut Object<'_>) -> Result<FinishedPod, ConvertError> {
    let meta = &mut o.metadata;
    Ok(FinishedPod {
        key: meta.key("Pod")?,
        uid: meta.uid(),
    })
}
