//! ControllerRevisions, as the StatefulSet and DaemonSet controllers keep them: one per distinct
//! pod template a workload has had, named `<workload>-<hash>`, holding the template as a
//! strategic-merge patch (`data`), numbered by `revision`. The newest number is the update
//! revision; going back to an earlier template (a rollback) reuses that template's revision and
//! raises its number above the others, keeping its name and creationTimestamp.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{Value, json};

use super::{World, controller_ref, controller_uid, key_of};
use crate::store::{Kind, Object};

/// The label holding the hash on a StatefulSet's ControllerRevisions.
pub const STATEFULSET_REVISION_HASH: &str = "controller.kubernetes.io/hash";
/// The label holding the revision on pods of both kinds (a StatefulSet's pods: the whole revision
/// name; a DaemonSet's pods: the hash only) and the hash on a DaemonSet's ControllerRevisions.
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";

/// The workload a revision belongs to, and what its revisions copy from it.
pub(crate) struct Owner<'a> {
    /// `StatefulSet` or `DaemonSet`.
    pub kind: &'static str,
    pub meta: &'a ObjectMeta,
    pub template: &'a PodTemplateSpec,
    /// Revisions kept beyond the ones in use (`spec.revisionHistoryLimit`, 10 by default).
    pub history_limit: i32,
}

impl Owner<'_> {
    /// The label a revision carries its hash under: it differs by kind.
    fn hash_label(&self) -> &'static str {
        match self.kind {
            "DaemonSet" => CONTROLLER_REVISION_HASH,
            _ => STATEFULSET_REVISION_HASH,
        }
    }
}

/// A revision's `data`: the template as a patch that replaces the workload's template, as both
/// controllers' `getPatch` write it (keys sorted, `$patch: replace` inside the template).
pub(super) fn revision_data(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut t {
        map.insert("$patch".into(), Value::String("replace".into()));
    }
    json!({ "spec": { "template": t } })
}

/// The hash in a revision's name: `HashControllerRevision` (FNV-1 over the data's JSON, then the
/// collision count, 0 here), its decimal digits written in the API server's "safe" alphabet, so
/// it only holds `4-9bcdf` as the real ones do. Always ten characters (a real one is shorter when
/// the hash is below 10⁹): names stay predictable.
pub fn revision_hash(data: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bytes = serde_json::to_vec(data).unwrap_or_default();
    bytes.push(b'0');
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h = h.wrapping_mul(0x0100_0193);
        h ^= u32::from(b);
    }
    let h = u64::from(h) % 3_294_967_296 + 1_000_000_000;
    h.to_string()
        .bytes()
        .map(|d| ALPHABET[d as usize % ALPHABET.len()] as char)
        .collect()
}

/// The template a revision holds, as `kubectl rollout undo --to-revision` reads it back.
pub fn revision_template(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = revision
        .data
        .as_ref()?
        .0
        .get("spec")?
        .get("template")?
        .clone();
    if let Value::Object(map) = &mut t {
        map.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

impl World {
    /// The ControllerRevisions whose controller is the object with this uid, by `revision`.
    pub(super) fn owned_revisions(&self, uid: &str) -> Vec<ControllerRevision> {
        let mut v: Vec<ControllerRevision> = self
            .store
            .controller_revisions()
            .filter(|r| controller_uid(&r.metadata).as_deref() == Some(uid))
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.revision, &a.metadata.name).cmp(&(b.revision, &b.metadata.name)));
        v
    }

    /// The revision of the owner's current template, created (numbered one above the others) or,
    /// when an older revision holds the same template, that one with its number raised above the
    /// others: the first thing both controllers do in a sync, so the revision is written right
    /// after the workload change that caused it. `None` when the name is taken by an object this
    /// owner does not control (left by a deleted namesake; the garbage collector removes it).
    pub(super) fn sync_revisions(&mut self, owner: &Owner) -> Option<ControllerRevision> {
        let uid = owner.meta.uid.clone().unwrap_or_default();
        let revisions = self.owned_revisions(&uid);
        let data = revision_data(owner.template);
        let max = revisions.iter().map(|r| r.revision).max().unwrap_or(0);
        if let Some(equal) = revisions
            .iter()
            .rev()
            .find(|r| r.data.as_ref().map(|d| &d.0) == Some(&data))
        {
            if equal.revision == max {
                return Some(equal.clone());
            }
            let mut raised = equal.clone();
            raised.revision = max + 1;
            return match self
                .store
                .update(Object::ControllerRevision(raised))
                .as_deref()
            {
                Some(Object::ControllerRevision(r)) => Some(r.clone()),
                _ => None,
            };
        }
        let revision = revision_object(owner, max + 1);
        let key = key_of(&revision.metadata);
        if self.store.get(Kind::ControllerRevision, &key).is_some() {
            return None;
        }
        match &*self.store.create(Object::ControllerRevision(revision)) {
            Object::ControllerRevision(r) => Some(r.clone()),
            _ => None,
        }
    }

    /// Deletes the oldest revisions no longer in use (`live` answers which are) beyond the
    /// owner's history limit, as both controllers' history cleanup does.
    pub(super) fn cleanup_revisions(
        &mut self,
        owner: &Owner,
        live: impl Fn(&ControllerRevision) -> bool,
    ) {
        let uid = owner.meta.uid.clone().unwrap_or_default();
        let unused: Vec<ControllerRevision> = self
            .owned_revisions(&uid)
            .into_iter()
            .filter(|r| !live(r))
            .collect();
        let excess = unused
            .len()
            .saturating_sub(owner.history_limit.max(0) as usize);
        for r in unused.iter().take(excess) {
            self.store
                .remove(Kind::ControllerRevision, &key_of(&r.metadata));
        }
    }
}

/// A new ControllerRevision of the owner's template: named by its hash, labelled with the
/// template's labels and the hash (under the kind's own label), the DaemonSet controller copying
/// the DaemonSet's annotations (its template generation) and the StatefulSet controller none.
pub(crate) fn revision_object(owner: &Owner, revision: i64) -> ControllerRevision {
    let data = revision_data(owner.template);
    let hash = revision_hash(&data);
    let owner_name = owner.meta.name.clone().unwrap_or_default();
    let labels = labels_with(owner.template, &[(owner.hash_label(), hash.clone())]);
    let annotations = match owner.kind {
        "DaemonSet" => owner.meta.annotations.clone(),
        _ => None,
    };
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{owner_name}-{hash}")),
            namespace: owner.meta.namespace.clone(),
            labels: Some(labels),
            annotations,
            owner_references: Some(vec![controller_ref("apps/v1", owner.kind, owner.meta)]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

/// Template labels plus more, as pods and revisions carry them.
pub(super) fn labels_with(
    template: &PodTemplateSpec,
    extra: &[(&str, String)],
) -> BTreeMap<String, String> {
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    for (k, v) in extra {
        labels.insert((*k).into(), v.clone());
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_ten_safe_characters_and_stable() {
        let t = PodTemplateSpec::default();
        let h = revision_hash(&revision_data(&t));
        assert_eq!(h.len(), 10);
        assert!(h.chars().all(|c| "456789bcdf".contains(c)), "{h}");
        assert_eq!(h, revision_hash(&revision_data(&t)));
        let mut other = t.clone();
        other.metadata = Some(ObjectMeta {
            labels: Some(BTreeMap::from([("app".into(), "x".into())])),
            ..Default::default()
        });
        assert_ne!(h, revision_hash(&revision_data(&other)));
    }

    #[test]
    fn a_revision_gives_its_template_back() {
        let t = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(BTreeMap::from([("app".into(), "x".into())])),
                ..Default::default()
            }),
            spec: None,
        };
        let r = ControllerRevision {
            data: Some(RawExtension(revision_data(&t))),
            ..Default::default()
        };
        assert_eq!(
            r.data.as_ref().unwrap().0["spec"]["template"]["$patch"],
            "replace"
        );
        assert_eq!(revision_template(&r), Some(t));
    }
}
