//! Workload-consistent sharding: with `--total-shards N`, each exporter keeps only the workloads
//! whose key (namespace + workload name) hashes to its shard, so a workload, its ReplicaSets or
//! ControllerRevisions and its Pods always land in the same shard and every rollout is seen whole by one exporter.
//!
//! A workload's key is its own name; a ReplicaSet's is its controlling Deployment's name; a
//! StatefulSet's or DaemonSet's pods and ControllerRevisions take their controller's name; a
//! Deployment's Pod takes its controlling ReplicaSet's name minus the `-<pod-template-hash>`
//! suffix. Objects that belong to no workload are keyed by their own name (the model ignores
//! them anyway).

/// The pod-template-hash label (kept by `decode::Meta` for sharding).
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
}

/// The name of the workload an object belongs to (see the module documentation), from its own
/// name, its controller owner reference (kind, name) and its pod-template-hash label.
pub fn workload_name<'a>(
    name: &'a str,
    controller: Option<(&'a str, &'a str)>,
    hash: Option<&str>,
) -> &'a str {
    match controller {
        Some(("Deployment" | "StatefulSet" | "DaemonSet", workload)) => workload,
        Some(("ReplicaSet", rs)) => {
            match hash.and_then(|h| rs.strip_suffix(h)?.strip_suffix('-')) {
                Some(deployment) => deployment,
                // Without the label, the hash is still the last dash-separated part of the name.
                None => rs.rsplit_once('-').map_or(rs, |(d, _)| d),
            }
        }
        _ => name,
    }
}

/// A StatefulSet pod's ordinal: the number after its last dash.
pub fn ordinal_of(pod_name: &str) -> Option<u64> {
    pod_name.rsplit_once('-')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An object's name, controller and pod-template-hash label.
    type Object<'a> = (&'a str, Option<(&'a str, &'a str)>, Option<&'a str>);

    fn meta<'a>(
        name: &'a str,
        owner: Option<(&'a str, &'a str)>,
        hash: Option<&'a str>,
    ) -> Object<'a> {
        (name, owner, hash)
    }

    fn workload_of<'a>(o: &Object<'a>) -> &'a str {
        workload_name(o.0, o.1, o.2)
    }

    fn owns_object(s: Sharding, o: &Object<'_>) -> bool {
        s.owns("shop", workload_of(o))
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
                .filter(|&shard| owns_object(Sharding { shard, total }, &pod))
                .collect();
            assert_eq!(owners.len(), 1, "exactly one of {total} shards owns it");
            let shard = owners[0];
            let s = Sharding { shard, total };
            assert!(owns_object(s, &d) && owns_object(s, &rs));
        }
    }

    #[test]
    fn a_statefulset_or_daemonset_its_revisions_and_pods_share_a_key() {
        for kind in ["StatefulSet", "DaemonSet"] {
            let workload = meta("pg", None, None);
            let revision = meta("pg-557fc698f7", Some((kind, "pg")), None);
            // A StatefulSet pod's name is not its workload's plus a hash: only the owner says.
            let pod = meta("pg-0", Some((kind, "pg")), None);
            for m in [&workload, &revision, &pod] {
                assert_eq!(workload_of(m), "pg", "{kind}");
            }
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
