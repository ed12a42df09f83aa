//! Rendered objects as JSON values: each must fit its type exactly (a k8s-openapi round trip, or
//! the strict prometheus-operator structs of [`crate::monitoring`]).

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::kustomize::{kustomization, render};
use crate::monitoring::{PrometheusRule, ServiceMonitor};
use crate::{CLUSTER, RENDERINGS, files_under, repo_path, shown, strict, yaml_docs};

pub(crate) fn kind(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or_default()
}

/// `Kind name` of an object, for messages.
pub(crate) fn id(object: &Value) -> String {
    format!(
        "{} {}",
        kind(object),
        object["metadata"]["name"].as_str().unwrap_or("(no name)")
    )
}

/// Fails unless the object fits its type exactly: a k8s-openapi round trip for the core kinds,
/// the strict structs below for the prometheus-operator's.
pub(crate) fn check_object(object: &Value, what: &str) {
    let what = format!("{what}: {}", id(object));
    match kind(object) {
        "Namespace" => round_trip::<Namespace>(object, &what),
        "ServiceAccount" => round_trip::<ServiceAccount>(object, &what),
        "ClusterRole" => round_trip::<ClusterRole>(object, &what),
        "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(object, &what),
        "Role" => round_trip::<Role>(object, &what),
        "RoleBinding" => round_trip::<RoleBinding>(object, &what),
        "Deployment" => round_trip::<Deployment>(object, &what),
        "StatefulSet" => round_trip::<StatefulSet>(object, &what),
        "Service" => round_trip::<Service>(object, &what),
        "ConfigMap" => round_trip::<ConfigMap>(object, &what),
        "ServiceMonitor" => {
            let sm: ServiceMonitor = strict(object, &what);
            assert_eq!(
                (sm.api_version.as_str(), sm.kind.as_str()),
                ("monitoring.coreos.com/v1", "ServiceMonitor"),
                "{what}"
            );
        }
        "PrometheusRule" => {
            let pr: PrometheusRule = strict(object, &what);
            assert_eq!(
                (pr.api_version.as_str(), pr.kind.as_str()),
                ("monitoring.coreos.com/v1", "PrometheusRule"),
                "{what}"
            );
        }
        other => panic!("{what}: no check for kind {other:?}: add one to check_object"),
    }
}

/// YAML → k8s-openapi type → JSON must give back the same value: the type drops what it does not
/// know, so a misspelled or misplaced field shows up as a difference.
pub(crate) fn round_trip<T: DeserializeOwned + Serialize>(object: &Value, what: &str) {
    let typed: T = strict(object, what);
    let back = serde_json::to_value(&typed).expect("k8s-openapi types serialize");
    let lost = differences(object, &back, "");
    assert!(
        lost.is_empty(),
        "{what}: not kept by the round trip through its k8s-openapi type (misspelled, misplaced \
         or of the wrong type?): {lost:?}"
    );
}

/// The JSON pointers at which `a` and `b` differ.
pub(crate) fn differences(a: &Value, b: &Value, at: &str) -> Vec<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter()
                .flat_map(|k| {
                    let here = format!("{at}/{k}");
                    match (x.get(k), y.get(k)) {
                        (Some(u), Some(v)) => differences(u, v, &here),
                        _ => vec![here],
                    }
                })
                .collect()
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .flat_map(|(i, (u, v))| differences(u, v, &format!("{at}/{i}")))
            .collect(),
        _ if a == b => Vec::new(),
        _ => vec![if at.is_empty() { "/".into() } else { at.into() }],
    }
}

/// The objects of `kind` in a rendering, typed.
pub(crate) fn all_of<T: DeserializeOwned>(objects: &[Value], kind: &str) -> Vec<T> {
    objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .map(|o| strict(o, &id(o)))
        .collect()
}

/// The one object of `kind` in a rendering, typed.
pub(crate) fn one<T: DeserializeOwned>(objects: &[Value], kind: &str) -> T {
    let mut all = all_of(objects, kind);
    assert_eq!(all.len(), 1, "exactly one {kind}");
    all.remove(0)
}

#[test]
fn every_object_fits_its_type() {
    for file in files_under(&repo_path(CLUSTER)) {
        let Some(dir) = file.parent() else { continue };
        if !file.ends_with("kustomization.yaml") {
            continue;
        }
        for resource in kustomization(dir).resources {
            let path = dir.join(&resource);
            if path.is_file() {
                for object in yaml_docs(&path) {
                    check_object(&object, &shown(&path));
                }
            }
        }
    }
    // And after the overlays' patches.
    for dir in RENDERINGS {
        for object in render(dir) {
            check_object(&object, &format!("{dir} rendered"));
        }
    }
}
