//! The scrape of a fixed snapshot, compared byte for byte with the golden files in `golden/`,
//! and the family tables checked against what is encoded.

use super::rollout::tests::workload;
use super::*;
use crate::model::{
    Histogram, ModelStats, Phase, Resource, RevisionInfo, UpdateStrategy, WorkloadKey,
    WorkloadKind, WorkloadMetrics, bucket_bounds,
};
use crate::shard::Sharding;
use crate::shared::{DEFAULT_FAILURE_TIMEOUT, Readiness, WatchCounts};

/// Encodes a fixed snapshot and fixed process values instead of the live ones.
#[derive(Debug)]
struct Fixed {
    per_namespace: bool,
}

impl Collector for Fixed {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let process = ProcessStats {
            cpu_seconds: 1.25,
            resident_bytes: 50 << 20,
            open_fds: 12,
            start_time_seconds: 1_699_000_000.0,
        };
        encode(
            &mut encoder,
            &fixed_snapshot(),
            self.per_namespace,
            Some(process),
        )
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
            terminating_pods: 3,
            terminating_pods_overdue: 2,
            // One held by a finalizer, one on a lost node.
            overdue_by_reason: [1, 1, 0, 0],
            grace_period_seconds: Some(45),
            grace_exhausted_total: 1,
            revision_info: Some(RevisionInfo {
                revision: Some(7),
                // Label values are escaped: a quote and a backslash in a hostile image name.
                images: r#"registry.example/api:7,side"car\x"#.into(),
            }),
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
        // An OnDelete StatefulSet waiting for people, and a partitioned one.
        WorkloadMetrics {
            key: WorkloadKey::new(WorkloadKind::StatefulSet, "db", "pg"),
            phase: Phase::Waiting,
            in_progress_seconds: 3600.0,
            revision: Some(4),
            strategy: Some(UpdateStrategy::OnDelete),
            slow_total: vec![(300, 0), (600, 0)],
            ..workload("db", "pg", &[5.5])
        },
        WorkloadMetrics {
            key: WorkloadKey::new(WorkloadKind::StatefulSet, "db", "redis"),
            partition: Some(2),
            revision: Some(2),
            slow_total: vec![(300, 0), (600, 0)],
            ..workload("db", "redis", &[])
        },
    ]
}

fn fixed_snapshot() -> Snapshot {
    Snapshot {
        workloads: fixed_workloads(),
        stats: ModelStats {
            imprecise_gap_terminations: 1,
            imprecise_unknown_request: 2,
            imprecise_gap_milestones: 3,
            unknown_start_rollouts: 4,
            deployments: 3,
            replicasets: 9,
            pods: 27,
            finished_pods: 5,
            ..ModelStats::default()
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
            WatchCounts::default(),
            WatchCounts::default(),
            WatchCounts::default(),
        ],
        // Deployments only (`--kinds deployment`): the other kinds' resources are not reported.
        readiness: Readiness {
            watched: [true, true, true, true, false, false, false],
            synced: [true, true, false, true, false, false, false],
            failing: [false; Resource::ALL.len()],
            failure_timeout: DEFAULT_FAILURE_TIMEOUT,
        },
        sharding: Some(Sharding { shard: 1, total: 3 }),
    }
}

/// The scrape of the fixed snapshot, in the format `accept` negotiates, through the real
/// rendering path; the version masked.
fn scrape(per_namespace: bool, accept: Option<&str>) -> (&'static str, String) {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Fixed { per_namespace }));
    let mut body = Vec::new();
    let content_type = render_chunks(&registry, accept, |chunk| {
        body.extend_from_slice(&chunk);
        true
    });
    let body = String::from_utf8(body).expect("UTF-8");
    // The version changes with every release; the golden files should not.
    let body = body.replace(&format!("version=\"{VERSION}\""), "version=\"<version>\"");
    (content_type, body)
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

const OM: Option<&str> = Some("application/openmetrics-text; version=1.0.0");

#[test]
fn a_fixed_snapshot_encodes_to_the_golden_text_in_both_formats() {
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
fn the_tables_hold_every_family_encoded_in_the_order_encoded() {
    let (_, body) = scrape(false, OM);
    let described: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .collect();
    let table: Vec<&Family> = families().collect();
    assert_eq!(described.len(), table.len(), "{described:#?}");
    for (line, family) in described.iter().zip(&table) {
        // The encoder appends the unit to the name: `kube_rollout_duration_seconds`.
        let (name, help) = line.split_once(' ').expect("name and help");
        assert!(
            name.starts_with(family.name),
            "{name} is not {}",
            family.name
        );
        assert_eq!(help, family.help, "{name}");
    }
    let mut names: Vec<&str> = table.iter().map(|f| f.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), table.len(), "a family name written twice");
}
