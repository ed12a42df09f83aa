//! The live rollout board at `/` and its JSON at `/api/v1/rollouts`: what is rolling out right
//! now and what it is waiting for, from the same snapshot a scrape reads.
//!
//! Pure: [`build`] turns the model's per-workload values, the time and a [`Query`] into a
//! [`Board`] (three sections, sorted by what needs attention first, filtered, capped); `html`
//! renders it, serde writes the JSON. Nothing is computed unless someone asks: the board is
//! built per request, from a snapshot taken under the model's lock like a scrape's.

mod html;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Phase, StuckReason, WorkloadKind, WorkloadMetrics};

pub use html::{escape, render};

/// Completions shown as recent: the last hour.
pub const RECENT_SECS: f64 = 3600.0;
/// Rows per section by default, and the most a request may ask for: a cluster of 10k workloads
/// renders in bounded time, and the answer says how many rows it left out.
pub const DEFAULT_LIMIT: usize = 200;
pub const MAX_LIMIT: usize = 10_000;

/// What a request asks of the board (`?namespace=..&kind=..&limit=..`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub namespace: Option<String>,
    pub kind: Option<WorkloadKind>,
    /// Rows per section.
    pub limit: usize,
}

impl Query {
    /// Parses a URL query string; unknown parameters are ignored, bad values are an error that
    /// says what is accepted.
    pub fn parse(query: Option<&str>) -> Result<Self, String> {
        let mut q = Query {
            limit: DEFAULT_LIMIT,
            ..Query::default()
        };
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let v = v.into_owned();
            match &*k {
                "namespace" if !v.is_empty() => q.namespace = Some(v),
                "kind" if !v.is_empty() => {
                    q.kind = Some(
                        WorkloadKind::ALL
                            .into_iter()
                            .find(|k| k.as_str() == v.to_ascii_lowercase())
                            .ok_or("kind: deployment, statefulset or daemonset")?,
                    )
                }
                "limit" => {
                    q.limit = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or(format!("limit: a number from 1 to {MAX_LIMIT}"))?
                }
                _ => {}
            }
        }
        Ok(q)
    }

    fn keeps(&self, m: &WorkloadMetrics) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| ns == m.key.namespace)
            && self.kind.is_none_or(|k| k == m.key.kind)
    }
}

/// The board: three sections at one instant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Board {
    /// Unix seconds.
    pub generated_at: f64,
    /// The first SLO threshold (`--slo-threshold`): a rollout older than this is slow.
    pub slo_threshold_seconds: u64,
    pub namespace: Option<String>,
    pub kind: Option<&'static str>,
    pub in_flight: Section<InFlight>,
    pub recent: Section<Completed>,
    pub overdue: Section<Overdue>,
}

/// One section: its rows, at most the query's limit, and how many there are in all.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Section<T> {
    pub total: usize,
    pub rows: Vec<T>,
}

/// A workload's identity, on every row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Workload {
    pub namespace: String,
    pub name: String,
    pub kind: &'static str,
    pub revision: Option<u64>,
    /// The pod template's container images, comma-separated.
    pub images: Option<String>,
}

/// A rollout in flight.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InFlight {
    #[serde(flatten)]
    pub workload: Workload,
    pub phase: &'static str,
    pub age_seconds: f64,
    /// Older than the SLO threshold.
    pub slow: bool,
    pub new_ready: Option<i32>,
    pub new_wanted: Option<i32>,
    pub old_terminating: u64,
    pub oldest_termination_seconds: f64,
    pub overdue: u64,
    pub overdue_reasons: BTreeMap<&'static str, u64>,
}

/// A rollout completed within [`RECENT_SECS`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Completed {
    #[serde(flatten)]
    pub workload: Workload,
    pub completed_at: f64,
    pub ready_seconds: Option<f64>,
    pub complete_seconds: Option<f64>,
    pub drain_tail_seconds: Option<f64>,
}

/// A workload with overdue terminations, rolling out or not.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Overdue {
    #[serde(flatten)]
    pub workload: Workload,
    pub phase: &'static str,
    pub terminating: u64,
    pub overdue: u64,
    pub overdue_reasons: BTreeMap<&'static str, u64>,
    pub oldest_termination_seconds: f64,
}

fn workload(m: &WorkloadMetrics) -> Workload {
    Workload {
        namespace: m.key.namespace.clone(),
        name: m.key.name.clone(),
        kind: m.key.kind.as_str(),
        revision: m.revision,
        images: m.revision_info.as_ref().map(|i| i.images.clone()),
    }
}

fn reasons(m: &WorkloadMetrics) -> BTreeMap<&'static str, u64> {
    StuckReason::ALL
        .into_iter()
        .map(|r| (r.as_str(), m.overdue_by_reason[r.index()]))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// How much a rollout in flight needs attention: stalled first, then overdue pods, then slow,
/// then the oldest.
fn attention(m: &WorkloadMetrics, slo: u64) -> (bool, u64, bool, f64) {
    (
        m.phase == Phase::Stalled,
        m.terminating_pods_overdue,
        m.in_progress_seconds >= slo as f64,
        m.in_progress_seconds,
    )
}

fn capped<T>(rows: Vec<T>, limit: usize) -> Section<T> {
    let total = rows.len();
    Section {
        total,
        rows: rows.into_iter().take(limit).collect(),
    }
}

/// The board of `workloads` (sorted by key, as the model answers them) at `now`.
pub fn build(workloads: &[WorkloadMetrics], now: f64, slo: u64, q: &Query) -> Board {
    let kept: Vec<&WorkloadMetrics> = workloads.iter().filter(|m| q.keeps(m)).collect();
    let mut in_flight: Vec<&WorkloadMetrics> = kept
        .iter()
        .copied()
        .filter(|m| m.phase != Phase::Complete)
        .collect();
    in_flight.sort_by(|a, b| {
        let (a, b) = (attention(a, slo), attention(b, slo));
        (b.0, b.1, b.2)
            .cmp(&(a.0, a.1, a.2))
            .then(b.3.total_cmp(&a.3))
    });
    let in_flight = in_flight
        .into_iter()
        .map(|m| InFlight {
            workload: workload(m),
            phase: m.phase.as_str(),
            age_seconds: m.in_progress_seconds,
            slow: m.in_progress_seconds >= slo as f64,
            new_ready: m.new_pods.map(|p| p.0),
            new_wanted: m.new_pods.map(|p| p.1),
            old_terminating: m.terminating_pods,
            oldest_termination_seconds: m.oldest_termination_seconds,
            overdue: m.terminating_pods_overdue,
            overdue_reasons: reasons(m),
        })
        .collect();
    let mut recent: Vec<(&WorkloadMetrics, _)> = kept
        .iter()
        .filter(|m| m.phase == Phase::Complete)
        .filter_map(|m| m.last_rollout.map(|r| (*m, r)))
        .filter(|(_, r)| now - r.completed_at <= RECENT_SECS)
        .collect();
    recent.sort_by(|a, b| b.1.completed_at.total_cmp(&a.1.completed_at));
    let recent = recent
        .into_iter()
        .map(|(m, r)| Completed {
            workload: workload(m),
            completed_at: r.completed_at,
            ready_seconds: r.ready_seconds,
            complete_seconds: r.complete_seconds,
            drain_tail_seconds: r.drain_tail_seconds,
        })
        .collect();
    let mut overdue: Vec<&WorkloadMetrics> = kept
        .iter()
        .copied()
        .filter(|m| m.terminating_pods_overdue > 0)
        .collect();
    overdue.sort_by(|a, b| {
        b.terminating_pods_overdue
            .cmp(&a.terminating_pods_overdue)
            .then(
                b.oldest_termination_seconds
                    .total_cmp(&a.oldest_termination_seconds),
            )
    });
    let overdue = overdue
        .into_iter()
        .map(|m| Overdue {
            workload: workload(m),
            phase: m.phase.as_str(),
            terminating: m.terminating_pods,
            overdue: m.terminating_pods_overdue,
            overdue_reasons: reasons(m),
            oldest_termination_seconds: m.oldest_termination_seconds,
        })
        .collect();
    Board {
        generated_at: now,
        slo_threshold_seconds: slo,
        namespace: q.namespace.clone(),
        kind: q.kind.map(WorkloadKind::as_str),
        in_flight: capped(in_flight, q.limit),
        recent: capped(recent, q.limit),
        overdue: capped(overdue, q.limit),
    }
}

#[cfg(test)]
mod tests;
