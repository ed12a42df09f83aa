//! RBAC: the rules grant exactly `watch::WATCHED` (a namespaced Role: its namespaced resources;
//! plus, in the sharded overlay only, the two `get`s of automatic sharding), bound to the
//! exporter's ServiceAccount.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject,
};
use kube_rollout_exporter::watch::WATCHED;
use serde_json::Value;

use crate::kustomize::{is_namespaced, kustomization, render};
use crate::objects::{all_of, id, kind, one};
use crate::workload::{exporter_args, namespace_of, pod_spec, workload};
use crate::{
    CLUSTER, NAME, NAMESPACED, READ_VERBS, RENDERINGS, SHARDED, SHARDING_GETS, TLS, repo_path,
};

/// One permission: (API group, resource, verb).
pub(crate) type Grant = (String, String, String);

/// Resources of `WATCHED` that are cluster-scoped: a Role cannot grant them.
const CLUSTER_SCOPED: [&str; 1] = ["nodes"];

pub(crate) fn watched() -> BTreeSet<Grant> {
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
pub(crate) fn grants(
    rules: &[PolicyRule],
    what: &str,
) -> BTreeMap<Grant, Option<BTreeSet<String>>> {
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
pub(crate) fn granted(rules: &[PolicyRule], what: &str) -> BTreeSet<Grant> {
    grants(rules, what)
        .into_iter()
        .map(|(grant, names)| {
            assert!(names.is_none(), "{what}: resourceNames are not used");
            grant
        })
        .collect()
}

/// What a namespaced Role can grant of `WATCHED`: all but the cluster-scoped resources.
fn watched_in_a_namespace() -> BTreeSet<Grant> {
    watched()
        .into_iter()
        .filter(|(_, resource, _)| !CLUSTER_SCOPED.contains(&resource.as_str()))
        .collect()
}

/// The rules grant exactly `WATCHED`, read-only, and never secrets.
pub(crate) fn assert_grants_exactly_watched(rules: Option<&Vec<PolicyRule>>, what: &str) {
    assert_grants_exactly(rules, &watched(), what);
}

/// The rules grant exactly `expected`, read-only, and never secrets.
fn assert_grants_exactly(rules: Option<&Vec<PolicyRule>>, expected: &BTreeSet<Grant>, what: &str) {
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
    let missing: Vec<_> = expected.difference(&granted).collect();
    let extra: Vec<_> = granted.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: the rules must grant exactly watch::WATCHED\n  watched, not granted: {missing:?}\n  \
         granted, not watched: {extra:?}"
    );
}

/// The binding's only subject is the ServiceAccount the Deployment runs as.
pub(crate) fn assert_binds_the_exporter(
    subjects: Option<&Vec<Subject>>,
    objects: &[Value],
    what: &str,
) {
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
    // Nodes are cluster-scoped: the overlay's stuck reasons degrade to `unknown` for them.
    assert_grants_exactly(role.rules.as_ref(), &watched_in_a_namespace(), "Role");
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
fn get_is_granted_only_where_the_stuck_reasons_and_sharding_need_it() {
    let gets_of = |grants: BTreeSet<Grant>, ns: &str| -> BTreeSet<(String, String, String)> {
        grants
            .into_iter()
            .filter(|(_, _, verb)| verb == "get")
            .map(|(group, resource, _)| (ns.to_string(), group, resource))
            .collect()
    };
    for dir in RENDERINGS {
        let objects = render(dir);
        // (namespace, or "" for cluster-wide; group; resource)
        let mut gets = BTreeSet::new();
        for role in all_of::<ClusterRole>(&objects, "ClusterRole") {
            let grants = grants(role.rules.as_deref().unwrap_or_default(), dir);
            gets.extend(gets_of(grants.into_keys().collect(), ""));
        }
        for role in all_of::<Role>(&objects, "Role") {
            let ns = namespace_of(&role.metadata).to_string();
            let grants = grants(role.rules.as_deref().unwrap_or_default(), dir);
            gets.extend(gets_of(grants.into_keys().collect(), &ns));
        }
        let ns = workload(&objects).namespace().to_string();
        let mut expected = if dir == NAMESPACED {
            gets_of(watched_in_a_namespace(), &ns)
        } else {
            gets_of(watched(), "")
        };
        if dir == SHARDED {
            expected.extend(
                SHARDING_GETS
                    .iter()
                    .map(|(g, r, _)| (ns.clone(), g.to_string(), r.to_string())),
            );
        }
        assert_eq!(
            gets, expected,
            "{dir}: `get` only on overdue pods and their nodes (the stuck reasons), and in the \
             sharded overlay on its own pod and StatefulSet"
        );
    }
}
