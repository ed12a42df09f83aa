//! The sharded overlay's StatefulSet: one pod per shard, each finding its shard from the downward
//! API, otherwise the base Deployment's pod.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Service;
use kube_rollout_exporter::shard::ordinal_of;
use serde_json::Value;

use crate::kustomize::render;
use crate::objects::{all_of, differences, one};
use crate::workload::{Workload, exporter, exporter_args_in, selects, workload};
use crate::{CLUSTER, SHARDED};

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
