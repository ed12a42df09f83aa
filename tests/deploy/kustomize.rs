//! The few kustomize features the manifests use, applied here (neither kubectl nor kustomize
//! runs in the tests): [`render`] fails on any other; and the kustomizations' own checks.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::objects::kind;
use crate::{CLUSTER, RENDERINGS, files_under, repo_path, shown, strict, yaml_docs};

/// The kustomization fields these files may use, in current syntax only: the deprecated `bases`,
/// `patchesStrategicMerge` and `patchesJson6902` are unknown fields here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Kustomization {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) namespace: Option<String>,
    #[serde(default)]
    pub(crate) resources: Vec<String>,
    #[serde(default)]
    pub(crate) patches: Vec<PatchRef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchRef {
    pub(crate) path: String,
    pub(crate) target: Option<Target>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Target {
    pub(crate) group: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) kind: String,
    pub(crate) name: String,
}

impl Target {
    pub(crate) fn matches(&self, object: &Value) -> bool {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.group.as_deref().is_none_or(|g| g == group)
            && self.version.as_deref().is_none_or(|v| v == version)
            && object["kind"] == self.kind
            && object["metadata"]["name"] == self.name
    }
}

/// One operation of a JSON patch (RFC 6902).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JsonPatchOp {
    pub(crate) op: String,
    pub(crate) path: String,
    pub(crate) value: Option<Value>,
}

/// A strategic-merge patch that deletes one object: the only kind these files use.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct DeletePatch {
    #[serde(rename = "$patch")]
    pub(crate) patch: String,
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) metadata: NameOnly,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NameOnly {
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
}

/// The kustomization of `dir`, checked for its apiVersion and kind.
pub(crate) fn kustomization(dir: &Path) -> Kustomization {
    let path = dir.join("kustomization.yaml");
    let docs = yaml_docs(&path);
    assert_eq!(docs.len(), 1, "{}: one document", shown(&path));
    let k: Kustomization = strict(&docs[0], &shown(&path));
    assert_eq!(
        (k.api_version.as_str(), k.kind.as_str()),
        ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
        "{}",
        shown(&path)
    );
    k
}

/// Whether objects of `kind` live in a namespace; fails on a kind this file does not know yet.
pub(crate) fn is_namespaced(kind: &str) -> bool {
    match kind {
        "Namespace" | "ClusterRole" | "ClusterRoleBinding" => false,
        "ServiceAccount" | "Role" | "RoleBinding" | "Deployment" | "StatefulSet" | "Service"
        | "ConfigMap" | "ServiceMonitor" | "PrometheusRule" => true,
        other => panic!("unknown kind {other}: add it to is_namespaced and check_object"),
    }
}

/// What `kustomize build dir` prints, for the features these files use: `resources` (files and
/// directories), `patches` that are JSON patches with a target or `$patch: delete` strategic-merge
/// patches, and `namespace`. Anything else fails rather than being ignored.
pub(crate) fn render(dir: &str) -> Vec<Value> {
    render_dir(&repo_path(dir))
}

pub(crate) fn render_dir(dir: &Path) -> Vec<Value> {
    let k = kustomization(dir);
    let mut objects = Vec::new();
    for resource in &k.resources {
        let path = dir.join(resource);
        assert!(
            path.exists(),
            "{}: resource {resource} does not exist",
            shown(dir)
        );
        if path.is_dir() {
            objects.extend(render_dir(&path));
        } else {
            objects.extend(yaml_docs(&path));
        }
    }
    for patch in &k.patches {
        apply_patch(&mut objects, &dir.join(&patch.path), patch.target.as_ref());
    }
    if let Some(ns) = &k.namespace {
        for object in &mut objects {
            if is_namespaced(kind(object)) {
                object["metadata"]["namespace"] = Value::from(ns.as_str());
            }
        }
    }
    let mut ids = BTreeSet::new();
    for object in &objects {
        let id = format!(
            "{} {}/{}",
            kind(object),
            object["metadata"]["namespace"].as_str().unwrap_or_default(),
            object["metadata"]["name"].as_str().unwrap_or_default()
        );
        assert!(ids.insert(id.clone()), "{}: {id} twice", shown(dir));
    }
    objects
}

pub(crate) fn apply_patch(objects: &mut Vec<Value>, path: &Path, target: Option<&Target>) {
    let what = shown(path);
    let docs = yaml_docs(path);
    if let [Value::Array(ops)] = docs.as_slice() {
        let target = target.unwrap_or_else(|| panic!("{what}: a JSON patch needs a target"));
        let mut matched = 0;
        for object in objects.iter_mut().filter(|o| target.matches(o)) {
            matched += 1;
            for op in ops {
                json_patch(object, strict(op, &what), &what);
            }
        }
        assert!(matched > 0, "{what}: its target matches no object");
        return;
    }
    assert!(
        target.is_none(),
        "{what}: only JSON patches take a target in this renderer"
    );
    for doc in &docs {
        let delete: DeletePatch = strict(
            doc,
            &format!(
                "{what} (the renderer supports only `$patch: delete` strategic-merge patches)"
            ),
        );
        assert_eq!(delete.patch, "delete", "{what}");
        let before = objects.len();
        // Like kustomize, which matches the namespace too: a patch without one deletes only an
        // object without one.
        objects.retain(|o| {
            !(o["apiVersion"] == delete.api_version
                && o["kind"] == delete.kind
                && o["metadata"]["name"] == delete.metadata.name
                && o["metadata"]["namespace"].as_str() == delete.metadata.namespace.as_deref())
        });
        assert_eq!(
            before - objects.len(),
            1,
            "{what}: deletes {} {}, which must exist once",
            delete.kind,
            delete.metadata.name
        );
    }
}

/// Applies `add` and `replace`, the operations these files use.
pub(crate) fn json_patch(object: &mut Value, op: JsonPatchOp, what: &str) {
    let value = op
        .value
        .unwrap_or_else(|| panic!("{what}: {} {} needs a value", op.op, op.path));
    let (parent, last) = op
        .path
        .rsplit_once('/')
        .unwrap_or_else(|| panic!("{what}: {} is not a JSON pointer", op.path));
    let last = last.replace("~1", "/").replace("~0", "~");
    let parent = object
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("{what}: {} does not exist", op.path));
    match (op.op.as_str(), parent) {
        ("add", Value::Array(items)) if last == "-" => items.push(value),
        ("add", Value::Array(items)) => {
            let i: usize = last.parse().expect("array index");
            assert!(i <= items.len(), "{what}: {} is out of range", op.path);
            items.insert(i, value);
        }
        ("replace", Value::Array(items)) => {
            let i: usize = last.parse().expect("array index");
            assert!(i < items.len(), "{what}: {} does not exist", op.path);
            items[i] = value;
        }
        ("add", Value::Object(map)) => {
            map.insert(last, value);
        }
        ("replace", Value::Object(map)) => {
            assert!(
                map.contains_key(&last),
                "{what}: {} does not exist",
                op.path
            );
            map.insert(last, value);
        }
        (other, _) => panic!("{what}: `{other}` at {} is not supported here", op.path),
    }
}

/// `base` rendered, then the resources and patches of `overlay` on top, its Deployment patches
/// aimed at the StatefulSet instead: what an overlay of `base` with copies of `overlay`'s files
/// renders.
pub(crate) fn render_on_statefulset(base: &str, overlay: &str) -> Vec<Value> {
    let mut objects = render(base);
    let dir = repo_path(overlay);
    let k = kustomization(&dir);
    for resource in &k.resources {
        let path = dir.join(resource);
        if path.is_file() {
            objects.extend(yaml_docs(&path));
        }
    }
    for patch in &k.patches {
        let target = patch.target.clone().map(|t| match t.kind.as_str() {
            "Deployment" => Target {
                kind: "StatefulSet".into(),
                ..t
            },
            _ => t,
        });
        apply_patch(&mut objects, &dir.join(&patch.path), target.as_ref());
    }
    objects
}

#[test]
fn kustomizations_use_current_syntax_and_existing_paths() {
    let root = repo_path(CLUSTER);
    let files = files_under(&root);
    let mut referenced = BTreeSet::new();
    for file in files.iter().filter(|f| f.ends_with("kustomization.yaml")) {
        let dir = file.parent().expect("a directory");
        let k = kustomization(dir);
        for resource in &k.resources {
            let path = dir.join(resource);
            assert!(
                path.exists(),
                "{}: resource {resource} does not exist",
                shown(file)
            );
            let path = path.canonicalize().expect("canonical path");
            if path.is_dir() {
                assert!(
                    path.join("kustomization.yaml").is_file(),
                    "{}: {resource} has no kustomization.yaml",
                    shown(file)
                );
                // kustomize v5: "cycle detected: candidate root contains visited root".
                assert!(
                    !dir.canonicalize()
                        .expect("canonical path")
                        .starts_with(&path),
                    "{}: kustomize refuses {resource}, a base that contains this directory",
                    shown(file)
                );
            }
            referenced.insert(path);
        }
        for patch in &k.patches {
            let path = dir.join(&patch.path);
            assert!(
                path.is_file(),
                "{}: patch {} does not exist",
                shown(file),
                patch.path
            );
            referenced.insert(path.canonicalize().expect("canonical path"));
        }
    }
    for file in &files {
        let is_yaml = file.extension().is_some_and(|e| e == "yaml" || e == "yml");
        let canonical = file.canonicalize().expect("canonical path");
        assert!(
            !is_yaml || file.ends_with("kustomization.yaml") || referenced.contains(&canonical),
            "{}: no kustomization uses it",
            shown(file)
        );
    }
    // Every rendering builds: every patch applies, no object twice.
    for dir in RENDERINGS {
        assert!(!render(dir).is_empty(), "{dir}");
    }
}
