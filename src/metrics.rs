//! `/metrics`: the model's values and the exporter's self-metrics, computed at scrape time.
//!
//! A prometheus-client [`Collector`] copies a snapshot out of the model (one lock, released before
//! any encoding), then encodes every series from it, so no series outlives its workload. The same
//! registry renders OpenMetrics (what Prometheus negotiates) or the classic text format 0.0.4.
//! [`render_chunks`] hands the text out in chunks as it is encoded, so a scrape of a million
//! series never holds its whole output (`/metrics` streams it).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::model::{Histogram, Phase, Resource, WorkloadMetrics};
use crate::process;
use crate::shared::{Shared, Snapshot, WatchCounts};

/// The exporter's version, as `kube_rollout_exporter_build_info{version}` reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Content type of the OpenMetrics text format.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the classic Prometheus text format.
pub const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The collector of every series. See the module documentation.
#[derive(Debug)]
pub struct RolloutCollector {
    shared: Arc<Shared>,
    /// `--histograms.per-namespace`: histograms summed per namespace, `workload=""`.
    per_namespace: bool,
}

/// A registry holding the collector; `per_namespace` sums the histograms per namespace.
pub fn registry(shared: Arc<Shared>, per_namespace: bool) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(RolloutCollector {
        shared,
        per_namespace,
    }));
    registry
}

/// `--histograms.per-namespace`: one entry per namespace holding the sum of its workloads'
/// histograms, with an empty workload name; gauges and counters are not in it.
fn per_namespace(workloads: &[WorkloadMetrics]) -> Vec<WorkloadMetrics> {
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

/// Bytes per chunk of a streamed scrape.
pub const CHUNK: usize = 64 * 1024;

fn is_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// The content type [`render`] and [`render_chunks`] answer for an `Accept` header.
pub fn content_type(accept: Option<&str>) -> &'static str {
    if is_openmetrics(accept) {
        OPENMETRICS
    } else {
        TEXT_004
    }
}

/// A `fmt::Write` that hands its text to a sink in chunks of about [`CHUNK`] bytes.
struct Chunks<'a, F> {
    buf: String,
    sink: &'a mut F,
    /// The sink refused a chunk (the client went away): encoding stops.
    closed: bool,
}

impl<F: FnMut(Bytes) -> bool> Chunks<'_, F> {
    fn flush(&mut self) -> fmt::Result {
        let chunk = std::mem::replace(&mut self.buf, String::with_capacity(CHUNK + 4096));
        if !chunk.is_empty() && !(self.sink)(Bytes::from(chunk)) {
            self.closed = true;
            return Err(fmt::Error);
        }
        Ok(())
    }
}

impl<F: FnMut(Bytes) -> bool> fmt::Write for Chunks<'_, F> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.buf.push_str(s);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }
}

/// Renders like [`render`], but hands the text to `sink` in chunks of about [`CHUNK`] bytes as
/// it is encoded, so the output is never held whole: memory during a scrape is the model's
/// snapshot plus the chunks in flight, whatever the output's size. Stops early when `sink`
/// answers false (the client went away). Returns the content type.
pub fn render_chunks(
    registry: &Registry,
    accept: Option<&str>,
    mut sink: impl FnMut(Bytes) -> bool,
) -> &'static str {
    let mut out = Chunks {
        buf: String::with_capacity(CHUNK + 4096),
        sink: &mut sink,
        closed: false,
    };
    let result = if is_openmetrics(accept) {
        prometheus_client::encoding::text::encode(&mut out, registry)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, registry)
    };
    match result.and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(_) if out.closed => tracing::debug!("scrape abandoned by the client"),
        Err(_) => tracing::error!("encoding metrics failed"),
    }
    content_type(accept)
}

/// Renders the registry in the format the `Accept` header asks for: OpenMetrics when it names
/// `application/openmetrics-text`, text 0.0.4 otherwise. Returns the content type and the body.
pub fn render(registry: &Registry, accept: Option<&str>) -> (&'static str, String) {
    let mut out = String::with_capacity(64 * 1024);
    let openmetrics = accept.is_some_and(|a| a.contains("application/openmetrics-text"));
    let result = if openmetrics {
        prometheus_client::encoding::text::encode(&mut out, registry)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, registry)
    };
    if result.is_err() {
        // Encoding into a String cannot fail; keep whatever was written rather than nothing.
        tracing::error!("encoding metrics failed");
    }
    (if openmetrics { OPENMETRICS } else { TEXT_004 }, out)
}

type Labels<'a> = [(&'static str, &'a str); 3];

fn labels(m: &WorkloadMetrics) -> Labels<'_> {
    [
        ("namespace", m.key.namespace.as_str()),
        ("workload", m.key.name.as_str()),
        ("workload_type", m.key.kind.as_str()),
    ]
}

/// Non-cumulative `(upper bound, count)` pairs ending with +Inf, as the encoder wants them.
fn buckets(h: &Histogram) -> Vec<(f64, u64)> {
    let mut previous = 0;
    h.cumulative_buckets()
        .map(|(le, cumulative)| {
            let n = cumulative - previous;
            previous = cumulative;
            (le, n)
        })
        .collect()
}

/// Encodes one gauge family with a value per workload.
fn gauge_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    workloads: &[WorkloadMetrics],
    value: impl Fn(&WorkloadMetrics) -> Option<f64>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for m in workloads {
        if let Some(v) = value(m) {
            family.encode_family(&labels(m))?.encode_gauge(&v)?;
        }
    }
    Ok(())
}

fn histogram_family<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl Iterator<Item = (Vec<(&'static str, &'a str)>, &'a Histogram)>,
) -> Result<(), std::fmt::Error> {
    let mut family =
        encoder.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    for (labels, h) in series {
        family
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(h.sum(), h.count(), &buckets(h), None)?;
    }
    Ok(())
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: f64,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, unit, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, f64>(&value, None)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: f64,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, unit, MetricType::Gauge)?
        .encode_gauge(&value)
}

impl Collector for RolloutCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.encode_snapshot(encoder, &self.shared.snapshot())
    }
}

impl RolloutCollector {
    fn encode_snapshot(
        &self,
        mut encoder: DescriptorEncoder,
        snap: &Snapshot,
    ) -> Result<(), std::fmt::Error> {
        let w = &snap.workloads;
        let e = &mut encoder;

        gauge_family(
            e,
            "kube_rollout_terminating_pods",
            "Pods of the workload with a deletionTimestamp that still exist.",
            None,
            w,
            |m| Some(m.terminating_pods as f64),
        )?;
        gauge_family(
            e,
            "kube_rollout_terminating_pods_overdue",
            "Terminating pods still present after their first observed deletionTimestamp.",
            None,
            w,
            |m| Some(m.terminating_pods_overdue as f64),
        )?;
        gauge_family(
            e,
            "kube_rollout_oldest_termination",
            "Scrape time minus the earliest deletion request among terminating pods; 0 when none.",
            Some(&Unit::Seconds),
            w,
            |m| Some(m.oldest_termination_seconds),
        )?;
        gauge_family(
            e,
            "kube_rollout_in_progress",
            "Age of the rollout in flight; 0 when none.",
            Some(&Unit::Seconds),
            w,
            |m| Some(m.in_progress_seconds),
        )?;
        {
            let mut family = e.encode_descriptor(
                "kube_rollout_phase",
                "1 for the workload's rollout phase, 0 for the others.",
                None,
                MetricType::Gauge,
            )?;
            for m in w {
                let base = labels(m);
                for phase in Phase::ALL {
                    let l = [base[0], base[1], base[2], ("phase", phase.as_str())];
                    family
                        .encode_family(&l)?
                        .encode_gauge(&i64::from(m.phase == phase))?;
                }
            }
        }
        gauge_family(
            e,
            "kube_rollout_revision",
            "The Deployment's deployment.kubernetes.io/revision.",
            None,
            w,
            |m| m.revision.map(|r| r as f64),
        )?;
        gauge_family(
            e,
            "kube_rollout_last_started_timestamp",
            "Unix time of the last rollout start.",
            Some(&Unit::Seconds),
            w,
            |m| m.last_started_timestamp,
        )?;
        gauge_family(
            e,
            "kube_rollout_last_completed_timestamp",
            "Unix time of the last rollout completion seen by this exporter process.",
            Some(&Unit::Seconds),
            w,
            |m| m.last_completed_timestamp,
        )?;

        let grouped;
        let hw: &[WorkloadMetrics] = if self.per_namespace {
            grouped = per_namespace(w);
            &grouped
        } else {
            w
        };
        histogram_family(
            e,
            "kube_rollout_pod_termination_duration",
            "From a pod's deletion request to its object being gone.",
            hw.iter()
                .filter_map(|m| Some((labels(m).to_vec(), m.pod_termination_duration.as_ref()?))),
        )?;
        histogram_family(
            e,
            "kube_rollout_duration",
            "From rollout start to the milestone: ready (kubectl's moment) or complete (every old pod gone).",
            hw.iter().flat_map(|m| {
                [
                    ("ready", &m.ready_duration),
                    ("complete", &m.complete_duration),
                ]
                .into_iter()
                .filter_map(move |(milestone, h)| {
                    let mut l = labels(m).to_vec();
                    l.push(("milestone", milestone));
                    Some((l, h.as_ref()?))
                })
            }),
        )?;
        histogram_family(
            e,
            "kube_rollout_drain_tail",
            "Complete minus ready: how long old pods outlived kubectl's success.",
            hw.iter()
                .filter_map(|m| Some((labels(m).to_vec(), m.drain_tail.as_ref()?))),
        )?;

        for (name, help, value) in [
            (
                "kube_rollout_started",
                "Rollouts started (revision changes) since the exporter started.",
                (|m: &WorkloadMetrics| m.started_total) as fn(&WorkloadMetrics) -> u64,
            ),
            (
                "kube_rollout_superseded",
                "Rollouts superseded by a newer revision before completing.",
                |m: &WorkloadMetrics| m.superseded_total,
            ),
        ] {
            let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
            for m in w {
                family
                    .encode_family(&labels(m))?
                    .encode_counter::<NoLabelSet, _, f64>(&value(m), None)?;
            }
        }
        {
            let mut family = e.encode_descriptor("kube_rollout_slow", "Rollouts in flight that passed the SLO threshold age (superseded ones only if they passed it first).", None, MetricType::Counter)?;
            for m in w {
                for (threshold, count) in &m.slow_total {
                    let t = threshold.to_string();
                    let base = labels(m);
                    let l = [base[0], base[1], base[2], ("threshold_seconds", t.as_str())];
                    family
                        .encode_family(&l)?
                        .encode_counter::<NoLabelSet, _, f64>(count, None)?;
                }
            }
        }

        // Self-metrics.
        e.encode_descriptor(
            "kube_rollout_exporter_build",
            "Build information of the exporter.",
            None,
            MetricType::Info,
        )?
        .encode_info(&[("version", VERSION)])?;
        for (name, help, value) in [
            (
                "kube_rollout_exporter_watch_events",
                "Watch events received, per resource.",
                (|s: &WatchCounts| s.events) as fn(&WatchCounts) -> u64,
            ),
            (
                "kube_rollout_exporter_watch_errors",
                "Watch errors (failed lists and watches, undecodable objects), per resource.",
                |s| s.errors,
            ),
            (
                "kube_rollout_exporter_watch_restarts",
                "Relists after the first list (410 Expired, lost events), per resource.",
                |s| s.restarts,
            ),
        ] {
            let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
            for r in Resource::ALL {
                family
                    .encode_family(&[("resource", r.as_str())])?
                    .encode_counter::<NoLabelSet, _, f64>(
                        &value(&snap.watches[r as usize]),
                        None,
                    )?;
            }
        }
        {
            let mut family = e.encode_descriptor(
                "kube_rollout_exporter_api_requests",
                "Answers of the API server to the exporter's lists and watches, by resource, verb and HTTP status (code 0: the connection failed).",
                None,
                MetricType::Counter,
            )?;
            for r in Resource::ALL {
                for &((verb, code), n) in &snap.watches[r as usize].requests {
                    let code = if code == 0 {
                        "0".to_string()
                    } else {
                        code.to_string()
                    };
                    let l = [
                        ("resource", r.as_str()),
                        ("verb", verb),
                        ("code", code.as_str()),
                    ];
                    family
                        .encode_family(&l)?
                        .encode_counter::<NoLabelSet, _, f64>(&n, None)?;
                }
            }
        }
        {
            let s = &snap.stats;
            let mut family = e.encode_descriptor(
                "kube_rollout_exporter_objects",
                "Objects tracked, per resource.",
                None,
                MetricType::Gauge,
            )?;
            for (r, n) in [
                (Resource::Deployments, s.deployments),
                (Resource::ReplicaSets, s.replicasets),
                (Resource::Pods, s.pods),
                (Resource::FinishedPods, s.finished_pods),
            ] {
                family
                    .encode_family(&[("resource", r.as_str())])?
                    .encode_gauge(&n)?;
            }
        }
        {
            let mut family = e.encode_descriptor(
                "kube_rollout_exporter_synced",
                "1 once the resource's first list finished and while its watch is not failing.",
                None,
                MetricType::Gauge,
            )?;
            for r in Resource::ALL {
                let ok = snap.readiness.of(r);
                family
                    .encode_family(&[("resource", r.as_str())])?
                    .encode_gauge(&i64::from(ok))?;
            }
        }
        {
            let s = &snap.stats;
            let mut family = e.encode_descriptor("kube_rollout_exporter_imprecise_observations", "Observations timed at a relist (watch gap) or not observed (deletion request time unknown).", None, MetricType::Counter)?;
            for (reason, n) in [
                ("gap_termination", s.imprecise_gap_terminations),
                ("gap_milestone", s.imprecise_gap_milestones),
                ("unknown_request", s.imprecise_unknown_request),
            ] {
                family
                    .encode_family(&[("reason", reason)])?
                    .encode_counter::<NoLabelSet, _, f64>(&n, None)?;
            }
        }
        if let Some(sharding) = snap.sharding {
            let help = "This exporter's shard (0 to total shards minus 1).";
            gauge(
                e,
                "kube_rollout_exporter_shard_ordinal",
                help,
                None,
                sharding.shard as f64,
            )?;
            let help = "Number of shards the workloads are split across.";
            gauge(
                e,
                "kube_rollout_exporter_total_shards",
                help,
                None,
                sharding.total as f64,
            )?;
        }
        counter(
            e,
            "kube_rollout_exporter_unknown_start_rollouts",
            "Rollouts recovered after an exporter restart whose start cannot be known (durations not observed).",
            None,
            snap.stats.unknown_start_rollouts as f64,
        )?;
        if let Some(p) = process::read() {
            counter(
                e,
                "process_cpu",
                "Total user and system CPU time spent.",
                Some(&Unit::Seconds),
                p.cpu_seconds,
            )?;
            gauge(
                e,
                "process_resident_memory",
                "Resident memory size.",
                Some(&Unit::Bytes),
                p.resident_bytes as f64,
            )?;
            gauge(
                e,
                "process_open_fds",
                "Open file descriptors.",
                None,
                p.open_fds as f64,
            )?;
            gauge(
                e,
                "process_start_time",
                "Start time of the process since the Unix epoch.",
                Some(&Unit::Seconds),
                p.start_time_seconds,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{WorkloadKey, bucket_bounds};

    fn workload(namespace: &str, name: &str, terminations: &[f64]) -> WorkloadMetrics {
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
            slow_total: vec![],
            pod_termination_duration: termination,
            ready_duration: None,
            complete_duration: None,
            drain_tail: None,
        }
    }

    /// Encodes a fixed snapshot, not the live one: the model's, the watches' and the sharding's
    /// values are chosen, and the process values (read from `/proc`) are masked.
    #[derive(Debug)]
    struct Fixed {
        collector: RolloutCollector,
    }

    impl Collector for Fixed {
        fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            self.collector.encode_snapshot(encoder, &fixed_snapshot())
        }
    }

    fn histogram(values: &[f64]) -> Histogram {
        let mut h = Histogram::new(bucket_bounds(&[1.0, 10.0], &[300]));
        values.iter().for_each(|&v| h.observe(v));
        h
    }

    /// Three workloads in two namespaces (sorted, as the model answers them): one rolling with
    /// every histogram, one complete with terminations only, one without a revision.
    fn fixed_workloads() -> Vec<WorkloadMetrics> {
        let cart = workload("shop", "cart", &[0.25, 3.0]);
        vec![
            WorkloadMetrics {
                revision: None,
                terminating_pods: 0,
                phase: Phase::Stalled,
                slow_total: vec![(300, 0), (600, 0)],
                ..workload("blog", "web", &[])
            },
            WorkloadMetrics {
                terminating_pods: 2,
                terminating_pods_overdue: 1,
                oldest_termination_seconds: 12.5,
                in_progress_seconds: 30.25,
                phase: Phase::Draining,
                revision: Some(7),
                last_started_timestamp: Some(1_700_000_000.5),
                last_completed_timestamp: Some(1_699_990_000.0),
                started_total: 7,
                superseded_total: 2,
                slow_total: vec![(300, 3), (600, 1)],
                pod_termination_duration: Some(histogram(&[0.5, 20.0, 400.0])),
                ready_duration: Some(histogram(&[4.0])),
                complete_duration: Some(histogram(&[8.0, 12.0])),
                drain_tail: Some(histogram(&[4.0])),
                ..workload("shop", "api", &[])
            },
            WorkloadMetrics {
                slow_total: vec![(300, 0), (600, 0)],
                ready_duration: Some(histogram(&[2.0])),
                ..cart
            },
        ]
    }

    fn fixed_snapshot() -> Snapshot {
        Snapshot {
            workloads: fixed_workloads(),
            stats: crate::model::ModelStats {
                imprecise_gap_terminations: 1,
                imprecise_unknown_request: 2,
                imprecise_gap_milestones: 3,
                unknown_start_rollouts: 4,
                deployments: 3,
                replicasets: 9,
                pods: 27,
                finished_pods: 5,
            },
            watches: [
                WatchCounts {
                    events: 11,
                    requests: vec![(("list", 200), 1), (("watch", 200), 2), (("watch", 410), 1)],
                    ..WatchCounts::default()
                },
                WatchCounts::default(),
                WatchCounts {
                    events: 40,
                    errors: 2,
                    restarts: 1,
                    requests: vec![(("list", 0), 1), (("list", 200), 1), (("watch", 503), 1)],
                },
                WatchCounts::default(),
            ],
            readiness: crate::shared::Readiness {
                synced: [true, true, false, true],
                failing: [false; 4],
                failure_timeout: crate::shared::DEFAULT_FAILURE_TIMEOUT,
            },
            sharding: Some(crate::shard::Sharding { shard: 1, total: 3 }),
        }
    }

    /// The scrape of the fixed snapshot, in the format `accept` negotiates, through the real
    /// rendering path; process values (read live) and the version masked.
    fn scrape(per_namespace: bool, accept: Option<&str>) -> (&'static str, String) {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Fixed {
            collector: RolloutCollector {
                shared: Arc::new(Shared::new(crate::model::Model::new(
                    crate::model::ModelConfig::default(),
                ))),
                per_namespace,
            },
        }));
        let mut body = Vec::new();
        let content_type = render_chunks(&registry, accept, |chunk| {
            body.extend_from_slice(&chunk);
            true
        });
        let body = String::from_utf8(body).expect("UTF-8");
        let masked: Vec<String> = body
            .lines()
            .map(|l| match l.rsplit_once(' ') {
                Some((series, _)) if l.starts_with("process_") => format!("{series} <value>"),
                _ => l.to_string(),
            })
            .collect();
        let version = format!("version=\"{VERSION}\"");
        let body = masked.join("\n").replace(&version, "version=\"<version>\"");
        (content_type, body + "\n")
    }

    /// Compares with `src/metrics/golden/NAME`; `BLESS=1` rewrites the file instead.
    fn golden(name: &str, actual: &str) {
        let path = format!("{}/src/metrics/golden/{name}", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(&path, actual).expect("write golden");
        }
        let expected = std::fs::read_to_string(&path).expect("golden file");
        assert!(expected == actual, "{name} differs:\n{actual}");
    }

    #[test]
    fn a_fixed_snapshot_encodes_to_the_golden_text_in_both_formats() {
        const OM: Option<&str> = Some("application/openmetrics-text; version=1.0.0");
        for (per_namespace, accept, name, content_type) in [
            (false, None, "per_workload.txt", TEXT_004),
            (false, OM, "per_workload.openmetrics.txt", OPENMETRICS),
            (true, None, "per_namespace.txt", TEXT_004),
            (true, OM, "per_namespace.openmetrics.txt", OPENMETRICS),
        ] {
            let (answered, body) = scrape(per_namespace, accept);
            assert_eq!(answered, content_type, "{name}");
            golden(name, &body);
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
        let out = per_namespace(&workloads);
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
