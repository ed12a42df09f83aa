//! The deploy manifests in `deploy/kubernetes/`, checked against the code they deploy.
//!
//! Every Kubernetes object must survive a round trip through its k8s-openapi type (a misspelled or
//! misplaced field is dropped on the way, and the difference fails); the prometheus-operator
//! objects and the kustomizations, which have no such type, must fit structs here that reject
//! unknown fields. The RBAC rules must grant exactly `watch::WATCHED`, the PrometheusRule must hold
//! exactly the rule groups of `alerts/`, and the Deployment's flags must parse with the binary's own
//! parser. Neither kubectl nor kustomize runs here (Debian's kubectl embeds a kustomize too old for
//! these files): [`render`] applies the few kustomize features the files use and fails on any other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Namespace, PodSpec, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_rollout_exporter::cli::{Args, DEFAULT_PORT};
use kube_rollout_exporter::watch::WATCHED;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What `kubectl apply -k deploy/kubernetes` installs: the base, cluster-wide.
const CLUSTER: &str = "deploy/kubernetes";
const BASE: &str = "deploy/kubernetes/base";
/// The single-namespace overlay.
const NAMESPACED: &str = "deploy/kubernetes/overlays/namespaced";
/// The name of every object, and of the container.
const NAME: &str = "kube-rollout-exporter";
const PORT_NAME: &str = "http-metrics";
/// The distroless images' `nonroot` user and group.
const NONROOT: i64 = 65532;
const READ_VERBS: [&str; 3] = ["get", "list", "watch"];
const GENERATOR: &str = "deploy/generate-prometheusrule.py";

// --- files ---------------------------------------------------------------------------------------

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A path as messages show it: relative to the repository.
fn shown(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .display()
        .to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", shown(path)))
}

/// The YAML documents of a file as JSON values, empty documents dropped.
fn yaml_docs(path: &Path) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(&read(path))
        .unwrap_or_else(|e| panic!("{}: not YAML: {e}", shown(path)));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// Deserializes `doc`, failing with `what` and serde's reason.
fn strict<T: DeserializeOwned>(doc: &Value, what: &str) -> T {
    serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Every file under `dir`, recursively, in name order.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", shown(dir)))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    entries
        .into_iter()
        .flat_map(|path| {
            if path.is_dir() {
                files_under(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

// --- kustomize -----------------------------------------------------------------------------------

/// The kustomization fields these files may use, in current syntax only: the deprecated `bases`,
/// `patchesStrategicMerge` and `patchesJson6902` are unknown fields here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Kustomization {
    api_version: String,
    kind: String,
    namespace: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    patches: Vec<PatchRef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchRef {
    path: String,
    target: Option<Target>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    group: Option<String>,
    version: Option<String>,
    kind: String,
    name: String,
}

impl Target {
    fn matches(&self, object: &Value) -> bool {
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
struct JsonPatchOp {
    op: String,
    path: String,
    value: Option<Value>,
}

/// A strategic-merge patch that deletes one object: the only kind these files use.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DeletePatch {
    #[serde(rename = "$patch")]
    patch: String,
    api_version: String,
    kind: String,
    metadata: NameOnly,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NameOnly {
    name: String,
}

/// The kustomization of `dir`, checked for its apiVersion and kind.
fn kustomization(dir: &Path) -> Kustomization {
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
fn is_namespaced(kind: &str) -> bool {
    match kind {
        "Namespace" | "ClusterRole" | "ClusterRoleBinding" => false,
        "ServiceAccount" | "Role" | "RoleBinding" | "Deployment" | "Service" | "ServiceMonitor"
        | "PrometheusRule" => true,
        other => panic!("unknown kind {other}: add it to is_namespaced and check_object"),
    }
}

/// What `kustomize build dir` prints, for the features these files use: `resources` (files and
/// directories), `patches` that are JSON patches with a target or `$patch: delete` strategic-merge
/// patches, and `namespace`. Anything else fails rather than being ignored.
fn render(dir: &str) -> Vec<Value> {
    render_dir(&repo_path(dir))
}

fn render_dir(dir: &Path) -> Vec<Value> {
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

fn apply_patch(objects: &mut Vec<Value>, path: &Path, target: Option<&Target>) {
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
        objects.retain(|o| {
            !(o["apiVersion"] == delete.api_version
                && o["kind"] == delete.kind
                && o["metadata"]["name"] == delete.metadata.name)
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
fn json_patch(object: &mut Value, op: JsonPatchOp, what: &str) {
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

// --- objects -------------------------------------------------------------------------------------

fn kind(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or_default()
}

/// `Kind name` of an object, for messages.
fn id(object: &Value) -> String {
    format!(
        "{} {}",
        kind(object),
        object["metadata"]["name"].as_str().unwrap_or("(no name)")
    )
}

/// Fails unless the object fits its type exactly: a k8s-openapi round trip for the core kinds,
/// the strict structs below for the prometheus-operator's.
fn check_object(object: &Value, what: &str) {
    let what = format!("{what}: {}", id(object));
    match kind(object) {
        "Namespace" => round_trip::<Namespace>(object, &what),
        "ServiceAccount" => round_trip::<ServiceAccount>(object, &what),
        "ClusterRole" => round_trip::<ClusterRole>(object, &what),
        "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(object, &what),
        "Role" => round_trip::<Role>(object, &what),
        "RoleBinding" => round_trip::<RoleBinding>(object, &what),
        "Deployment" => round_trip::<Deployment>(object, &what),
        "Service" => round_trip::<Service>(object, &what),
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
fn round_trip<T: DeserializeOwned + Serialize>(object: &Value, what: &str) {
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
fn differences(a: &Value, b: &Value, at: &str) -> Vec<String> {
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
fn all_of<T: DeserializeOwned>(objects: &[Value], kind: &str) -> Vec<T> {
    objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .map(|o| strict(o, &id(o)))
        .collect()
}

/// The one object of `kind` in a rendering, typed.
fn one<T: DeserializeOwned>(objects: &[Value], kind: &str) -> T {
    let mut all = all_of(objects, kind);
    assert_eq!(all.len(), 1, "exactly one {kind}");
    all.remove(0)
}

fn pod_spec(d: &Deployment) -> &PodSpec {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("the Deployment has a pod spec")
}

/// The exporter's container: the pod's only one.
fn exporter(d: &Deployment) -> &Container {
    let pod = pod_spec(d);
    assert_eq!(pod.containers.len(), 1, "one container, the exporter");
    assert!(pod.init_containers.is_none(), "no init containers");
    assert_eq!(pod.containers[0].name, NAME);
    &pod.containers[0]
}

/// The exporter's flags, parsed by the binary's own parser.
fn exporter_args(d: &Deployment, what: &str) -> Args {
    let c = exporter(d);
    assert!(
        c.command.is_none(),
        "{what}: the image's ENTRYPOINT is the binary; pass flags as args"
    );
    let argv = std::iter::once(NAME.to_string()).chain(c.args.clone().unwrap_or_default());
    Args::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("{what}: the binary rejects the container's args: {e}"))
}

fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or_default()
}

/// Whether every label of `selector` is in `labels`.
fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

// --- prometheus-operator objects -----------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Meta {
    name: String,
    namespace: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// The ServiceMonitor fields the manifest uses (monitoring.coreos.com/v1).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitor {
    api_version: String,
    kind: String,
    metadata: Meta,
    spec: ServiceMonitorSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitorSpec {
    selector: MatchLabels,
    endpoints: Vec<Endpoint>,
    job_label: Option<String>,
    namespace_selector: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MatchLabels {
    match_labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Endpoint {
    port: String,
    path: String,
    interval: String,
    honor_labels: Option<bool>,
}

/// A PrometheusRule (monitoring.coreos.com/v1).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrometheusRule {
    api_version: String,
    kind: String,
    metadata: Meta,
    spec: RuleFile,
}

/// A Prometheus rule file, or a PrometheusRule's spec: the same shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Rule {
    record: Option<String>,
    alert: Option<String>,
    expr: String,
    #[serde(rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl RuleGroup {
    fn rule_names(&self) -> Vec<&str> {
        self.rules.iter().map(Rule::name).collect()
    }
}

impl Rule {
    fn name(&self) -> &str {
        self.alert
            .as_deref()
            .or(self.record.as_deref())
            .unwrap_or("(unnamed)")
    }
}

// --- RBAC ----------------------------------------------------------------------------------------

/// One permission: (API group, resource, verb).
type Grant = (String, String, String);

fn watched() -> BTreeSet<Grant> {
    WATCHED
        .iter()
        .flat_map(|(group, resource, verbs)| {
            verbs
                .iter()
                .map(move |verb| (group.to_string(), resource.to_string(), verb.to_string()))
        })
        .collect()
}

/// Every permission the rules grant, spelled out; wildcards, resource names and non-resource
/// URLs fail.
fn granted(rules: &[PolicyRule], what: &str) -> BTreeSet<Grant> {
    let mut grants = BTreeSet::new();
    for rule in rules {
        assert!(
            rule.resource_names.is_none() && rule.non_resource_urls.is_none(),
            "{what}: resourceNames and nonResourceURLs are not used"
        );
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    for part in [group, resource, verb] {
                        assert!(!part.contains('*'), "{what}: no wildcards ({part})");
                    }
                    grants.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    grants
}

/// The rules grant exactly `WATCHED`, read-only, and never secrets.
fn assert_grants_exactly_watched(rules: Option<&Vec<PolicyRule>>, what: &str) {
    let granted = granted(rules.map(Vec::as_slice).unwrap_or_default(), what);
    for (_, resource, verb) in &granted {
        assert_ne!(
            resource, "secrets",
            "{what}: the exporter never reads secrets"
        );
        assert!(
            READ_VERBS.contains(&verb.as_str()),
            "{what}: `{verb}` on {resource} is not a read verb"
        );
    }
    let watched = watched();
    let missing: Vec<_> = watched.difference(&granted).collect();
    let extra: Vec<_> = granted.difference(&watched).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: the rules must grant exactly watch::WATCHED\n  watched, not granted: {missing:?}\n  \
         granted, not watched: {extra:?}"
    );
}

/// The binding's only subject is the ServiceAccount the Deployment runs as.
fn assert_binds_the_exporter(subjects: Option<&Vec<Subject>>, objects: &[Value], what: &str) {
    let sa: ServiceAccount = one(objects, "ServiceAccount");
    let d: Deployment = one(objects, "Deployment");
    assert_eq!(
        pod_spec(&d).service_account_name.as_deref(),
        sa.metadata.name.as_deref(),
        "the Deployment runs as the ServiceAccount"
    );
    assert_eq!(namespace_of(&sa.metadata), namespace_of(&d.metadata));
    let expected = Subject {
        kind: "ServiceAccount".into(),
        name: NAME.into(),
        namespace: sa.metadata.namespace.clone(),
        api_group: None,
    };
    assert_eq!(
        subjects.map(Vec::as_slice).unwrap_or_default(),
        [expected],
        "{what}: binds the exporter's ServiceAccount, and nothing else"
    );
}

// --- tests ---------------------------------------------------------------------------------------

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
    // Both renderings build: every patch applies, no object twice.
    assert!(!render(CLUSTER).is_empty());
    assert!(!render(NAMESPACED).is_empty());
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
    for dir in [CLUSTER, NAMESPACED] {
        for object in render(dir) {
            check_object(&object, &format!("{dir} rendered"));
        }
    }
}

#[test]
fn cluster_rbac_grants_exactly_what_the_exporter_watches() {
    let objects = render(CLUSTER);
    let role: ClusterRole = one(&objects, "ClusterRole");
    assert_grants_exactly_watched(role.rules.as_ref(), "ClusterRole");
    let binding: ClusterRoleBinding = one(&objects, "ClusterRoleBinding");
    assert_eq!(
        (binding.role_ref.kind.as_str(), Some(&binding.role_ref.name)),
        ("ClusterRole", role.metadata.name.as_ref()),
        "the ClusterRoleBinding grants the ClusterRole"
    );
    assert_binds_the_exporter(binding.subjects.as_ref(), &objects, "ClusterRoleBinding");
    assert!(all_of::<Role>(&objects, "Role").is_empty());
    assert!(all_of::<RoleBinding>(&objects, "RoleBinding").is_empty());

    let ns: Namespace = one(&objects, "Namespace");
    for object in objects.iter().filter(|o| is_namespaced(kind(o))) {
        assert_eq!(
            object["metadata"]["namespace"].as_str(),
            ns.metadata.name.as_deref(),
            "{} lives in the exporter's namespace",
            id(object)
        );
    }
    let args = exporter_args(&one(&objects, "Deployment"), CLUSTER);
    assert!(args.namespaces.is_empty(), "cluster-wide: no --namespace");
}

#[test]
fn namespaced_overlay_grants_and_watches_only_its_namespace() {
    let objects = render(NAMESPACED);
    let ns = kustomization(&repo_path(NAMESPACED))
        .namespace
        .expect("the overlay sets the namespace");
    for object in &objects {
        assert!(
            is_namespaced(kind(object)),
            "{}: the overlay creates nothing cluster-scoped",
            id(object)
        );
        assert_eq!(
            object["metadata"]["namespace"].as_str(),
            Some(ns.as_str()),
            "{}",
            id(object)
        );
    }
    let role: Role = one(&objects, "Role");
    assert_grants_exactly_watched(role.rules.as_ref(), "Role");
    let binding: RoleBinding = one(&objects, "RoleBinding");
    assert_eq!(
        (binding.role_ref.kind.as_str(), Some(&binding.role_ref.name)),
        ("Role", role.metadata.name.as_ref()),
        "the RoleBinding grants the Role"
    );
    assert_binds_the_exporter(binding.subjects.as_ref(), &objects, "RoleBinding");

    let args = exporter_args(&one(&objects, "Deployment"), NAMESPACED);
    assert_eq!(
        args.namespaces,
        [ns],
        "the exporter watches exactly the overlay's namespace"
    );
}

#[test]
fn deployment_runs_hardened_and_probed() {
    for dir in [CLUSTER, NAMESPACED] {
        let d: Deployment = one(&render(dir), "Deployment");
        let what = format!("{dir}: Deployment");
        assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(1), "{what}");
        let pod = pod_spec(&d);
        assert_eq!(
            pod.automount_service_account_token,
            Some(true),
            "{what}: the exporter needs its token for the API"
        );
        let pod_sc = pod.security_context.clone().unwrap_or_default();
        let c = exporter(&d);
        let sc = c.security_context.clone().unwrap_or_default();
        // Effective values: the container's, else the pod's.
        assert_eq!(
            sc.run_as_non_root.or(pod_sc.run_as_non_root),
            Some(true),
            "{what}"
        );
        assert_eq!(
            sc.run_as_user.or(pod_sc.run_as_user),
            Some(NONROOT),
            "{what}"
        );
        assert_eq!(
            sc.run_as_group.or(pod_sc.run_as_group),
            Some(NONROOT),
            "{what}"
        );
        assert_eq!(
            sc.seccomp_profile
                .or(pod_sc.seccomp_profile)
                .map(|p| p.type_),
            Some("RuntimeDefault".to_string()),
            "{what}"
        );
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{what}");
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{what}");
        assert_ne!(sc.privileged, Some(true), "{what}");
        let caps = sc.capabilities.unwrap_or_default();
        assert_eq!(caps.drop, Some(vec!["ALL".to_string()]), "{what}");
        assert_eq!(caps.add, None, "{what}");

        let port = c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(PORT_NAME))
            .unwrap_or_else(|| panic!("{what}: a container port named {PORT_NAME}"));
        let args = exporter_args(&d, &what);
        assert!(!args.demo, "{what}: never --demo");
        assert_eq!(
            i32::from(args.listen_socket().port()),
            port.container_port,
            "{what}: --web.listen-address is the container port"
        );
        for (probe, path) in [
            (&c.liveness_probe, "/healthz"),
            (&c.readiness_probe, "/readyz"),
        ] {
            let get = probe
                .as_ref()
                .and_then(|p| p.http_get.as_ref())
                .unwrap_or_else(|| panic!("{what}: an HTTP probe of {path}"));
            assert_eq!(get.path.as_deref(), Some(path), "{what}");
            assert_eq!(get.port, IntOrString::String(PORT_NAME.into()), "{what}");
        }

        let resources = c.resources.clone().unwrap_or_default();
        let requests = resources.requests.unwrap_or_default();
        let limits = resources.limits.unwrap_or_default();
        assert!(
            requests.contains_key("cpu") && requests.contains_key("memory"),
            "{what}: CPU and memory requests"
        );
        assert!(limits.contains_key("memory"), "{what}: a memory limit");

        let image = c.image.as_deref().unwrap_or_default();
        assert!(
            image.ends_with(&format!(":{}", env!("CARGO_PKG_VERSION"))),
            "{what}: the image tag {image} is the crate's version"
        );
    }
    assert!(
        read(&repo_path(BASE).join("deployment.yaml")).contains("BENCHMARKS.md"),
        "the resources say where their numbers come from"
    );
}

#[test]
fn service_monitor_scrapes_the_exporter_and_keeps_its_labels() {
    for dir in [CLUSTER, NAMESPACED] {
        let objects = render(dir);
        let d: Deployment = one(&objects, "Deployment");
        let svc: Service = one(&objects, "Service");
        let sm: ServiceMonitor = one(&objects, "ServiceMonitor");
        let what = format!("{dir}: ServiceMonitor");

        for object in &objects {
            assert_eq!(
                object["metadata"]["labels"]["app.kubernetes.io/name"],
                NAME,
                "{dir}: {} carries app.kubernetes.io/name",
                id(object)
            );
        }
        let template_labels = d
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let svc_spec = svc.spec.clone().unwrap_or_default();
        assert!(
            selects(&svc_spec.selector.unwrap_or_default(), &template_labels),
            "{dir}: the Service selects the exporter's pods"
        );
        let ports = svc_spec.ports.unwrap_or_default();
        assert_eq!(ports.len(), 1, "{dir}: one Service port");
        assert_eq!(ports[0].name.as_deref(), Some(PORT_NAME), "{dir}");
        assert_eq!(
            ports[0].target_port,
            Some(IntOrString::String(PORT_NAME.into())),
            "{dir}: the Service forwards to the named container port"
        );

        assert_eq!(sm.metadata.name, NAME, "{what}");
        assert_eq!(
            sm.metadata.namespace.as_deref(),
            svc.metadata.namespace.as_deref(),
            "{what}: next to the Service"
        );
        assert!(
            sm.spec.namespace_selector.is_none(),
            "{what}: selects in its own namespace, so it follows the overlay's"
        );
        assert!(
            selects(
                &sm.spec.selector.match_labels,
                &svc.metadata.labels.clone().unwrap_or_default()
            ),
            "{what}: selects the Service"
        );
        assert!(
            selects(&sm.metadata.labels, &template_labels),
            "{what}: labelled like the rest"
        );
        let telemetry_path = exporter_args(&d, dir).telemetry_path;
        assert!(!sm.spec.endpoints.is_empty(), "{what}");
        for endpoint in &sm.spec.endpoints {
            assert_eq!(endpoint.port, PORT_NAME, "{what}");
            assert_eq!(
                endpoint.path, telemetry_path,
                "{what}: --web.telemetry-path"
            );
            assert!(
                endpoint.interval.ends_with('s') || endpoint.interval.ends_with('m'),
                "{what}: interval {} is a Prometheus duration",
                endpoint.interval
            );
            // Without it Prometheus renames the exporter's `namespace` label to
            // `exported_namespace`, and every dashboard and rule breaks.
            assert_eq!(endpoint.honor_labels, Some(true), "{what}: honorLabels");
        }

        // Prometheus names the job after the Service unless jobLabel says otherwise; the exporter
        // alerts select that job.
        assert_eq!(sm.spec.job_label, None, "{what}");
        let job = svc.metadata.name.clone().unwrap_or_default();
        let pr: PrometheusRule = one(&objects, "PrometheusRule");
        let selected: BTreeSet<&str> = pr
            .spec
            .groups
            .iter()
            .flat_map(|g| &g.rules)
            .flat_map(|r| r.expr.split("job=\"").skip(1))
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert_eq!(
            selected,
            BTreeSet::from([job.as_str()]),
            "{dir}: the rules select the job Prometheus gives the exporter, the Service's name"
        );
    }
}

#[test]
fn prometheus_rule_holds_exactly_the_rule_groups_of_alerts() {
    let mut rule_files: Vec<PathBuf> = std::fs::read_dir(repo_path("alerts"))
        .expect("alerts/")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    rule_files.sort();
    assert!(!rule_files.is_empty(), "alerts/*.yaml");
    let mut expected = Vec::new();
    for path in &rule_files {
        let docs = yaml_docs(path);
        assert_eq!(docs.len(), 1, "{}: one document", shown(path));
        let file: RuleFile = strict(&docs[0], &shown(path));
        expected.extend(file.groups);
    }

    let path = repo_path(BASE).join("prometheusrule.yaml");
    let docs = yaml_docs(&path);
    assert_eq!(docs.len(), 1, "{}: one document", shown(&path));
    let pr: PrometheusRule = strict(&docs[0], &shown(&path));
    assert_eq!(
        (pr.metadata.name.as_str(), pr.metadata.namespace.as_deref()),
        (NAME, Some(NAME))
    );
    let regenerate = format!("run `python3 {GENERATOR}` and commit the result");
    let names = |groups: &[RuleGroup]| groups.iter().map(|g| g.name.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&pr.spec.groups),
        names(&expected),
        "{}: the groups differ from alerts/*.yaml: {regenerate}",
        shown(&path)
    );
    for (got, want) in pr.spec.groups.iter().zip(&expected) {
        assert_eq!(
            got.rule_names(),
            want.rule_names(),
            "{}: group {} differs from alerts/: {regenerate}",
            shown(&path),
            got.name
        );
        for (a, b) in got.rules.iter().zip(&want.rules) {
            assert!(
                a == b,
                "{}: rule {} in group {} differs from alerts/: {regenerate}\n  here:    {a:?}\n  alerts/: {b:?}",
                shown(&path),
                a.name(),
                got.name
            );
        }
    }
    // The operator writes one rule file per PrometheusRule; Prometheus rejects a file that names
    // a group twice.
    let unique: BTreeSet<String> = names(&expected).into_iter().collect();
    assert_eq!(unique.len(), expected.len(), "group names are unique");

    // Comments and layout too: the generator's own check.
    let out = Command::new("python3")
        .arg(repo_path(GENERATOR))
        .arg("--check")
        .output()
        .expect("python3 runs (it is on every machine of this kind)");
    assert!(
        out.status.success(),
        "{GENERATOR} --check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dockerfile_agrees_with_the_manifests() {
    let text = read(&repo_path("Dockerfile"));
    let instructions: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let args_of = |keyword: &str| -> Vec<&str> {
        instructions
            .iter()
            .filter_map(|l| l.strip_prefix(keyword))
            .filter_map(|rest| rest.strip_prefix(' '))
            .collect()
    };
    let from = args_of("FROM");
    assert!(
        from.first()
            .is_some_and(|f| f.starts_with("rust:1-bookworm ")),
        "builds on Debian 12, the runtime's release: {from:?}"
    );
    assert_eq!(
        from.last(),
        Some(&"gcr.io/distroless/cc-debian12:nonroot"),
        "runs on distroless cc: the binary links glibc and libgcc_s dynamically"
    );
    assert!(
        args_of("RUN")
            .iter()
            .any(|r| r.contains("cargo build --release --locked")),
        "builds with the locked dependencies"
    );
    assert_eq!(args_of("USER"), [format!("{NONROOT}:{NONROOT}")]);
    assert_eq!(args_of("EXPOSE"), [DEFAULT_PORT.to_string()]);
    let entrypoint = args_of("ENTRYPOINT");
    assert_eq!(entrypoint, [format!("[\"/usr/local/bin/{NAME}\"]")]);
    assert!(
        args_of("COPY").contains(
            &format!("--from=build /src/target/release/{NAME} /usr/local/bin/{NAME}").as_str()
        ),
        "the runtime image gets the binary, and only it"
    );

    let d: Deployment = one(&render(CLUSTER), "Deployment");
    let port = exporter(&d)
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some(PORT_NAME))
        .map(|p| p.container_port);
    assert_eq!(
        port,
        Some(i32::from(DEFAULT_PORT)),
        "EXPOSE and containerPort"
    );

    let ignored = read(&repo_path(".dockerignore"));
    for entry in ["target/", ".git/"] {
        assert!(
            ignored.lines().any(|l| l.trim() == entry),
            ".dockerignore: {entry}"
        );
    }
}
