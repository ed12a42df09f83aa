//! The deploy manifests in `deploy/kubernetes/`, checked against the code they deploy.
//!
//! Every Kubernetes object must survive a round trip through its k8s-openapi type (a misspelled or
//! misplaced field is dropped on the way, and the difference fails); the prometheus-operator
//! objects and the kustomizations, which have no such type, must fit structs here that reject
//! unknown fields. The RBAC rules must grant exactly `watch::WATCHED` (plus, in the sharded
//! overlay only, the two `get`s of automatic sharding), the PrometheusRule must hold exactly the
//! rule groups of `alerts/`, and the exporter's flags must parse with the binary's own parser.
//! Neither kubectl nor kustomize runs here (Debian's kubectl embeds a kustomize too old for these
//! files): [`kustomize::render`] applies the few kustomize features the files use and fails on
//! any other.
//!
//! One module per subject: [`kustomize`] (rendering, the kustomizations), [`objects`] (each
//! object fits its type), [`workload`] (the exporter's Deployment or StatefulSet, container and
//! flags), [`rbac`], [`container`] (hardening, probes, resources), [`sharded`] (the sharded
//! overlay's StatefulSet), [`monitoring`] (ServiceMonitor, PrometheusRule), [`tls`] (the TLS
//! overlay) and [`image`] (the Dockerfile). This file holds the paths, names and file helpers
//! they share.

#[path = "../common/mod.rs"]
mod common;
mod container;
mod image;
mod kustomize;
mod monitoring;
mod objects;
mod rbac;
mod sharded;
mod tls;
mod workload;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

/// What `kubectl apply -k deploy/kubernetes` installs: the base, cluster-wide.
pub(crate) const CLUSTER: &str = "deploy/kubernetes";
pub(crate) const BASE: &str = "deploy/kubernetes/base";
/// The single-namespace overlay.
pub(crate) const NAMESPACED: &str = "deploy/kubernetes/overlays/namespaced";
/// The sharded overlay: a StatefulSet, one pod per shard.
pub(crate) const SHARDED: &str = "deploy/kubernetes/overlays/sharded";
/// The overlay serving /metrics over TLS with client certificates.
pub(crate) const TLS: &str = "deploy/kubernetes/overlays/tls";
/// Everything a user can apply as it is.
pub(crate) const RENDERINGS: [&str; 4] = [CLUSTER, NAMESPACED, SHARDED, TLS];
/// The name of every object, and of the container.
pub(crate) const NAME: &str = "kube-rollout-exporter";
pub(crate) const PORT_NAME: &str = "http-metrics";
/// The container port of `--web.probe-listen-address`.
pub(crate) const PROBE_PORT_NAME: &str = "http-probes";
/// The distroless images' `nonroot` user and group.
pub(crate) const NONROOT: i64 = 65532;
pub(crate) const READ_VERBS: [&str; 3] = ["get", "list", "watch"];
/// What automatic sharding reads besides `WATCHED`, in the exporter's own namespace only:
/// `try_discover_shard` in src/main.rs gets its own Pod, then that Pod's StatefulSet.
pub(crate) const SHARDING_GETS: [(&str, &str, &str); 2] =
    [("", "pods", "get"), ("apps", "statefulsets", "get")];
pub(crate) const GENERATOR: &str = "deploy/generate-prometheusrule.py";

pub(crate) fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A path as messages show it: relative to the repository.
pub(crate) fn shown(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .display()
        .to_string()
}

pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", shown(path)))
}

/// The YAML documents of a file as JSON values, empty documents dropped.
pub(crate) fn yaml_docs(path: &Path) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(&read(path))
        .unwrap_or_else(|e| panic!("{}: not YAML: {e}", shown(path)));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// Deserializes `doc`, failing with `what` and serde's reason.
pub(crate) fn strict<T: DeserializeOwned>(doc: &Value, what: &str) -> T {
    serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Every file under `dir`, recursively, in name order.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
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
