//! Wire primitives: the strings, map keys and timestamps every object is made of, and the serde
//! visitor helpers the other layers read them with. A string is borrowed from the bytes read
//! unless it carries escapes; a key is compared as bytes, never checked for UTF-8; an API-server
//! timestamp is read directly. These are what keeps a watch event free of copies (BENCHMARKS.md).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::model::Timestamp;

/// A string of the wire, borrowed from the bytes unless it had escapes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Str<'a>(pub Cow<'a, str>);

impl Str<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0.into_owned()
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Str<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Str<'de>, E> {
        Ok(Str(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Str<'de>, E> {
        Ok(Str(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Str<'de>, E> {
        Ok(Str(Cow::Owned(s)))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor)
    }
}

/// A map key as raw bytes: keys are only compared with the ones the model reads, so they are
/// not checked for UTF-8 (serde_json does that for every string it hands out as `str`).
pub(super) struct Key<'a>(pub(super) Cow<'a, [u8]>);

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map key")
    }
    fn visit_borrowed_bytes<E: de::Error>(self, b: &'de [u8]) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(b)))
    }
    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(b.to_vec())))
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(s.as_bytes())))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(s.as_bytes().to_vec())))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_bytes(KeyVisitor)
    }
}

/// An RFC 3339 timestamp (`metav1.Time`). The API server always writes UTC with whole seconds
/// (`2026-11-27T19:00:00Z`), which is read directly; any other form goes through jiff, as
/// k8s-openapi's `Time` reads it (the tests check both agree).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Time(pub Timestamp);

impl Time {
    pub fn parse(s: &str) -> Result<Self, jiff::Error> {
        if let Some(t) = utc_seconds(s.as_bytes()) {
            return Ok(Time(t));
        }
        let t: jiff::Timestamp = s.parse()?;
        Ok(Time(Timestamp::from_micros(t.as_microsecond())))
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` with a valid date and time, else `None`.
fn utc_seconds(b: &[u8]) -> Option<Timestamp> {
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        b[from..to].iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    // Years at the ends of jiff's range are left to it.
    if !(1..=9998).contains(&year)
        || day < 1
        || day > month_days
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(Timestamp::from_micros(seconds * 1_000_000))
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Str::deserialize(d)?;
        Time::parse(s.as_str()).map_err(de::Error::custom)
    }
}

/// A string map of which only the value of one key is read; the others are skipped without
/// allocating them.
pub(super) struct OneKey(pub(super) &'static [u8]);

impl<'de> Visitor<'de> for OneKey {
    type Value = Option<Str<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of strings")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Str<'de>>, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if *key.0 == *self.0 {
                found = Some(map.next_value::<Str<'de>>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_server_timestamps_read_as_jiff_reads_them() {
        let parse = |s: &str| s.parse::<jiff::Timestamp>().map(|t| t.as_microsecond());
        // Every 7919 s (about 2.2 h, prime) from 1970 to 2100, leap days included.
        let mut t = 0i64;
        while t < 4_102_444_800 {
            let text = jiff::Timestamp::from_second(t)
                .expect("in range")
                .to_string();
            assert_eq!(text.len(), 20, "{text}");
            assert!(
                utc_seconds(text.as_bytes()).is_some(),
                "{text} takes the direct path"
            );
            assert_eq!(
                Time::parse(&text).map(|t| t.0.as_micros()).ok(),
                parse(&text).ok()
            );
            t += 7919;
        }
        for text in [
            "2024-02-29T23:59:59Z",
            "2023-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2000-02-29T12:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T23:60:00Z",
            "2026-12-31T23:59:60Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "2026-1-01T00:00:00ZZ",
            "2026-11-27T19:00:00+01:00",
            "2026-11-27T19:00:00.123456Z",
            "+2026-11-27T19:00:00Z",
            "2026-11-27 19:00:00Z",
            "２026-11-27T19:00:00Z",
            "",
        ] {
            assert_eq!(
                Time::parse(text).map(|t| t.0.as_micros()).ok(),
                parse(text).ok(),
                "{text}"
            );
        }
    }
}
