//! The delay before a failed list or watch is retried: client-go's reflector parameters (as kube's
//! watcher uses them), 0.8 s doubling to 30 s with jitter, back to 0.8 s after two minutes
//! without a failure. Time and randomness are passed in, so it is tested without waiting.

use std::time::{Duration, Instant};

const INITIAL: Duration = Duration::from_millis(800);
const MAX: Duration = Duration::from_secs(30);
/// A failure this long after the previous one starts again from [`INITIAL`].
const RESET_AFTER: Duration = Duration::from_secs(120);

#[derive(Debug, Default)]
pub struct Backoff {
    next: Option<Duration>,
    last: Option<Instant>,
}

impl Backoff {
    /// The delay before retrying a failure seen at `now`; `unit` in [0, 1) spreads it over its
    /// upper half, so exporters restarted together do not retry together.
    pub fn delay(&mut self, now: Instant, unit: f64) -> Duration {
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) > RESET_AFTER)
        {
            self.next = None;
        }
        self.last = Some(now);
        let base = self.next.unwrap_or(INITIAL);
        self.next = Some((base * 2).min(MAX));
        base.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }
}

impl Backoff {
    /// After a success: the next failure waits [`INITIAL`] again.
    pub fn reset(&mut self) {
        self.next = None;
    }
}

/// A number in [0, 1) from the standard library's randomly seeded hasher (no `rand` crate).
pub fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_thirty_seconds_then_resets_after_two_quiet_minutes() {
        let mut b = Backoff::default();
        let t = Instant::now();
        let full: Vec<f64> = (0..8)
            .map(|i| b.delay(t + Duration::from_secs(i), 1.0).as_secs_f64())
            .collect();
        assert_eq!(full, [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0]);
        assert_eq!(
            b.delay(t + Duration::from_secs(60), 0.0),
            MAX / 2,
            "jitter halves at most"
        );
        let later = t + Duration::from_secs(60) + RESET_AFTER + Duration::from_secs(1);
        assert_eq!(b.delay(later, 1.0), INITIAL);
        assert_eq!(b.delay(later, 1.0), INITIAL * 2);
        b.reset();
        assert_eq!(b.delay(later, 1.0), INITIAL, "a success resets it");
    }

    #[test]
    fn jitter_is_in_the_unit_interval() {
        let draws: Vec<f64> = (0..100).map(|_| jitter()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        assert!(draws.iter().any(|&u| u != draws[0]), "not constant");
    }
}
