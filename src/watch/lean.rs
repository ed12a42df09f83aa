//! A metadata-only object type that keeps only what the model reads.
//!
//! `PartialObjectMeta<K>` decodes the whole `ObjectMeta`, and `managedFields` are two thirds of
//! every metadata-only event in the recordings. [`Lean<K>`] asks the API server for the same
//! metadata-only representation (`Resource::metadata_api`), but decodes only name, namespace,
//! uid, resourceVersion, timestamps, the controller owner reference, the revision annotation and
//! the pod-template-hash label (for sharding); serde skips everything else without allocating it.
//!
//! Deployments are watched in full (the model reads their spec and status), and [`LeanDeployment`]
//! does the same for them: a Deployment event is about 4 KiB, mostly managedFields, the pod
//! template and the last-applied annotation, and decoding those into k8s-openapi types cost more
//! than everything else the exporter does with the event.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentSpec, DeploymentStatus,
};
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

    pub fn into_metadata(self) -> ObjectMeta {
        self.metadata
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

/// An owner reference; its apiVersion and uid are not read (the model attributes by kind and
/// name within the namespace).
#[derive(Deserialize)]
struct LeanOwner {
    kind: String,
    name: String,
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
    generation: Option<i64>,
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
        Ok(Self {
            metadata: Raw::deserialize(d)?
                .metadata
                .map(LeanMeta::into_meta)
                .unwrap_or_default(),
            _kind: PhantomData,
        })
    }
}

impl LeanMeta {
    fn into_meta(self) -> ObjectMeta {
        let m = self;
        let owner_references = m.owner_references.map(|refs| {
            refs.into_iter()
                .filter(|r| r.controller == Some(true))
                .map(|r| OwnerReference {
                    kind: r.kind,
                    name: r.name,
                    controller: Some(true),
                    ..OwnerReference::default()
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
        ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            uid: m.uid,
            resource_version: m.resource_version,
            generation: m.generation,
            creation_timestamp: m.creation_timestamp,
            deletion_timestamp: m.deletion_timestamp,
            deletion_grace_period_seconds: m.deletion_grace_period_seconds,
            owner_references,
            annotations,
            labels,
            ..ObjectMeta::default()
        }
    }
}

/// A Deployment holding only what the model reads. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct LeanDeployment(Deployment);

impl LeanDeployment {
    pub fn deployment(&self) -> &Deployment {
        &self.0
    }

    pub fn into_deployment(self) -> Deployment {
        self.0
    }
}

impl Resource for LeanDeployment {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        Deployment::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        Deployment::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        Deployment::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        Deployment::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.0.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.0.metadata
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSpec {
    replicas: Option<i32>,
    paused: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCondition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
    reason: Option<String>,
    last_update_time: Option<Time>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatus {
    observed_generation: Option<i64>,
    replicas: Option<i32>,
    updated_replicas: Option<i32>,
    available_replicas: Option<i32>,
    #[serde(default)]
    conditions: Option<Vec<RawCondition>>,
}

#[derive(Deserialize)]
struct RawDeployment {
    #[serde(default)]
    metadata: Option<LeanMeta>,
    #[serde(default)]
    spec: Option<RawSpec>,
    #[serde(default)]
    status: Option<RawStatus>,
}

impl<'de> Deserialize<'de> for LeanDeployment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawDeployment::deserialize(d)?;
        Ok(Self(Deployment {
            metadata: raw.metadata.map(LeanMeta::into_meta).unwrap_or_default(),
            spec: raw.spec.map(|s| DeploymentSpec {
                replicas: s.replicas,
                paused: s.paused,
                ..DeploymentSpec::default()
            }),
            status: raw.status.map(|s| DeploymentStatus {
                observed_generation: s.observed_generation,
                replicas: s.replicas,
                updated_replicas: s.updated_replicas,
                available_replicas: s.available_replicas,
                conditions: s.conditions.map(|conditions| {
                    conditions
                        .into_iter()
                        .filter(|c| c.type_ == "Progressing")
                        .map(|c| DeploymentCondition {
                            type_: c.type_,
                            status: c.status,
                            reason: c.reason,
                            last_update_time: c.last_update_time,
                            ..DeploymentCondition::default()
                        })
                        .collect()
                }),
                ..DeploymentStatus::default()
            }),
        }))
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
        assert_eq!(crate::convert::pod(m.clone()), crate::convert::pod(full));
    }

    /// Metadata with everything an object can carry in excess, and more: 100 KiB annotations
    /// and labels (a real API server allows 256 KiB of annotations in all and 63-character label
    /// values; the decoder does not rely on either), managedFields, finalizers, owner references
    /// that are not controllers, a 253-character name and a unicode namespace.
    fn hostile_metadata(revision: &str) -> serde_json::Value {
        let big = "x".repeat(100 * 1024);
        serde_json::json!({
            "name": "r".repeat(253),
            "namespace": "名前空間-ñ-🚀",
            "uid": "3c0d6f2e-0000-4000-8000-000000000001",
            "resourceVersion": "42",
            "creationTimestamp": "2026-11-27T19:00:00Z",
            "deletionTimestamp": "2026-11-27T19:01:00Z",
            "deletionGracePeriodSeconds": 30,
            "finalizers": ["example.com/never-goes"],
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": big,
                "deployment.kubernetes.io/revision": revision,
                "zz.example.com/huge": big,
            },
            "labels": {"aa.example.com/huge": big, "pod-template-hash": "7578495449", "zz": big},
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": big, "uid": "a"},
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7578495449",
                 "uid": "b", "controller": true, "blockOwnerDeletion": true},
                {"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "c", "controller": false},
            ],
            "managedFields": [{
                "manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {"f:big": big}}},
            }],
        })
    }

    #[test]
    fn huge_annotations_and_labels_are_skipped_and_never_reach_object_meta() {
        use k8s_openapi::api::apps::v1::ReplicaSet;
        let metadata = hostile_metadata("7");
        let object = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": {"containers": [{"name": "c", "image": "x".repeat(100 * 1024)}]},
        });
        let text = serde_json::to_string(&object).expect("JSON");
        assert!(text.len() > 500 * 1024);
        let pod: Lean<Pod> = serde_json::from_str(&text).expect("decodes");
        let m = pod.metadata();
        let annotations = m.annotations.as_ref().expect("the revision");
        assert_eq!(
            annotations,
            &BTreeMap::from([(REVISION_ANNOTATION.to_string(), "7".to_string())])
        );
        let labels = m.labels.as_ref().expect("the hash");
        assert_eq!(
            labels,
            &BTreeMap::from([(POD_TEMPLATE_HASH.to_string(), "7578495449".to_string())])
        );
        assert!(m.managed_fields.is_none() && m.finalizers.is_none());
        let owners = m.owner_references.as_ref().expect("the controller");
        assert_eq!(owners.len(), 1, "only the controller is kept");
        assert_eq!(owners[0].name, "web-7578495449");
        let kept = serde_json::to_string(m).expect("serializes").len();
        assert!(kept < 1024, "{kept} bytes of metadata kept");

        // What the model gets, the same as from the full metadata.
        let full: ObjectMeta = serde_json::from_value(metadata).expect("full");
        let lean_pod = crate::convert::pod(m.clone()).expect("converts");
        assert_eq!(Ok(lean_pod.clone()), crate::convert::pod(full.clone()));
        assert_eq!(lean_pod.key.name.len(), 253);
        assert_eq!(lean_pod.key.namespace, "名前空間-ñ-🚀");
        let deletion = lean_pod.deletion.expect("deleting");
        assert_eq!(deletion.grace_seconds, Some(30));
        let rs: Lean<ReplicaSet> = serde_json::from_str(&text).expect("decodes");
        let converted = crate::convert::replicaset(rs.into_metadata()).expect("converts");
        assert_eq!(converted.revision, Some(7));
        assert_eq!(Ok(converted), crate::convert::replicaset(full));
    }

    #[test]
    fn a_lean_deployment_converts_like_the_full_one_for_every_recorded_event() {
        let mut seen = 0;
        for scenario in ["rolling-update-drain", "rollback", "pause", "recreate"] {
            let path = format!(
                "{}/tests/fixtures/k8s-recordings/{scenario}/watch-deployments.jsonl",
                env!("CARGO_MANIFEST_DIR")
            );
            let Ok(text) = std::fs::read_to_string(&path) else {
                panic!("{path}: missing recording");
            };
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let event: serde_json::Value = serde_json::from_str(line).expect("JSON");
                let object = &event["object"];
                if object["kind"] != "Deployment" {
                    continue;
                }
                let full: Deployment = serde_json::from_value(object.clone()).expect("full");
                let lean: LeanDeployment = serde_json::from_value(object.clone()).expect("lean");
                assert_eq!(
                    crate::convert::deployment(lean.clone().into_deployment()),
                    crate::convert::deployment(full.clone()),
                    "{scenario}: {line:.200}"
                );
                assert_eq!(lean.meta().resource_version, full.metadata.resource_version);
                assert!(lean.meta().managed_fields.is_none());
                seen += 1;
            }
        }
        assert!(seen > 20, "{seen} recorded Deployment events");
    }

    #[test]
    fn odd_revision_annotations_read_the_same_from_lean_and_full_metadata() {
        use k8s_openapi::api::apps::v1::ReplicaSet;
        let huge_number = "9".repeat(100 * 1024);
        for (revision, expected) in [
            ("7", Some(7)),
            (" 7 ", Some(7)),
            ("007", Some(7)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            (huge_number.as_str(), None),
            ("-1", None),
            ("1.5", None),
            ("", None),
            ("seven", None),
        ] {
            let metadata = hostile_metadata(revision);
            let object = serde_json::json!({"metadata": metadata});
            let lean: Lean<ReplicaSet> = serde_json::from_value(object).expect("decodes");
            let full: ObjectMeta = serde_json::from_value(metadata).expect("full");
            let converted = crate::convert::replicaset(lean.into_metadata()).expect("converts");
            assert_eq!(converted.revision, expected, "{:.20}", revision);
            assert_eq!(Ok(converted), crate::convert::replicaset(full));
        }
    }
}
