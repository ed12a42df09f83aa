//! Points in time, passed into the model by its caller: the model never reads a clock.
//!
//! Two clocks meet in this crate. *Receive times* come from the exporter's own clock when a watch
//! event arrives (microsecond resolution). *Object timestamps* (`deletionTimestamp`,
//! `creationTimestamp`, condition times) come from the API server's clock with one-second
//! resolution. Both are Unix time, so they share this type; the places where a duration mixes the
//! two are documented where they happen.

use std::fmt;

/// Unix time in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// A time given in whole microseconds since the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// A time given in whole seconds since the Unix epoch (API server timestamps).
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    /// A time given in fractional seconds since the Unix epoch, rounded to the microsecond.
    pub fn from_secs_f64(secs: f64) -> Self {
        Self((secs * 1e6).round() as i64)
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Seconds since the Unix epoch, as Prometheus timestamps are written.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// Seconds from `earlier` to `self`; negative when `earlier` is in fact later.
    pub fn seconds_since(self, earlier: Timestamp) -> f64 {
        self.0.saturating_sub(earlier.0) as f64 / 1e6
    }

    /// This time moved back by `secs` whole seconds.
    pub const fn minus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_sub(secs.saturating_mul(1_000_000)))
    }

    /// This time moved forward by `secs` whole seconds.
    pub const fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1_000_000)))
    }

    /// This time truncated to the whole second, to compare with the API server's timestamps.
    pub const fn truncated(self) -> Self {
        Self(self.0 - self.0.rem_euclid(1_000_000))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6}", self.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_since_keeps_microseconds() {
        let a = Timestamp::from_secs_f64(1_795_800_841.174_259);
        let b = Timestamp::from_secs_f64(1_795_800_844.534_396);
        assert_eq!(b.as_micros() - a.as_micros(), 3_360_137);
        assert!((b.seconds_since(a) - 3.360_137).abs() < 1e-9);
        assert!((a.seconds_since(b) + 3.360_137).abs() < 1e-9);
    }

    #[test]
    fn whole_second_arithmetic() {
        let t = Timestamp::from_secs(100);
        assert_eq!(t.minus_secs(60), Timestamp::from_secs(40));
        assert_eq!(t.plus_secs(5).as_secs_f64(), 105.0);
    }
}
