//! StatefulSets, DaemonSets, ControllerRevisions and the new fields of Deployments and Pods:
//! every recorded event against k8s-openapi's types, then the values the model relies on against
//! each recording's `timeline.md`.

use super::*;
use crate::model::{ControllerRevisionState, DaemonSetState, StatefulSetState};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, StatefulSet};

const STS: ObjectSeed = ObjectSeed::StatefulSet;
const DS: ObjectSeed = ObjectSeed::DaemonSet;
const CR: ObjectSeed = ObjectSeed::ControllerRevision;

const STATEFULSETS: [&str; 2] = ["statefulset-rolling", "statefulset-partition"];
const DAEMONSETS: [&str; 2] = ["daemonset-rolling", "daemonset-surge"];

fn time(s: &str) -> Timestamp {
    Time::parse(s).expect("a timestamp").0
}

fn reference_statefulset(s: &StatefulSet, template: Option<&RawValue>) -> StatefulSetState {
    let (spec, status) = (
        s.spec.clone().unwrap_or_default(),
        s.status.clone().unwrap_or_default(),
    );
    let m = &s.metadata;
    let strategy = spec.update_strategy.unwrap_or_default();
    StatefulSetState {
        key: key(m),
        uid: Uid::from(m.uid.as_deref().unwrap_or("")),
        created: m.creation_timestamp.as_ref().map(ts),
        generation: m.generation.unwrap_or(0),
        observed_generation: status.observed_generation,
        template: reference_hash(template),
        spec_replicas: spec.replicas.unwrap_or(1),
        strategy: reference_strategy(strategy.type_.as_deref()),
        partition: strategy.rolling_update.and_then(|r| r.partition),
        replicas: status.replicas,
        ready_replicas: status.ready_replicas.unwrap_or(0),
        updated_replicas: status.updated_replicas.unwrap_or(0),
        current_revision: status.current_revision,
        update_revision: status.update_revision,
        termination_grace_seconds: reference_grace(Some(&spec.template)),
        images: reference_images(&spec.template),
    }
}

fn reference_daemonset(d: &DaemonSet, template: Option<&RawValue>) -> DaemonSetState {
    let (spec, status) = (
        d.spec.clone().unwrap_or_default(),
        d.status.clone().unwrap_or_default(),
    );
    let m = &d.metadata;
    DaemonSetState {
        key: key(m),
        uid: Uid::from(m.uid.as_deref().unwrap_or("")),
        created: m.creation_timestamp.as_ref().map(ts),
        generation: m.generation.unwrap_or(0),
        observed_generation: status.observed_generation,
        template: reference_hash(template),
        strategy: reference_strategy(
            spec.update_strategy
                .as_ref()
                .and_then(|s| s.type_.as_deref()),
        ),
        desired_number_scheduled: status.desired_number_scheduled,
        updated_number_scheduled: status.updated_number_scheduled.unwrap_or(0),
        number_available: status.number_available.unwrap_or(0),
        number_ready: status.number_ready,
        termination_grace_seconds: reference_grace(Some(&spec.template)),
        images: reference_images(&spec.template),
    }
}

fn reference_revision(m: &ObjectMeta, revision: i64) -> ControllerRevisionState {
    ControllerRevisionState {
        key: key(m),
        uid: Uid::from(m.uid.as_deref().unwrap_or("")),
        owner: owner(m),
        revision,
        hash: label(m, "controller-revision-hash")
            .or_else(|| label(m, "controller.kubernetes.io/hash")),
        created: m.creation_timestamp.as_ref().map(ts),
    }
}

fn items(text: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(text).expect("JSON");
    v["items"].as_array().cloned().unwrap_or_default()
}

/// Every item of a recorded list, decoded as the watch decodes list pages.
fn decode_list<T>(
    text: &str,
    seed: ObjectSeed,
    convert: fn(&mut Object<'_>) -> Result<T, ConvertError>,
) -> Vec<T> {
    let mut out = Vec::new();
    list_page(text.as_bytes(), seed, &mut |o| {
        out.push(convert(o).expect("usable"))
    })
    .expect("decodes");
    out
}

/// Every line of a recorded watch, decoded.
fn decode_watch<T>(
    scenario: &str,
    file: &str,
    seed: ObjectSeed,
    convert: fn(&mut Object<'_>) -> Result<T, ConvertError>,
) -> Vec<T> {
    recording(scenario, file)
        .lines()
        .map(|line| convert(&mut object_of(line.as_bytes(), seed)).expect("usable"))
        .collect()
}

#[test]
fn every_recorded_workload_revision_and_pod_decodes_like_the_full_k8s_openapi_types() {
    let mut seen = [0; 4];
    for scenario in STATEFULSETS {
        let text = recording(scenario, "list-statefulsets.json");
        let got = decode_list(&text, STS, statefulset);
        let want: Vec<_> = items(&text)
            .into_iter()
            .zip(list_templates(&text))
            .map(|(item, t)| reference_statefulset(&serde_json::from_value(item).expect("full"), t))
            .collect();
        assert_eq!(got, want, "{scenario}");
        for line in recording(scenario, "watch-statefulsets.jsonl").lines() {
            let v: Value = serde_json::from_str(line).expect("JSON");
            let full: StatefulSet = serde_json::from_value(v["object"].clone()).expect("full");
            assert_eq!(
                statefulset(&mut object_of(line.as_bytes(), STS)),
                Ok(reference_statefulset(&full, line_template(line))),
                "{scenario}: {line:.200}"
            );
            seen[0] += 1;
        }
    }
    for scenario in DAEMONSETS {
        let text = recording(scenario, "list-daemonsets.json");
        let got = decode_list(&text, DS, daemonset);
        let want: Vec<_> = items(&text)
            .into_iter()
            .zip(list_templates(&text))
            .map(|(item, t)| reference_daemonset(&serde_json::from_value(item).expect("full"), t))
            .collect();
        assert_eq!(got, want, "{scenario}");
        for line in recording(scenario, "watch-daemonsets.jsonl").lines() {
            let v: Value = serde_json::from_str(line).expect("JSON");
            let full: DaemonSet = serde_json::from_value(v["object"].clone()).expect("full");
            assert_eq!(
                daemonset(&mut object_of(line.as_bytes(), DS)),
                Ok(reference_daemonset(&full, line_template(line))),
                "{scenario}: {line:.200}"
            );
            seen[1] += 1;
        }
    }
    for scenario in STATEFULSETS.into_iter().chain(DAEMONSETS) {
        // Full revisions; the metadata-only ones lack `revision` (not metadata), read as 0.
        let full_revision = |v: &Value| -> ControllerRevisionState {
            let cr: ControllerRevision = serde_json::from_value(v.clone()).expect("full");
            reference_revision(&cr.metadata, cr.revision)
        };
        let meta_revision = |v: &Value| -> ControllerRevisionState {
            reference_revision(
                &serde_json::from_value(v["metadata"].clone()).expect("full"),
                0,
            )
        };
        for (file, reference) in [
            (
                "list-controllerrevisions.json",
                &full_revision as &dyn Fn(&Value) -> ControllerRevisionState,
            ),
            ("list-controllerrevisions.meta.json", &meta_revision),
        ] {
            let text = recording(scenario, file);
            let want: Vec<_> = items(&text).iter().map(reference).collect();
            assert_eq!(decode_list(&text, CR, controllerrevision), want, "{file}");
        }
        for (file, reference) in [
            (
                "watch-controllerrevisions.jsonl",
                &full_revision as &dyn Fn(&Value) -> ControllerRevisionState,
            ),
            ("watch-controllerrevisions.meta.jsonl", &meta_revision),
        ] {
            for line in recording(scenario, file).lines() {
                let v: Value = serde_json::from_str(line).expect("JSON");
                assert_eq!(
                    controllerrevision(&mut object_of(line.as_bytes(), CR)),
                    Ok(reference(&v["object"])),
                    "{scenario}: {line:.200}"
                );
                seen[2] += 1;
            }
        }
        for file in ["list-pods.json", "list-pods.meta.json"] {
            let text = recording(scenario, file);
            let want: Vec<_> = items(&text)
                .iter()
                .map(|i| reference_pod(&serde_json::from_value(i["metadata"].clone()).expect("m")))
                .collect();
            assert_eq!(decode_list(&text, META, pod), want, "{scenario}/{file}");
        }
        for file in ["watch-pods.jsonl", "watch-pods.meta.jsonl"] {
            for line in recording(scenario, file).lines() {
                let v: Value = serde_json::from_str(line).expect("JSON");
                let full: ObjectMeta =
                    serde_json::from_value(v["object"]["metadata"].clone()).expect("full");
                assert_eq!(
                    pod(&mut object_of(line.as_bytes(), META)),
                    Ok(reference_pod(&full)),
                    "{scenario}: {line:.200}"
                );
                seen[3] += 1;
            }
        }
    }
    assert_eq!(seen, [30, 14, 8, 168], "recorded events");
}

/// One StatefulSet event of a timeline: generation, observedGeneration, partition, replicas,
/// ready, updated, and the suffixes of currentRevision and updateRevision.
type StsRow = (
    i64,
    i64,
    Option<i32>,
    i32,
    i32,
    i32,
    &'static str,
    &'static str,
);

fn assert_statefulset_timeline(scenario: &str, rows: &[StsRow]) -> (TemplateHash, TemplateHash) {
    let list = decode_list(
        &recording(scenario, "list-statefulsets.json"),
        STS,
        statefulset,
    );
    let [v1] = &list[..] else {
        panic!("{scenario}: one StatefulSet listed")
    };
    assert_eq!(
        (v1.key.clone(), v1.generation, v1.observed_generation),
        (ObjectKey::new("db", "pg"), 1, Some(1))
    );
    assert_eq!(
        (v1.spec_replicas, v1.strategy, v1.termination_grace_seconds),
        (3, UpdateStrategy::RollingUpdate, Some(60))
    );
    assert_eq!(v1.update_revision.as_deref(), Some("pg-557fc698f7"));
    assert_eq!(v1.current_revision.as_deref(), Some("pg-557fc698f7"));
    let events = decode_watch(scenario, "watch-statefulsets.jsonl", STS, statefulset);
    assert_eq!(events.len(), rows.len(), "{scenario}");
    for (i, (s, row)) in events.iter().zip(rows).enumerate() {
        let (generation, observed, partition, replicas, ready, updated, current, update) = *row;
        assert_eq!(
            (
                s.generation,
                s.observed_generation,
                s.partition,
                s.replicas,
                s.ready_replicas,
                s.updated_replicas,
            ),
            (
                generation,
                Some(observed),
                partition,
                replicas,
                ready,
                updated
            ),
            "{scenario} event {i}"
        );
        assert_eq!(
            (s.current_revision.as_deref(), s.update_revision.as_deref()),
            (
                Some(format!("pg-{current}").as_str()),
                Some(format!("pg-{update}").as_str())
            ),
            "{scenario} event {i}"
        );
        assert_eq!(
            (s.uid, s.created, s.spec_replicas, s.strategy),
            (v1.uid, v1.created, 3, UpdateStrategy::RollingUpdate)
        );
        // The template changed at T0, the first event: every status update keeps it.
        assert_eq!(s.template, events[0].template, "{scenario} event {i}");
    }
    assert_ne!(events[0].template, v1.template, "{scenario}: v1 to v2");
    (v1.template, events[0].template)
}

#[test]
fn statefulset_events_read_as_their_timelines_say() {
    const OLD: &str = "557fc698f7";
    const NEW: &str = "667b84f8d8";
    let p: Option<i32> = None;
    // statefulset-rolling: no partition (absent, not 0); updateRevision moves in the first status
    // update, currentRevision only with the event that passes kubectl's test (T0+19.208 s).
    let rolling = assert_statefulset_timeline(
        "statefulset-rolling",
        &[
            (2, 1, p, 3, 3, 3, OLD, OLD),
            (2, 2, p, 3, 3, 0, OLD, NEW),
            (2, 2, p, 3, 2, 0, OLD, NEW),
            (2, 2, p, 2, 2, 0, OLD, NEW),
            (2, 2, p, 3, 2, 1, OLD, NEW),
            (2, 2, p, 3, 3, 1, OLD, NEW),
            (2, 2, p, 3, 2, 1, OLD, NEW),
            (2, 2, p, 2, 2, 1, OLD, NEW),
            (2, 2, p, 3, 2, 2, OLD, NEW),
            (2, 2, p, 3, 3, 2, OLD, NEW),
            (2, 2, p, 3, 2, 2, OLD, NEW),
            (2, 2, p, 2, 2, 2, OLD, NEW),
            (2, 2, p, 3, 2, 3, OLD, NEW),
            (2, 2, p, 3, 3, 3, NEW, NEW),
        ],
    );
    // statefulset-partition: partition 2, then at T1 (event 6) 0 with generation 3 and the same
    // template: a partition change is no template change.
    let (two, zero) = (Some(2), Some(0));
    let partition = assert_statefulset_timeline(
        "statefulset-partition",
        &[
            (2, 1, two, 3, 3, 3, OLD, OLD),
            (2, 2, two, 3, 3, 0, OLD, NEW),
            (2, 2, two, 3, 2, 0, OLD, NEW),
            (2, 2, two, 2, 2, 0, OLD, NEW),
            (2, 2, two, 3, 2, 1, OLD, NEW),
            (2, 2, two, 3, 3, 1, OLD, NEW),
            (3, 2, zero, 3, 3, 1, OLD, NEW),
            (3, 3, zero, 3, 3, 1, OLD, NEW),
            (3, 3, zero, 3, 2, 1, OLD, NEW),
            (3, 3, zero, 2, 2, 1, OLD, NEW),
            (3, 3, zero, 3, 2, 2, OLD, NEW),
            (3, 3, zero, 3, 3, 2, OLD, NEW),
            (3, 3, zero, 3, 2, 2, OLD, NEW),
            (3, 3, zero, 2, 2, 2, OLD, NEW),
            (3, 3, zero, 3, 2, 3, OLD, NEW),
            (3, 3, zero, 3, 3, 3, NEW, NEW),
        ],
    );
    let listed = decode_list(
        &recording("statefulset-partition", "list-statefulsets.json"),
        STS,
        statefulset,
    );
    assert_eq!(listed[0].partition, Some(2));
    // Both recordings serve the same v1 and v2 templates, byte for byte: the hash depends on the
    // bytes alone.
    assert_eq!(rolling, partition);
}

/// One DaemonSet event of a timeline: observedGeneration, desired, updated, available, ready.
type DsRow = (i64, i32, i32, i32, i32);

#[test]
fn daemonset_events_read_as_their_timelines_say() {
    let rows: [(&str, &str, &[DsRow]); 2] = [
        (
            "daemonset-rolling",
            "2026-12-05T08:47:45Z",
            &[
                (1, 3, 3, 3, 3),
                (2, 3, 0, 3, 3),
                (2, 3, 1, 2, 2),
                (2, 3, 1, 3, 3),
                (2, 3, 2, 2, 2),
                (2, 3, 2, 3, 3),
                (2, 3, 2, 2, 2),
                (2, 3, 3, 2, 2),
                (2, 3, 3, 3, 3),
            ],
        ),
        (
            "daemonset-surge",
            "2026-12-05T08:49:05Z",
            &[
                (1, 3, 3, 3, 3),
                (2, 3, 0, 3, 3),
                (2, 3, 1, 3, 3),
                (2, 3, 2, 3, 3),
                (2, 3, 3, 3, 3),
            ],
        ),
    ];
    let mut templates = Vec::new();
    for (scenario, created, rows) in rows {
        let list = decode_list(&recording(scenario, "list-daemonsets.json"), DS, daemonset);
        let [v1] = &list[..] else {
            panic!("{scenario}: one DaemonSet listed")
        };
        assert_eq!(
            (
                v1.key.clone(),
                v1.created,
                v1.generation,
                v1.observed_generation
            ),
            (
                ObjectKey::new("infra", "agent"),
                Some(time(created)),
                1,
                Some(1)
            )
        );
        assert_eq!(
            (v1.strategy, v1.termination_grace_seconds),
            (UpdateStrategy::RollingUpdate, Some(60))
        );
        let events = decode_watch(scenario, "watch-daemonsets.jsonl", DS, daemonset);
        assert_eq!(events.len(), rows.len(), "{scenario}");
        for (i, (d, row)) in events.iter().zip(rows).enumerate() {
            assert_eq!(
                (
                    d.observed_generation,
                    d.desired_number_scheduled,
                    d.updated_number_scheduled,
                    d.number_available,
                    d.number_ready
                ),
                (Some(row.0), row.1, row.2, row.3, row.4),
                "{scenario} event {i}"
            );
            assert_eq!((d.generation, d.uid, d.created), (2, v1.uid, v1.created));
            assert_eq!(d.template, events[0].template, "{scenario} event {i}");
        }
        assert_ne!(events[0].template, v1.template, "{scenario}: v1 to v2");
        templates.push((v1.template, events[0].template));
    }
    assert_eq!(
        templates[0], templates[1],
        "the same templates, byte for byte"
    );
}

#[test]
fn controller_revisions_carry_their_kind_s_hash_label_and_number() {
    for (scenario, owner_kind, owner_name, old, new, created) in [
        (
            "statefulset-rolling",
            OwnerKind::StatefulSet,
            "pg",
            "pg-557fc698f7",
            "pg-667b84f8d8",
            "2026-12-05T08:45:26Z",
        ),
        (
            "statefulset-partition",
            OwnerKind::StatefulSet,
            "pg",
            "pg-557fc698f7",
            "pg-667b84f8d8",
            "2026-12-05T08:46:37Z",
        ),
        (
            "daemonset-rolling",
            OwnerKind::DaemonSet,
            "agent",
            "agent-58457c9c99",
            "agent-6d8587b9db",
            "2026-12-05T08:47:50Z",
        ),
        (
            "daemonset-surge",
            OwnerKind::DaemonSet,
            "agent",
            "agent-58457c9c99",
            "agent-6d8587b9db",
            "2026-12-05T08:49:10Z",
        ),
    ] {
        let listed = decode_list(
            &recording(scenario, "list-controllerrevisions.json"),
            CR,
            controllerrevision,
        );
        let added = decode_watch(
            scenario,
            "watch-controllerrevisions.jsonl",
            CR,
            controllerrevision,
        );
        let hash_of = |name: &str| name.rsplit_once('-').map(|(_, h)| h.to_string());
        let owner = Some(ControllerRef {
            kind: owner_kind,
            name: owner_name.into(),
        });
        for (got, name, revision) in [(&listed, old, 1), (&added, new, 2)] {
            let [r] = &got[..] else {
                panic!("{scenario}: one revision")
            };
            assert_eq!(
                (r.key.name.as_str(), r.revision, &r.hash, &r.owner),
                (name, revision, &hash_of(name), &owner),
                "{scenario}"
            );
        }
        assert_eq!(added[0].created, Some(time(created)), "{scenario}");
    }
}

/// The `controller-revision-hash` of each pod object (by uid prefix), from a timeline's table.
fn timeline_hashes(scenario: &str) -> Vec<(String, String)> {
    recording(scenario, "timeline.md")
        .lines()
        .filter_map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            match cells[..] {
                ["", _, uid, _, hash, ..] if uid.len() == 8 && uid != "uid" => {
                    Some((uid.to_string(), hash.to_string()))
                }
                _ => None,
            }
        })
        .collect()
}

#[test]
fn pods_carry_their_revision_as_their_kind_writes_it() {
    for (scenario, owner_kind, owner_name, old, new) in [
        (
            "statefulset-rolling",
            OwnerKind::StatefulSet,
            "pg",
            "pg-557fc698f7",
            "pg-667b84f8d8",
        ),
        (
            "statefulset-partition",
            OwnerKind::StatefulSet,
            "pg",
            "pg-557fc698f7",
            "pg-667b84f8d8",
        ),
        // Only the hash: the ControllerRevision is agent-6d8587b9db.
        (
            "daemonset-rolling",
            OwnerKind::DaemonSet,
            "agent",
            "58457c9c99",
            "6d8587b9db",
        ),
        (
            "daemonset-surge",
            OwnerKind::DaemonSet,
            "agent",
            "58457c9c99",
            "6d8587b9db",
        ),
    ] {
        let hashes = timeline_hashes(scenario);
        assert_eq!(hashes.len(), 6, "{scenario}: six pod objects");
        assert_eq!(
            hashes.iter().filter(|(_, h)| h == old).count(),
            3,
            "{scenario}"
        );
        assert!(hashes.iter().all(|(_, h)| h == old || h == new));
        for file in ["watch-pods.meta.jsonl", "watch-pods.jsonl"] {
            for line in recording(scenario, file).lines() {
                let v: Value = serde_json::from_str(line).expect("JSON");
                let uid = v["object"]["metadata"]["uid"].as_str().expect("uid");
                let want = hashes
                    .iter()
                    .find(|(prefix, _)| uid.starts_with(prefix.as_str()))
                    .map(|(_, h)| h.clone());
                let p = pod(&mut object_of(line.as_bytes(), META)).expect("usable");
                assert!(want.is_some(), "{scenario}: {uid} in the timeline");
                assert_eq!(p.revision_hash, want, "{scenario}: {uid}");
                assert_eq!(
                    p.owner,
                    Some(ControllerRef {
                        kind: owner_kind,
                        name: owner_name.into()
                    })
                );
            }
        }
    }
    // A StatefulSet pod's label is the update revision itself.
    let last = decode_watch(
        "statefulset-rolling",
        "watch-statefulsets.jsonl",
        STS,
        statefulset,
    );
    assert_eq!(
        last.last().and_then(|s| s.update_revision.as_deref()),
        Some("pg-667b84f8d8")
    );
    // Deployment pods carry none.
    for scenario in ["rolling-update-drain", "rollback", "pause", "recreate"] {
        for p in decode_watch(scenario, "watch-pods.meta.jsonl", META, pod) {
            assert_eq!(p.revision_hash, None, "{scenario}");
        }
    }
}

/// A recording's listed Deployment and its watch events.
fn deployments(scenario: &str) -> (DeploymentState, Vec<DeploymentState>) {
    let list = decode_list(
        &recording(scenario, "list-deployments.json"),
        FULL,
        deployment,
    );
    let [listed] = &list[..] else {
        panic!("{scenario}: one Deployment listed")
    };
    let events = decode_watch(scenario, "watch-deployments.jsonl", FULL, deployment);
    for d in &events {
        assert_eq!(
            (d.uid, d.created, d.termination_grace_seconds, d.strategy),
            (listed.uid, listed.created, Some(60), listed.strategy),
            "{scenario}"
        );
    }
    (listed.clone(), events)
}

/// Where the template hash changes along a recording: the index of each event whose template
/// differs from the one before (the list's for the first).
fn template_changes(listed: &DeploymentState, events: &[DeploymentState]) -> Vec<usize> {
    let mut before = listed.template;
    let mut changes = Vec::new();
    for (i, d) in events.iter().enumerate() {
        if d.template != before {
            changes.push(i);
        }
        before = d.template;
    }
    changes
}

#[test]
fn deployment_templates_change_exactly_at_the_user_s_change() {
    // rolling-update-drain and recreate: the image change is the first watch event (T0).
    let (drain_list, drain) = deployments("rolling-update-drain");
    assert_eq!(template_changes(&drain_list, &drain), [0]);
    assert_eq!(
        (drain_list.strategy, drain_list.created),
        (
            UpdateStrategy::RollingUpdate,
            Some(time("2026-11-27T17:33:56Z"))
        )
    );
    // Status fields that are 0 are omitted (updatedReplicas right after the change).
    assert_eq!(
        (drain[2].observed_generation, drain[2].updated_replicas),
        (2, 0)
    );
    let (recreate_list, recreate) = deployments("recreate");
    assert_eq!(template_changes(&recreate_list, &recreate), [0]);
    assert_eq!(recreate_list.strategy, UpdateStrategy::Recreate);
    // pause: pausing (generation 2) changes no template; the image change while paused
    // (generation 3, event 2) does; resuming (generation 4, event 4) does not.
    let (pause_list, pause) = deployments("pause");
    assert_eq!(template_changes(&pause_list, &pause), [2]);
    let generations: Vec<_> = pause.iter().map(|d| (d.generation, d.paused)).collect();
    assert_eq!(
        generations[..5],
        [(2, true), (2, true), (3, true), (3, true), (4, false)]
    );
    // rollback: listed at v2, back to v1 in the first event; v1 and v2 here are the templates of
    // recreate's and pause's v1 and v2, byte for byte (the same 5 s drain annotation).
    let (rollback_list, rollback) = deployments("rollback");
    assert_eq!(template_changes(&rollback_list, &rollback), [0]);
    assert_eq!(rollback[0].template, recreate_list.template, "back to v1");
    assert_eq!(rollback[0].template, pause_list.template);
    assert_eq!(rollback_list.template, recreate[0].template, "v2");
    assert_eq!(rollback_list.template, pause[4].template);
    // rolling-update-drain's templates carry another drain annotation.
    assert_ne!(drain_list.template, recreate_list.template);
    assert_ne!(drain[0].template, recreate[0].template);
}

#[test]
fn the_template_hash_is_of_the_bytes_as_served() {
    let template = br#"{"metadata":{"labels":{"a":"b\u0026c"}},"spec":{"terminationGracePeriodSeconds":7,"containers":[{"name":"x"}]}}"#;
    let mut line =
        br#"{"type":"ADDED","object":{"metadata":{"name":"a","namespace":"n"},"spec":{"template":"#
            .to_vec();
    line.extend_from_slice(template);
    line.extend_from_slice(b"}}}");
    let s = statefulset(&mut object_of(&line, STS)).expect("usable");
    assert_eq!(s.template, TemplateHash::of(template));
    assert_eq!(s.termination_grace_seconds, Some(7));
    let d = daemonset(&mut object_of(&line, DS)).expect("usable");
    assert_eq!(d.template, TemplateHash::of(template));
    let dep = deployment(&mut object_of(&line, FULL)).expect("usable");
    assert_eq!(dep.template, TemplateHash::of(template));
    assert_ne!(dep.template, TemplateHash::default());
    // The same template with its keys in another order is other bytes.
    let reordered = String::from_utf8_lossy(&line).replace(
        r#""terminationGracePeriodSeconds":7,"containers":[{"name":"x"}]"#,
        r#""containers":[{"name":"x"}],"terminationGracePeriodSeconds":7"#,
    );
    let r = statefulset(&mut object_of(reordered.as_bytes(), STS)).expect("usable");
    assert_ne!(r.template, s.template);
    assert_eq!(r.termination_grace_seconds, Some(7));
}

#[test]
fn missing_spec_and_status_decode_to_the_api_defaults() {
    let sts_default = |name: &str| StatefulSetState {
        images: String::new(),
        key: ObjectKey::new("n", name),
        uid: Uid::from(""),
        created: None,
        generation: 0,
        observed_generation: None,
        template: TemplateHash::default(),
        spec_replicas: 1,
        strategy: UpdateStrategy::RollingUpdate,
        partition: None,
        replicas: 0,
        ready_replicas: 0,
        updated_replicas: 0,
        current_revision: None,
        update_revision: None,
        termination_grace_seconds: None,
    };
    let ds_default = DaemonSetState {
        images: String::new(),
        key: ObjectKey::new("n", "a"),
        uid: Uid::from(""),
        created: None,
        generation: 0,
        observed_generation: None,
        template: TemplateHash::default(),
        strategy: UpdateStrategy::RollingUpdate,
        desired_number_scheduled: 0,
        updated_number_scheduled: 0,
        number_available: 0,
        number_ready: 0,
        termination_grace_seconds: None,
    };
    for object in [
        r#"{"metadata":{"name":"a","namespace":"n"}}"#,
        r#"{"metadata":{"name":"a","namespace":"n"},"spec":null,"status":null}"#,
        r#"{"metadata":{"name":"a","namespace":"n"},"spec":{},"status":{}}"#,
        r#"{"metadata":{"name":"a","namespace":"n","labels":null},"spec":{"template":null,"updateStrategy":{}},"status":{"conditions":[]}}"#,
        r#"{"metadata":{"name":"a","namespace":"n"},"spec":{"updateStrategy":{"rollingUpdate":null}},"data":{"x":1},"revision":null}"#,
    ] {
        let line = format!(r#"{{"type":"ADDED","object":{object}}}"#);
        let line = line.as_bytes();
        assert_eq!(
            statefulset(&mut object_of(line, STS)),
            Ok(sts_default("a")),
            "{object}"
        );
        assert_eq!(daemonset(&mut object_of(line, DS)), Ok(ds_default.clone()));
        assert_eq!(
            controllerrevision(&mut object_of(line, CR)),
            Ok(ControllerRevisionState {
                key: ObjectKey::new("n", "a"),
                uid: Uid::from(""),
                owner: None,
                revision: 0,
                hash: None,
                created: None,
            })
        );
        let d = deployment(&mut object_of(line, FULL)).expect("usable");
        assert_eq!(
            (
                d.template,
                d.strategy,
                d.termination_grace_seconds,
                d.created
            ),
            (
                TemplateHash::default(),
                UpdateStrategy::RollingUpdate,
                None,
                None
            )
        );
    }
    // Strategy types, and a partition of 0 is not an absent one.
    for (strategy, want, partition) in [
        (r#"{"type":"OnDelete"}"#, UpdateStrategy::OnDelete, None),
        (
            r#"{"type":"RollingUpdate","rollingUpdate":{"partition":0}}"#,
            UpdateStrategy::RollingUpdate,
            Some(0),
        ),
        (
            r#"{"rollingUpdate":{"partition":5,"maxUnavailable":"50%"}}"#,
            UpdateStrategy::RollingUpdate,
            Some(5),
        ),
        (
            r#"{"type":"SomethingNew"}"#,
            UpdateStrategy::RollingUpdate,
            None,
        ),
    ] {
        let line = format!(
            r#"{{"type":"ADDED","object":{{"metadata":{{"name":"a","namespace":"n"}},"spec":{{"updateStrategy":{strategy}}}}}}}"#
        );
        let s = statefulset(&mut object_of(line.as_bytes(), STS)).expect("usable");
        assert_eq!((s.strategy, s.partition), (want, partition), "{strategy}");
    }
    let recreate = br#"{"type":"ADDED","object":{"metadata":{"name":"a","namespace":"n"},"spec":{"strategy":{"type":"Recreate"}}}}"#;
    assert_eq!(
        deployment(&mut object_of(recreate, FULL))
            .expect("usable")
            .strategy,
        UpdateStrategy::Recreate
    );
    // Without a name or namespace the model cannot use the object.
    let nameless = br#"{"type":"ADDED","object":{"metadata":{"namespace":"n"}}}"#;
    assert!(statefulset(&mut object_of(nameless, STS)).is_err());
    assert!(daemonset(&mut object_of(nameless, DS)).is_err());
    assert!(controllerrevision(&mut object_of(nameless, CR)).is_err());
}

#[test]
fn status_answers_and_malformed_lines_with_the_new_seeds() {
    for (file, code) in [("watch-too-old.json", 410), ("watch-error-event.json", 500)] {
        let text = recording("rolling-update-drain", file);
        for seed in [STS, DS, CR] {
            let (kind, o) = event(text.trim().as_bytes(), seed);
            assert_eq!((kind, o.code), (EventType::Error, Some(code)), "{seed:?}");
        }
    }
    for (line, seed) in [
        (
            &br#"{"type":"ADDED","object":{"spec":{"template":{"spec":{"terminationGracePeriodSeconds":"x"}}}}}"#[..],
            STS,
        ),
        (br#"{"type":"ADDED","object":{"spec":{"template":7}}}"#, DS),
        (br#"{"type":"ADDED","object":{"spec":{"replicas":"3"}}}"#, STS),
        (br#"{"type":"ADDED","object":{"spec":{"updateStrategy":{"type":3}}}}"#, DS),
        (br#"{"type":"ADDED","object":{"status":{"updateRevision":1}}}"#, STS),
        (br#"{"type":"ADDED","object":{"revision":"2"}}"#, CR),
        (br#"{"type":"ADDED","object":{"metadata":{"labels":{"controller-revision-hash":1}}}}"#, META),
        (br#"{"type":"ADDED","object":{"data":{"unterminated":[}}"#, CR),
    ] {
        assert!(
            watch_line(line, seed, &mut Object::default()).is_err(),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn a_controller_revision_s_data_is_skipped_unread() {
    // Megabytes of template, deeply nested, and a number no type holds: building any value of
    // `data` would fail on it (checked below), skipping it does not.
    let big = "x".repeat(4 * 1024 * 1024);
    let nested = format!("{}1e999999{}", "[".repeat(100), "]".repeat(100));
    let line = format!(
        r#"{{"type":"ADDED","object":{{"kind":"ControllerRevision","apiVersion":"apps/v1","metadata":{{"name":"agent-6d8587b9db","namespace":"infra","uid":"u","creationTimestamp":"2026-12-05T08:47:50Z","labels":{{"app":"agent","controller-revision-hash":"6d8587b9db"}},"ownerReferences":[{{"apiVersion":"apps/v1","kind":"DaemonSet","name":"agent","uid":"d","controller":true}}]}},"data":{{"spec":{{"template":{{"spec":{{"containers":[{{"image":"{big}","args":{nested}}}]}}}}}}}},"revision":7}}}}"#
    );
    assert!(line.len() > 4 * 1024 * 1024);
    assert!(
        serde_json::from_str::<Value>(&line).is_err(),
        "a tree of data cannot be built"
    );
    let r = controllerrevision(&mut object_of(line.as_bytes(), CR)).expect("usable");
    assert_eq!(
        r,
        ControllerRevisionState {
            key: ObjectKey::new("infra", "agent-6d8587b9db"),
            uid: Uid::from("u"),
            owner: Some(ControllerRef {
                kind: OwnerKind::DaemonSet,
                name: "agent".into()
            }),
            revision: 7,
            hash: Some("6d8587b9db".into()),
            created: Some(time("2026-12-05T08:47:50Z")),
        }
    );
}
