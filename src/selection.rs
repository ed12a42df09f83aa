//! Which workloads an exporter keeps: its shard, and the allow/deny lists of
//! `--workloads.allow`/`--workloads.deny` (cardinality control for big clusters). Applied in the
//! watch adapter, before the model, by the workload key of every object (see `shard`).

use std::sync::Arc;

use crate::decode::Meta;
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

/// The workloads this exporter keeps.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub sharding: Sharding,
    /// Empty keeps every workload.
    pub allow: Arc<[WorkloadPattern]>,
    pub deny: Arc<[WorkloadPattern]>,
}

impl Selection {
    /// Whether the workload `namespace/name` is kept: in this shard, allowed (or no allow list)
    /// and not denied.
    pub fn keeps(&self, namespace: &str, workload: &str) -> bool {
        self.sharding.owns(namespace, workload)
            && (self.allow.is_empty() || self.allow.iter().any(|p| p.matches(namespace, workload)))
            && !self.deny.iter().any(|p| p.matches(namespace, workload))
    }

    /// Whether an object is kept, by its workload key.
    pub fn keeps_object(&self, meta: &Meta<'_>) -> bool {
        if !self.sharding.is_sharded() && self.allow.is_empty() && self.deny.is_empty() {
            return true;
        }
        let (namespace, workload) = meta.workload_key();
        self.keeps(namespace, workload)
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
            allow: vec![WorkloadPattern::parse("shop/*").unwrap_or_else(|e| panic!("{e}"))].into(),
            deny: vec![WorkloadPattern::parse("*-canary").unwrap_or_else(|e| panic!("{e}"))].into(),
            ..Default::default()
        };
        assert!(s.keeps("shop", "web"));
        assert!(!s.keeps("blog", "web"), "not allowed");
        assert!(!s.keeps("shop", "web-canary"), "denied in any namespace");
        assert!(Selection::default().keeps("any", "thing"));
        assert!(WorkloadPattern::parse("a/b/c").is_err());
        assert!(WorkloadPattern::parse("/x").is_err());
    }
}
