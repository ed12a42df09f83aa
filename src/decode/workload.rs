//! What the three workload kinds (Deployments, StatefulSets, DaemonSets) share: the pod template,
//! read as a hash of its bytes and its termination grace period; the update strategy; and a
//! `status` that may be a `Status` object's string instead of the kind's status.
//!
//! The template is most of a workload object, and the model only asks whether it changed: it is
//! captured as the bytes served (serde_json's `RawValue`, borrowed from the line, no tree built),
//! hashed, and read once more for its grace period and container images alone, everything else
//! skipped.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::wire::Str;
use crate::model::{TemplateHash, UpdateStrategy, joined_images};

/// `spec.template` as the model reads it. Decodes only from serde_json's own deserializer over
/// bytes or a string (as every object is decoded here): the hash is of the bytes as served.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Template {
    pub hash: TemplateHash,
    /// `spec.terminationGracePeriodSeconds` of the template.
    pub grace_seconds: Option<i64>,
    /// The images of `spec.containers`, joined and capped ([`joined_images`]).
    pub images: String,
}

/// The part of a template read for its grace period and images; the rest is skipped without
/// allocating it.
#[derive(Deserialize)]
struct TemplateFields<'a> {
    #[serde(borrow)]
    spec: Option<PodSpecFields<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpecFields<'a> {
    termination_grace_period_seconds: Option<i64>,
    #[serde(borrow)]
    containers: Option<Vec<Container<'a>>>,
}

#[derive(Deserialize)]
struct Container<'a> {
    #[serde(borrow)]
    image: Option<Str<'a>>,
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(d)?;
        let fields = serde_json::from_str::<Option<TemplateFields<'de>>>(raw.get())
            .map_err(de::Error::custom)?;
        let spec = fields.and_then(|f| f.spec);
        let images = spec
            .as_ref()
            .and_then(|s| s.containers.as_ref())
            .map(|c| joined_images(c.iter().filter_map(|c| c.image.as_ref().map(Str::as_str))))
            .unwrap_or_default();
        Ok(Template {
            hash: TemplateHash::of(raw.get().as_bytes()),
            grace_seconds: spec.and_then(|s| s.termination_grace_period_seconds),
            images,
        })
    }
}

/// A strategy's `type`, read without allocating it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StrategyType(pub UpdateStrategy);

impl<'de> Deserialize<'de> for StrategyType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(StrategyType(match Str::deserialize(d)?.as_str() {
            "OnDelete" => UpdateStrategy::OnDelete,
            "Recreate" => UpdateStrategy::Recreate,
            // "RollingUpdate", and values the API rejects.
            _ => UpdateStrategy::RollingUpdate,
        }))
    }
}

/// A Deployment's `spec.strategy`, a StatefulSet's or DaemonSet's `spec.updateStrategy`: its type
/// and, of `rollingUpdate`, a StatefulSet's partition (the surge and unavailability bounds are
/// skipped).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Strategy {
    #[serde(rename = "type")]
    pub type_: Option<StrategyType>,
    pub rolling_update: Option<RollingUpdate>,
}

impl Strategy {
    /// The strategy of an optional `strategy` field: absent is `RollingUpdate`.
    pub fn of(strategy: Option<&Strategy>) -> UpdateStrategy {
        strategy.and_then(|s| s.type_).unwrap_or_default().0
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct RollingUpdate {
    /// StatefulSets only; the API stores no default.
    pub partition: Option<i32>,
}

/// A workload's `status`, or `None` for the string a `Status` object (a watch's ERROR event, an
/// error answer) carries under the same key, so that one decoding serves both.
pub(super) struct StatusField<T>(pub(super) Option<T>);

struct StatusFieldVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for StatusFieldVisitor<T> {
    type Value = StatusField<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a workload status or a Status string")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<StatusField<T>, E> {
        Ok(StatusField(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<StatusField<T>, E> {
        Ok(StatusField(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StatusField<T>, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|s| StatusField(Some(s)))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for StatusField<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StatusFieldVisitor(PhantomData))
    }
}
