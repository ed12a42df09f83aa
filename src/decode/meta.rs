//! Object metadata: the fields of `metadata` the model reads (name, namespace, uid,
//! resourceVersion, generation, timestamps, the controller owner reference, the revision
//! annotation, three labels: pod-template-hash and the two revision hash labels, and the
//! finalizers), decoded in place; every other field, and every other annotation and label, is
//! skipped without allocating it. The per-kind conversions take their fields from here.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::owner::{ControllerOf, OwnerRef};
use super::wire::{Key, OneKey, Str, Time};
use crate::error::ConvertError;
use crate::model::{ControllerRef, ObjectKey, OwnerKind, Uid};
use crate::shard::{POD_TEMPLATE_HASH, workload_name};

/// The annotation the Deployment controller writes on Deployments and their ReplicaSets.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// The revision annotation of an annotations map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revision<'a>(pub Option<Str<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Revision<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(OneKey(REVISION_ANNOTATION.as_bytes()))
            .map(Revision)
    }
}

/// The label of a StatefulSet's or DaemonSet's pods and of a DaemonSet's ControllerRevisions: the
/// pods' revision.
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";

/// The hash label of a StatefulSet's ControllerRevisions.
pub const CONTROLLER_HASH: &str = "controller.kubernetes.io/hash";

/// The labels the model reads; every other label is skipped without allocating it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels<'a> {
    /// `pod-template-hash`: a ReplicaSet's pods (for sharding).
    pub pod_template_hash: Option<Str<'a>>,
    /// `controller-revision-hash`: a StatefulSet's or DaemonSet's pods, a DaemonSet's revisions.
    pub controller_revision_hash: Option<Str<'a>>,
    /// `controller.kubernetes.io/hash`: a StatefulSet's revisions.
    pub controller_hash: Option<Str<'a>>,
}

struct LabelsVisitor;

impl<'de> Visitor<'de> for LabelsVisitor {
    type Value = Labels<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of labels")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels<'de>, A::Error> {
        let mut labels = Labels::default();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let slot = match &*key.0 {
                k if k == POD_TEMPLATE_HASH.as_bytes() => &mut labels.pod_template_hash,
                k if k == CONTROLLER_REVISION_HASH.as_bytes() => {
                    &mut labels.controller_revision_hash
                }
                k if k == CONTROLLER_HASH.as_bytes() => &mut labels.controller_hash,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value()?);
        }
        Ok(labels)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Labels<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(LabelsVisitor)
    }
}

/// The metadata the model reads.
#[derive(Clone, Debug, Default)]
pub struct Meta<'a> {
    pub name: Option<Str<'a>>,
    pub namespace: Option<Str<'a>>,
    pub uid: Option<Str<'a>>,
    pub resource_version: Option<Str<'a>>,
    pub generation: Option<i64>,
    pub creation_timestamp: Option<Time>,
    pub deletion_timestamp: Option<Time>,
    pub deletion_grace_period_seconds: Option<i64>,
    /// The controller owner reference (`ownerReferences`, the one with `controller: true`).
    pub controller: Option<OwnerRef<'a>>,
    pub annotations: Option<Revision<'a>>,
    pub labels: Labels<'a>,
    /// `finalizers`: what keeps a deleted object until its controllers let go (read for pods).
    pub finalizers: Option<Vec<Str<'a>>>,
}

/// Decodes `metadata` into a [`Meta`] in place (a watch event is decoded without moving its
/// object around); `null` leaves it empty.
pub(super) struct MetaInto<'o, 'a>(pub(super) &'o mut Meta<'a>);

impl<'de> Visitor<'de> for MetaInto<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("object metadata")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let m = self.0;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match &*key.0 {
                b"name" => m.name = map.next_value()?,
                b"namespace" => m.namespace = map.next_value()?,
                b"uid" => m.uid = map.next_value()?,
                b"resourceVersion" => m.resource_version = map.next_value()?,
                b"generation" => m.generation = map.next_value()?,
                b"creationTimestamp" => m.creation_timestamp = map.next_value()?,
                b"deletionTimestamp" => m.deletion_timestamp = map.next_value()?,
                b"deletionGracePeriodSeconds" => {
                    m.deletion_grace_period_seconds = map.next_value()?
                }
                b"ownerReferences" => {
                    m.controller = map
                        .next_value::<Option<ControllerOf<'de>>>()?
                        .and_then(|c| c.0)
                }
                b"annotations" => m.annotations = map.next_value()?,
                b"labels" => m.labels = map.next_value::<Option<_>>()?.unwrap_or_default(),
                b"finalizers" => m.finalizers = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for MetaInto<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl Meta<'_> {
    /// The workload the object belongs to, as (namespace, workload name): its shard key, and
    /// what the allow and deny lists match. The rule is `shard::workload_name`'s; this only
    /// hands it the object's name, controller and pod-template-hash label.
    pub fn workload_key(&self) -> (&str, &str) {
        let hash = self.labels.pod_template_hash.as_ref().map(Str::as_str);
        let controller = self
            .controller
            .as_ref()
            .map(|c| (c.kind.as_str(), c.name.as_str()));
        let workload = workload_name(self.name.as_ref().map_or("", Str::as_str), controller, hash);
        (self.namespace.as_ref().map_or("", Str::as_str), workload)
    }

    /// The object's key, moving its name and namespace out; without either, the model cannot
    /// use the object (`kind` names it in the error).
    pub(super) fn key(&mut self, kind: &'static str) -> Result<ObjectKey, ConvertError> {
        let name = self.name.take().ok_or(ConvertError::MissingField {
            kind,
            field: "metadata.name",
        })?;
        let namespace = self.namespace.take().ok_or(ConvertError::MissingField {
            kind,
            field: "metadata.namespace",
        })?;
        Ok(ObjectKey {
            namespace: namespace.into_string(),
            name: name.into_string(),
        })
    }

    /// The revision annotation as a number; one that is not an integer is no revision.
    pub(super) fn revision(&self) -> Option<u64> {
        self.annotations
            .as_ref()?
            .0
            .as_ref()?
            .as_str()
            .trim()
            .parse()
            .ok()
    }

    /// The controller owner reference as the model reads it, moving its name out.
    pub(super) fn take_controller(&mut self) -> Option<ControllerRef> {
        let OwnerRef { kind, name } = self.controller.take()?;
        Some(ControllerRef {
            kind: OwnerKind::from(kind.as_str()),
            name: name.into_string(),
        })
    }

    pub(super) fn uid(&self) -> Uid {
        Uid::from(self.uid.as_ref().map_or("", Str::as_str))
    }
}
