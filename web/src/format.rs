//! How numbers and times read on screen: percentages, ages, short timestamps.

use time::OffsetDateTime;

/// `0.8312` → `"83.1 %"`; `None` → `"–"` (no data yet, not zero).
pub fn percent(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{:.1} %", v * 100.0),
        _ => "–".to_string(),
    }
}

/// Age of something `seconds` old, short: `"45 s"`, `"12 min"`, `"3 h"`, `"2 d"`.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// Seconds from `then` to `now_unix` (Unix seconds).
pub fn seconds_since(then: OffsetDateTime, now_unix: f64) -> i64 {
    (now_unix - then.unix_timestamp() as f64).round() as i64
}

/// `2026-03-01 14:05:09` (UTC), for tables.
pub fn timestamp(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `14:05` (UTC), for chart axes.
pub fn hour_minute(t: OffsetDateTime) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn rates_read_as_percentages_and_missing_data_is_not_zero() {
        assert_eq!(percent(Some(0.8312)), "83.1 %");
        assert_eq!(percent(None), "–");
    }

    #[test]
    fn ages_use_the_largest_whole_unit() {
        assert_eq!(age(-3), "0 s");
        assert_eq!(age(45), "45 s");
        assert_eq!(age(125), "2 min");
        assert_eq!(age(3 * 3600 + 5), "3 h");
        assert_eq!(age(2 * 86_400), "2 d");
        let t = datetime!(2026-03-01 14:05:09 UTC);
        assert_eq!(seconds_since(t, t.unix_timestamp() as f64 + 90.0), 90);
        assert_eq!(timestamp(t), "2026-03-01 14:05:09");
        assert_eq!(hour_minute(t), "14:05");
    }
}
