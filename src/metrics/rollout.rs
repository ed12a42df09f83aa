//! The rollout families: one series per workload (or per namespace for the histograms with
//! `--histograms.per-namespace`), from the model's [`WorkloadMetrics`]. The table below is the one
//! place each family's name, type, unit, help and labels are written.

use std::fmt;

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType::{Counter, Gauge, Histogram as HistogramType};
use prometheus_client::registry::Unit;

use super::family::Family;
use crate::model::{Histogram, Phase, StuckReason, WorkloadMetrics};

const NAMESPACE: &str = "namespace";
const WORKLOAD: &str = "workload";
const WORKLOAD_TYPE: &str = "workload_type";
/// The labels of every per-workload series.
const PER_WORKLOAD: &[&str] = &[NAMESPACE, WORKLOAD, WORKLOAD_TYPE];

pub static TERMINATING_PODS: Family = Family {
    name: "kube_rollout_terminating_pods",
    kind: Gauge,
    unit: None,
    help: "Pods of the workload with a deletionTimestamp that still exist.",
    labels: PER_WORKLOAD,
};
pub static TERMINATING_PODS_OVERDUE: Family = Family {
    name: "kube_rollout_terminating_pods_overdue",
    kind: Gauge,
    unit: None,
    help: "Terminating pods still present after their first observed deletionTimestamp.",
    labels: PER_WORKLOAD,
};
pub static TERMINATING_PODS_OVERDUE_BY_REASON: Family = Family {
    name: "kube_rollout_terminating_pods_overdue_by_reason",
    kind: Gauge,
    unit: None,
    help: "Overdue terminating pods by why they are stuck: node_lost, finalizers, still_running, unknown; only reasons with pods.",
    labels: &[NAMESPACE, WORKLOAD, WORKLOAD_TYPE, "reason"],
};
pub static OLDEST_TERMINATION: Family = Family {
    name: "kube_rollout_oldest_termination",
    kind: Gauge,
    unit: Some(Unit::Seconds),
    help: "Scrape time minus the earliest deletion request among terminating pods; 0 when none.",
    labels: PER_WORKLOAD,
};
pub static IN_PROGRESS: Family = Family {
    name: "kube_rollout_in_progress",
    kind: Gauge,
    unit: Some(Unit::Seconds),
    help: "Age of the rollout in flight; 0 when none.",
    labels: PER_WORKLOAD,
};
pub static PHASE: Family = Family {
    name: "kube_rollout_phase",
    kind: Gauge,
    unit: None,
    help: "1 for the workload's rollout phase, 0 for the others.",
    labels: &[NAMESPACE, WORKLOAD, WORKLOAD_TYPE, "phase"],
};
pub static REVISION: Family = Family {
    name: "kube_rollout_revision",
    kind: Gauge,
    unit: None,
    help: "The update revision's number: a Deployment's deployment.kubernetes.io/revision, a StatefulSet's or DaemonSet's ControllerRevision revision.",
    labels: PER_WORKLOAD,
};
pub static WORKLOAD_INFO: Family = Family {
    name: "kube_rollout_workload_info",
    kind: Gauge,
    unit: None,
    help: "1 per workload, with its update strategy.",
    labels: &[NAMESPACE, WORKLOAD, WORKLOAD_TYPE, "strategy"],
};
pub static REVISION_INFO: Family = Family {
    name: "kube_rollout_revision_info",
    kind: Gauge,
    unit: None,
    help: "1 per workload, with its update revision and its pod template's container images (comma-separated, at most 256 bytes).",
    labels: &[NAMESPACE, WORKLOAD, WORKLOAD_TYPE, "revision", "images"],
};
pub static GRACE_PERIOD: Family = Family {
    name: "kube_rollout_termination_grace_period",
    kind: Gauge,
    unit: Some(Unit::Seconds),
    help: "The pod template's terminationGracePeriodSeconds (30 when unset).",
    labels: PER_WORKLOAD,
};
pub static PARTITION: Family = Family {
    name: "kube_rollout_partition",
    kind: Gauge,
    unit: None,
    help: "A RollingUpdate StatefulSet's rollingUpdate.partition, when set: pods below it keep the old revision.",
    labels: PER_WORKLOAD,
};
pub static LAST_STARTED: Family = Family {
    name: "kube_rollout_last_started_timestamp",
    kind: Gauge,
    unit: Some(Unit::Seconds),
    help: "Unix time of the last rollout start.",
    labels: PER_WORKLOAD,
};
pub static LAST_COMPLETED: Family = Family {
    name: "kube_rollout_last_completed_timestamp",
    kind: Gauge,
    unit: Some(Unit::Seconds),
    help: "Unix time of the last rollout completion seen by this exporter process.",
    labels: PER_WORKLOAD,
};
pub static POD_TERMINATION_DURATION: Family = Family {
    name: "kube_rollout_pod_termination_duration",
    kind: HistogramType,
    unit: Some(Unit::Seconds),
    help: "From a pod's deletion request to its object being gone.",
    labels: PER_WORKLOAD,
};
pub static DURATION: Family = Family {
    name: "kube_rollout_duration",
    kind: HistogramType,
    unit: Some(Unit::Seconds),
    help: "From rollout start to the milestone: ready (kubectl's moment) or complete (every old pod gone).",
    labels: &[NAMESPACE, WORKLOAD, WORKLOAD_TYPE, "milestone"],
};
pub static DRAIN_TAIL: Family = Family {
    name: "kube_rollout_drain_tail",
    kind: HistogramType,
    unit: Some(Unit::Seconds),
    help: "Complete minus ready: how long old pods outlived kubectl's success.",
    labels: PER_WORKLOAD,
};
pub static GRACE_EXHAUSTED: Family = Family {
    name: "kube_rollout_pod_termination_grace_exhausted",
    kind: Counter,
    unit: None,
    help: "Terminations that lasted at least the pod's deletion grace period (within 1 s): killed mid-drain or stuck.",
    labels: PER_WORKLOAD,
};
pub static STARTED: Family = Family {
    name: "kube_rollout_started",
    kind: Counter,
    unit: None,
    help: "Rollouts started (pod template changes) since the exporter started.",
    labels: PER_WORKLOAD,
};
pub static SUPERSEDED: Family = Family {
    name: "kube_rollout_superseded",
    kind: Counter,
    unit: None,
    help: "Rollouts superseded by a newer template before completing.",
    labels: PER_WORKLOAD,
};
pub static SLOW: Family = Family {
    name: "kube_rollout_slow",
    kind: Counter,
    unit: None,
    help: "Rollouts in flight that passed the SLO threshold age (superseded ones only if they passed it first).",
    labels: &[NAMESPACE, WORKLOAD, WORKLOAD_TYPE, "threshold_seconds"],
};

/// Every rollout family, in the order a scrape writes them.
pub static FAMILIES: [&Family; 20] = [
    &TERMINATING_PODS,
    &TERMINATING_PODS_OVERDUE,
    &TERMINATING_PODS_OVERDUE_BY_REASON,
    &OLDEST_TERMINATION,
    &IN_PROGRESS,
    &PHASE,
    &REVISION,
    &WORKLOAD_INFO,
    &REVISION_INFO,
    &GRACE_PERIOD,
    &PARTITION,
    &LAST_STARTED,
    &LAST_COMPLETED,
    &POD_TERMINATION_DURATION,
    &DURATION,
    &DRAIN_TAIL,
    &GRACE_EXHAUSTED,
    &STARTED,
    &SUPERSEDED,
    &SLOW,
];

/// Writes every rollout family; with `per_namespace`, the histograms are summed per namespace.
pub(super) fn encode(
    e: &mut DescriptorEncoder<'_>,
    workloads: &[WorkloadMetrics],
    per_namespace: bool,
) -> fmt::Result {
    let w = workloads;
    per_workload(e, &TERMINATING_PODS, w, |m| Some(m.terminating_pods as f64))?;
    per_workload(e, &TERMINATING_PODS_OVERDUE, w, |m| {
        Some(m.terminating_pods_overdue as f64)
    })?;
    overdue_by_reason(e, w)?;
    per_workload(e, &OLDEST_TERMINATION, w, |m| {
        Some(m.oldest_termination_seconds)
    })?;
    per_workload(e, &IN_PROGRESS, w, |m| Some(m.in_progress_seconds))?;
    phases(e, w)?;
    per_workload(e, &REVISION, w, |m| m.revision.map(|r| r as f64))?;
    info(e, w)?;
    revision_info(e, w)?;
    per_workload(e, &GRACE_PERIOD, w, |m| {
        m.grace_period_seconds.map(|g| g as f64)
    })?;
    per_workload(e, &PARTITION, w, |m| m.partition.map(f64::from))?;
    per_workload(e, &LAST_STARTED, w, |m| m.last_started_timestamp)?;
    per_workload(e, &LAST_COMPLETED, w, |m| m.last_completed_timestamp)?;
    if per_namespace {
        histograms(e, &summed_per_namespace(w))?;
    } else {
        histograms(e, w)?;
    }
    per_workload(e, &GRACE_EXHAUSTED, w, |m| Some(m.grace_exhausted_total))?;
    per_workload(e, &STARTED, w, |m| Some(m.started_total))?;
    per_workload(e, &SUPERSEDED, w, |m| Some(m.superseded_total))?;
    slow(e, w)
}

fn workload_labels(m: &WorkloadMetrics) -> [&str; 3] {
    [
        m.key.namespace.as_str(),
        m.key.name.as_str(),
        m.key.kind.as_str(),
    ]
}

/// A counter or gauge family with one series per workload that has a value.
fn per_workload<V: EncodeCounterValue + EncodeGaugeValue>(
    e: &mut DescriptorEncoder<'_>,
    family: &'static Family,
    workloads: &[WorkloadMetrics],
    value: impl Fn(&WorkloadMetrics) -> Option<V>,
) -> fmt::Result {
    let mut encoder = family.describe(e)?;
    for m in workloads {
        if let Some(v) = value(m) {
            let labels = family.labels(workload_labels(m));
            family.sample(encoder.encode_family(&labels)?, v)?;
        }
    }
    Ok(())
}

/// `kube_rollout_phase`: a series per workload and phase, 1 for the workload's phase.
fn phases(e: &mut DescriptorEncoder<'_>, workloads: &[WorkloadMetrics]) -> fmt::Result {
    let mut encoder = PHASE.describe(e)?;
    for m in workloads {
        let [namespace, name, kind] = workload_labels(m);
        for &phase in Phase::of(m.key.kind) {
            let labels = PHASE.labels([namespace, name, kind, phase.as_str()]);
            PHASE.sample(encoder.encode_family(&labels)?, u64::from(m.phase == phase))?;
        }
    }
    Ok(())
}

/// `kube_rollout_workload_info`: a series per workload whose object is known.
fn info(e: &mut DescriptorEncoder<'_>, workloads: &[WorkloadMetrics]) -> fmt::Result {
    let mut encoder = WORKLOAD_INFO.describe(e)?;
    for m in workloads {
        let Some(strategy) = m.strategy else {
            continue;
        };
        let [namespace, name, kind] = workload_labels(m);
        let labels = WORKLOAD_INFO.labels([namespace, name, kind, strategy.as_str()]);
        WORKLOAD_INFO.sample(encoder.encode_family(&labels)?, 1u64)?;
    }
    Ok(())
}

/// `kube_rollout_terminating_pods_overdue_by_reason`: a series per workload and reason that has
/// overdue pods, so the families' cost follows the stuck pods.
fn overdue_by_reason(e: &mut DescriptorEncoder<'_>, workloads: &[WorkloadMetrics]) -> fmt::Result {
    let family = &TERMINATING_PODS_OVERDUE_BY_REASON;
    let mut encoder = family.describe(e)?;
    for m in workloads.iter().filter(|m| m.terminating_pods_overdue > 0) {
        let [namespace, name, kind] = workload_labels(m);
        for reason in StuckReason::ALL {
            let count = m.overdue_by_reason[reason.index()];
            if count > 0 {
                let labels = family.labels([namespace, name, kind, reason.as_str()]);
                family.sample(encoder.encode_family(&labels)?, count as f64)?;
            }
        }
    }
    Ok(())
}

/// `kube_rollout_revision_info`: a series per workload whose object is known.
fn revision_info(e: &mut DescriptorEncoder<'_>, workloads: &[WorkloadMetrics]) -> fmt::Result {
    let mut encoder = REVISION_INFO.describe(e)?;
    let mut revision = String::new();
    for m in workloads {
        let Some(info) = &m.revision_info else {
            continue;
        };
        revision.clear();
        if let Some(r) = info.revision {
            use std::fmt::Write;
            write!(revision, "{r}")?;
        }
        let [namespace, name, kind] = workload_labels(m);
        let labels = REVISION_INFO.labels([namespace, name, kind, &revision, &info.images]);
        REVISION_INFO.sample(encoder.encode_family(&labels)?, 1u64)?;
    }
    Ok(())
}

/// `kube_rollout_slow`: a series per workload and SLO threshold.
fn slow(e: &mut DescriptorEncoder<'_>, workloads: &[WorkloadMetrics]) -> fmt::Result {
    let mut encoder = SLOW.describe(e)?;
    for m in workloads {
        let [namespace, name, kind] = workload_labels(m);
        for &(threshold, count) in &m.slow_total {
            let threshold = threshold.to_string();
            let labels = SLOW.labels([namespace, name, kind, threshold.as_str()]);
            SLOW.sample(encoder.encode_family(&labels)?, count)?;
        }
    }
    Ok(())
}

/// The three histogram families, from the workloads (or the per-namespace sums) that hold them.
fn histograms(e: &mut DescriptorEncoder<'_>, workloads: &[WorkloadMetrics]) -> fmt::Result {
    // One bucket buffer for every series: the encoder wants non-cumulative counts in a slice.
    let mut buckets = Vec::new();
    let mut encoder = POD_TERMINATION_DURATION.describe(e)?;
    for m in workloads {
        if let Some(h) = &m.pod_termination_duration {
            let labels = POD_TERMINATION_DURATION.labels(workload_labels(m));
            histogram(&mut encoder, &labels, h, &mut buckets)?;
        }
    }
    let mut encoder = DURATION.describe(e)?;
    for m in workloads {
        let [namespace, name, kind] = workload_labels(m);
        for (milestone, h) in [
            ("ready", &m.ready_duration),
            ("complete", &m.complete_duration),
        ] {
            if let Some(h) = h {
                let labels = DURATION.labels([namespace, name, kind, milestone]);
                histogram(&mut encoder, &labels, h, &mut buckets)?;
            }
        }
    }
    let mut encoder = DRAIN_TAIL.describe(e)?;
    for m in workloads {
        if let Some(h) = &m.drain_tail {
            let labels = DRAIN_TAIL.labels(workload_labels(m));
            histogram(&mut encoder, &labels, h, &mut buckets)?;
        }
    }
    Ok(())
}

/// One histogram series; `buckets` is scratch space for its non-cumulative bucket counts.
fn histogram<const N: usize>(
    encoder: &mut MetricEncoder<'_>,
    labels: &[(&'static str, &str); N],
    h: &Histogram,
    buckets: &mut Vec<(f64, u64)>,
) -> fmt::Result {
    buckets.clear();
    let mut previous = 0;
    buckets.extend(h.cumulative_buckets().map(|(le, cumulative)| {
        let n = cumulative - previous;
        previous = cumulative;
        (le, n)
    }));
    encoder
        .encode_family(labels)?
        .encode_histogram::<NoLabelSet>(h.sum(), h.count(), buckets, None)
}

/// `--histograms.per-namespace`: one entry per namespace holding the sum of its workloads'
/// histograms, with an empty workload name; gauges and counters are not in it.
fn summed_per_namespace(workloads: &[WorkloadMetrics]) -> Vec<WorkloadMetrics> {
    let mut out: Vec<WorkloadMetrics> = Vec::new();
    for m in workloads {
        let same = out
            .last()
            .is_some_and(|o| o.key.namespace == m.key.namespace && o.key.kind == m.key.kind);
        if !same {
            let mut key = m.key.clone();
            key.name = String::new();
            out.push(WorkloadMetrics {
                key,
                pod_termination_duration: None,
                ready_duration: None,
                complete_duration: None,
                drain_tail: None,
                ..m.clone()
            });
        }
        let o = out.last_mut().expect("pushed above");
        for (into, from) in [
            (&mut o.pod_termination_duration, &m.pod_termination_duration),
            (&mut o.ready_duration, &m.ready_duration),
            (&mut o.complete_duration, &m.complete_duration),
            (&mut o.drain_tail, &m.drain_tail),
        ] {
            match (into.as_mut(), from) {
                (Some(i), Some(f)) => i.merge(f),
                (None, Some(f)) => *into = Some(f.clone()),
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{RevisionInfo, UpdateStrategy, WorkloadKey, bucket_bounds};

    /// A complete Deployment with one terminating pod and the given termination durations.
    pub fn workload(namespace: &str, name: &str, terminations: &[f64]) -> WorkloadMetrics {
        let bounds = bucket_bounds(&[1.0, 10.0], &[]);
        let termination = (!terminations.is_empty()).then(|| {
            let mut h = Histogram::new(bounds);
            terminations.iter().for_each(|&v| h.observe(v));
            h
        });
        WorkloadMetrics {
            key: WorkloadKey::deployment(namespace, name),
            terminating_pods: 1,
            terminating_pods_overdue: 0,
            oldest_termination_seconds: 0.0,
            in_progress_seconds: 0.0,
            phase: Phase::Complete,
            revision: Some(1),
            last_started_timestamp: None,
            last_completed_timestamp: None,
            started_total: 0,
            superseded_total: 0,
            unknown_starts: 0,
            slow_total: vec![],
            pod_termination_duration: termination,
            ready_duration: None,
            complete_duration: None,
            drain_tail: None,
            strategy: Some(UpdateStrategy::RollingUpdate),
            partition: None,
            overdue_by_reason: [0; StuckReason::ALL.len()],
            grace_period_seconds: Some(30),
            grace_exhausted_total: 0,
            revision_info: Some(RevisionInfo {
                revision: Some(1),
                images: format!("registry.example/{name}:1.0"),
            }),
            new_pods: Some((3, 3)),
            last_rollout: None,
        }
    }

    #[test]
    fn per_namespace_sums_each_namespaces_histograms_under_an_empty_workload_name() {
        // Sorted by namespace, as the model's snapshot is.
        let workloads = [
            workload("blog", "web", &[0.5]),
            workload("shop", "api", &[]),
            workload("shop", "cart", &[2.0, 20.0]),
            workload("shop", "web", &[5.0]),
        ];
        let out = summed_per_namespace(&workloads);
        let keys: Vec<(&str, &str)> = out
            .iter()
            .map(|m| (m.key.namespace.as_str(), m.key.name.as_str()))
            .collect();
        assert_eq!(keys, [("blog", ""), ("shop", "")]);
        let shop = out[1]
            .pod_termination_duration
            .as_ref()
            .expect("shop has observations");
        assert_eq!((shop.count(), shop.sum()), (3, 27.0));
        assert_eq!(
            shop.cumulative_buckets().collect::<Vec<_>>(),
            [(1.0, 0), (10.0, 2), (f64::INFINITY, 3)]
        );
        let blog = out[0].pod_termination_duration.as_ref().expect("blog");
        assert_eq!((blog.count(), blog.sum()), (1, 0.5));
        assert!(out.iter().all(|m| m.ready_duration.is_none()));
    }
}
