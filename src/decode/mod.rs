//! From the API server's JSON to the model's inputs: the only place that knows both sides.
//!
//! The watch adapters hand every list page and every watch line here as the bytes read from the
//! connection, and the recorded-traffic tests hand the recorded bytes, so both go through this
//! one decoding. Only what the model reads is decoded: name, namespace, uid, resourceVersion,
//! generation, timestamps, the controller owner reference, the revision annotation, the
//! pod-template-hash label (for sharding), the revision hash labels of StatefulSet and DaemonSet
//! pods and ControllerRevisions, a ControllerRevision's `revision`, the finalizers of a pod being
//! deleted and, for the workload kinds, a few fields of spec and status, a hash of the pod
//! template and its grace period and container images. The [`ObjectSeed`] says which
//! kind is expected, so each kind reads only its own fields. serde skips everything else
//! (managedFields are two thirds of a metadata-only event, the last-applied annotation much of a
//! Deployment, `data` all of a ControllerRevision) without allocating it; the pod template is
//! hashed as the bytes served, never built; and strings are borrowed from the bytes unless they
//! carry escapes, so a watch line is decoded in place: the only allocations per event are the
//! model input's own strings.
//!
//! The API's documented defaults apply: absent counters are 0, an absent `spec.replicas` is 1, an
//! absent strategy type is RollingUpdate, a revision annotation that is not an integer is no
//! revision; an absent partition or `observedGeneration` of a StatefulSet or DaemonSet stays
//! absent (kubectl tells absent from 0). An object without a name or a namespace is a
//! [`ConvertError`](crate::error::ConvertError) (skipped); a line that is not JSON of this shape,
//! or a timestamp that does not parse, is a decode error (the event is lost, and the watch
//! relists).
//!
//! By layer, bottom up: `wire` primitives (strings, keys, timestamps), object `meta`data and
//! `owner` references, the `object` and its `framing` in list pages and watch lines, what the
//! workload kinds share (`workload`: template hash, strategy, a status or a `Status` string), and
//! one module per kind turning an object into the model's input (`deployment`, `statefulset`,
//! `daemonset`, `controllerrevision`, `replicaset`, `pod`, `finished_pod`): a new kind is one new
//! module beside these, and a variant of `ObjectSeed` if it reads more than metadata.

mod controllerrevision;
mod daemonset;
mod deployment;
mod finished_pod;
mod framing;
mod meta;
mod object;
mod owner;
mod pod;
mod replicaset;
mod statefulset;
mod wire;
mod workload;

#[cfg(test)]
mod tests;

pub use controllerrevision::controllerrevision;
pub use daemonset::{DaemonSetSpec, DaemonSetStatus, daemonset};
pub use deployment::{Condition, DeploymentSpec, DeploymentStatus, deployment};
pub use finished_pod::finished_pod;
pub use framing::{EventType, ListMeta, list_page, watch_line};
pub use meta::{
    CONTROLLER_HASH, CONTROLLER_REVISION_HASH, Labels, Meta, REVISION_ANNOTATION, Revision,
};
pub use object::{Object, ObjectSeed, Spec, Status, object, status_message};
pub use owner::OwnerRef;
pub use pod::pod;
pub use replicaset::replicaset;
pub use statefulset::{StatefulSetSpec, StatefulSetStatus, statefulset};
pub use wire::{Str, Time};
pub use workload::{RollingUpdate, Strategy, StrategyType, Template};
