//! `/metrics`: the model's values and the exporter's self-metrics, computed at scrape time.
//!
//! A prometheus-client [`Collector`] takes one [`Snapshot`] of the shared state (the model's lock
//! is released before any encoding) and encodes every series from it, so no series outlives its
//! workload. Each family's name, type, unit, help and labels are written once, in the tables of
//! [`rollout`] (per workload) and [`exporter`] (self-metrics); [`render`] negotiates the format
//! (OpenMetrics or text 0.0.4) and streams the text in chunks as it is encoded.

pub mod exporter;
mod family;
pub mod render;
pub mod rollout;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;

pub use exporter::VERSION;
pub use family::Family;
pub use render::{CHUNK, Chunks, OPENMETRICS, TEXT_004, content_type, render_chunks};

use crate::process::{self, ProcessStats};
use crate::shared::{Shared, Snapshot};

/// Every family, in the order a scrape writes them: the one table docs and tests can read.
pub fn families() -> impl Iterator<Item = &'static Family> {
    rollout::FAMILIES.into_iter().chain(exporter::FAMILIES)
}

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

impl Collector for RolloutCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let snap = self.shared.snapshot();
        encode(&mut encoder, &snap, self.per_namespace, process::read())
    }
}

/// Writes every family of one scrape: the rollout families, then the self-metrics.
fn encode(
    e: &mut DescriptorEncoder<'_>,
    snap: &Snapshot,
    per_namespace: bool,
    process: Option<ProcessStats>,
) -> fmt::Result {
    rollout::encode(e, &snap.workloads, per_namespace)?;
    exporter::encode(e, snap, process)
}

/// A complete Deployment's metric values, for the tests of what reads them (the board's too).
#[cfg(test)]
pub(crate) use rollout::tests::workload as example_workload;
