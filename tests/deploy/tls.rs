//! The TLS overlay: `--web.config.file` serves TLS with client certificates, the configuration
//! loads, Prometheus scrapes with a client certificate; on the Deployment and on the sharded
//! StatefulSet.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube_rollout_exporter::web_config::WebConfig;
use serde_json::Value;

use crate::common::TempDir;
use crate::container::assert_probed;
use crate::kustomize::{render, render_on_statefulset};
use crate::monitoring::ServiceMonitor;
use crate::objects::{all_of, check_object, one};
use crate::workload::{
    exporter, exporter_args, exporter_args_in, namespace_of, pod_spec, workload,
};
use crate::{NONROOT, SHARDED, TLS};

/// A CA, and a server certificate and key it issued for `name`, in PEM.
pub(crate) fn certificates(name: &str) -> (String, String, String) {
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
pub(crate) enum Projected {
    /// A ConfigMap of the rendering: its text.
    ConfigMap(String),
    /// A Secret the user creates: its name and key.
    Secret(String, String),
}

/// `--web.config.file` serves TLS with client certificates from a ConfigMap of the rendering and
/// certificates from a Secret, mounted together; the configuration loads; Prometheus scrapes with
/// a client certificate. What the TLS overlay promises, on whatever workload `objects` runs.
pub(crate) fn assert_serves_tls(objects: &[Value], what: &str) {
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
    let temp = TempDir::new(&format!("deploy-{}", name.replace('.', "-")));
    std::fs::write(temp.path().join(name), text).expect("write");
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
        std::fs::write(temp.path().join(path), pem).expect("write");
    }
    let loaded = WebConfig::load(&temp.path().join(name))
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
