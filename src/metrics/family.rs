//! The descriptor of one metric family: its name, type, unit, help and label names, written once
//! in the tables of [`super::rollout`] and [`super::exporter`], and read by their encoders.

use std::fmt;

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

/// One metric family as Prometheus sees it. `name` is the base name: the encoder appends the
/// unit (`_seconds`) and, for counters, `_total`.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub kind: MetricType,
    pub unit: Option<Unit>,
    pub help: &'static str,
    /// Label names, in the order their values are given to [`Family::labels`].
    pub labels: &'static [&'static str],
}

impl Family {
    /// Writes the family's `HELP`, `TYPE` (and `UNIT`) lines; its series follow.
    pub fn describe<'e>(
        &'static self,
        encoder: &'e mut DescriptorEncoder<'_>,
    ) -> Result<MetricEncoder<'e>, fmt::Error> {
        encoder.encode_descriptor(self.name, self.help, self.unit.as_ref(), self.kind)
    }

    /// The label set of one series: the family's label names paired with `values`, in order.
    pub fn labels<'v, const N: usize>(&self, values: [&'v str; N]) -> [(&'static str, &'v str); N] {
        debug_assert_eq!(self.labels.len(), N, "label values of {}", self.name);
        std::array::from_fn(|i| (self.labels[i], values[i]))
    }

    /// Writes one sample as the family's type says: a counter or a gauge.
    pub fn sample<V: EncodeCounterValue + EncodeGaugeValue>(
        &self,
        mut series: MetricEncoder<'_>,
        value: V,
    ) -> fmt::Result {
        match self.kind {
            MetricType::Counter => series.encode_counter::<NoLabelSet, _, f64>(&value, None),
            MetricType::Gauge => series.encode_gauge(&value),
            _ => unreachable!("{} holds no counter or gauge samples", self.name),
        }
    }

    /// Writes a family of one series without labels.
    pub fn single<V: EncodeCounterValue + EncodeGaugeValue>(
        &'static self,
        encoder: &mut DescriptorEncoder<'_>,
        value: V,
    ) -> fmt::Result {
        self.sample(self.describe(encoder)?, value)
    }
}
