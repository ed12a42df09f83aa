//! The exporter's workload in a rendering (its Deployment, or the sharded overlay's StatefulSet),
//! its container, and the flags the kubelet passes it, parsed by the binary's own parser.

use std::collections::BTreeMap;

use clap::Parser;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube_rollout_exporter::cli::Args;
use serde_json::Value;

use crate::NAME;
use crate::objects::all_of;

/// The exporter's workload in a rendering: its Deployment, or the sharded overlay's StatefulSet.
pub(crate) struct Workload {
    pub(crate) kind: &'static str,
    pub(crate) metadata: ObjectMeta,
    pub(crate) replicas: Option<i32>,
    pub(crate) selector: LabelSelector,
    pub(crate) template: PodTemplateSpec,
}

/// The one Deployment or StatefulSet of a rendering.
pub(crate) fn workload(objects: &[Value]) -> Workload {
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
    pub(crate) fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    pub(crate) fn namespace(&self) -> &str {
        namespace_of(&self.metadata)
    }

    pub(crate) fn template_labels(&self) -> BTreeMap<String, String> {
        self.template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default()
    }

    /// The names its pods get: `<name>-<ordinal>` for a StatefulSet, one made-up example
    /// `<name>-<pod-template-hash>-<suffix>` for a Deployment.
    pub(crate) fn pod_names(&self) -> Vec<String> {
        match self.kind {
            "StatefulSet" => (0..self.replicas.unwrap_or(1))
                .map(|i| format!("{}-{i}", self.name()))
                .collect(),
            _ => vec![format!("{}-5d8f7c9b4-x2k9p", self.name())],
        }
    }
}

pub(crate) fn pod_spec(w: &Workload) -> &PodSpec {
    w.template
        .spec
        .as_ref()
        .unwrap_or_else(|| panic!("the {} has a pod spec", w.kind))
}

/// The exporter's container: the pod's only one.
pub(crate) fn exporter(w: &Workload) -> &Container {
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
pub(crate) fn expanded_args(c: &Container, pod: &str, namespace: &str, what: &str) -> Vec<String> {
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
pub(crate) fn exporter_args_in(w: &Workload, pod: &str, what: &str) -> Args {
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
pub(crate) fn exporter_args(w: &Workload, what: &str) -> Args {
    exporter_args_in(w, &w.pod_names()[0], what)
}

pub(crate) fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or_default()
}

/// Whether every label of `selector` is in `labels`.
pub(crate) fn selects(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}
