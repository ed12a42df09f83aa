//! One API object as far as the model reads it: its metadata, a workload's spec and status, a
//! ControllerRevision's `revision`, and the fields of a `Status` object (which a watch's ERROR
//! event and an error answer carry in the object's place). The seed says which kind is expected,
//! so that each kind decodes only what it needs and skips the rest without allocating it (a
//! ControllerRevision's `data`, a template but for its hash). List pages and watch lines
//! (`framing`) decode their objects through here.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::daemonset::{DaemonSetSpec, DaemonSetStatus};
use super::deployment::{DeploymentSpec, DeploymentStatus};
use super::meta::{Meta, MetaInto};
use super::pod::PodStatus;
use super::statefulset::{StatefulSetSpec, StatefulSetStatus};
use super::wire::{Key, Str};
use super::workload::StatusField;

/// An object of a list or a watch line, as far as the model reads it. `code`, `reason` and
/// `message` are a `Status` object's (a watch's ERROR event, an error response).
#[derive(Clone, Debug, Default)]
pub struct Object<'a> {
    pub metadata: Meta<'a>,
    /// Read for the workload kinds only, as their seed asks.
    pub spec: Option<Spec>,
    pub status: Option<Status<'a>>,
    /// A ControllerRevision's `revision`.
    pub revision: Option<i64>,
    pub code: Option<u16>,
    pub reason: Option<Str<'a>>,
    pub message: Option<Str<'a>>,
}

/// The `spec` of the kind the seed asked for.
#[derive(Clone, Debug)]
pub enum Spec {
    Deployment(DeploymentSpec),
    StatefulSet(StatefulSetSpec),
    DaemonSet(DaemonSetSpec),
}

/// The `status` of the kind the seed asked for.
#[derive(Clone, Debug)]
pub enum Status<'a> {
    Deployment(DeploymentStatus<'a>),
    StatefulSet(StatefulSetStatus<'a>),
    DaemonSet(DaemonSetStatus),
    Pod(PodStatus<'a>),
}

/// How objects are decoded: which kind is expected, so which fields besides the metadata (and a
/// `Status` object's, which any answer can be) are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectSeed {
    /// Metadata only: what metadata-only watches (ReplicaSets, Pods) serve, and error answers.
    Meta,
    /// Metadata, `spec` and `status` of a Deployment.
    Deployment,
    /// Metadata, `spec` and `status` of a StatefulSet.
    StatefulSet,
    /// Metadata, `spec` and `status` of a DaemonSet.
    DaemonSet,
    /// Metadata and `revision` of a ControllerRevision (a full object: `revision` is not
    /// metadata); its `data` is skipped.
    ControllerRevision,
    /// Metadata and the Ready condition of a Pod (a full object: `wait`'s namespaced pod watch,
    /// where the cost is small; the exporter watches pods metadata-only).
    Pod,
}

/// Decodes an object into an [`Object`] in place.
pub(super) struct ObjectInto<'o, 'a> {
    pub(super) seed: ObjectSeed,
    pub(super) object: &'o mut Object<'a>,
}

impl<'de> Visitor<'de> for ObjectInto<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an API object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let o = self.object;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match &*key.0 {
                b"metadata" => map.next_value_seed(MetaInto(&mut o.metadata))?,
                b"spec" => {
                    o.spec = match self.seed {
                        ObjectSeed::Deployment => {
                            map.next_value::<Option<_>>()?.map(Spec::Deployment)
                        }
                        ObjectSeed::StatefulSet => {
                            map.next_value::<Option<_>>()?.map(Spec::StatefulSet)
                        }
                        ObjectSeed::DaemonSet => {
                            map.next_value::<Option<_>>()?.map(Spec::DaemonSet)
                        }
                        ObjectSeed::Meta | ObjectSeed::ControllerRevision | ObjectSeed::Pod => {
                            map.next_value::<IgnoredAny>()?;
                            None
                        }
                    }
                }
                b"status" => {
                    o.status = match self.seed {
                        ObjectSeed::Deployment => status(&mut map)?.map(Status::Deployment),
                        ObjectSeed::StatefulSet => status(&mut map)?.map(Status::StatefulSet),
                        ObjectSeed::DaemonSet => status(&mut map)?.map(Status::DaemonSet),
                        ObjectSeed::Pod => status(&mut map)?.map(Status::Pod),
                        ObjectSeed::Meta | ObjectSeed::ControllerRevision => {
                            map.next_value::<IgnoredAny>()?;
                            None
                        }
                    }
                }
                b"revision" if self.seed == ObjectSeed::ControllerRevision => {
                    o.revision = map.next_value()?
                }
                b"code" => o.code = map.next_value()?,
                b"reason" => o.reason = map.next_value()?,
                b"message" => o.message = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The next value as a workload's status: `None` for `null` or a `Status` object's string.
fn status<'de, A: MapAccess<'de>, T: serde::Deserialize<'de>>(
    map: &mut A,
) -> Result<Option<T>, A::Error> {
    Ok(map
        .next_value::<Option<StatusField<T>>>()?
        .and_then(|s| s.0))
}

impl<'de> DeserializeSeed<'de> for ObjectInto<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

/// Decodes one object (a list item, a `Status` answer).
pub fn object<'a>(bytes: &'a [u8], seed: ObjectSeed) -> Result<Object<'a>, serde_json::Error> {
    let mut object = Object::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    ObjectInto {
        seed,
        object: &mut object,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(object)
}

/// The message of a `Status` answer (an error response), or its text when it is not one.
pub fn status_message(body: &[u8]) -> String {
    match object(body, ObjectSeed::Meta) {
        Ok(Object {
            message: Some(m), ..
        }) => m.into_string(),
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            match text.char_indices().nth(200) {
                Some((cut, _)) => format!("{}...", &text[..cut]),
                None => text.to_string(),
            }
        }
    }
}
