//! Which workloads an exporter watches and keeps: the namespaces and the label selector the API
//! server filters by, then, in the watch adapter before the model, the shard and the allow/deny
//! lists of `--workloads.allow`/`--workloads.deny` (cardinality control for big clusters), by the
//! workload key of every object (namespace and workload name, see `shard`). Built once from the
//! flags (`cli::Args::selection`) and shared by every watch.

use crate::shard::Sharding;

/// A `namespace/name` pattern where `*` matches any run of characters (`shop/*`, `*/web-*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadPattern {
    namespace: String,
    name: String,
}

/// Whether `text` matches `pattern` with `*` wildcards.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

impl WorkloadPattern {
    /// Parses `namespace/name`; a pattern without `/` matches that name in every namespace.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (namespace, name) = s.split_once('/').unwrap_or(("*", s));
        if namespace.is_empty() || name.is_empty() || name.contains('/') {
            return Err(format!(
                "'{s}' is not a workload pattern: use namespace/name with * wildcards, e.g. shop/* or */web-*"
            ));
        }
        Ok(Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }

    pub fn matches(&self, namespace: &str, name: &str) -> bool {
        glob(&self.namespace, namespace) && glob(&self.name, name)
    }
}

/// The workloads this exporter watches and keeps.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Namespaces to watch; empty watches the whole cluster.
    pub namespaces: Vec<String>,
    /// Label selector for Deployments; their ReplicaSets and pods follow by ownership.
    pub selector: Option<String>,
    /// This exporter's shard.
    pub sharding: Sharding,
    /// Empty keeps every workload.
    pub allow: Vec<WorkloadPattern>,
    pub deny: Vec<WorkloadPattern>,
}

impl Selection {
    /// Whether the workload `namespace/name` is kept: in this shard, allowed (or no allow list)
    /// and not denied.
    pub fn keeps(&self, namespace: &str, workload: &str) -> bool {
        self.sharding.owns(namespace, workload)
            && (self.allow.is_empty() || self.allow.iter().any(|p| p.matches(namespace, workload)))
            && !self.deny.iter().any(|p| p.matches(namespace, workload))
    }

    /// Whether every workload is kept (one shard, no allow or deny list), so that a watch need
    /// not work out which workload an object belongs to.
    pub fn keeps_every_workload(&self) -> bool {
        !self.sharding.is_sharded() && self.allow.is_empty() && self.deny.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, t, want) in [
            ("*", "anything", true),
            ("web", "web", true),
            ("web", "web2", false),
            ("web-*", "web-api", true),
            ("*-api", "web-api", true),
            ("*-api", "api", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxcyyb", false),
        ] {
            assert_eq!(glob(p, t), want, "{p} ~ {t}");
        }
    }

    #[test]
    fn allow_then_deny() {
        let s = Selection {
            allow: vec![WorkloadPattern::parse("shop/*").unwrap_or_else(|e| panic!("{e}"))],
            deny: vec![WorkloadPattern::parse("*-canary").unwrap_or_else(|e| panic!("{e}"))],
            ..Default::default()
        };
        assert!(s.keeps("shop", "web"));
        assert!(!s.keeps("blog", "web"), "not allowed");
        assert!(!s.keeps("shop", "web-canary"), "denied in any namespace");
        assert!(!s.keeps_every_workload());
        assert!(Selection::default().keeps("any", "thing"));
        assert!(Selection::default().keeps_every_workload());
        assert!(WorkloadPattern::parse("a/b/c").is_err());
        assert!(WorkloadPattern::parse("/x").is_err());
    }
}
