//! The exporter's container: hardened (non-root, read-only, no capabilities), probed on the right
//! port, with requests and limits.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::kustomize::render;
use crate::{BASE, NONROOT, PORT_NAME, PROBE_PORT_NAME, RENDERINGS, SHARDED, read, repo_path};

use crate::workload::{Workload, exporter, exporter_args, pod_spec, workload};

/// The kubelet's probes reach /healthz and /readyz: on the metrics port, or on the probe
/// listener's port when there is one, which a web configuration needs (kubelet probes present no
/// client certificate and no password). The web configuration file is on a read-only mount.
pub(crate) fn assert_probed(w: &Workload, what: &str) {
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
