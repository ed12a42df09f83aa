//! The simulated cluster runs on the real clock (like the control plane it stands in for) and
//! writes object timestamps at one-second resolution, as the API server does.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix seconds.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The whole second of a Unix time.
pub fn second(t: f64) -> i64 {
    t.floor() as i64
}

/// A whole-second timestamp.
pub fn timestamp(second: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(second).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// `t` truncated to the second.
pub fn now_timestamp(t: f64) -> jiff::Timestamp {
    timestamp(second(t))
}

/// The current time truncated to the second.
pub fn now_second() -> jiff::Timestamp {
    now_timestamp(now())
}
