//! The framing around objects: a list page (`metadata` with its resourceVersion and continue
//! token, and `items` handed over one by one as they are read) and a watch line (`type` and
//! `object`). Both decode their objects in place through `object`.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::object::{Object, ObjectInto, ObjectSeed};
use super::wire::{Key, Str};

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
    /// Only the object's `metadata.resourceVersion` is meaningful.
    Bookmark,
    /// The object is a `Status`: the watch failed (code 410 means: relist).
    Error,
}

/// Decodes one watch line (without its newline): its type, and its object into `object`, which
/// is expected fresh (`Object::default()`).
pub fn watch_line<'a>(
    line: &'a [u8],
    seed: ObjectSeed,
    object: &mut Object<'a>,
) -> Result<EventType, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let event = LineInto { seed, object }.deserialize(&mut de)?;
    de.end()?;
    Ok(event)
}

struct LineInto<'o, 'a> {
    seed: ObjectSeed,
    object: &'o mut Object<'a>,
}

impl<'de> Visitor<'de> for LineInto<'_, 'de> {
    type Value = EventType;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a watch event")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EventType, A::Error> {
        let (mut event, mut object) = (None, false);
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match &*key.0 {
                b"type" => {
                    event = Some(match &*map.next_value::<Key<'de>>()?.0 {
                        b"ADDED" => EventType::Added,
                        b"MODIFIED" => EventType::Modified,
                        b"DELETED" => EventType::Deleted,
                        b"BOOKMARK" => EventType::Bookmark,
                        b"ERROR" => EventType::Error,
                        other => {
                            return Err(de::Error::unknown_variant(
                                &String::from_utf8_lossy(other),
                                &["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"],
                            ));
                        }
                    })
                }
                // Decoded into the caller's fresh object; a second one would mix into it.
                b"object" if object => return Err(de::Error::duplicate_field("object")),
                b"object" => {
                    map.next_value_seed(ObjectInto {
                        seed: self.seed,
                        object: &mut *self.object,
                    })?;
                    object = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !object {
            return Err(de::Error::missing_field("object"));
        }
        event.ok_or_else(|| de::Error::missing_field("type"))
    }
}

impl<'de> DeserializeSeed<'de> for LineInto<'_, 'de> {
    type Value = EventType;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<EventType, D::Error> {
        d.deserialize_map(self)
    }
}

/// A list page's `metadata`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta<'a> {
    #[serde(borrow)]
    pub resource_version: Option<Str<'a>>,
    #[serde(borrow, rename = "continue")]
    pub continue_: Option<Str<'a>>,
}

/// Decodes a list page, handing each item to `each` as it is read (no vector of items).
pub fn list_page<'a>(
    page: &'a [u8],
    seed: ObjectSeed,
    each: &mut dyn FnMut(&mut Object<'a>),
) -> Result<ListMeta<'a>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(page);
    let meta = PageSeed { seed, each }.deserialize(&mut de)?;
    de.end()?;
    Ok(meta)
}

struct PageSeed<'f, 'a> {
    seed: ObjectSeed,
    each: &'f mut dyn FnMut(&mut Object<'a>),
}

impl<'de> Visitor<'de> for PageSeed<'_, 'de> {
    type Value = ListMeta<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ListMeta<'de>, A::Error> {
        let mut meta = ListMeta::default();
        let mut items = Some(ItemsSeed {
            seed: self.seed,
            each: self.each,
        });
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match &*key.0 {
                b"metadata" => meta = map.next_value()?,
                b"items" => match items.take() {
                    Some(seed) => map.next_value_seed(seed)?,
                    None => return Err(de::Error::duplicate_field("items")),
                },
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(meta)
    }
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_, 'de> {
    type Value = ListMeta<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ListMeta<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

/// `items`: an array, or `null` (an empty metadata-only list).
struct ItemsSeed<'f, 'a> {
    seed: ObjectSeed,
    each: &'f mut dyn FnMut(&mut Object<'a>),
}

impl<'de> Visitor<'de> for ItemsSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of objects")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut object = Object::default();
        while seq
            .next_element_seed(ObjectInto {
                seed: self.seed,
                object: &mut object,
            })?
            .is_some()
        {
            (self.each)(&mut object);
            object = Object::default();
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}
