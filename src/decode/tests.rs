//! Decoding checked against an independent reference: the same fields read through
//! k8s-openapi's full types, on every recorded event, on list pages, and on hostile metadata.

mod kinds;

use super::*;
use crate::error::ConvertError;
use crate::model::{
    ConditionStatus, ControllerRef, Deletion, DeploymentState, ObjectKey, OwnerKind, PodState,
    ProgressingCondition, ReplicaSetState, TemplateHash, Timestamp, Uid, UpdateStrategy,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time as K8sTime};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

const META: ObjectSeed = ObjectSeed::Meta;
const FULL: ObjectSeed = ObjectSeed::Deployment;

fn recording(scenario: &str, file: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/k8s-recordings/{scenario}/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn event(line: &[u8], seed: ObjectSeed) -> (EventType, Object<'_>) {
    let mut o = Object::default();
    let event = watch_line(line, seed, &mut o).expect("decodes");
    (event, o)
}

fn object_of(line: &[u8], seed: ObjectSeed) -> Object<'_> {
    match event(line, seed) {
        (EventType::Added | EventType::Modified | EventType::Deleted, o) => o,
        (other, _) => panic!("not an object event: {other:?}"),
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
        kind: OwnerKind::from(r.kind.as_str()),
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

fn label(m: &ObjectMeta, name: &str) -> Option<String> {
    m.labels.as_ref()?.get(name).cloned()
}

fn reference_pod(m: &ObjectMeta) -> PodState {
    PodState {
        key: key(m),
        uid: Uid::from(m.uid.as_deref().unwrap_or("")),
        owner: owner(m),
        deletion: m.deletion_timestamp.as_ref().map(|t| Deletion {
            deadline: ts(t),
            grace_seconds: m.deletion_grace_period_seconds,
        }),
        revision_hash: label(m, "controller-revision-hash"),
        // Kept only on a pod being deleted, the only state that reads them.
        finalizers: match m.deletion_timestamp {
            Some(_) => m.finalizers.clone().unwrap_or_default(),
            None => Vec::new(),
        },
        ready: None,
    }
}

/// The bytes of a workload's `spec.template` as served, found by serde's derive (the decoder
/// has its own visitor).
#[derive(Deserialize)]
struct RawObject<'a> {
    #[serde(borrow)]
    spec: Option<RawSpec<'a>>,
}

#[derive(Deserialize)]
struct RawSpec<'a> {
    #[serde(borrow)]
    template: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawLine<'a> {
    #[serde(borrow)]
    object: RawObject<'a>,
}

#[derive(Deserialize)]
struct RawList<'a> {
    #[serde(borrow)]
    items: Vec<RawObject<'a>>,
}

/// The template bytes of a watch line's object.
fn line_template(line: &str) -> Option<&RawValue> {
    serde_json::from_str::<RawLine<'_>>(line)
        .expect("JSON")
        .object
        .spec?
        .template
}

/// The template bytes of each item of a list.
fn list_templates(list: &str) -> Vec<Option<&RawValue>> {
    serde_json::from_str::<RawList<'_>>(list)
        .expect("JSON")
        .items
        .into_iter()
        .map(|o| o.spec.and_then(|s| s.template))
        .collect()
}

fn reference_hash(template: Option<&RawValue>) -> TemplateHash {
    template.map_or(TemplateHash::default(), |t| {
        TemplateHash::of(t.get().as_bytes())
    })
}

fn reference_grace(template: Option<&PodTemplateSpec>) -> Option<i64> {
    template?.spec.as_ref()?.termination_grace_period_seconds
}

/// The template's container images, joined (the recordings' lists are far below the cap).
fn reference_images(template: &PodTemplateSpec) -> String {
    let containers = template.spec.iter().flat_map(|s| s.containers.iter());
    let images: Vec<&str> = containers.filter_map(|c| c.image.as_deref()).collect();
    images.join(",")
}

fn reference_strategy(type_: Option<&str>) -> UpdateStrategy {
    match type_ {
        Some("Recreate") => UpdateStrategy::Recreate,
        Some("OnDelete") => UpdateStrategy::OnDelete,
        _ => UpdateStrategy::RollingUpdate,
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

fn reference_deployment(d: &Deployment, template: Option<&RawValue>) -> DeploymentState {
    let (spec, status) = (
        d.spec.clone().unwrap_or_default(),
        d.status.clone().unwrap_or_default(),
    );
    let m = &d.metadata;
    DeploymentState {
        key: key(m),
        uid: Uid::from(m.uid.as_deref().unwrap_or("")),
        revision: revision(m),
        created: m.creation_timestamp.as_ref().map(ts),
        generation: m.generation.unwrap_or(0),
        observed_generation: status.observed_generation.unwrap_or(0),
        template: reference_hash(template),
        strategy: reference_strategy(spec.strategy.as_ref().and_then(|s| s.type_.as_deref())),
        spec_replicas: spec.replicas.unwrap_or(1),
        paused: spec.paused.unwrap_or(false),
        termination_grace_seconds: reference_grace(Some(&spec.template)),
        images: reference_images(&spec.template),
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
        let list = recording(scenario, "list-deployments.json");
        let v: Value = serde_json::from_str(&list).expect("JSON");
        let mut got = Vec::new();
        list_page(list.as_bytes(), FULL, &mut |o| got.push(deployment(o))).expect("decodes");
        let items = v["items"].as_array().expect("items");
        assert_eq!(got.len(), items.len());
        for ((got, item), template) in got.into_iter().zip(items).zip(list_templates(&list)) {
            let full: Deployment = serde_json::from_value(item.clone()).expect("full");
            assert_eq!(got, Ok(reference_deployment(&full, template)), "{scenario}");
        }
        for line in recording(scenario, "watch-deployments.jsonl").lines() {
            let v: Value = serde_json::from_str(line).expect("JSON");
            let full: Deployment = serde_json::from_value(v["object"].clone()).expect("full");
            let got = deployment(&mut object_of(line.as_bytes(), FULL));
            assert_eq!(
                got,
                Ok(reference_deployment(&full, line_template(line))),
                "{scenario}: {line:.200}"
            );
            seen[0] += 1;
        }
        for line in recording(scenario, "watch-replicasets.meta.jsonl").lines() {
            let v: Value = serde_json::from_str(line).expect("JSON");
            let full: ObjectMeta =
                serde_json::from_value(v["object"]["metadata"].clone()).expect("full");
            let got = replicaset(&mut object_of(line.as_bytes(), META));
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
            let mut o = object_of(line.as_bytes(), META);
            assert_eq!(
                o.metadata.resource_version.as_ref().map(Str::as_str),
                full.resource_version.as_deref()
            );
            assert_eq!(
                pod(&mut o),
                Ok(reference_pod(&full)),
                "{scenario}: {line:.200}"
            );
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
    let (kind, o) = event(bookmark.trim().as_bytes(), META);
    assert_eq!(kind, EventType::Bookmark);
    assert_eq!(
        o.metadata.resource_version.map(Str::into_string),
        Some("74245".into())
    );
    for (file, code) in [("watch-too-old.json", 410), ("watch-error-event.json", 500)] {
        let text = recording("rolling-update-drain", file);
        // A Status object's `status` is a string: also fine for a Deployment watch.
        for seed in [META, FULL] {
            let (kind, o) = event(text.trim().as_bytes(), seed);
            assert_eq!((kind, o.code), (EventType::Error, Some(code)));
            assert!(!o.message.expect("a message").as_str().is_empty());
        }
    }
    assert_eq!(
        status_message(recording("rolling-update-drain", "list-wrong-accept.json").as_bytes()),
        serde_json::from_str::<Value>(&recording("rolling-update-drain", "list-wrong-accept.json"))
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
        br#"{"type":"ADDED","object":{"metadata":{"name":"a"}},"object":{}}"#,
        b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"\xff\"}}}",
    ] {
        assert!(
            watch_line(line, META, &mut Object::default()).is_err(),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
    // Missing name or namespace: decodes, but the model cannot use it.
    let mut o = object_of(
        br#"{"type":"ADDED","object":{"metadata":{"name":"p"}}}"#,
        META,
    );
    assert_eq!(
        pod(&mut o),
        Err(ConvertError::MissingField {
            kind: "Pod",
            field: "metadata.namespace"
        })
    );
    let mut o = object_of(br#"{"type":"ADDED","object":{}}"#, FULL);
    assert!(deployment(&mut o).is_err());
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
            "labels": {"aa.example.com/huge": big, "pod-template-hash": "7578495449",
                       "controller-revision-hash": "web-5", "zz": big},
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
    let mut o = object_of(&bytes, META);
    assert_eq!(
        o.metadata.workload_key(),
        ("名前空間-ñ-🚀", "web"),
        "the workload from the owner and the hash label"
    );
    let p = pod(&mut o).expect("converts");
    assert_eq!(p, reference_pod(&full));
    assert_eq!(p.key.name.len(), 253);
    assert_eq!(p.key.namespace, "名前空間-ñ-🚀");
    assert_eq!(p.deletion.expect("deleting").grace_seconds, Some(30));
    assert_eq!(
        p.revision_hash.as_deref(),
        Some("web-5"),
        "among huge labels"
    );
    let rs = replicaset(&mut object_of(&bytes, META)).expect("converts");
    assert_eq!(rs.revision, Some(7));
    assert_eq!(rs, reference_replicaset(&full));

    // Escaped strings (as Go's encoder writes <, > and &) decode into owned strings.
    let escaped = br#"{"type":"ADDED","object":{"metadata":{"name":"a\u003cb","namespace":"n\"s","ownerReferences":[{"kind":"ReplicaSet","name":"w\u0026x-1","controller":true}]}}}"#;
    let p = pod(&mut object_of(escaped, META)).expect("converts");
    assert_eq!(
        (p.key.name.as_str(), p.key.namespace.as_str()),
        ("a<b", "n\"s")
    );
    assert_eq!(p.owner.expect("owner").name, "w&x-1");
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
        let got = replicaset(&mut object_of(&bytes, META)).expect("converts");
        assert_eq!(got.revision, expected, "{rev:.20}");
        assert_eq!(got, reference_replicaset(&full));
    }
}

/// The `Pod` seed (`wait`'s pod watch) reads each recorded pod's Ready condition as k8s-openapi
/// does, and the metadata-only seed leaves it unknown.
#[test]
fn the_pod_seed_reads_the_ready_condition_of_every_recorded_pod() {
    use k8s_openapi::api::core::v1::Pod;
    let mut seen = [0usize; 2];
    for scenario in [
        "rolling-update-drain",
        "statefulset-rolling",
        "daemonset-surge",
    ] {
        for line in recording(scenario, "watch-pods.jsonl").lines() {
            let v: Value = serde_json::from_str(line).expect("JSON");
            let reference: Pod = serde_json::from_value(v["object"].clone()).expect("a Pod");
            let want = reference
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let got = pod(&mut object_of(line.as_bytes(), ObjectSeed::Pod)).expect("usable");
            assert_eq!(got.ready, Some(want), "{scenario}: {line}");
            seen[usize::from(want)] += 1;
            let meta = pod(&mut object_of(line.as_bytes(), META)).expect("usable");
            assert_eq!(meta.ready, None);
            assert_eq!(
                PodState { ready: None, ..got },
                meta,
                "the rest is the same"
            );
        }
    }
    assert!(
        seen[0] > 0 && seen[1] > 0,
        "both ready and unready pods: {seen:?}"
    );
}

#[test]
fn a_pods_finalizers_are_read_only_while_it_is_being_deleted() {
    let line = |deleting: bool| {
        let deletion = if deleting {
            r#""deletionTimestamp":"2026-11-27T19:01:00Z","deletionGracePeriodSeconds":30,"#
        } else {
            ""
        };
        format!(
            r#"{{"type":"MODIFIED","object":{{"metadata":{{"name":"p","namespace":"n",{deletion}"finalizers":["example.com/hold"]}}}}}}"#
        )
    };
    let running = pod(&mut object_of(line(false).as_bytes(), META)).expect("usable");
    assert!(running.finalizers.is_empty(), "not kept for a running pod");
    let deleting = pod(&mut object_of(line(true).as_bytes(), META)).expect("usable");
    assert_eq!(deleting.finalizers, ["example.com/hold"]);
}
