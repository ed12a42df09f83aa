//! One API object as far as the model reads it: its metadata, a Deployment's spec and status,
//! and the fields of a `Status` object (which a watch's ERROR event and an error answer carry in
//! the object's place). List pages and watch lines (`framing`) decode their objects through here.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::deployment::{DeploymentSpec, DeploymentStatus, StatusField};
use super::meta::{Meta, MetaInto};
use super::wire::{Key, Str};

/// An object of a list or a watch line, as far as the model reads it. `code`, `reason` and
/// `message` are a `Status` object's (a watch's ERROR event, an error response).
#[derive(Clone, Debug, Default)]
pub struct Object<'a> {
    pub metadata: Meta<'a>,
    pub spec: Option<DeploymentSpec>,
    pub status: Option<DeploymentStatus<'a>>,
    pub code: Option<u16>,
    pub reason: Option<Str<'a>>,
    pub message: Option<Str<'a>>,
}

/// How objects are decoded: `spec` and `status` are read only for Deployments.
#[derive(Clone, Copy, Debug)]
pub struct ObjectSeed {
    pub deployment: bool,
}

/// Decodes an object into an [`Object`] in place.
pub(super) struct ObjectInto<'o, 'a> {
    pub(super) deployment: bool,
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
                b"spec" if self.deployment => o.spec = map.next_value()?,
                b"status" if self.deployment => {
                    o.status = map
                        .next_value::<Option<StatusField<'de>>>()?
                        .and_then(|s| s.0)
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
        deployment: seed.deployment,
        object: &mut object,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(object)
}

/// The message of a `Status` answer (an error response), or its text when it is not one.
pub fn status_message(body: &[u8]) -> String {
    match object(body, ObjectSeed { deployment: false }) {
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
