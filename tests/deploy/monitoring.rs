//! The prometheus-operator objects (ServiceMonitor, PrometheusRule) as strict structs, and their
//! checks: the ServiceMonitor scrapes the exporter as its flags serve, the PrometheusRule holds
//! exactly the rule groups of `alerts/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use serde_json::Value;

use crate::kustomize::render;
use crate::objects::{id, one};
use crate::workload::{exporter_args, selects, workload};
use crate::{BASE, GENERATOR, NAME, PORT_NAME, RENDERINGS, repo_path, shown, strict, yaml_docs};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Meta {
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
}

/// The ServiceMonitor fields the manifest uses (monitoring.coreos.com/v1).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ServiceMonitor {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) metadata: Meta,
    pub(crate) spec: ServiceMonitorSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ServiceMonitorSpec {
    pub(crate) selector: MatchLabels,
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) job_label: Option<String>,
    pub(crate) namespace_selector: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct MatchLabels {
    pub(crate) match_labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Endpoint {
    pub(crate) port: String,
    pub(crate) path: String,
    pub(crate) interval: String,
    pub(crate) honor_labels: Option<bool>,
    pub(crate) scheme: Option<String>,
    pub(crate) tls_config: Option<TlsConfig>,
}

/// The fields of the operator's SafeTLSConfig the TLS overlay uses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct TlsConfig {
    pub(crate) server_name: Option<String>,
    pub(crate) ca: Option<SecretRef>,
    pub(crate) cert: Option<SecretRef>,
    pub(crate) key_secret: Option<SecretKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretRef {
    pub(crate) secret: SecretKey,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretKey {
    pub(crate) name: String,
    pub(crate) key: String,
}

/// A PrometheusRule (monitoring.coreos.com/v1).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PrometheusRule {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) metadata: Meta,
    pub(crate) spec: RuleFile,
}

/// A Prometheus rule file, or a PrometheusRule's spec: the same shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleFile {
    pub(crate) groups: Vec<RuleGroup>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleGroup {
    pub(crate) name: String,
    pub(crate) rules: Vec<Rule>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rule {
    pub(crate) record: Option<String>,
    pub(crate) alert: Option<String>,
    pub(crate) expr: String,
    #[serde(rename = "for")]
    pub(crate) for_: Option<String>,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) annotations: BTreeMap<String, String>,
}

impl RuleGroup {
    pub(crate) fn rule_names(&self) -> Vec<&str> {
        self.rules.iter().map(Rule::name).collect()
    }
}

impl Rule {
    pub(crate) fn name(&self) -> &str {
        self.alert
            .as_deref()
            .or(self.record.as_deref())
            .unwrap_or("(unnamed)")
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
