//! The exporter's self-metrics: what it watched and how well (per resource), what it could not
//! observe precisely, its shard, and its process. The table below is the one place each family's
//! name, type, unit, help and labels are written.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType::{Counter, Gauge, Info};
use prometheus_client::registry::Unit;

use super::family::Family;
use crate::model::{ModelStats, Resource};
use crate::process::ProcessStats;
use crate::shared::{Readiness, Snapshot, WatchCounts};

/// The exporter's version, as `kube_rollout_exporter_build_info{version}` reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

const RESOURCE: &str = "resource";

pub static BUILD: Family = Family {
    name: "kube_rollout_exporter_build",
    kind: Info,
    unit: None,
    help: "Build information of the exporter.",
    labels: &["version"],
};
pub static WATCH_EVENTS: Family = Family {
    name: "kube_rollout_exporter_watch_events",
    kind: Counter,
    unit: None,
    help: "Watch events received, per resource.",
    labels: &[RESOURCE],
};
pub static WATCH_ERRORS: Family = Family {
    name: "kube_rollout_exporter_watch_errors",
    kind: Counter,
    unit: None,
    help: "Watch errors (failed lists and watches, undecodable objects), per resource.",
    labels: &[RESOURCE],
};
pub static WATCH_RESTARTS: Family = Family {
    name: "kube_rollout_exporter_watch_restarts",
    kind: Counter,
    unit: None,
    help: "Relists after the first list (410 Expired, lost events), per resource.",
    labels: &[RESOURCE],
};
pub static API_REQUESTS: Family = Family {
    name: "kube_rollout_exporter_api_requests",
    kind: Counter,
    unit: None,
    help: "Answers of the API server to the exporter's lists and watches, by resource, verb and HTTP status (code 0: the connection failed).",
    labels: &[RESOURCE, "verb", "code"],
};
pub static OBJECTS: Family = Family {
    name: "kube_rollout_exporter_objects",
    kind: Gauge,
    unit: None,
    help: "Objects tracked, per resource.",
    labels: &[RESOURCE],
};
pub static SYNCED: Family = Family {
    name: "kube_rollout_exporter_synced",
    kind: Gauge,
    unit: None,
    help: "1 once the resource's first list finished and while its watch is not failing.",
    labels: &[RESOURCE],
};
pub static IMPRECISE_OBSERVATIONS: Family = Family {
    name: "kube_rollout_exporter_imprecise_observations",
    kind: Counter,
    unit: None,
    help: "Observations timed at a relist (watch gap) or not observed (deletion request time unknown).",
    labels: &["reason"],
};
pub static SHARD_ORDINAL: Family = Family {
    name: "kube_rollout_exporter_shard_ordinal",
    kind: Gauge,
    unit: None,
    help: "This exporter's shard (0 to total shards minus 1).",
    labels: &[],
};
pub static TOTAL_SHARDS: Family = Family {
    name: "kube_rollout_exporter_total_shards",
    kind: Gauge,
    unit: None,
    help: "Number of shards the workloads are split across.",
    labels: &[],
};
pub static UNKNOWN_START_ROLLOUTS: Family = Family {
    name: "kube_rollout_exporter_unknown_start_rollouts",
    kind: Counter,
    unit: None,
    help: "Rollouts recovered after an exporter restart whose start cannot be known (durations not observed).",
    labels: &[],
};
pub static PROCESS_CPU: Family = Family {
    name: "process_cpu",
    kind: Counter,
    unit: Some(Unit::Seconds),
    help: "Total user and system CPU time spent.",
    labels: &[],
};
pub static PROCESS_RESIDENT_MEMORY: Family = Family {
    name: "process_resident_memory",
    kind: Gauge,
    unit: Some(Unit::Bytes),
    help: "Resident memory size.",
    labels: &[],
};
pub static PROCESS_OPEN_FDS: Family = Family {
    name: "process_open_fds",
    kind: Gauge,
    unit: None,
    help: "Open file descriptors.",
    labels: &[],
};
pub static PROCESS_START_TIME: Family = Family {
    name: "process_start_time",
    kind: Gauge,
    unit: Some(Unit::Seconds),
    help: "Start time of the process since the Unix epoch.",
    labels: &[],
};

/// Every self-metric family, in the order a scrape writes them (the shard families only when
/// sharded, the process families only where `/proc` is readable).
pub static FAMILIES: [&Family; 15] = [
    &BUILD,
    &WATCH_EVENTS,
    &WATCH_ERRORS,
    &WATCH_RESTARTS,
    &API_REQUESTS,
    &OBJECTS,
    &SYNCED,
    &IMPRECISE_OBSERVATIONS,
    &SHARD_ORDINAL,
    &TOTAL_SHARDS,
    &UNKNOWN_START_ROLLOUTS,
    &PROCESS_CPU,
    &PROCESS_RESIDENT_MEMORY,
    &PROCESS_OPEN_FDS,
    &PROCESS_START_TIME,
];

/// Writes every self-metric family from the scrape's snapshot and the process's values.
pub(super) fn encode(
    e: &mut DescriptorEncoder<'_>,
    snap: &Snapshot,
    process: Option<ProcessStats>,
) -> fmt::Result {
    BUILD.describe(e)?.encode_info(&BUILD.labels([VERSION]))?;
    let ready = &snap.readiness;
    per_resource(e, &WATCH_EVENTS, ready, |r| snap.watches[r as usize].events)?;
    per_resource(e, &WATCH_ERRORS, ready, |r| snap.watches[r as usize].errors)?;
    per_resource(e, &WATCH_RESTARTS, ready, |r| {
        snap.watches[r as usize].restarts
    })?;
    api_requests(e, &snap.watches, ready)?;
    objects(e, &snap.stats, ready)?;
    synced(e, &snap.readiness)?;
    imprecise(e, &snap.stats)?;
    if let Some(sharding) = snap.sharding {
        SHARD_ORDINAL.single(e, sharding.shard as f64)?;
        TOTAL_SHARDS.single(e, sharding.total as f64)?;
    }
    UNKNOWN_START_ROLLOUTS.single(e, snap.stats.unknown_start_rollouts as f64)?;
    if let Some(p) = process {
        PROCESS_CPU.single(e, p.cpu_seconds)?;
        PROCESS_RESIDENT_MEMORY.single(e, p.resident_bytes as f64)?;
        PROCESS_OPEN_FDS.single(e, p.open_fds as f64)?;
        PROCESS_START_TIME.single(e, p.start_time_seconds)?;
    }
    Ok(())
}

/// A family with one series per watched resource.
fn per_resource(
    e: &mut DescriptorEncoder<'_>,
    family: &'static Family,
    readiness: &Readiness,
    value: impl Fn(Resource) -> u64,
) -> fmt::Result {
    let mut encoder = family.describe(e)?;
    for r in readiness.resources() {
        let labels = family.labels([r.as_str()]);
        family.sample(encoder.encode_family(&labels)?, value(r))?;
    }
    Ok(())
}

fn api_requests(
    e: &mut DescriptorEncoder<'_>,
    watches: &[WatchCounts; Resource::ALL.len()],
    readiness: &Readiness,
) -> fmt::Result {
    let mut encoder = API_REQUESTS.describe(e)?;
    for r in readiness.resources() {
        for &((verb, code), n) in &watches[r as usize].requests {
            let code = code.to_string();
            let labels = API_REQUESTS.labels([r.as_str(), verb, code.as_str()]);
            API_REQUESTS.sample(encoder.encode_family(&labels)?, n)?;
        }
    }
    Ok(())
}

fn objects(e: &mut DescriptorEncoder<'_>, s: &ModelStats, readiness: &Readiness) -> fmt::Result {
    per_resource(e, &OBJECTS, readiness, |r| match r {
        Resource::Deployments => s.deployments,
        Resource::StatefulSets => s.statefulsets,
        Resource::DaemonSets => s.daemonsets,
        Resource::ControllerRevisions => s.controllerrevisions,
        Resource::ReplicaSets => s.replicasets,
        Resource::Pods => s.pods,
        Resource::FinishedPods => s.finished_pods,
    })
}

fn synced(e: &mut DescriptorEncoder<'_>, readiness: &Readiness) -> fmt::Result {
    per_resource(e, &SYNCED, readiness, |r| u64::from(readiness.of(r)))
}

fn imprecise(e: &mut DescriptorEncoder<'_>, s: &ModelStats) -> fmt::Result {
    let mut encoder = IMPRECISE_OBSERVATIONS.describe(e)?;
    for (reason, n) in [
        ("gap_termination", s.imprecise_gap_terminations),
        ("gap_milestone", s.imprecise_gap_milestones),
        ("unknown_request", s.imprecise_unknown_request),
    ] {
        let labels = IMPRECISE_OBSERVATIONS.labels([reason]);
        IMPRECISE_OBSERVATIONS.sample(encoder.encode_family(&labels)?, n)?;
    }
    Ok(())
}
