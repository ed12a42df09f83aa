//! What the workload kinds share: a `status` that may be a `Status` object's string instead of
//! the kind's status.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

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
