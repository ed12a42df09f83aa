//! From the API server's JSON to the model's inputs: the only place that knows both sides.
//!
//! The watch adapters hand every list page and every watch line here as the bytes read from the
//! connection, and the recorded-traffic tests hand the recorded bytes, so both go through this
//! one decoding. Only what the model reads is decoded: name, namespace, uid, resourceVersion,
//! generation, timestamps, the controller owner reference, the revision annotation, the
//! pod-template-hash label (for sharding) and, for Deployments, a few fields of spec and status.
//! serde skips everything else (managedFields are two thirds of a metadata-only event, the pod
//! template and the last-applied annotation most of a Deployment) without allocating it, and
//! strings are borrowed from the bytes unless they carry escapes, so a watch line is decoded in
//! place: the only allocations per event are the model input's own strings.
//!
//! The API's documented defaults apply: absent counters are 0, an absent `spec.replicas` is 1, a
//! revision annotation that is not an integer is no revision. An object without a name or a
//! namespace is a [`ConvertError`] (skipped); a line that is not JSON of this shape, or a timestamp
//! that does not parse, is a decode error (the event is lost, and the watch relists).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::ConvertError;
use crate::model::{
    ConditionStatus, ControllerRef, Deletion, DeploymentState, FinishedPod, ObjectKey, PodState,
    ProgressingCondition, ReplicaSetState, Timestamp,
};
use crate::shard::{POD_TEMPLATE_HASH, workload_name};

/// The annotation the Deployment controller writes on Deployments and their ReplicaSets.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// A string of the wire, borrowed from the bytes unless it had escapes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Str<'a>(pub Cow<'a, str>);

impl Str<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0.into_owned()
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Str<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Str<'de>, E> {
        Ok(Str(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Str<'de>, E> {
        Ok(Str(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Str<'de>, E> {
        Ok(Str(Cow::Owned(s)))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor)
    }
}

/// An RFC 3339 timestamp (`metav1.Time`), parsed as k8s-openapi's `Time` parses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Time(pub Timestamp);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Str::deserialize(d)?;
        let t: jiff::Timestamp = s.as_str().parse().map_err(de::Error::custom)?;
        Ok(Time(Timestamp::from_micros(t.as_microsecond())))
    }
}

/// The controller's kind and name, found while reading `ownerReferences`; the other references
/// (and every apiVersion and uid) are skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Controller<'a>(pub Option<(Str<'a>, Str<'a>)>);

#[derive(Deserialize)]
struct Owner<'a> {
    #[serde(borrow)]
    kind: Str<'a>,
    #[serde(borrow)]
    name: Str<'a>,
    #[serde(default)]
    controller: Option<bool>,
}

struct ControllerVisitor;

impl<'de> Visitor<'de> for ControllerVisitor {
    type Value = Controller<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of owner references")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Controller<'de>, A::Error> {
        let mut found = None;
        while let Some(owner) = seq.next_element::<Owner<'de>>()? {
            if found.is_none() && owner.controller == Some(true) {
                found = Some((owner.kind, owner.name));
            }
        }
        Ok(Controller(found))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Controller<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(ControllerVisitor)
    }
}

/// A string map of which only the value of `key` is read; the others are skipped without
/// allocating them.
struct OneKey(&'static str);

impl<'de> Visitor<'de> for OneKey {
    type Value = Option<Str<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of strings")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Str<'de>>, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            if key.as_str() == self.0 {
                found = Some(map.next_value::<Str<'de>>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// The revision annotation of an annotations map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revision<'a>(pub Option<Str<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Revision<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(OneKey(REVISION_ANNOTATION)).map(Revision)
    }
}

/// The pod-template-hash label of a labels map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateHash<'a>(pub Option<Str<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for TemplateHash<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(OneKey(POD_TEMPLATE_HASH))
            .map(TemplateHash)
    }
}

/// The metadata the model reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta<'a> {
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    #[serde(borrow)]
    pub namespace: Option<Str<'a>>,
    #[serde(borrow)]
    pub uid: Option<Str<'a>>,
    #[serde(borrow)]
    pub resource_version: Option<Str<'a>>,
    pub generation: Option<i64>,
    pub creation_timestamp: Option<Time>,
    pub deletion_timestamp: Option<Time>,
    pub deletion_grace_period_seconds: Option<i64>,
    #[serde(borrow, default)]
    pub owner_references: Option<Controller<'a>>,
    #[serde(borrow, default)]
    pub annotations: Option<Revision<'a>>,
    #[serde(borrow, default)]
    pub labels: Option<TemplateHash<'a>>,
}

impl Meta<'_> {
    /// The controller owner reference's kind and name.
    pub fn controller(&self) -> Option<(&str, &str)> {
        let (kind, name) = self.owner_references.as_ref()?.0.as_ref()?;
        Some((kind.as_str(), name.as_str()))
    }

    /// The name of the workload the object belongs to (see `shard`), for sharding and the
    /// allow and deny lists.
    pub fn workload(&self) -> &str {
        let hash = self
            .labels
            .as_ref()
            .and_then(|l| l.0.as_ref())
            .map(Str::as_str);
        workload_name(
            self.name.as_ref().map_or("", Str::as_str),
            self.controller(),
            hash,
        )
    }

    fn key(&mut self, kind: &'static str) -> Result<ObjectKey, ConvertError> {
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

    fn revision(&self) -> Option<u64> {
        self.annotations
            .as_ref()?
            .0
            .as_ref()?
            .as_str()
            .trim()
            .parse()
            .ok()
    }

    fn owner(&mut self) -> Option<ControllerRef> {
        let (kind, name) = self.owner_references.take()?.0?;
        Some(ControllerRef {
            kind: kind.into_string(),
            name: name.into_string(),
        })
    }

    fn uid(&mut self) -> String {
        self.uid.take().map(Str::into_string).unwrap_or_default()
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct DeploymentSpec {
    pub replicas: Option<i32>,
    pub paused: Option<bool>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition<'a> {
    #[serde(rename = "type", borrow)]
    pub type_: Str<'a>,
    #[serde(borrow)]
    pub status: Str<'a>,
    #[serde(borrow)]
    pub reason: Option<Str<'a>>,
    pub last_update_time: Option<Time>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStatus<'a> {
    pub observed_generation: Option<i64>,
    pub replicas: Option<i32>,
    pub updated_replicas: Option<i32>,
    pub available_replicas: Option<i32>,
    #[serde(borrow, default)]
    pub conditions: Option<Vec<Condition<'a>>>,
}

/// A Deployment's `status`, or the string of a Status object's (skipped).
struct StatusField<'a>(Option<DeploymentStatus<'a>>);

struct StatusFieldVisitor;

impl<'de> Visitor<'de> for StatusFieldVisitor {
    type Value = StatusField<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Deployment status or a Status string")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<StatusField<'de>, E> {
        Ok(StatusField(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<StatusField<'de>, E> {
        Ok(StatusField(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StatusField<'de>, A::Error> {
        DeploymentStatus::deserialize(de::value::MapAccessDeserializer::new(map))
            .map(|s| StatusField(Some(s)))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for StatusField<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StatusFieldVisitor)
    }
}

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

/// Decodes one object; `spec` and `status` are read only for Deployments.
#[derive(Clone, Copy, Debug)]
pub struct ObjectSeed {
    pub deployment: bool,
}

impl<'de> Visitor<'de> for ObjectSeed {
    type Value = Object<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an API object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object<'de>, A::Error> {
        let mut o = Object::default();
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match key.as_str() {
                "metadata" => {
                    o.metadata = map.next_value::<Option<Meta<'de>>>()?.unwrap_or_default()
                }
                "spec" if self.deployment => o.spec = map.next_value()?,
                "status" if self.deployment => {
                    o.status = map
                        .next_value::<Option<StatusField<'de>>>()?
                        .and_then(|s| s.0)
                }
                "code" => o.code = map.next_value()?,
                "reason" => o.reason = map.next_value()?,
                "message" => o.message = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(o)
    }
}

impl<'de> DeserializeSeed<'de> for ObjectSeed {
    type Value = Object<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Object<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

/// One line of a watch.
#[derive(Clone, Debug)]
pub enum Line<'a> {
    Added(Object<'a>),
    Modified(Object<'a>),
    Deleted(Object<'a>),
    /// Only `metadata.resourceVersion` is meaningful.
    Bookmark(Object<'a>),
    /// A `Status` object: the watch failed (410 Expired means: relist).
    Error(Object<'a>),
}

impl<'a> Line<'a> {
    /// Decodes one watch line (without its newline).
    pub fn decode(line: &'a [u8], seed: ObjectSeed) -> Result<Self, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(line);
        let line = LineSeed(seed).deserialize(&mut de)?;
        de.end()?;
        Ok(line)
    }
}

struct LineSeed(ObjectSeed);

impl<'de> Visitor<'de> for LineSeed {
    type Value = Line<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a watch event")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Line<'de>, A::Error> {
        let mut type_: Option<Str<'de>> = None;
        let mut object = None;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match key.as_str() {
                "type" => type_ = Some(map.next_value()?),
                "object" => object = Some(map.next_value_seed(self.0)?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let object = object.ok_or_else(|| de::Error::missing_field("object"))?;
        let type_ = type_.ok_or_else(|| de::Error::missing_field("type"))?;
        Ok(match type_.as_str() {
            "ADDED" => Line::Added(object),
            "MODIFIED" => Line::Modified(object),
            "DELETED" => Line::Deleted(object),
            "BOOKMARK" => Line::Bookmark(object),
            "ERROR" => Line::Error(object),
            other => {
                return Err(de::Error::unknown_variant(
                    other,
                    &["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"],
                ));
            }
        })
    }
}

impl<'de> DeserializeSeed<'de> for LineSeed {
    type Value = Line<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Line<'de>, D::Error> {
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
    each: &mut dyn FnMut(Object<'a>),
) -> Result<ListMeta<'a>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(page);
    let meta = PageSeed { seed, each }.deserialize(&mut de)?;
    de.end()?;
    Ok(meta)
}

struct PageSeed<'f, 'a> {
    seed: ObjectSeed,
    each: &'f mut dyn FnMut(Object<'a>),
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
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match key.as_str() {
                "metadata" => meta = map.next_value()?,
                "items" => match items.take() {
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
    each: &'f mut dyn FnMut(Object<'a>),
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
        while let Some(o) = seq.next_element_seed(self.seed)? {
            (self.each)(o);
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

/// The model's view of a Deployment.
pub fn deployment(o: Object<'_>) -> Result<DeploymentState, ConvertError> {
    let mut meta = o.metadata;
    let spec = o.spec.unwrap_or_default();
    let status = o.status.unwrap_or_default();
    Ok(DeploymentState {
        key: meta.key("Deployment")?,
        uid: meta.uid(),
        revision: meta.revision(),
        generation: meta.generation.unwrap_or(0),
        observed_generation: status.observed_generation.unwrap_or(0),
        spec_replicas: spec.replicas.unwrap_or(1),
        paused: spec.paused.unwrap_or(false),
        replicas: status.replicas.unwrap_or(0),
        updated_replicas: status.updated_replicas.unwrap_or(0),
        available_replicas: status.available_replicas.unwrap_or(0),
        progressing: status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_.as_str() == "Progressing")
            .map(|c| ProgressingCondition {
                status: match c.status.as_str() {
                    "True" => ConditionStatus::True,
                    "False" => ConditionStatus::False,
                    _ => ConditionStatus::Unknown,
                },
                reason: c.reason.map(Str::into_string).unwrap_or_default(),
                last_update: c.last_update_time.map(|t| t.0),
            }),
    })
}

/// The model's view of a ReplicaSet, from its metadata alone.
pub fn replicaset(o: Object<'_>) -> Result<ReplicaSetState, ConvertError> {
    let mut meta = o.metadata;
    Ok(ReplicaSetState {
        key: meta.key("ReplicaSet")?,
        revision: meta.revision(),
        created: meta.creation_timestamp.map(|t| t.0),
        owner: meta.owner(),
    })
}

/// The model's view of a Pod, from its metadata alone.
pub fn pod(o: Object<'_>) -> Result<PodState, ConvertError> {
    let mut meta = o.metadata;
    Ok(PodState {
        key: meta.key("Pod")?,
        uid: meta.uid(),
        owner: meta.owner(),
        deletion: meta.deletion_timestamp.map(|t| Deletion {
            deadline: t.0,
            grace_seconds: meta.deletion_grace_period_seconds,
        }),
    })
}

/// A pod reported by the phase source (phase Succeeded or Failed).
pub fn finished_pod(o: Object<'_>) -> Result<FinishedPod, ConvertError> {
    let mut meta = o.metadata;
    Ok(FinishedPod {
        key: meta.key("Pod")?,
        uid: meta.uid(),
    })
}

/// The message of a `Status` answer (an error response), or its text when it is not one.
pub fn status_message(body: &[u8]) -> String {
    let mut de = serde_json::Deserializer::from_slice(body);
    match (ObjectSeed { deployment: false }).deserialize(&mut de) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time as K8sTime};
    use serde_json::{Value, json};

    const META: ObjectSeed = ObjectSeed { deployment: false };
    const FULL: ObjectSeed = ObjectSeed { deployment: true };

    fn recording(scenario: &str, file: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/k8s-recordings/{scenario}/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn object(line: &[u8], seed: ObjectSeed) -> Object<'_> {
        match Line::decode(line, seed).expect("decodes") {
            Line::Added(o) | Line::Modified(o) | Line::Deleted(o) => o,
            other => panic!("not an object event: {other:?}"),
        }
    }

    // An independent reference: the same fields read through k8s-openapi's full types.
    fn ts(t: &K8sTime) -> Timestamp {
        Timestamp::from_micros(t.0.as_microsecond())
    }

    fn key(m: &ObjectMeta) -> ObjectKey {
        ObjectKey::new(m.namespace.clone().unwrap(), m.name.clone().unwrap())
    }

    fn owner(m: &ObjectMeta) -> Option<ControllerRef> {
        let r = m
            .owner_references
            .as_ref()?
            .iter()
            .find(|r| r.controller == Some(true))?;
        Some(ControllerRef {
            kind: r.kind.clone(),
            name: r.name.clone(),
        })
    }

    fn revision(m: &ObjectMeta) -> Option<u64> {
        m.annotations
            .as_ref()?
            .get(REVISION_ANNOTATION)?
            .trim()
            .parse()
            .ok()
    }

    fn reference_pod(m: &ObjectMeta) -> PodState {
        PodState {
            key: key(m),
            uid: m.uid.clone().unwrap_or_default(),
            owner: owner(m),
            deletion: m.deletion_timestamp.as_ref().map(|t| Deletion {
                deadline: ts(t),
                grace_seconds: m.deletion_grace_period_seconds,
            }),
        }
    }

    fn reference_replicaset(m: &ObjectMeta) -> ReplicaSetState {
        ReplicaSetState {
            key: key(m),
            owner: owner(m),
            revision: revision(m),
            created: m.creation_timestamp.as_ref().map(ts),
        }
    }

    fn reference_deployment(d: &Deployment) -> DeploymentState {
        let (spec, status) = (
            d.spec.clone().unwrap_or_default(),
            d.status.clone().unwrap_or_default(),
        );
        let m = &d.metadata;
        DeploymentState {
            key: key(m),
            uid: m.uid.clone().unwrap_or_default(),
            revision: revision(m),
            generation: m.generation.unwrap_or(0),
            observed_generation: status.observed_generation.unwrap_or(0),
            spec_replicas: spec.replicas.unwrap_or(1),
            paused: spec.paused.unwrap_or(false),
            replicas: status.replicas.unwrap_or(0),
            updated_replicas: status.updated_replicas.unwrap_or(0),
            available_replicas: status.available_replicas.unwrap_or(0),
            progressing: status
                .conditions
                .unwrap_or_default()
                .into_iter()
                .find(|c| c.type_ == "Progressing")
                .map(|c| ProgressingCondition {
                    status: match c.status.as_str() {
                        "True" => ConditionStatus::True,
                        "False" => ConditionStatus::False,
                        _ => ConditionStatus::Unknown,
                    },
                    reason: c.reason.unwrap_or_default(),
                    last_update: c.last_update_time.as_ref().map(ts),
                }),
        }
    }

    #[test]
    fn every_recorded_event_decodes_like_the_full_k8s_openapi_types() {
        let mut seen = [0; 3];
        for scenario in ["rolling-update-drain", "rollback", "pause", "recreate"] {
            for line in recording(scenario, "watch-deployments.jsonl").lines() {
                let v: Value = serde_json::from_str(line).expect("JSON");
                let full: Deployment = serde_json::from_value(v["object"].clone()).expect("full");
                let got = deployment(object(line.as_bytes(), FULL));
                assert_eq!(
                    got,
                    Ok(reference_deployment(&full)),
                    "{scenario}: {line:.200}"
                );
                seen[0] += 1;
            }
            for line in recording(scenario, "watch-replicasets.meta.jsonl").lines() {
                let v: Value = serde_json::from_str(line).expect("JSON");
                let full: ObjectMeta =
                    serde_json::from_value(v["object"]["metadata"].clone()).expect("full");
                let got = replicaset(object(line.as_bytes(), META));
                assert_eq!(
                    got,
                    Ok(reference_replicaset(&full)),
                    "{scenario}: {line:.200}"
                );
                seen[1] += 1;
            }
            for line in recording(scenario, "watch-pods.meta.jsonl").lines() {
                let v: Value = serde_json::from_str(line).expect("JSON");
                let full: ObjectMeta =
                    serde_json::from_value(v["object"]["metadata"].clone()).expect("full");
                let o = object(line.as_bytes(), META);
                assert_eq!(
                    o.metadata.resource_version.as_ref().map(Str::as_str),
                    full.resource_version.as_deref()
                );
                assert_eq!(pod(o), Ok(reference_pod(&full)), "{scenario}: {line:.200}");
                seen[2] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n > 20), "{seen:?} recorded events");
    }

    #[test]
    fn recorded_lists_decode_item_by_item_with_their_version() {
        let text = recording("rolling-update-drain", "list-pods.meta.json");
        let v: Value = serde_json::from_str(&text).expect("JSON");
        let mut pods = Vec::new();
        let meta = list_page(text.as_bytes(), META, &mut |o| {
            pods.push(pod(o).expect("a pod"))
        })
        .expect("decodes");
        assert_eq!(meta.resource_version.as_ref().map(Str::as_str), Some("365"));
        assert_eq!(meta.continue_, None);
        let items = v["items"].as_array().expect("items");
        assert_eq!(pods.len(), items.len());
        for (p, item) in pods.iter().zip(items) {
            let full: ObjectMeta = serde_json::from_value(item["metadata"].clone()).expect("full");
            assert_eq!(p, &reference_pod(&full));
        }
        // `"items": null`, as the server writes an empty metadata-only list.
        let empty = recording("rolling-update-drain", "list-pods-finished.meta.json");
        let mut n = 0;
        let meta = list_page(empty.as_bytes(), META, &mut |_| n += 1).expect("decodes");
        assert_eq!((n, meta.resource_version.is_some()), (0, true));
        // A page with a continue token.
        let page = br#"{"metadata":{"resourceVersion":"9","continue":"abc","remainingItemCount":3},"items":[{"metadata":{"name":"p","namespace":"n"}}]}"#;
        let meta = list_page(page, META, &mut |_| n += 1).expect("decodes");
        assert_eq!(
            (n, meta.continue_.map(Str::into_string)),
            (1, Some("abc".into()))
        );
    }

    #[test]
    fn bookmarks_and_errors_are_recognised() {
        let bookmark = recording("rolling-update-drain", "watch-bookmark.meta.jsonl");
        match Line::decode(bookmark.trim().as_bytes(), META).expect("decodes") {
            Line::Bookmark(o) => {
                assert_eq!(
                    o.metadata.resource_version.map(Str::into_string),
                    Some("74245".into())
                )
            }
            other => panic!("{other:?}"),
        }
        for (file, code) in [("watch-too-old.json", 410), ("watch-error-event.json", 500)] {
            let text = recording("rolling-update-drain", file);
            // A Status object's `status` is a string: also fine for a Deployment watch.
            for seed in [META, FULL] {
                match Line::decode(text.trim().as_bytes(), seed).expect("decodes") {
                    Line::Error(o) => {
                        assert_eq!(o.code, Some(code));
                        assert!(!o.message.expect("a message").as_str().is_empty());
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(
            status_message(recording("rolling-update-drain", "list-wrong-accept.json").as_bytes()),
            serde_json::from_str::<Value>(&recording(
                "rolling-update-drain",
                "list-wrong-accept.json"
            ))
            .expect("JSON")["message"]
        );
        assert_eq!(
            status_message(b"  <html>bad gateway</html>\n"),
            "<html>bad gateway</html>"
        );
        assert_eq!(status_message("x".repeat(1000).as_bytes()).len(), 203);
    }

    #[test]
    fn malformed_lines_are_errors_not_panics() {
        for line in [
            &b""[..],
            b"{",
            b"null",
            b"[]",
            br#"{"type":"ADDED"}"#,
            br#"{"object":{}}"#,
            br#"{"type":"SOMETHING","object":{}}"#,
            br#"{"type":"ADDED","object":{"metadata":{"name":7}}}"#,
            br#"{"type":"ADDED","object":{"metadata":{"deletionTimestamp":"yesterday"}}}"#,
            br#"{"type":"ADDED","object":{"metadata":{"ownerReferences":{"kind":"x"}}}}"#,
            br#"{"type":"ADDED","object":{}} trailing"#,
            b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"\xff\"}}}",
        ] {
            assert!(
                Line::decode(line, META).is_err(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        // Missing name or namespace: decodes, but the model cannot use it.
        let o = object(
            br#"{"type":"ADDED","object":{"metadata":{"name":"p"}}}"#,
            META,
        );
        assert_eq!(
            pod(o),
            Err(ConvertError::MissingField {
                kind: "Pod",
                field: "metadata.namespace"
            })
        );
        let o = object(br#"{"type":"ADDED","object":{}}"#, FULL);
        assert!(deployment(o).is_err());
    }

    /// Metadata with everything an object can carry in excess, and more: 100 KiB annotations and
    /// labels, managedFields, finalizers, owner references that are not controllers, a
    /// 253-character name, a unicode namespace, and escaped strings.
    fn hostile(revision: &str) -> Value {
        let big = "x".repeat(100 * 1024);
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
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
            },
            "spec": {"containers": [{"name": "c", "image": big}]},
        })
    }

    fn line(object: &Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"type": "MODIFIED", "object": object})).expect("JSON")
    }

    #[test]
    fn huge_and_hostile_metadata_decodes_to_what_the_model_reads() {
        let value = hostile("7");
        let bytes = line(&value);
        assert!(bytes.len() > 500 * 1024);
        let full: ObjectMeta = serde_json::from_value(value["metadata"].clone()).expect("full");
        let o = object_of(&bytes);
        assert_eq!(
            o.metadata.workload(),
            "web",
            "from the owner and the hash label"
        );
        let p = pod(o).expect("converts");
        assert_eq!(p, reference_pod(&full));
        assert_eq!(p.key.name.len(), 253);
        assert_eq!(p.key.namespace, "名前空間-ñ-🚀");
        assert_eq!(p.deletion.expect("deleting").grace_seconds, Some(30));
        let rs = replicaset(object_of(&bytes)).expect("converts");
        assert_eq!(rs.revision, Some(7));
        assert_eq!(rs, reference_replicaset(&full));

        // Escaped strings (as Go's encoder writes <, > and &) decode into owned strings.
        let escaped = br#"{"type":"ADDED","object":{"metadata":{"name":"a\u003cb","namespace":"n\"s","ownerReferences":[{"kind":"ReplicaSet","name":"w\u0026x-1","controller":true}]}}}"#;
        let p = pod(object(escaped, META)).expect("converts");
        assert_eq!(
            (p.key.name.as_str(), p.key.namespace.as_str()),
            ("a<b", "n\"s")
        );
        assert_eq!(p.owner.expect("owner").name, "w&x-1");
    }

    fn object_of(bytes: &[u8]) -> Object<'_> {
        object(bytes, META)
    }

    #[test]
    fn odd_revision_annotations_read_as_the_full_metadata_reads_them() {
        let huge_number = "9".repeat(100 * 1024);
        for (rev, expected) in [
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
            let value = hostile(rev);
            let bytes = line(&value);
            let full: ObjectMeta = serde_json::from_value(value["metadata"].clone()).expect("full");
            let got = replicaset(object_of(&bytes)).expect("converts");
            assert_eq!(got.revision, expected, "{rev:.20}");
            assert_eq!(got, reference_replicaset(&full));
        }
    }
}
