//! Why an overdue termination is still there: the stuck reasons.
//!
//! A pod is overdue once a receive time passes its first `deletionTimestamp`. What the exporter
//! watches already says whether finalizers hold the object (its metadata) and whether its
//! containers finished (the finished-pod phase source). Where the pod runs, and whether that node
//! is alive, is not in it: that takes a GET of the pod once it is overdue, and a GET of its node,
//! cached per node and refreshed while the node has overdue pods. The model decides which
//! requests are due ([`Model::stuck_work`], called by the shell about once a second) and takes
//! their answers back ([`Model::pod_inspected`], [`Model::node_inspected`]); the shell only
//! performs them. So the cost follows the number of overdue pods, never the cluster's size, and
//! every rule here is tested without a server.
//!
//! A pod's reason is the first that applies (see [`reason`]): `node_lost`, `finalizers`,
//! `still_running`, `unknown`. Until its GET is answered, or when the node cannot be read (no
//! permission in a namespaced install) or reasons are turned off, the node-based reasons cannot
//! be told: a finished pod held by finalizers is then `finalizers` (the watches say so at no
//! cost), anything else `unknown`.

use std::collections::BTreeSet;

use super::namespace::{Map, Name, Namespace, RsOwner};
use super::{Model, Timestamp, Uid, WorkloadKey};

/// How long an unanswered or failed GET waits before it is asked again, and how long a node's
/// answer is trusted while it still has overdue pods.
pub const REFRESH_SECS: i64 = 30;

/// Why an overdue pod is still there (the `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StuckReason {
    /// Its node is NotReady, Unknown or gone: no kubelet can finish the termination.
    NodeLost,
    /// Its containers finished, and `metadata.finalizers` keeps the object for whatever
    /// controller owns the finalizer.
    Finalizers,
    /// On a Ready node, past its grace period, and not finished: a kill that fails, a volume
    /// that will not unmount.
    StillRunning,
    /// The exporter cannot tell: not inspected (yet, or reasons are off), the pod or its node
    /// could not be read, or the pod is bound to no node.
    Unknown,
}

impl StuckReason {
    pub const ALL: [StuckReason; 4] = [
        StuckReason::NodeLost,
        StuckReason::Finalizers,
        StuckReason::StillRunning,
        StuckReason::Unknown,
    ];

    pub const fn index(self) -> usize {
        self as usize
    }

    /// The value of the `reason` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            StuckReason::NodeLost => "node_lost",
            StuckReason::Finalizers => "finalizers",
            StuckReason::StillRunning => "still_running",
            StuckReason::Unknown => "unknown",
        }
    }
}

/// What a GET of an overdue pod told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodInspection {
    /// The pod as read: `spec.nodeName`, and whether `status.phase` is Succeeded or Failed.
    Read {
        node: Option<String>,
        finished: bool,
    },
    /// Not found, or another pod under its name (a StatefulSet's next one): it is gone, and the
    /// watch will say so.
    Gone,
    /// The GET failed (no permission, an error, a timeout): asked again after [`REFRESH_SECS`].
    Failed,
}

/// What a GET of a node told of its `Ready` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeHealth {
    /// `Ready` is True.
    Ready,
    /// `Ready` is False: the kubelet says it cannot run pods.
    NotReady,
    /// `Ready` is Unknown (the kubelet stopped posting status) or absent.
    Unresponsive,
    /// No such node (404): deleted.
    Gone,
    /// The GET failed (no permission to read nodes, an error): the node's state is unknown.
    Unreadable,
}

impl NodeHealth {
    /// No kubelet will finish a termination there.
    pub const fn lost(self) -> bool {
        matches!(
            self,
            NodeHealth::NotReady | NodeHealth::Unresponsive | NodeHealth::Gone
        )
    }
}

/// What the model knows of a terminating pod beyond its metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) enum Inspection {
    /// Not overdue, or nothing asked yet.
    #[default]
    None,
    /// A GET was handed out at this time and is not answered yet.
    Requested(Timestamp),
    /// The GET's answer.
    Read { node: Option<Name>, finished: bool },
    /// The GET failed at this time.
    Failed(Timestamp),
}

/// One node's state as far as overdue pods need it.
#[derive(Clone, Copy, Debug, Default)]
struct NodeEntry {
    health: Option<NodeHealth>,
    /// When its GET was last handed out.
    requested: Option<Timestamp>,
}

/// The model's part of the stuck reasons (see the module documentation).
#[derive(Clone, Debug, Default)]
pub(super) struct Stuck {
    /// Terminations not yet known to be overdue, by their deadline.
    pub(super) pending: BTreeSet<(Timestamp, Name, Uid)>,
    /// Overdue pods, by uid, with their namespace.
    pub(super) overdue: Map<Uid, Name>,
    nodes: Map<Name, NodeEntry>,
}

impl Stuck {
    /// A termination started with this deadline: it becomes overdue once a time passes it.
    pub fn terminating(&mut self, ns: &Name, uid: Uid, deadline: Timestamp) {
        self.pending.insert((deadline, ns.clone(), uid));
    }

    /// The known health of a node.
    fn health(&self, node: &str) -> Option<NodeHealth> {
        self.nodes.get(node).and_then(|e| e.health)
    }
}

/// A pod to GET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: Uid,
}

/// One pod that became overdue, once its reason is as known as it will get: what the shell logs,
/// one line per pod.
#[derive(Clone, Debug, PartialEq)]
pub struct OverdueNotice {
    pub workload: WorkloadKey,
    pub pod: String,
    pub reason: StuckReason,
    pub finalizers: Vec<String>,
    pub node: Option<String>,
    /// Seconds past its deadline when the notice was made.
    pub overdue_seconds: f64,
}

/// What [`Model::stuck_work`] hands the shell: GETs to perform and pods to log.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StuckWork {
    pub pods: Vec<PodRef>,
    pub nodes: Vec<String>,
    pub notices: Vec<OverdueNotice>,
}

/// The reason of an overdue pod, the first that applies. `finished` is what the phase source
/// says, `inspection` what its GET said, `health` its node's.
pub(super) fn reason(
    finalizers: bool,
    finished: bool,
    inspection: &Inspection,
    health: Option<NodeHealth>,
) -> StuckReason {
    let read = match inspection {
        Inspection::Read { finished, .. } => Some(*finished),
        _ => None,
    };
    let finished = finished || read == Some(true);
    match health {
        Some(h) if read.is_some() && h.lost() => StuckReason::NodeLost,
        _ if finished && finalizers => StuckReason::Finalizers,
        Some(NodeHealth::Ready) if read.is_some() => StuckReason::StillRunning,
        _ => StuckReason::Unknown,
    }
}

/// The node an inspection read.
fn node_of(inspection: &Inspection) -> Option<&Name> {
    match inspection {
        Inspection::Read { node, .. } => node.as_ref(),
        _ => None,
    }
}

impl Model {
    /// What is due at `now`: the pods that became overdue are noted; when stuck reasons are on,
    /// a GET of each overdue pod not read yet, and of each of their nodes not read for
    /// [`REFRESH_SECS`]; and a notice for each overdue pod whose reason is settled (its GETs
    /// answered, or nothing to ask), once per pod. Costs a look at each overdue pod.
    pub fn stuck_work(&mut self, now: Timestamp) -> StuckWork {
        let mut work = StuckWork::default();
        let Model {
            cfg,
            namespaces,
            stuck,
            ..
        } = self;
        let enabled = cfg.stuck_reasons();
        // Terminations whose deadline passed join the overdue pods.
        while let Some(first) = stuck.pending.first()
            && first.0 < now
        {
            if let Some((_, ns, uid)) = stuck.pending.pop_first() {
                stuck.overdue.insert(uid, ns);
            }
        }
        let mut nodes_in_use: BTreeSet<Name> = BTreeSet::new();
        let Stuck { overdue, nodes, .. } = stuck;
        overdue.retain(|&uid, ns| {
            let Some(n) = namespaces.get_mut(&**ns) else {
                return false;
            };
            let mut visit = Visit {
                now,
                enabled,
                nodes,
                nodes_in_use: &mut nodes_in_use,
                work: &mut work,
            };
            visit.pod(n, ns, uid)
        });
        // A node without overdue pods is forgotten: its next overdue pod asks again.
        nodes.retain(|name, _| nodes_in_use.contains(name));
        work
    }

    /// The answer to a pod GET handed out by [`Model::stuck_work`].
    pub fn pod_inspected(&mut self, pod: &PodRef, inspection: PodInspection, now: Timestamp) {
        let Some(n) = self.namespaces.get_mut(pod.namespace.as_str()) else {
            return;
        };
        let inspection = match inspection {
            PodInspection::Read { node, finished } => Inspection::Read {
                node: node.map(|n| self.stuck.intern_node(&n)),
                finished,
            },
            PodInspection::Gone | PodInspection::Failed => Inspection::Failed(now),
        };
        set_inspection(n, pod.uid, inspection);
    }

    /// The answer to a node GET handed out by [`Model::stuck_work`].
    pub fn node_inspected(&mut self, node: &str, health: NodeHealth) {
        if let Some(entry) = self.stuck.nodes.get_mut(node) {
            entry.health = Some(health);
        }
    }

    /// The reason of an overdue pod's termination, at snapshot time.
    pub(super) fn stuck_reason_of(
        stuck: &Stuck,
        t: &super::namespace::Termination,
        finished: bool,
    ) -> StuckReason {
        let health = node_of(&t.inspection).and_then(|n| stuck.health(n));
        reason(!t.finalizers.is_empty(), finished, &t.inspection, health)
    }
}

/// One pass of [`Model::stuck_work`] over the overdue pods.
struct Visit<'a> {
    now: Timestamp,
    enabled: bool,
    nodes: &'a mut Map<Name, NodeEntry>,
    nodes_in_use: &'a mut BTreeSet<Name>,
    work: &'a mut StuckWork,
}

impl Visit<'_> {
    /// A GET asked at `at` is due again.
    fn due(&self, at: Timestamp) -> bool {
        self.now.seconds_since(at) >= REFRESH_SECS as f64
    }

    /// Looks at one overdue pod; `false` once it is gone or no longer terminating.
    fn pod(&mut self, n: &mut Namespace, ns: &Name, uid: Uid) -> bool {
        let now = self.now;
        let Some(record) = n.pod(uid) else {
            return false;
        };
        let (rs, finished) = (record.rs.clone(), record.finished);
        let Some(t) = record.termination.as_deref() else {
            return false;
        };
        if now <= t.first_deadline {
            // Within its deadline again (a pod record made anew): not overdue yet.
            return true;
        }
        let ask = self.enabled
            && match &t.inspection {
                Inspection::None => true,
                Inspection::Requested(at) | Inspection::Failed(at) => self.due(*at),
                Inspection::Read { .. } => false,
            };
        if ask {
            self.work.pods.push(PodRef {
                namespace: ns.to_string(),
                name: t.name.to_string(),
                uid,
            });
            set_inspection(n, uid, Inspection::Requested(now));
            return true;
        }
        let node = node_of(&t.inspection).cloned();
        let mut health = None;
        if let Some(node) = &node {
            self.nodes_in_use.insert(node.clone());
            let due = self
                .nodes
                .get(node)
                .and_then(|e| e.requested)
                .is_none_or(|at| self.due(at));
            let entry = self.nodes.entry(node.clone()).or_default();
            if due {
                entry.requested = Some(now);
                self.work.nodes.push(node.to_string());
            }
            health = entry.health;
        }
        // Settled: every answer that will come is in, or nothing will be asked.
        let settled = !self.enabled
            || match &t.inspection {
                Inspection::Read { node: Some(_), .. } => health.is_some(),
                Inspection::Read { node: None, .. } | Inspection::Failed(_) => true,
                Inspection::None | Inspection::Requested(_) => false,
            };
        if !settled || t.announced {
            return true;
        }
        let workload = match n.slot(&rs).map(|s| &s.owner) {
            Some(RsOwner::Workload(kind, w)) => Some(WorkloadKey::new(*kind, &**ns, &**w)),
            _ => None,
        };
        if let Some(workload) = workload {
            self.work.notices.push(OverdueNotice {
                workload,
                pod: t.name.to_string(),
                reason: reason(!t.finalizers.is_empty(), finished, &t.inspection, health),
                finalizers: t.finalizers.iter().map(|f| f.to_string()).collect(),
                node: node.as_deref().map(str::to_string),
                overdue_seconds: now.seconds_since(t.first_deadline),
            });
        }
        n.update_pod(uid, |r| {
            if let Some(t) = r.termination.as_deref_mut() {
                t.announced = true;
            }
        });
        true
    }
}

impl Stuck {
    /// The node's name as the cache keeps it, shared.
    fn intern_node(&self, node: &str) -> Name {
        self.nodes
            .get_key_value(node)
            .map_or_else(|| Name::from(node), |(k, _)| k.clone())
    }
}

/// Sets a terminating pod's inspection.
fn set_inspection(n: &mut Namespace, uid: Uid, inspection: Inspection) {
    n.update_pod(uid, |r| {
        if let Some(t) = r.termination.as_deref_mut() {
            t.inspection = inspection;
        }
    });
}
