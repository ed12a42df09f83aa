//! The deploy manifests in `deploy/kubernetes/`, checked against the code they deploy.
//!
//! Every Kubernetes object must survive a round trip through its k8s-openapi type (a misspelled or
//! misplaced field is dropped on the way, and the difference fails); the prometheus-operator
//! objects and the kustomizations, which have no such type, must fit structs here that reject
//! unknown fields. The RBAC rules must grant exactly `watch::WATCHED` (plus, in the sharded
//! overlay only, the two `get`s of automatic sharding), the PrometheusRule must hold exactly the
//! rule groups of `alerts/`, and the exporter's flags must parse with the binary's own parser.
//! Neither kubectl nor kustomize runs here (Debian's kubectl embeds a kustomize too old for these
//! files): [`render`] applies the few kustomize features the files use and fails on any other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PodSpec, PodTemplateSpec, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_rollout_exporter::cli::{Args, DEFAULT_PORT};
use kube_rollout_exporter::shard::ordinal_of;
use kube_rollout_exporter::watch::WATCHED;
use kube_rollout_exporter::web_config::WebConfig;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What `kubectl apply -k deploy/kubernetes` installs: the base, cluster-wide.
const CLUSTER: &str = "deploy/kubernetes";
const BASE: &str = "deploy/kubernetes/base";
/// The single-namespace overlay.
const NAMESPACED: &str = "deploy/kubernetes/overlays/namespaced";
/// The sharded overlay: a StatefulSet, one pod per shard.
const SHARDED: &str = "deploy/kubernetes/overlays/sharded";
/// The overlay serving /metrics over TLS with client certificates.
const TLS: &str = "deploy/kubernetes/overlays/tls";
/// Everything a user can apply as it is.
const RENDERINGS: [&str; 4] = [CLUSTER, NAMESPACED, SHARDED, TLS];
/// The name of every object, and of the container.
const NAME: &str = "kube-rollout-exporter";
const PORT_NAME: &str = "http-metrics";
/// The container port of `--web.probe-listen-address`.
const PROBE_PORT_NAME: &str = "http-probes";
/// The distroless images' `nonroot` user and group.
const NONROOT: i64 = 65532;
const READ_VERBS: [&str; 3] = ["get", "list", "watch"];
/// What automatic sharding reads besides `WATCHED`, in the exporter's own namespace only:
/// `try_discover_shard` in src/main.rs gets its own Pod, then that Pod's StatefulSet.
const SHARDING_GETS: [(&str, &str, &str); 2] =
    [("", "pods", "get"), ("apps", "statefulsets", "get")];
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

#[derive(Clone, Debug, Deserialize)]
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
    namespace: Option<String>,
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
        "ServiceAccount" | "Role" | "RoleBinding" | "Deployment" | "StatefulSet" | "Service"
        | "ConfigMap" | "ServiceMonitor" | "PrometheusRule" => true,
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

/// The exporter's workload in a rendering: its Deployment, or the sharded overlay's StatefulSet.
struct Workload {
    kind: &'static str,
    metadata: ObjectMeta,
    replicas: Option<i32>,
    selector: LabelSelector,
    template: PodTemplateSpec,
}

/// The one Deployment or StatefulSet of a rendering.
fn workload(objects: &[Value]) -> Workload {
    let mut deployments: Vec<Deployment> = all_of(objects, "Deployment");
    let mut statefulsets: Vec<StatefulSet> = all_of(objects, "StatefulSet");
    match (deployments.pop(), statefulsets.pop()) {
        (Some(d), None) if deployments.is_empty() => {
            let spec = d.spec.expect("the Deployment has a spec");
            Workload {
                kind: "Deployment",
                metadata: d.metadata,
                replicas: spec.replicas,
                selector: spec.selector,
                template: spec.template,
            }
        }
        (None, Some(s)) if statefulsets.is_empty() => {
            let spec = s.spec.expect("the StatefulSet has a spec");
            Workload {
                kind: "StatefulSet",
                metadata: s.metadata,
                replicas: spec.replicas,
                selector: spec.selector,
                template: spec.template,
            }
        }
        _ => panic!("exactly one Deployment or StatefulSet runs the exporter"),
    }
}

impl Workload {
    fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    fn namespace(&self) -> &str {
        namespace_of(&self.metadata)
    }

    fn template_labels(&self) -> BTreeMap<String, String> {
        self.template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default()
    }

    /// The names its pods get: `<name>-<ordinal>` for a StatefulSet, one made-up example
    /// `<name>-<pod-template-hash>-<suffix>` for a Deployment.
    fn pod_names(&self) -> Vec<String> {
        match self.kind {
            "StatefulSet" => (0..self.replicas.unwrap_or(1))
                .map(|i| format!("{}-{i}", self.name()))
                .collect(),
            _ => vec![format!("{}-5d8f7c9b4-x2k9p", self.name())],
        }
    }
}

fn pod_spec(w: &Workload) -> &PodSpec {
    w.template
        .spec
        .as_ref()
        .unwrap_or_else(|| panic!("the {} has a pod spec", w.kind))
}

/// The exporter's container: the pod's only one.
fn exporter(w: &Workload) -> &Container {
    let pod = pod_spec(w);
    assert_eq!(pod.containers.len(), 1, "one container, the exporter");
    assert!(pod.init_containers.is_none(), "no init containers");
    assert_eq!(pod.containers[0].name, NAME);
    &pod.containers[0]
}

/// The container's args as the kubelet passes them to the pod `pod`: `$(VAR)` replaced by the
/// container's variable VAR (a value, or the pod's name or namespace from the downward API) and
/// `$$` by `$`. Kubernetes leaves a reference to an undefined variable as written, which the
/// exporter would take literally; here it fails.
fn expanded_args(c: &Container, pod: &str, namespace: &str, what: &str) -> Vec<String> {
    let env: BTreeMap<&str, String> = c
        .env
        .iter()
        .flatten()
        .map(|var| {
            let value = match (&var.value, &var.value_from) {
                (Some(v), None) => v.clone(),
                (None, Some(from)) => {
                    let path = from.field_ref.as_ref().map(|f| f.field_path.as_str());
                    match path {
                        Some("metadata.name") => pod.to_string(),
                        Some("metadata.namespace") => namespace.to_string(),
                        other => {
                            panic!("{what}: env {} from {other:?} is not known here", var.name)
                        }
                    }
                }
                _ => panic!("{what}: env {} has no single source", var.name),
            };
            (var.name.as_str(), value)
        })
        .collect();
    let expand = |arg: &str| -> String {
        let mut out = String::new();
        let mut rest = arg;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some((var, tail)) =
                after.strip_prefix('(').and_then(|a| a.split_once(')'))
            {
                let value = env.get(var).unwrap_or_else(|| {
                    panic!("{what}: {arg} refers to $({var}), which the container does not define")
                });
                out.push_str(value);
                rest = tail;
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
        out
    };
    c.args.iter().flatten().map(|a| expand(a)).collect()
}

/// The exporter's flags in the pod `pod`, parsed by the binary's own parser.
fn exporter_args_in(w: &Workload, pod: &str, what: &str) -> Args {
    let c = exporter(w);
    assert!(
        c.command.is_none(),
        "{what}: the image's ENTRYPOINT is the binary; pass flags as args"
    );
    let argv = std::iter::once(NAME.to_string()).chain(expanded_args(c, pod, w.namespace(), what));
    let args = Args::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("{what}: the binary rejects the container's args: {e}"));
    args.validate()
        .unwrap_or_else(|e| panic!("{what}: the binary rejects the container's args: {e}"));
    args
}

/// The exporter's flags in its first pod.
fn exporter_args(w: &Workload, what: &str) -> Args {
    exporter_args_in(w, &w.pod_names()[0], what)
}

fn namespace_of(meta: &ObjectMeta) -> &str {
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
    scheme: Option<String>,
    tls_config: Option<TlsConfig>,
}

/// The fields of the operator's SafeTLSConfig the TLS overlay uses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TlsConfig {
    server_name: Option<String>,
    ca: Option<SecretRef>,
    cert: Option<SecretRef>,
    key_secret: Option<SecretKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretRef {
    secret: SecretKey,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretKey {
    name: String,
    key: String,
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

/// Every permission the rules grant, spelled out, with the object names it is limited to (`None`:
/// every object); wildcards and non-resource URLs fail.
fn grants(rules: &[PolicyRule], what: &str) -> BTreeMap<Grant, Option<BTreeSet<String>>> {
    let mut grants: BTreeMap<Grant, Option<BTreeSet<String>>> = BTreeMap::new();
    for rule in rules {
        assert!(
            rule.non_resource_urls.is_none(),
            "{what}: nonResourceURLs are not used"
        );
        let names: Option<BTreeSet<String>> = rule
            .resource_names
            .as_ref()
            .map(|n| n.iter().cloned().collect());
        assert!(
            names.as_ref().is_none_or(|n| !n.is_empty()),
            "{what}: an empty resourceNames means every object: leave it out"
        );
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    for part in [group, resource, verb] {
                        assert!(!part.contains('*'), "{what}: no wildcards ({part})");
                    }
                    let grant = (group.clone(), resource.clone(), verb.clone());
                    // Two rules for one grant: the wider wins.
                    let merged = match (grants.remove(&grant), &names) {
                        (None, names) => names.clone(),
                        (Some(None), _) | (_, None) => None,
                        (Some(Some(a)), Some(b)) => Some(a.union(b).cloned().collect()),
                    };
                    grants.insert(grant, merged);
                }
            }
        }
    }
    grants
}

/// Every permission the rules grant, which must not be limited to named objects (a list or
/// watch limited by name is a list or watch of nothing the exporter could use).
fn granted(rules: &[PolicyRule], what: &str) -> BTreeSet<Grant> {
    grants(rules, what)
        .into_iter()
        .map(|(grant, names)| {
            assert!(names.is_none(), "{what}: resourceNames are not used");
            grant
        })
        .collect()
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
    let w = workload(objects);
    assert_eq!(
        pod_spec(&w).service_account_name.as_deref(),
        sa.metadata.name.as_deref(),
        "the {} runs as the ServiceAccount",
        w.kind
    );
    assert_eq!(namespace_of(&sa.metadata), w.namespace());
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
    // Every rendering builds: every patch applies, no object twice.
    for dir in RENDERINGS {
        assert!(!render(dir).is_empty(), "{dir}");
    }
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

#[test]
fn cluster_rbac_grants_exactly_what_the_exporter_watches() {
    for dir in [CLUSTER, TLS] {
        let objects = render(dir);
        let role: ClusterRole = one(&objects, "ClusterRole");
        assert_grants_exactly_watched(role.rules.as_ref(), &format!("{dir}: ClusterRole"));
        let binding: ClusterRoleBinding = one(&objects, "ClusterRoleBinding");
        assert_eq!(
            (binding.role_ref.kind.as_str(), Some(&binding.role_ref.name)),
            ("ClusterRole", role.metadata.name.as_ref()),
            "{dir}: the ClusterRoleBinding grants the ClusterRole"
        );
        assert_binds_the_exporter(
            binding.subjects.as_ref(),
            &objects,
            &format!("{dir}: ClusterRoleBinding"),
        );
        assert!(all_of::<Role>(&objects, "Role").is_empty(), "{dir}");
        assert!(
            all_of::<RoleBinding>(&objects, "RoleBinding").is_empty(),
            "{dir}"
        );

        let ns: Namespace = one(&objects, "Namespace");
        for object in objects.iter().filter(|o| is_namespaced(kind(o))) {
            assert_eq!(
                object["metadata"]["namespace"].as_str(),
                ns.metadata.name.as_deref(),
                "{dir}: {} lives in the exporter's namespace",
                id(object)
            );
        }
        let args = exporter_args(&workload(&objects), dir);
        assert!(
            args.namespaces.is_empty(),
            "{dir}: cluster-wide: no --namespace"
        );
    }
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

    let args = exporter_args(&workload(&objects), NAMESPACED);
    assert_eq!(
        args.namespaces,
        [ns],
        "the exporter watches exactly the overlay's namespace"
    );
}

#[test]
fn sharded_overlay_adds_only_get_on_its_own_pod_and_statefulset() {
    let objects = render(SHARDED);
    let w = workload(&objects);
    let ns = w.namespace().to_string();

    // Cluster-wide: exactly what the base grants, list and watch of WATCHED.
    let cluster_role: ClusterRole = one(&objects, "ClusterRole");
    assert_grants_exactly_watched(cluster_role.rules.as_ref(), "ClusterRole");
    let cluster_binding: ClusterRoleBinding = one(&objects, "ClusterRoleBinding");
    assert_eq!(
        (
            cluster_binding.role_ref.kind.as_str(),
            Some(&cluster_binding.role_ref.name)
        ),
        ("ClusterRole", cluster_role.metadata.name.as_ref()),
        "the ClusterRoleBinding grants the ClusterRole"
    );
    assert_binds_the_exporter(
        cluster_binding.subjects.as_ref(),
        &objects,
        "ClusterRoleBinding",
    );

    // In the exporter's namespace: exactly the two gets of automatic sharding.
    let role: Role = one(&objects, "Role");
    assert_eq!(
        namespace_of(&role.metadata),
        ns,
        "the Role lives in the exporter's namespace, where its pods and StatefulSet are"
    );
    let grants = grants(role.rules.as_deref().unwrap_or_default(), "Role");
    let expected: BTreeSet<Grant> = SHARDING_GETS
        .iter()
        .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        grants.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "the Role grants exactly get on pods and on statefulsets (apps): no other resource, no \
         other verb, no secrets"
    );
    let names = |resource: &str| {
        grants
            .iter()
            .find(|((_, r, _), _)| r == resource)
            .and_then(|(_, names)| names.clone())
    };
    assert_eq!(
        names("statefulsets"),
        Some(BTreeSet::from([w.name().to_string()])),
        "the Role lets the exporter get its own StatefulSet and no other"
    );
    // role.yaml says why the pods are not named; should they be one day, every shard must be.
    if let Some(pods) = names("pods") {
        let shards: BTreeSet<String> = w.pod_names().into_iter().collect();
        assert_eq!(pods, shards, "resourceNames must name every shard's pod");
    }
    let binding: RoleBinding = one(&objects, "RoleBinding");
    assert_eq!(namespace_of(&binding.metadata), ns, "RoleBinding");
    assert_eq!(
        (binding.role_ref.kind.as_str(), Some(&binding.role_ref.name)),
        ("Role", role.metadata.name.as_ref()),
        "the RoleBinding grants the Role"
    );
    assert_binds_the_exporter(binding.subjects.as_ref(), &objects, "RoleBinding");
}

#[test]
fn only_the_sharded_overlay_grants_get() {
    for dir in RENDERINGS {
        let objects = render(dir);
        // (namespace, or "" for cluster-wide; group; resource)
        let mut gets = BTreeSet::new();
        for role in all_of::<ClusterRole>(&objects, "ClusterRole") {
            for (group, resource, verb) in
                grants(role.rules.as_deref().unwrap_or_default(), dir).into_keys()
            {
                if verb == "get" {
                    gets.insert((String::new(), group, resource));
                }
            }
        }
        for role in all_of::<Role>(&objects, "Role") {
            let ns = namespace_of(&role.metadata).to_string();
            for (group, resource, verb) in
                grants(role.rules.as_deref().unwrap_or_default(), dir).into_keys()
            {
                if verb == "get" {
                    gets.insert((ns.clone(), group, resource));
                }
            }
        }
        let expected: BTreeSet<(String, String, String)> = if dir == SHARDED {
            let ns = workload(&objects).namespace().to_string();
            SHARDING_GETS
                .iter()
                .map(|(g, r, _)| (ns.clone(), g.to_string(), r.to_string()))
                .collect()
        } else {
            BTreeSet::new()
        };
        assert_eq!(
            gets, expected,
            "{dir}: `get` only in the sharded overlay, and there only on pods and statefulsets in \
             the exporter's own namespace"
        );
    }
}

#[test]
fn sharded_overlay_runs_one_pod_per_shard_that_finds_its_shard() {
    let objects = render(SHARDED);
    assert!(
        all_of::<Deployment>(&objects, "Deployment").is_empty(),
        "the StatefulSet replaces the base's Deployment"
    );
    let w = workload(&objects);
    let what = format!("{SHARDED}: StatefulSet");
    let sts: StatefulSet = one(&objects, "StatefulSet");
    let spec = sts.spec.clone().expect("a spec");
    let replicas = w
        .replicas
        .expect("replicas, the number of shards, written out");
    assert!(replicas > 1, "{what}: more than one shard");
    assert_eq!(
        spec.pod_management_policy.as_deref(),
        Some("Parallel"),
        "{what}: the shards start and stop together"
    );
    assert!(
        spec.ordinals.is_none(),
        "{what}: ordinals start at 0: the exporter takes its ordinal as its shard, which must be \
         below replicas"
    );
    assert!(spec.volume_claim_templates.is_none(), "{what}: no storage");
    assert!(
        selects(
            &w.selector.match_labels.clone().unwrap_or_default(),
            &w.template_labels()
        ),
        "{what}: selects its pods"
    );

    // Its governing Service is headless, and it is the one Prometheus scrapes: every shard.
    let svc: Service = one(&objects, "Service");
    assert_eq!(spec.service_name, svc.metadata.name, "{what}: serviceName");
    let svc_spec = svc.spec.clone().unwrap_or_default();
    assert_eq!(
        svc_spec.cluster_ip.as_deref(),
        Some("None"),
        "{what}: the governing Service is headless"
    );
    assert!(
        selects(&svc_spec.selector.unwrap_or_default(), &w.template_labels()),
        "{what}: the Service selects every shard's pod"
    );

    // --pod and --pod-namespace come from the downward API.
    let c = exporter(&w);
    let field_of = |flag: &str| -> String {
        let prefix = format!("--{flag}=$(");
        let args: Vec<&String> = c
            .args
            .iter()
            .flatten()
            .filter(|a| a.starts_with(&prefix))
            .collect();
        let [arg] = args.as_slice() else {
            panic!("{what}: one --{flag}=$(VAR) argument, got {args:?}")
        };
        let var = arg[prefix.len()..]
            .strip_suffix(')')
            .unwrap_or_else(|| panic!("{what}: {arg} is --{flag}=$(VAR)"));
        let env = c
            .env
            .iter()
            .flatten()
            .find(|e| e.name == var)
            .unwrap_or_else(|| panic!("{what}: {arg}: the container defines {var}"));
        env.value_from
            .as_ref()
            .and_then(|f| f.field_ref.as_ref())
            .map(|f| f.field_path.clone())
            .unwrap_or_else(|| panic!("{what}: {var} comes from the downward API"))
    };
    assert_eq!(field_of("pod"), "metadata.name", "{what}: --pod");
    assert_eq!(
        field_of("pod-namespace"),
        "metadata.namespace",
        "{what}: --pod-namespace"
    );

    // Each pod, with the values the kubelet substitutes, finds its own shard.
    let mut shards = BTreeSet::new();
    for pod in w.pod_names() {
        let what = format!("{what}: pod {pod}");
        let args = exporter_args_in(&w, &pod, &what);
        assert_eq!(args.pod.as_deref(), Some(pod.as_str()), "{what}: --pod");
        assert_eq!(
            args.pod_namespace.as_deref(),
            Some(w.namespace()),
            "{what}: --pod-namespace"
        );
        assert_eq!(
            (args.shard, args.total_shards),
            (0, 1),
            "{what}: no --shard or --total-shards: the StatefulSet decides"
        );
        assert!(args.namespaces.is_empty(), "{what}: cluster-wide");
        let ordinal = ordinal_of(&pod).unwrap_or_else(|| panic!("{what}: an ordinal"));
        assert!(ordinal < replicas as u64, "{what}: a shard below replicas");
        assert!(shards.insert(ordinal), "{what}: one pod per shard");
    }
    assert_eq!(
        shards,
        (0..replicas as u64).collect(),
        "{what}: every shard runs"
    );

    // Otherwise the pod is the base Deployment's: same image, hardening, probes and resources.
    let without_sharding = |w: &Workload| -> Value {
        let mut template = serde_json::to_value(&w.template).expect("serializes");
        let c = &mut template["spec"]["containers"][0];
        if let Some(c) = c.as_object_mut() {
            c.remove("env");
        }
        if let Some(args) = c["args"].as_array_mut() {
            args.retain(|a| {
                !a.as_str()
                    .is_some_and(|a| a.starts_with("--pod=") || a.starts_with("--pod-namespace="))
            });
        }
        template
    };
    let base = workload(&render(CLUSTER));
    let lost = differences(&without_sharding(&w), &without_sharding(&base), "");
    assert!(
        lost.is_empty(),
        "{what}: its pod template differs from the base Deployment's beyond --pod, \
         --pod-namespace and their env: {lost:?}"
    );
}

/// The kubelet's probes reach /healthz and /readyz: on the metrics port, or on the probe
/// listener's port when there is one, which a web configuration needs (kubelet probes present no
/// client certificate and no password). The web configuration file is on a read-only mount.
fn assert_probed(w: &Workload, what: &str) {
    let c = exporter(w);
    let args = exporter_args(w, what);
    let port_of = |name: &str| {
        c.ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port)
    };
    assert_eq!(
        port_of(PORT_NAME),
        Some(i32::from(args.listen_socket().port())),
        "{what}: --web.listen-address is the container port {PORT_NAME}"
    );
    let probe_port = match args.probe_socket() {
        Some(addr) => {
            assert_eq!(
                port_of(PROBE_PORT_NAME),
                Some(i32::from(addr.port())),
                "{what}: --web.probe-listen-address is the container port {PROBE_PORT_NAME}"
            );
            assert_ne!(addr.port(), args.listen_socket().port(), "{what}");
            PROBE_PORT_NAME
        }
        None => {
            assert!(
                args.web_config_file.is_none(),
                "{what}: with --web.config.file, probe on --web.probe-listen-address: kubelet \
                 probes present no client certificate and no password"
            );
            assert_eq!(port_of(PROBE_PORT_NAME), None, "{what}");
            PORT_NAME
        }
    };
    for (probe, path) in [
        (&c.liveness_probe, "/healthz"),
        (&c.readiness_probe, "/readyz"),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .unwrap_or_else(|| panic!("{what}: an HTTP probe of {path}"));
        assert_eq!(get.path.as_deref(), Some(path), "{what}");
        assert_eq!(
            get.port,
            IntOrString::String(probe_port.into()),
            "{what}: {path}"
        );
        assert!(
            get.scheme.as_deref().is_none_or(|s| s == "HTTP"),
            "{what}: {path} over plain HTTP"
        );
    }
    if let Some(file) = &args.web_config_file {
        let mount = c
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| file.starts_with(&m.mount_path))
            .unwrap_or_else(|| panic!("{what}: a volume holds {}", file.display()));
        assert_eq!(mount.read_only, Some(true), "{what}: read-only");
    }
}

#[test]
fn exporter_runs_hardened_and_probed() {
    for dir in RENDERINGS {
        let w = workload(&render(dir));
        let what = format!("{dir}: {}", w.kind);
        if w.kind == "Deployment" {
            assert_eq!(w.replicas, Some(1), "{what}: sharding, not replicas");
        }
        let pod = pod_spec(&w);
        assert_eq!(
            pod.automount_service_account_token,
            Some(true),
            "{what}: the exporter needs its token for the API"
        );
        let pod_sc = pod.security_context.clone().unwrap_or_default();
        let c = exporter(&w);
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

        let args = exporter_args(&w, &what);
        assert!(!args.demo, "{what}: never --demo");
        assert_probed(&w, &what);

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
    for file in [
        format!("{BASE}/deployment.yaml"),
        format!("{SHARDED}/statefulset.yaml"),
    ] {
        assert!(
            read(&repo_path(&file)).contains("BENCHMARKS.md"),
            "{file}: the resources say where their numbers come from"
        );
    }
}

#[test]
fn service_monitor_scrapes_the_exporter_and_keeps_its_labels() {
    for dir in RENDERINGS {
        let objects = render(dir);
        let w = workload(&objects);
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
        let template_labels = w.template_labels();
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
        let args = exporter_args(&w, dir);
        assert!(!sm.spec.endpoints.is_empty(), "{what}");
        for endpoint in &sm.spec.endpoints {
            assert_eq!(endpoint.port, PORT_NAME, "{what}");
            assert_eq!(
                endpoint.path, args.telemetry_path,
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
            // HTTPS exactly when the exporter serves TLS (tls_overlay_... checks the rest).
            let https = args.web_config_file.is_some();
            assert_eq!(
                endpoint.scheme.as_deref(),
                https.then_some("https"),
                "{what}: scheme"
            );
            assert_eq!(endpoint.tls_config.is_some(), https, "{what}: tlsConfig");
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

// --- TLS -----------------------------------------------------------------------------------------

/// A directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("kre-deploy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA, and a server certificate and key it issued for `name`, in PEM.
fn certificates(name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("CA");
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec![name.to_string()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("sign");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// Where a file of the exporter's web configuration directory comes from.
#[derive(Debug)]
enum Projected {
    /// A ConfigMap of the rendering: its text.
    ConfigMap(String),
    /// A Secret the user creates: its name and key.
    Secret(String, String),
}

/// `--web.config.file` serves TLS with client certificates from a ConfigMap of the rendering and
/// certificates from a Secret, mounted together; the configuration loads; Prometheus scrapes with
/// a client certificate. What the TLS overlay promises, on whatever workload `objects` runs.
fn assert_serves_tls(objects: &[Value], what: &str) {
    let w = workload(objects);
    let what = format!("{what}: {}", w.kind);
    assert_probed(&w, &what);
    let args = exporter_args(&w, &what);
    let file = args
        .web_config_file
        .clone()
        .unwrap_or_else(|| panic!("{what}: --web.config.file"));
    let dir = file.parent().expect("a directory");
    let c = exporter(&w);
    let mount = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| Path::new(&m.mount_path) == dir)
        .unwrap_or_else(|| panic!("{what}: a volume mounted at {}", dir.display()));
    assert!(mount.sub_path.is_none(), "{what}: the whole volume");
    let pod = pod_spec(&w);
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .unwrap_or_else(|| panic!("{what}: volume {}", mount.name));
    let projected = volume.projected.as_ref().unwrap_or_else(|| {
        panic!(
            "{what}: a projected volume: the configuration and the certificates in one directory"
        )
    });
    let mode = projected
        .default_mode
        .unwrap_or_else(|| panic!("{what}: defaultMode"));
    assert_eq!(mode & 0o007, 0, "{what}: the key is not readable by others");
    assert_eq!(
        pod.security_context.as_ref().and_then(|s| s.fs_group),
        Some(NONROOT),
        "{what}: the files belong to the exporter's group"
    );

    let config_maps: Vec<ConfigMap> = all_of(objects, "ConfigMap");
    let mut files: BTreeMap<String, Projected> = BTreeMap::new();
    for source in projected.sources.iter().flatten() {
        let from = match (&source.config_map, &source.secret) {
            (Some(cm), None) => {
                let object = config_maps
                    .iter()
                    .find(|o| o.metadata.name.as_deref() == Some(cm.name.as_str()))
                    .unwrap_or_else(|| panic!("{what}: ConfigMap {} is in the rendering", cm.name));
                assert_eq!(namespace_of(&object.metadata), w.namespace(), "{what}");
                let data = object.data.clone().unwrap_or_default();
                cm.items
                    .iter()
                    .flatten()
                    .map(|item| {
                        let text = data.get(&item.key).unwrap_or_else(|| {
                            panic!("{what}: ConfigMap {} has no key {}", cm.name, item.key)
                        });
                        (item.path.clone(), Projected::ConfigMap(text.clone()))
                    })
                    .collect::<Vec<_>>()
            }
            (None, Some(secret)) => secret
                .items
                .iter()
                .flatten()
                .map(|item| {
                    let from = Projected::Secret(secret.name.clone(), item.key.clone());
                    (item.path.clone(), from)
                })
                .collect(),
            _ => panic!("{what}: only a ConfigMap and a Secret are projected"),
        };
        for (path, from) in from {
            assert!(
                files.insert(path.clone(), from).is_none(),
                "{what}: {path} twice"
            );
        }
    }
    let name = file.file_name().and_then(|n| n.to_str()).expect("a name");
    let Some(Projected::ConfigMap(text)) = files.get(name) else {
        panic!("{what}: {name} comes from the ConfigMap: {files:?}")
    };

    // The configuration asks for client certificates; the files it names come from the Secret.
    let config: Value =
        serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{what}: {name} is not YAML: {e}"));
    let tls = &config["tls_server_config"];
    assert_eq!(
        tls["client_auth_type"], "RequireAndVerifyClientCert",
        "{what}: {name}"
    );
    let (ca, cert, key) = certificates("kube-rollout-exporter.kube-rollout-exporter.svc");
    let temp = TempDir::new(&name.replace('.', "-"));
    std::fs::write(temp.0.join(name), text).expect("write");
    for (field, pem) in [
        ("cert_file", cert),
        ("key_file", key),
        ("client_ca_file", ca),
    ] {
        let path = tls[field]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: {name}: tls_server_config.{field}"));
        assert!(
            matches!(files.get(path), Some(Projected::Secret(..))),
            "{what}: {name}: {field} {path} comes from the Secret: {files:?}"
        );
        std::fs::write(temp.0.join(path), pem).expect("write");
    }
    let loaded = WebConfig::load(&temp.0.join(name))
        .unwrap_or_else(|e| panic!("{what}: the binary rejects {name}: {e}"));
    assert!(loaded.tls.is_some(), "{what}: {name} serves TLS");
    // One Secret holds the exporter's certificates, under the keys a cert-manager Certificate
    // writes, so that its Secret can be used as it is.
    let exporter_secrets: BTreeSet<&str> = files
        .values()
        .filter_map(|from| match from {
            Projected::Secret(secret, key) => {
                assert!(
                    ["tls.crt", "tls.key", "ca.crt"].contains(&key.as_str()),
                    "{what}: Secret {secret}: {key} is not a key cert-manager writes"
                );
                Some(secret.as_str())
            }
            Projected::ConfigMap(_) => None,
        })
        .collect();
    assert_eq!(exporter_secrets.len(), 1, "{what}: one Secret: {files:?}");

    // Prometheus checks the exporter's certificate and presents its own.
    let svc: Service = one(objects, "Service");
    let sm: ServiceMonitor = one(objects, "ServiceMonitor");
    let server_name = format!(
        "{}.{}.svc",
        svc.metadata.name.as_deref().unwrap_or_default(),
        namespace_of(&svc.metadata)
    );
    for endpoint in &sm.spec.endpoints {
        assert_eq!(endpoint.scheme.as_deref(), Some("https"), "{what}");
        let tls = endpoint
            .tls_config
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: ServiceMonitor tlsConfig"));
        assert_eq!(
            tls.server_name.as_deref(),
            Some(server_name.as_str()),
            "{what}: ServiceMonitor serverName, the Service's DNS name"
        );
        let secrets: BTreeSet<&str> = [
            tls.ca.as_ref().map(|r| &r.secret),
            tls.cert.as_ref().map(|r| &r.secret),
            tls.key_secret.as_ref(),
        ]
        .into_iter()
        .map(|s| {
            let s = s.unwrap_or_else(|| panic!("{what}: ServiceMonitor ca, cert and keySecret"));
            assert!(!s.key.is_empty(), "{what}");
            s.name.as_str()
        })
        .collect();
        assert_eq!(secrets.len(), 1, "{what}: one Secret for Prometheus");
        assert!(
            secrets.is_disjoint(&exporter_secrets),
            "{what}: Prometheus's Secret is not the exporter's (its private key stays in the pod)"
        );
    }
}

#[test]
fn tls_overlay_serves_metrics_over_tls_and_probes_in_plain() {
    assert_serves_tls(&render(TLS), TLS);
}

/// `base` rendered, then the resources and patches of `overlay` on top, its Deployment patches
/// aimed at the StatefulSet instead: what an overlay of `base` with copies of `overlay`'s files
/// renders.
fn render_on_statefulset(base: &str, overlay: &str) -> Vec<Value> {
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
fn tls_patches_fit_the_sharded_statefulset() {
    let objects = render_on_statefulset(SHARDED, TLS);
    let what = format!("{SHARDED} with the patches of {TLS}");
    for object in &objects {
        check_object(object, &what);
    }
    assert_serves_tls(&objects, &what);
    let w = workload(&objects);
    for pod in w.pod_names() {
        let args = exporter_args_in(&w, &pod, &what);
        assert_eq!(args.pod.as_deref(), Some(pod.as_str()), "{what}");
        assert!(args.web_config_file.is_some(), "{what}");
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

    let w = workload(&render(CLUSTER));
    let port = exporter(&w)
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
