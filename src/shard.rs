//! Workload-consistent sharding: with `--total-shards N`, each exporter keeps only the workloads
//! whose key (namespace + workload name) hashes to its shard, so a Deployment, its ReplicaSets and
//! its Pods always land in the same shard and every rollout is seen whole by one exporter.
//!
//! A Deployment's key is its own name; a ReplicaSet's is its controlling Deployment's name; a
//! Pod's is its controlling ReplicaSet's name minus the `-<pod-template-hash>` suffix. Objects
//! that belong to no Deployment are keyed by their own name (the model ignores them anyway).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The pod-template-hash label (kept by `Lean` for sharding).
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// This exporter's shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sharding {
    pub shard: u64,
    pub total: u64,
}

impl Default for Sharding {
    fn default() -> Self {
        Self { shard: 0, total: 1 }
    }
}

/// FNV-1a, 64 bit: stable across versions and platforms, so a workload stays in its shard when
/// the exporter is upgraded.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h ^= u64::from(b'/');
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in part.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

impl Sharding {
    pub fn is_sharded(&self) -> bool {
        self.total > 1
    }

    /// Whether the workload `namespace/name` belongs to this shard.
    pub fn owns(&self, namespace: &str, workload: &str) -> bool {
        self.total <= 1 || fnv1a(&[namespace, workload]) % self.total == self.shard
    }

    /// Whether an object belongs to this shard, by its workload key.
    pub fn owns_object(&self, meta: &ObjectMeta) -> bool {
        if !self.is_sharded() {
            return true;
        }
        let namespace = meta.namespace.as_deref().unwrap_or("");
        self.owns(namespace, &workload_of(meta))
    }
}

fn controller(meta: &ObjectMeta) -> Option<(&str, &str)> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
        .map(|r| (r.kind.as_str(), r.name.as_str()))
}

/// The workload name an object belongs to. See the module documentation.
pub fn workload_of(meta: &ObjectMeta) -> String {
    let own = meta.name.clone().unwrap_or_default();
    match controller(meta) {
        Some(("Deployment", name)) => name.to_string(),
        Some(("ReplicaSet", rs)) => {
            let hash = meta.labels.as_ref().and_then(|l| l.get(POD_TEMPLATE_HASH));
            match hash.and_then(|h| rs.strip_suffix(h.as_str())?.strip_suffix('-')) {
                Some(deployment) => deployment.to_string(),
                // Without the label, the hash is still the last dash-separated part of the name.
                None => rs.rsplit_once('-').map_or(rs, |(d, _)| d).to_string(),
            }
        }
        _ => own,
    }
}

/// A StatefulSet pod's ordinal: the number after its last dash.
pub fn ordinal_of(pod_name: &str) -> Option<u64> {
    pod_name.rsplit_once('-')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use std::collections::BTreeMap;

    fn meta(name: &str, owner: Option<(&str, &str)>, hash: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("shop".into()),
            owner_references: owner.map(|(kind, n)| {
                vec![OwnerReference {
                    kind: kind.into(),
                    name: n.into(),
                    controller: Some(true),
                    ..Default::default()
                }]
            }),
            labels: hash.map(|h| BTreeMap::from([(POD_TEMPLATE_HASH.to_string(), h.to_string())])),
            ..Default::default()
        }
    }

    #[test]
    fn a_deployment_its_replicasets_and_pods_share_a_key() {
        let d = meta("my-web", None, None);
        let rs = meta(
            "my-web-5d8f7c9b4",
            Some(("Deployment", "my-web")),
            Some("5d8f7c9b4"),
        );
        let pod = meta(
            "my-web-5d8f7c9b4-x2k9p",
            Some(("ReplicaSet", "my-web-5d8f7c9b4")),
            Some("5d8f7c9b4"),
        );
        let unlabelled = meta(
            "my-web-5d8f7c9b4-q",
            Some(("ReplicaSet", "my-web-5d8f7c9b4")),
            None,
        );
        for m in [&d, &rs, &pod, &unlabelled] {
            assert_eq!(workload_of(m), "my-web");
        }
        for total in 1..=7 {
            let owners: Vec<u64> = (0..total)
                .filter(|&shard| Sharding { shard, total }.owns_object(&pod))
                .collect();
            assert_eq!(owners.len(), 1, "exactly one of {total} shards owns it");
            let shard = owners[0];
            let s = Sharding { shard, total };
            assert!(s.owns_object(&d) && s.owns_object(&rs));
        }
    }

    #[test]
    fn ordinals_and_spread() {
        assert_eq!(ordinal_of("kube-rollout-exporter-2"), Some(2));
        assert_eq!(ordinal_of("exporter"), None);
        let total = 4;
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            let name = format!("app-{i}");
            let shard = (0..total)
                .find(|&s| Sharding { shard: s, total }.owns("ns", &name))
                .unwrap_or(0);
            counts[shard as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }
}
