//! The floor: decoding watch lines into the smallest structs that hold what the model reads, and
//! nothing else (no kube client, no model). The exporter's CPU per event is compared with this.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::client::Captured;
use crate::procfs;

#[derive(Deserialize)]
#[allow(dead_code)]
enum EventType {
    #[serde(rename = "ADDED")]
    Added,
    #[serde(rename = "MODIFIED")]
    Modified,
    #[serde(rename = "DELETED")]
    Deleted,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Event<T> {
    #[serde(rename = "type")]
    type_: EventType,
    object: T,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Object<M> {
    metadata: M,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Owner {
    kind: String,
    name: String,
    #[serde(default)]
    controller: Option<bool>,
}

/// What the model reads of a pod.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct PodMeta {
    name: String,
    namespace: String,
    uid: String,
    resource_version: String,
    deletion_timestamp: Option<String>,
    deletion_grace_period_seconds: Option<i64>,
    owner_references: Option<Vec<Owner>>,
}

/// What the model reads of a finished pod.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct FinishedMeta {
    name: String,
    namespace: String,
    uid: String,
    resource_version: String,
}

/// Only the revision annotation of an annotations map.
#[allow(dead_code)]
struct Revision(Option<String>);

impl<'de> Deserialize<'de> for Revision {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Revision;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("annotations")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Revision, A::Error> {
                let mut found = None;
                while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                    if k == "deployment.kubernetes.io/revision" {
                        found = Some(map.next_value::<String>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Revision(found))
            }
        }
        d.deserialize_map(V)
    }
}

/// What the model reads of a ReplicaSet.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct RsMeta {
    name: String,
    namespace: String,
    resource_version: String,
    creation_timestamp: Option<String>,
    annotations: Option<Revision>,
    owner_references: Option<Vec<Owner>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct DeploymentMeta {
    name: String,
    namespace: String,
    uid: String,
    resource_version: String,
    generation: Option<i64>,
    annotations: Option<Revision>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct DeploymentSpec {
    replicas: Option<i32>,
    paused: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Condition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
    reason: Option<String>,
    last_update_time: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct DeploymentStatus {
    observed_generation: Option<i64>,
    replicas: Option<i32>,
    updated_replicas: Option<i32>,
    available_replicas: Option<i32>,
    conditions: Option<Vec<Condition>>,
}

/// What the model reads of a Deployment.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Deployment {
    metadata: DeploymentMeta,
    spec: Option<DeploymentSpec>,
    status: Option<DeploymentStatus>,
}

/// The watches the exporter opens, as the floor decodes them.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    Deployments,
    ReplicaSets,
    Pods,
    FinishedPods,
}

fn decode(stream: Stream, line: &[u8]) -> bool {
    match stream {
        Stream::Pods => serde_json::from_slice::<Event<Object<PodMeta>>>(line).is_ok(),
        Stream::FinishedPods => serde_json::from_slice::<Event<Object<FinishedMeta>>>(line).is_ok(),
        Stream::ReplicaSets => serde_json::from_slice::<Event<Object<RsMeta>>>(line).is_ok(),
        Stream::Deployments => serde_json::from_slice::<Event<Deployment>>(line).is_ok(),
    }
}

/// CPU nanoseconds per line to decode `captured` on this thread, and how many lines decoded:
/// passes over the lines are repeated for at least 300 ms of CPU (the thread's CPU clock is only
/// precise over longer spans), the best of `rounds` such measurements.
pub fn per_line_ns(stream: Stream, captured: &Captured, rounds: usize) -> (f64, usize) {
    let n = captured.lines.len();
    if n == 0 {
        return (0.0, 0);
    }
    let mut best = f64::MAX;
    let mut ok = 0;
    for _ in 0..rounds.max(1) {
        let before = procfs::thread_cpu_ns();
        let mut passes = 0u64;
        loop {
            ok = captured.lines().filter(|l| decode(stream, l)).count();
            passes += 1;
            let spent = procfs::thread_cpu_ns().saturating_sub(before);
            if spent >= 300_000_000 {
                best = best.min(spent as f64 / (passes * n as u64) as f64);
                break;
            }
        }
    }
    (best, ok)
}
