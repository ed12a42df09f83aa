//! Owner references: of an object's `ownerReferences`, only the controller's kind and name are
//! read (the reference with `controller: true`); the other references, and every apiVersion and
//! uid, are skipped without allocating them.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::wire::{Key, Str};

/// The controller owner reference of an object: the kind and name of the object that manages
/// it (a ReplicaSet's Deployment, a Pod's ReplicaSet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerRef<'a> {
    pub kind: Str<'a>,
    pub name: Str<'a>,
}

/// One entry of `ownerReferences`: kind, name and whether it is the controller.
struct Entry<'a>(Option<Str<'a>>, Option<Str<'a>>, bool);

impl<'de> Visitor<'de> for Entry<'de> {
    type Value = Entry<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an owner reference")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Entry<'de>, A::Error> {
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match &*key.0 {
                b"kind" => self.0 = Some(map.next_value()?),
                b"name" => self.1 = Some(map.next_value()?),
                b"controller" => self.2 = map.next_value::<Option<bool>>()? == Some(true),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(self)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Entry<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entry = d.deserialize_map(Entry(None, None, false))?;
        if entry.0.is_none() {
            return Err(de::Error::missing_field("kind"));
        }
        if entry.1.is_none() {
            return Err(de::Error::missing_field("name"));
        }
        Ok(entry)
    }
}

/// `ownerReferences` read down to its first controller reference, if any.
pub(super) struct ControllerOf<'a>(pub(super) Option<OwnerRef<'a>>);

struct ControllerOfVisitor;

impl<'de> Visitor<'de> for ControllerOfVisitor {
    type Value = ControllerOf<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of owner references")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ControllerOf<'de>, A::Error> {
        let mut found = None;
        while let Some(entry) = seq.next_element::<Entry<'de>>()? {
            if let (None, Entry(Some(kind), Some(name), true)) = (&found, entry) {
                found = Some(OwnerRef { kind, name });
            }
        }
        Ok(ControllerOf(found))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for ControllerOf<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(ControllerOfVisitor)
    }
}
