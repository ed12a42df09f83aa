//! The simulated API server's storage: objects, one resourceVersion sequence across every
//! resource, and a bounded history of changes that watches resume from (older ones are compacted,
//! as etcd compacts).

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::clock;

/// The resources the simulated API server serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Deployment,
    ReplicaSet,
    Pod,
    StatefulSet,
    DaemonSet,
    ControllerRevision,
    /// Cluster-scoped: its key's namespace is empty.
    Node,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Deployment,
        Kind::ReplicaSet,
        Kind::Pod,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::ControllerRevision,
        Kind::Node,
    ];

    pub const fn api_version(self) -> &'static str {
        match self {
            Kind::Pod | Kind::Node => "v1",
            _ => "apps/v1",
        }
    }

    pub const fn kind(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Pod => "Pod",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::ControllerRevision => "ControllerRevision",
            Kind::Node => "Node",
        }
    }

    pub const fn list_kind(self) -> &'static str {
        match self {
            Kind::Deployment => "DeploymentList",
            Kind::ReplicaSet => "ReplicaSetList",
            Kind::Pod => "PodList",
            Kind::StatefulSet => "StatefulSetList",
            Kind::DaemonSet => "DaemonSetList",
            Kind::ControllerRevision => "ControllerRevisionList",
            Kind::Node => "NodeList",
        }
    }

    /// The Go type name the API server puts in a 406 message.
    pub const fn internal_list_type(self) -> &'static str {
        match self {
            Kind::Deployment => "*apps.DeploymentList",
            Kind::ReplicaSet => "*apps.ReplicaSetList",
            Kind::Pod => "*core.PodList",
            Kind::StatefulSet => "*apps.StatefulSetList",
            Kind::DaemonSet => "*apps.DaemonSetList",
            Kind::ControllerRevision => "*apps.ControllerRevisionList",
            Kind::Node => "*core.NodeList",
        }
    }

    /// The Go type name the API server puts in a 406 message about a single object.
    pub const fn internal_type(self) -> &'static str {
        match self {
            Kind::Deployment => "*apps.Deployment",
            Kind::ReplicaSet => "*apps.ReplicaSet",
            Kind::Pod => "*core.Pod",
            Kind::StatefulSet => "*apps.StatefulSet",
            Kind::DaemonSet => "*apps.DaemonSet",
            Kind::ControllerRevision => "*apps.ControllerRevision",
            Kind::Node => "*core.Node",
        }
    }

    pub const fn plural(self) -> &'static str {
        match self {
            Kind::Deployment => "deployments",
            Kind::ReplicaSet => "replicasets",
            Kind::Pod => "pods",
            Kind::StatefulSet => "statefulsets",
            Kind::DaemonSet => "daemonsets",
            Kind::ControllerRevision => "controllerrevisions",
            Kind::Node => "nodes",
        }
    }

    /// Whether objects of the kind live in a namespace (every kind here but Node).
    pub const fn namespaced(self) -> bool {
        !matches!(self, Kind::Node)
    }

    /// Whether the API server keeps `metadata.generation` for the kind: ControllerRevisions and
    /// Nodes have none (their strategies never set it), so the recorded objects carry none.
    pub const fn has_generation(self) -> bool {
        !matches!(self, Kind::ControllerRevision | Kind::Node)
    }

    /// Whether the recorded API server answers a list of this kind in one piece with a
    /// `Content-Length` rather than chunked: it does so for ControllerRevisions (full and
    /// metadata-only, see the StatefulSet and DaemonSet recordings' `.headers`), and streams
    /// the other kinds' lists.
    pub const fn list_in_one_piece(self) -> bool {
        matches!(self, Kind::ControllerRevision)
    }

    /// Whether the exporter watches the kind in full JSON (the workloads, whose specs and status
    /// it reads) rather than metadata-only: what [`Store::eager_encoding`] prepares.
    pub const fn watched_in_full(self) -> bool {
        matches!(self, Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet)
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// One stored object.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    Deployment(Deployment),
    ReplicaSet(ReplicaSet),
    Pod(Pod),
    StatefulSet(StatefulSet),
    DaemonSet(DaemonSet),
    ControllerRevision(ControllerRevision),
    Node(Node),
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Deployment(_) => Kind::Deployment,
            Object::ReplicaSet(_) => Kind::ReplicaSet,
            Object::Pod(_) => Kind::Pod,
            Object::StatefulSet(_) => Kind::StatefulSet,
            Object::DaemonSet(_) => Kind::DaemonSet,
            Object::ControllerRevision(_) => Kind::ControllerRevision,
            Object::Node(_) => Kind::Node,
        }
    }

    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Object::Deployment(o) => &o.metadata,
            Object::ReplicaSet(o) => &o.metadata,
            Object::Pod(o) => &o.metadata,
            Object::StatefulSet(o) => &o.metadata,
            Object::DaemonSet(o) => &o.metadata,
            Object::ControllerRevision(o) => &o.metadata,
            Object::Node(o) => &o.metadata,
        }
    }

    /// Stamps a resourceVersion: a filtered watch shows an object that stopped matching with
    /// its previous content at the version of the change.
    pub fn set_resource_version(&mut self, rv: u64) {
        self.meta_mut().resource_version = Some(rv.to_string());
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::Deployment(o) => &mut o.metadata,
            Object::ReplicaSet(o) => &mut o.metadata,
            Object::Pod(o) => &mut o.metadata,
            Object::StatefulSet(o) => &mut o.metadata,
            Object::DaemonSet(o) => &mut o.metadata,
            Object::ControllerRevision(o) => &mut o.metadata,
            Object::Node(o) => &mut o.metadata,
        }
    }

    pub fn key(&self) -> Key {
        let m = self.meta();
        (
            m.namespace.clone().unwrap_or_default(),
            m.name.clone().unwrap_or_default(),
        )
    }

    /// The spec as JSON: a change bumps `metadata.generation` (kinds without a generation, and
    /// pods, whose spec is immutable here, answer null).
    fn spec_json(&self) -> Value {
        let spec = match self {
            Object::Deployment(o) => serde_json::to_value(&o.spec),
            Object::ReplicaSet(o) => serde_json::to_value(&o.spec),
            Object::StatefulSet(o) => serde_json::to_value(&o.spec),
            Object::DaemonSet(o) => serde_json::to_value(&o.spec),
            Object::Pod(_) | Object::ControllerRevision(_) | Object::Node(_) => Ok(Value::Null),
        };
        spec.unwrap_or(Value::Null)
    }

    /// The full object as the API server writes it, with `apiVersion` and `kind`.
    pub fn to_json(&self) -> Value {
        let v = match self {
            Object::Deployment(o) => serde_json::to_value(o),
            Object::ReplicaSet(o) => serde_json::to_value(o),
            Object::Pod(o) => serde_json::to_value(o),
            Object::StatefulSet(o) => serde_json::to_value(o),
            Object::DaemonSet(o) => serde_json::to_value(o),
            Object::ControllerRevision(o) => serde_json::to_value(o),
            Object::Node(o) => serde_json::to_value(o),
        };
        v.unwrap_or(Value::Null)
    }

    /// The object as an item of a full list: the API server leaves out `apiVersion` and `kind`.
    pub fn to_list_item_json(&self) -> Value {
        let mut v = self.to_json();
        if let Some(map) = v.as_object_mut() {
            map.remove("apiVersion");
            map.remove("kind");
        }
        v
    }

    /// `PartialObjectMetadata`, as served for `as=PartialObjectMetadata[List]`.
    pub fn to_meta_json(&self) -> Value {
        json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": serde_json::to_value(self.meta()).unwrap_or(Value::Null),
        })
    }

    /// Writes the object's JSON straight into `out`, without an intermediate [`Value`]: the full
    /// object ([`Encoding::Full`]), a list item without `apiVersion` and `kind`
    /// ([`Encoding::ListItem`]), or `PartialObjectMetadata` ([`Encoding::Meta`]). The same
    /// content as [`Self::to_json`], [`Self::to_list_item_json`] and [`Self::to_meta_json`]
    /// (keys in the struct's order rather than sorted); large lists and fast watches need it.
    pub fn write_json(&self, encoding: Encoding, out: &mut Vec<u8>) {
        /// A list item: the object's fields without `apiVersion` and `kind`.
        #[derive(Serialize)]
        struct Item<'a, S: Serialize, T: Serialize> {
            metadata: &'a ObjectMeta,
            #[serde(skip_serializing_if = "Option::is_none")]
            spec: &'a Option<S>,
            #[serde(skip_serializing_if = "Option::is_none")]
            status: &'a Option<T>,
        }
        /// A ControllerRevision as a list item: no spec or status, but `data` and `revision`.
        #[derive(Serialize)]
        struct RevisionItem<'a> {
            metadata: &'a ObjectMeta,
            #[serde(skip_serializing_if = "Option::is_none")]
            data: &'a Option<k8s_openapi::apimachinery::pkg::runtime::RawExtension>,
            revision: i64,
        }
        #[derive(Serialize)]
        struct Meta<'a> {
            kind: &'static str,
            #[serde(rename = "apiVersion")]
            api_version: &'static str,
            metadata: &'a ObjectMeta,
        }
        // Writing into a Vec cannot fail, and these types always serialize.
        let _ = match (encoding, self) {
            (Encoding::Full, Object::Deployment(o)) => serde_json::to_writer(out, o),
            (Encoding::Full, Object::ReplicaSet(o)) => serde_json::to_writer(out, o),
            (Encoding::Full, Object::Pod(o)) => serde_json::to_writer(out, o),
            (Encoding::Full, Object::StatefulSet(o)) => serde_json::to_writer(out, o),
            (Encoding::Full, Object::DaemonSet(o)) => serde_json::to_writer(out, o),
            (Encoding::Full, Object::ControllerRevision(o)) => serde_json::to_writer(out, o),
            (Encoding::Full, Object::Node(o)) => serde_json::to_writer(out, o),
            (Encoding::ListItem, Object::Deployment(o)) => serde_json::to_writer(
                out,
                &Item {
                    metadata: &o.metadata,
                    spec: &o.spec,
                    status: &o.status,
                },
            ),
            (Encoding::ListItem, Object::ReplicaSet(o)) => serde_json::to_writer(
                out,
                &Item {
                    metadata: &o.metadata,
                    spec: &o.spec,
                    status: &o.status,
                },
            ),
            (Encoding::ListItem, Object::Pod(o)) => serde_json::to_writer(
                out,
                &Item {
                    metadata: &o.metadata,
                    spec: &o.spec,
                    status: &o.status,
                },
            ),
            (Encoding::ListItem, Object::StatefulSet(o)) => serde_json::to_writer(
                out,
                &Item {
                    metadata: &o.metadata,
                    spec: &o.spec,
                    status: &o.status,
                },
            ),
            (Encoding::ListItem, Object::DaemonSet(o)) => serde_json::to_writer(
                out,
                &Item {
                    metadata: &o.metadata,
                    spec: &o.spec,
                    status: &o.status,
                },
            ),
            (Encoding::ListItem, Object::Node(o)) => serde_json::to_writer(
                out,
                &Item {
                    metadata: &o.metadata,
                    spec: &o.spec,
                    status: &o.status,
                },
            ),
            (Encoding::ListItem, Object::ControllerRevision(o)) => serde_json::to_writer(
                out,
                &RevisionItem {
                    metadata: &o.metadata,
                    data: &o.data,
                    revision: o.revision,
                },
            ),
            (Encoding::Meta, o) => serde_json::to_writer(
                out,
                &Meta {
                    kind: "PartialObjectMetadata",
                    api_version: "meta.k8s.io/v1",
                    metadata: o.meta(),
                },
            ),
        };
    }
}

/// The annotation the API server keeps on a DaemonSet: its template generation, which starts at
/// 1 and rises with every change of `spec.template` (not with other spec changes); the DaemonSet
/// controller labels pods and ControllerRevisions with it.
pub const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

/// What the API server's DaemonSet strategy does on create (`old` is `None`) and update: it owns
/// [`TEMPLATE_GENERATION`], so a writer cannot set it; it is 1 on create, and one more than before
/// when the template changed. Other kinds pass through.
fn admit_daemonset(old: Option<&Object>, object: &mut Object) {
    let Object::DaemonSet(ds) = object else {
        return;
    };
    let generation = match old {
        Some(Object::DaemonSet(old)) => {
            let before = old
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(TEMPLATE_GENERATION))
                .and_then(|g| g.parse::<i64>().ok())
                .unwrap_or(1);
            let changed =
                old.spec.as_ref().map(|s| &s.template) != ds.spec.as_ref().map(|s| &s.template);
            before + i64::from(changed)
        }
        _ => 1,
    };
    ds.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(TEMPLATE_GENERATION.into(), generation.to_string());
}

/// How an object is written on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// The whole object with `apiVersion` and `kind` (a watch event, a GET).
    Full,
    /// An item of a full list: no `apiVersion` or `kind`.
    ListItem,
    /// `PartialObjectMetadata`.
    Meta,
}

/// What a watch starts from: the changes still in history, then the live ones.
pub type WatchStart = (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>);

/// Namespace and name.
pub type Key = (String, String);

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One write, as watches see it.
#[derive(Clone, Debug)]
pub struct Change {
    pub rv: u64,
    pub event: EventType,
    pub object: Arc<Object>,
    /// The state before a modification: selector-filtered watches turn a change of match into
    /// ADDED or DELETED.
    pub old: Option<Arc<Object>>,
    /// `object` as written on the wire, full and metadata-only, encoded once for every watch that
    /// sends it.
    encoded: [OnceLock<Bytes>; 2],
}

impl Change {
    /// `object` as a watch event carries it, full or metadata-only; encoded on first use.
    pub fn encoded(&self, meta: bool) -> &Bytes {
        let (slot, encoding) = if meta {
            (&self.encoded[1], Encoding::Meta)
        } else {
            (&self.encoded[0], Encoding::Full)
        };
        slot.get_or_init(|| {
            let mut out = Vec::with_capacity(4096);
            self.object.write_json(encoding, &mut out);
            Bytes::from(out)
        })
    }
}

/// A watch asked to resume from a resourceVersion that is no longer in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expired {
    pub requested: u64,
    pub oldest: u64,
}

/// Objects, the resourceVersion sequence and the change history.
pub struct Store {
    rv: u64,
    objects: [BTreeMap<Key, Arc<Object>>; Kind::ALL.len()],
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Watches from a resourceVersion below this one are Expired.
    compacted: u64,
    tx: broadcast::Sender<Arc<Change>>,
    uid_counter: u64,
    /// Encode each change when it is written, in the form the exporter watches it (workloads
    /// full, the rest metadata-only), instead of when a watch first sends it: a writer that
    /// queues changes for a stopped client then leaves only copying to the watches.
    pub eager_encoding: bool,
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        Self::with_capacity(history_limit, 65_536)
    }

    /// A store whose live change channel holds at most `broadcast` changes that some watch has
    /// not taken yet (a watch that falls further behind ends, and its client resumes).
    pub fn with_capacity(history_limit: usize, broadcast: usize) -> Self {
        let (tx, _) = broadcast::channel(broadcast.max(1));
        Self {
            rv: 100,
            objects: Default::default(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 0,
            tx,
            uid_counter: 0,
            eager_encoding: false,
        }
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, kind: Kind, key: &Key) -> Option<Arc<Object>> {
        self.objects[kind.index()].get(key).cloned()
    }

    /// Every object of a kind, ordered by namespace and name.
    pub fn list(&self, kind: Kind) -> impl Iterator<Item = &Arc<Object>> {
        self.objects[kind.index()].values()
    }

    /// Objects of a kind after `after` (a continue token's last key), in key order, without
    /// walking the ones before it.
    pub fn list_after(
        &self,
        kind: Kind,
        after: Option<&Key>,
    ) -> impl Iterator<Item = &Arc<Object>> {
        let lower = match after {
            Some(k) => Bound::Excluded(k),
            None => Bound::Unbounded,
        };
        self.objects[kind.index()]
            .range::<Key, _>((lower, Bound::Unbounded))
            .map(|(_, o)| o)
    }

    pub fn count(&self, kind: Kind) -> usize {
        self.objects[kind.index()].len()
    }

    /// Changes sent that some open watch has not taken yet: a writer that wants every watch to
    /// keep up waits while this is high.
    pub fn backlog(&self) -> usize {
        self.tx.len()
    }

    pub fn deployments(&self) -> impl Iterator<Item = &Deployment> {
        self.list(Kind::Deployment).filter_map(|o| match &**o {
            Object::Deployment(d) => Some(d),
            _ => None,
        })
    }

    pub fn replicasets(&self) -> impl Iterator<Item = &ReplicaSet> {
        self.list(Kind::ReplicaSet).filter_map(|o| match &**o {
            Object::ReplicaSet(r) => Some(r),
            _ => None,
        })
    }

    pub fn pods(&self) -> impl Iterator<Item = &Pod> {
        self.list(Kind::Pod).filter_map(|o| match &**o {
            Object::Pod(p) => Some(p),
            _ => None,
        })
    }

    pub fn statefulsets(&self) -> impl Iterator<Item = &StatefulSet> {
        self.list(Kind::StatefulSet).filter_map(|o| match &**o {
            Object::StatefulSet(s) => Some(s),
            _ => None,
        })
    }

    pub fn daemonsets(&self) -> impl Iterator<Item = &DaemonSet> {
        self.list(Kind::DaemonSet).filter_map(|o| match &**o {
            Object::DaemonSet(d) => Some(d),
            _ => None,
        })
    }

    pub fn controller_revisions(&self) -> impl Iterator<Item = &ControllerRevision> {
        self.list(Kind::ControllerRevision)
            .filter_map(|o| match &**o {
                Object::ControllerRevision(r) => Some(r),
                _ => None,
            })
    }

    /// Nodes, ordered by name.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.list(Kind::Node).filter_map(|o| match &**o {
            Object::Node(n) => Some(n),
            _ => None,
        })
    }

    /// A fresh uid in the UUID text form.
    pub fn new_uid(&mut self) -> String {
        self.uid_counter += 1;
        let mut x = self.uid_counter.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5851_F42D_4C95_7F2D;
        let mut hex = String::with_capacity(32);
        for _ in 0..2 {
            x ^= x >> 33;
            x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
            x ^= x >> 33;
            hex.push_str(&format!("{x:016x}"));
        }
        format!(
            "{}-{}-4{}-a{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..32]
        )
    }

    /// Subscribes to changes after `rv`: the changes still in history, then the live ones.
    /// `None` (or 0) means "from now".
    pub fn watch_from(&self, rv: Option<u64>) -> Result<WatchStart, Expired> {
        let rx = self.tx.subscribe();
        let Some(rv) = rv.filter(|&r| r > 0) else {
            return Ok((Vec::new(), rx));
        };
        if rv < self.compacted {
            return Err(Expired {
                requested: rv,
                oldest: self.compacted,
            });
        }
        let backlog = self.history.iter().filter(|c| c.rv > rv).cloned().collect();
        Ok((backlog, rx))
    }

    /// Whether a list snapshot taken at `rv` (a continue token) is still served.
    pub fn is_compacted(&self, rv: u64) -> bool {
        rv < self.compacted
    }

    /// Drops the whole history, as an etcd compaction does: every older resourceVersion expires.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    fn record(&mut self, event: EventType, object: Arc<Object>, old: Option<Arc<Object>>) {
        let change = Arc::new(Change {
            rv: self.rv,
            event,
            object,
            old,
            encoded: Default::default(),
        });
        if self.eager_encoding {
            change.encoded(!change.object.kind().watched_in_full());
        }
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(c) = self.history.pop_front() {
                self.compacted = c.rv;
            }
        }
        // No receiver is fine: nobody watches.
        let _ = self.tx.send(change);
    }

    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    /// Stores a new object: uid, creationTimestamp, generation 1 (for kinds that have one) and a
    /// resourceVersion.
    pub fn create(&mut self, mut object: Object) -> Arc<Object> {
        if object.kind().has_generation() {
            object.meta_mut().generation = Some(1);
        }
        let object = self.insert_new(object);
        self.record(EventType::Added, object.clone(), None);
        object
    }

    /// Stores a new object as [`Self::create`] does, keeping a generation it already has, but
    /// records no change: for filling a cluster before anyone watches it (bulk mode). Call
    /// [`Self::compact`] afterwards so no watch resumes from a version before the fill.
    pub fn insert_quiet(&mut self, object: Object) -> Arc<Object> {
        self.insert_new(object)
    }

    /// Gives a new object what the API server sets on create (uid and creationTimestamp unless
    /// given, generation 1 unless given, a new resourceVersion) and stores it.
    fn insert_new(&mut self, mut object: Object) -> Arc<Object> {
        let uid = self.new_uid();
        let rv = self.next_rv();
        let has_generation = object.kind().has_generation();
        admit_daemonset(None, &mut object);
        let m = object.meta_mut();
        m.uid.get_or_insert(uid);
        m.creation_timestamp
            .get_or_insert(Time(clock::now_second()));
        if has_generation {
            m.generation.get_or_insert(1);
        } else {
            m.generation = None;
        }
        m.resource_version = Some(rv);
        let kind = object.kind();
        let key = object.key();
        let object = Arc::new(object);
        self.objects[kind.index()].insert(key, object.clone());
        object
    }

    /// Writes an object as given (generation included) at a new resourceVersion, without the
    /// comparison and spec check of [`Self::update`]: for a writer that knows it changed
    /// something (bulk mode). Answers `None` when the object does not exist.
    pub fn replace(&mut self, mut object: Object) -> Option<Arc<Object>> {
        let kind = object.kind();
        let key = object.key();
        let old = self.objects[kind.index()].get(&key).cloned()?;
        object.meta_mut().resource_version = Some(self.next_rv());
        let object = Arc::new(object);
        self.objects[kind.index()].insert(key, object.clone());
        self.record(EventType::Modified, object.clone(), Some(old));
        Some(object)
    }

    /// Writes a changed object; a changed spec bumps its generation. Unchanged writes are no-ops,
    /// as the controllers' real updates are. An object that is gone stays gone (the real update
    /// answers 404): a test's read-modify-write racing the kubelet's final delete must not bring
    /// the pod back as a new ADDED object.
    pub fn update(&mut self, mut object: Object) -> Option<Arc<Object>> {
        let kind = object.kind();
        let key = object.key();
        let old = self.objects[kind.index()].get(&key).cloned()?;
        object.meta_mut().resource_version = old.meta().resource_version.clone();
        object.meta_mut().generation = old.meta().generation;
        admit_daemonset(Some(&old), &mut object);
        if *old == object {
            return Some(old);
        }
        if kind.has_generation() && old.spec_json() != object.spec_json() {
            let generation = old.meta().generation.unwrap_or(1) + 1;
            object.meta_mut().generation = Some(generation);
        }
        object.meta_mut().resource_version = Some(self.next_rv());
        let object = Arc::new(object);
        self.objects[kind.index()].insert(key, object.clone());
        self.record(EventType::Modified, object.clone(), Some(old));
        Some(object)
    }

    /// Removes an object for good; its DELETED event carries its last state at a new
    /// resourceVersion.
    pub fn remove(&mut self, kind: Kind, key: &Key) -> Option<Arc<Object>> {
        let old = self.objects[kind.index()].remove(key)?;
        let mut last = (*old).clone();
        last.meta_mut().resource_version = Some(self.next_rv());
        let last = Arc::new(last);
        self.record(EventType::Deleted, last.clone(), Some(old));
        Some(last)
    }
}
