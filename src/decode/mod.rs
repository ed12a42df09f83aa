//! From the API server's JSON to the model's inputs: the only place that knows both sides.
//!
//! The watch adapters hand every list page and every watch line here as the bytes read from the
//! connection, and the recorded-traffic tests hand the recorded bytes, so both go through this
//! one decoding. Only what the model reads is decoded: name, namespace, uid, resourceVersion,
//! generation, timestamps, the controller owner reference, the revision annotation, the
//! pod-template-hash label (for sharding) and, for Deployments, a few fields of spec and status.
//! serde skips everything else (managedFields are two thirds of a metadata-only event, the pod
//! template and the last-applied annotation most of a Deployment) without allocating it, and
//! strings are borrowed from the bytes unless they carry escapes, so a watch line is decoded in
//! place: the only allocations per event are the model input's own strings.
//!
//! The API's documented defaults apply: absent counters are 0, an absent `spec.replicas` is 1, a
//! revision annotation that is not an integer is no revision. An object without a name or a
//! namespace is a [`ConvertError`](crate::error::ConvertError) (skipped); a line that is not JSON
//! of this shape, or a timestamp that does not parse, is a decode error (the event is lost, and
//! the watch relists).
//!
//! By layer, bottom up: `wire` primitives (strings, keys, timestamps), object `meta`data and
//! `owner` references, the `object` and its `framing` in list pages and watch lines, and one
//! module per kind turning an object into the model's input (`deployment`, `replicaset`, `pod`,
//! `finished_pod`): a new kind is one new module beside these.

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
