//! A metadata-only object type that keeps only what the model reads.
//!
//! `PartialObjectMeta<K>` decodes the whole `ObjectMeta`, and `managedFields` are two thirds of
//! every metadata-only event in the recordings. [`Lean<K>`] asks the API server for the same
//! metadata-only representation (`Resource::metadata_api`), but decodes only name, namespace,
//! uid, resourceVersion, timestamps, the controller owner reference, the revision annotation and
//! the pod-template-hash label (for sharding); serde skips everything else without allocating it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::Resource;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::convert::REVISION_ANNOTATION;
use crate::shard::POD_TEMPLATE_HASH;

/// The lean metadata of a `K`. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Lean<K> {
    metadata: ObjectMeta,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Lean<K> {
    pub fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
}

impl<K: Resource> Resource for Lean<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn metadata_api() -> bool {
        true
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeanOwner {
    api_version: String,
    kind: String,
    name: String,
    uid: String,
    #[serde(default)]
    controller: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeanMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    #[serde(default)]
    owner_references: Option<Vec<LeanOwner>>,
    #[serde(default)]
    annotations: Option<RevisionOnly>,
    #[serde(default)]
    labels: Option<HashOnly>,
}

/// Reads one key of a string map and skips the others without allocating them.
fn one_key<'de, A: MapAccess<'de>>(mut map: A, wanted: &str) -> Result<Option<String>, A::Error> {
    let mut found = None;
    while let Some(key) = map.next_key::<Cow<'de, str>>()? {
        if key == wanted {
            found = Some(map.next_value::<String>()?);
        } else {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(found)
}

/// An annotations map of which only the revision annotation is kept.
struct RevisionOnly(Option<String>);

/// A labels map of which only `pod-template-hash` is kept (sharding needs it).
struct HashOnly(Option<String>);

impl<'de> Deserialize<'de> for RevisionOnly {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RevisionOnly;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of annotations")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RevisionOnly, A::Error> {
                one_key(map, REVISION_ANNOTATION).map(RevisionOnly)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for HashOnly {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HashOnly;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of labels")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<HashOnly, A::Error> {
                one_key(map, POD_TEMPLATE_HASH).map(HashOnly)
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    metadata: Option<LeanMeta>,
}

impl<'de, K> Deserialize<'de> for Lean<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Some(m) = Raw::deserialize(d)?.metadata else {
            return Ok(Self::default_meta());
        };
        let owner_references = m.owner_references.map(|refs| {
            refs.into_iter()
                .filter(|r| r.controller == Some(true))
                .map(|r| OwnerReference {
                    api_version: r.api_version,
                    kind: r.kind,
                    name: r.name,
                    uid: r.uid,
                    controller: Some(true),
                    block_owner_deletion: None,
                })
                .collect()
        });
        let annotations = m
            .annotations
            .and_then(|a| a.0)
            .map(|rev| BTreeMap::from([(REVISION_ANNOTATION.to_string(), rev)]));
        let labels = m
            .labels
            .and_then(|l| l.0)
            .map(|hash| BTreeMap::from([(POD_TEMPLATE_HASH.to_string(), hash)]));
        Ok(Self {
            metadata: ObjectMeta {
                name: m.name,
                namespace: m.namespace,
                uid: m.uid,
                resource_version: m.resource_version,
                creation_timestamp: m.creation_timestamp,
                deletion_timestamp: m.deletion_timestamp,
                deletion_grace_period_seconds: m.deletion_grace_period_seconds,
                owner_references,
                annotations,
                labels,
                ..ObjectMeta::default()
            },
            _kind: PhantomData,
        })
    }
}

impl<K> Lean<K> {
    fn default_meta() -> Self {
        Self {
            metadata: ObjectMeta::default(),
            _kind: PhantomData,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    #[test]
    fn keeps_what_the_model_reads_and_drops_the_rest() {
        let line = include_str!(
            "../../tests/fixtures/k8s-recordings/rolling-update-drain/watch-pods.meta.jsonl"
        )
        .lines()
        .nth(3)
        .expect("a recorded line");
        let event: serde_json::Value = serde_json::from_str(line).expect("JSON");
        let lean: Lean<Pod> = serde_json::from_value(event["object"].clone()).expect("decodes");
        let m = lean.metadata();
        assert_eq!(m.name.as_deref(), Some("web-7578495449-phbzs"));
        assert_eq!(m.namespace.as_deref(), Some("shop"));
        assert!(m.uid.is_some() && m.resource_version.is_some());
        assert!(m.deletion_timestamp.is_some());
        assert_eq!(m.deletion_grace_period_seconds, Some(60));
        assert!(m.managed_fields.is_none());
        let labels = m.labels.as_ref().expect("the hash label");
        assert_eq!(
            labels.len(),
            1,
            "only pod-template-hash is kept: {labels:?}"
        );
        let owner = &m.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("ReplicaSet", Some(true))
        );
        assert!(Lean::<Pod>::metadata_api());
        assert_eq!(Lean::<Pod>::plural(&()), "pods");
        // Same decoding as the full metadata for every field the model reads.
        let full: ObjectMeta =
            serde_json::from_value(event["object"]["metadata"].clone()).expect("full");
        assert_eq!(crate::convert::pod(m), crate::convert::pod(&full));
    }
}
