//! A plain histogram of seconds, owned by the model and copied out at scrape time.

use std::sync::Arc;

/// Default bucket upper bounds in seconds, exactly as the metrics contract lists them; each
/// configured SLO threshold is added so that "within T" can be read straight off a bucket.
pub const DEFAULT_BUCKETS: [f64; 17] = [
    1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 180.0, 300.0, 450.0, 600.0, 900.0, 1200.0,
    1800.0, 3600.0, 7200.0,
];

/// Sorted, deduplicated, finite bucket bounds shared by every histogram of a model.
pub fn bucket_bounds(base: &[f64], slo_thresholds_secs: &[u64]) -> Arc<[f64]> {
    let mut bounds: Vec<f64> = base
        .iter()
        .copied()
        .chain(slo_thresholds_secs.iter().map(|&t| t as f64))
        .filter(|b| b.is_finite())
        .collect();
    bounds.sort_by(f64::total_cmp);
    bounds.dedup();
    bounds.into()
}

/// Counts per bucket (not cumulative; the last slot is +Inf), sum and count.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    bounds: Arc<[f64]>,
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub fn new(bounds: Arc<[f64]>) -> Self {
        let slots = bounds.len() + 1;
        Self {
            bounds,
            counts: vec![0; slots],
            sum: 0.0,
            count: 0,
        }
    }

    /// Records one value; Prometheus buckets are inclusive upper bounds (`le`).
    pub fn observe(&mut self, value: f64) {
        let slot = self.bounds.partition_point(|&b| b < value);
        self.counts[slot] += 1;
        self.sum += value;
        self.count += 1;
    }

    /// Adds another histogram's observations (same bounds; different bounds are not merged).
    pub fn merge(&mut self, other: &Histogram) {
        if self.bounds != other.bounds {
            return;
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum += other.sum;
        self.count += other.count;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// `(upper bound, cumulative count)` for every bucket, ending with `+Inf`, as exposition
    /// formats want them.
    pub fn cumulative_buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.counts.iter().scan(0u64, |acc, c| {
                *acc += c;
                Some(*acc)
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slo_thresholds_join_the_default_buckets_once() {
        let b = bucket_bounds(&DEFAULT_BUCKETS, &[900, 420]);
        assert_eq!(b.len(), 18);
        assert!(b.windows(2).all(|w| w[0] < w[1]));
        assert!(b.contains(&420.0));
    }

    #[test]
    fn merging_adds_counts_and_sums() {
        let bounds = bucket_bounds(&[1.0, 5.0], &[]);
        let (mut a, mut b) = (Histogram::new(bounds.clone()), Histogram::new(bounds));
        a.observe(0.5);
        b.observe(3.0);
        b.observe(9.0);
        a.merge(&b);
        assert_eq!(
            a.cumulative_buckets().collect::<Vec<_>>(),
            vec![(1.0, 1), (5.0, 2), (f64::INFINITY, 3)]
        );
        assert_eq!((a.count(), a.sum()), (3, 12.5));
    }

    #[test]
    fn buckets_are_inclusive_upper_bounds() {
        let mut h = Histogram::new(bucket_bounds(&[1.0, 5.0], &[]));
        for v in [0.5, 1.0, 1.5, 5.0, 9.0] {
            h.observe(v);
        }
        let got: Vec<_> = h.cumulative_buckets().collect();
        assert_eq!(got, vec![(1.0, 2), (5.0, 4), (f64::INFINITY, 5)]);
        assert_eq!(h.count(), 5);
        assert_eq!(h.sum(), 17.0);
    }
}
