//! The task command-line arguments that `/start` and `/stop` store: `start_time`, `safe_mode_time_duration`,
//! `timeout_duration` (docs/dm-behaviour.md §8).
//!
//! An empty string counts as absent for validation but is still stored. A bad value is a plain Go error wrapped
//! twice, answered with `error_code` 0. v8.5 parses `start_time` with Go's `time.ParseInLocation` in two layouts
//! (no zone suffix); v26.3 adds `Z`, `+08:00` and `+0800`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Generation;
use super::errors::SimError;
use crate::dm::types::{StartTaskRequest, StopTaskRequest};

const WRAP: &str = "while converting task command line arguments";
const V26_HINT: &str = "'2006-01-02 15:04:05', '2006-01-02T15:04:05', '2006-01-02 15:04:05+08:00', '2006-01-02T15:04:05+08:00', '2006-01-02 15:04:05+0800', or '2006-01-02T15:04:05+0800'";

/// Go's `strconv.Quote` for the printable text these errors carry.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `time.ParseDuration`, with its error texts.
pub(crate) fn go_duration(orig: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    while !s.is_empty() {
        if !s.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (int_part, rest) = s.split_at(int_len);
        let (frac_part, rest) = match rest.strip_prefix('.') {
            Some(r) => {
                let n = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
                (Some(&r[..n]), &r[n..])
            }
            None => (None, rest),
        };
        if int_part.is_empty() && frac_part.is_none_or(str::is_empty) {
            return Err(invalid());
        }
        let unit_len = rest.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", go_quote(orig)));
        }
        let (unit, rest) = rest.split_at(unit_len);
        let mult = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("time: unknown unit {} in duration {}", go_quote(unit), go_quote(orig))),
        };
        let number: f64 = format!("{}.{}", if int_part.is_empty() { "0" } else { int_part }, frac_part.unwrap_or("0"))
            .parse()
            .map_err(|_| invalid())?;
        total += number * mult;
        s = rest;
    }
    if neg {
        // A negative duration parses; nothing here waits on it.
        return Ok(Duration::ZERO);
    }
    Ok(Duration::from_secs_f64(total.min(1e12)))
}

fn digits(s: &[u8], n: usize) -> Option<i64> {
    (s.len() >= n && s[..n].iter().all(u8::is_ascii_digit))
        .then(|| s[..n].iter().fold(0i64, |a, d| a * 10 + i64::from(d - b'0')))
}

fn days_in(month: i64, year: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Go's `time.Parse` with layout `2006-01-02<sep>15:04:05`, with its error texts (byte offsets stay on ASCII
/// boundaries: a non-digit stops every numeric element before any slicing).
fn go_parse(value: &str, sep: char) -> Result<(), String> {
    let layout = format!("2006-01-02{sep}15:04:05");
    let err = |elem_value: &str, elem: &str| {
        format!(
            "parsing time {} as {}: cannot parse {} as {}",
            go_quote(value),
            go_quote(&layout),
            go_quote(elem_value),
            go_quote(elem)
        )
    };
    let range = |what: &str| format!("parsing time {}: {what} out of range", go_quote(value));
    let b = value.as_bytes();
    let rest = |i: usize| value.get(i..).unwrap_or("");
    let year = digits(b, 4).ok_or_else(|| err(value, "2006"))?;
    let mut i = 4;
    let lit = |i: usize, l: &str| -> Result<usize, String> {
        if rest(i).starts_with(l) { Ok(i + l.len()) } else { Err(err(rest(i), l)) }
    };
    i = lit(i, "-")?;
    let month = digits(&b[i..], 2).ok_or_else(|| err(rest(i), "01"))?;
    i += 2;
    if !(1..=12).contains(&month) {
        return Err(range("month"));
    }
    i = lit(i, "-")?;
    let day = digits(&b[i..], 2).ok_or_else(|| err(rest(i), "02"))?;
    i += 2;
    i = lit(i, &sep.to_string())?;
    // `15` takes one or two digits.
    let hour_len = if digits(&b[i..], 2).is_some() { 2 } else { 1 };
    let hour = digits(&b[i..], hour_len).ok_or_else(|| err(rest(i), "15"))?;
    i += hour_len;
    if hour >= 24 {
        return Err(range("hour"));
    }
    i = lit(i, ":")?;
    let minute = digits(&b[i..], 2).ok_or_else(|| err(rest(i), "04"))?;
    i += 2;
    if minute >= 60 {
        return Err(range("minute"));
    }
    i = lit(i, ":")?;
    let second = digits(&b[i..], 2).ok_or_else(|| err(rest(i), "05"))?;
    i += 2;
    if second >= 60 {
        return Err(range("second"));
    }
    // A fractional second the layout does not have is still accepted.
    if matches!(b.get(i), Some(b'.' | b',')) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if i < b.len() {
        return Err(format!("parsing time {}: extra text: {}", go_quote(value), go_quote(rest(i))));
    }
    if day < 1 || day > days_in(month, year) {
        return Err(range("day"));
    }
    Ok(())
}

/// v26.3+'s `ParseStartTime`: `YYYY-MM-DD[ T]hh:mm:ss` with an optional `Z`, `±hh:mm` or `±hhmm`, valid values.
fn v26_start_time(value: &str) -> Result<(), String> {
    let unsupported = || format!("unsupported start-time format {}, expected one of {V26_HINT}", go_quote(value));
    let b = value.as_bytes();
    let num = |at: usize, n: usize| b.get(at..at + n).and_then(|s| digits(s, n));
    let shape = b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b' ' || b[10] == b'T')
        && b[13] == b':'
        && b[16] == b':';
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) =
        (num(0, 4), num(5, 2), num(8, 2), num(11, 2), num(14, 2), num(17, 2))
    else {
        return Err(unsupported());
    };
    if !shape {
        return Err(unsupported());
    }
    let zone = &b[19..];
    let zone_ok = match zone.len() {
        0 => true,
        1 => zone == b"Z",
        5 => matches!(zone[0], b'+' | b'-') && digits(&zone[1..], 4).is_some(),
        6 => {
            matches!(zone[0], b'+' | b'-')
                && zone[3] == b':'
                && digits(&zone[1..3], 2).is_some()
                && digits(&zone[4..], 2).is_some()
        }
        _ => false,
    };
    let valid = zone_ok && (1..=12).contains(&mo) && d >= 1 && d <= days_in(mo, y) && h < 24 && mi < 60 && s < 60;
    if valid { Ok(()) } else { Err(unsupported()) }
}

/// The inner error of `start_time` validation, as the generation's `ParseStartTime` words it.
fn start_time_error(value: &str, g: Generation) -> Option<String> {
    if g.v26() {
        return v26_start_time(value)
            .err()
            .map(|e| format!("error while parse start-time, expected in the format like {V26_HINT}: {e}"));
    }
    // `ParseInLocation` with `2006-01-02 15:04:05`, then `2006-01-02T15:04:05`, whose error is the one returned.
    if go_parse(value, ' ').is_ok() {
        return None;
    }
    go_parse(value, 'T').err().map(|e| {
        format!("error while parse start-time, expected in the format like '2006-01-02 15:04:05' or '2006-01-02T15:04:05': {e}")
    })
}

fn plain(inner: String) -> SimError {
    SimError::new(0, format!("{WRAP}: {inner}"))
}

/// The CLI args a start stores: `None` (stored args deleted) when neither `start_time` nor
/// `safe_mode_time_duration` is present; an empty string is present but not validated.
pub(crate) fn start_args(req: &StartTaskRequest, g: Generation) -> Result<Option<BTreeMap<String, String>>, SimError> {
    if req.start_time.is_none() && req.safe_mode_time_duration.is_none() {
        return Ok(None);
    }
    if let Some(t) = req.start_time.as_deref().filter(|t| !t.is_empty())
        && let Some(err) = start_time_error(t, g)
    {
        return Err(plain(err));
    }
    if let Some(d) = req.safe_mode_time_duration.as_deref().filter(|d| !d.is_empty())
        && let Err(err) = go_duration(d)
    {
        return Err(plain(format!(
            "error while parse safe-mode-duration, expected in the format like '1s' or '1h': {err}"
        )));
    }
    let mut args = BTreeMap::new();
    args.insert("start_time".to_string(), req.start_time.clone().unwrap_or_default());
    args.insert("safe_mode_time_duration".to_string(), req.safe_mode_time_duration.clone().unwrap_or_default());
    Ok(Some(args))
}

/// The CLI args a stop stores: `None` without `timeout_duration`.
pub(crate) fn stop_args(req: &StopTaskRequest) -> Result<Option<BTreeMap<String, String>>, SimError> {
    let Some(d) = req.timeout_duration.as_deref() else { return Ok(None) };
    if !d.is_empty()
        && let Err(err) = go_duration(d)
    {
        return Err(plain(format!(
            "error while parse stop_wait_timeout_duration, expected in the format like '1s' or '1h': {err}"
        )));
    }
    Ok(Some(BTreeMap::from([("timeout_duration".to_string(), d.to_string())])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(go_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(go_duration("x").unwrap_err(), "time: invalid duration \"x\"");
        assert_eq!(go_duration("10").unwrap_err(), "time: missing unit in duration \"10\"");
        assert_eq!(go_duration("10y").unwrap_err(), "time: unknown unit \"y\" in duration \"10y\"");
    }

    #[test]
    fn v85_start_times() {
        let g = Generation::V854;
        assert_eq!(start_time_error("2024-01-02 15:04:05", g), None);
        assert_eq!(start_time_error("2024-01-02T15:04:05", g), None);
        assert_eq!(start_time_error("2024-01-02T15:04:05.250", g), None);
        let e = start_time_error("2024-01-02T15:04:05Z", g).unwrap();
        assert!(e.ends_with("parsing time \"2024-01-02T15:04:05Z\": extra text: \"Z\""), "{e}");
        let e = start_time_error("2024-01-02T15:04:05+04:00", g).unwrap();
        assert!(e.ends_with("extra text: \"+04:00\""), "{e}");
        let e = start_time_error("2024-13-02 15:04:05", g).unwrap();
        assert!(e.ends_with("month out of range"), "{e}");
        let e = start_time_error("2024-02-30T15:04:05", g).unwrap();
        assert!(e.ends_with("day out of range"), "{e}");
        let e = start_time_error("yesterday", g).unwrap();
        assert!(e.ends_with("cannot parse \"yesterday\" as \"2006\""), "{e}");
        let e = start_time_error("2024-01-02", g).unwrap();
        assert!(e.ends_with("cannot parse \"\" as \"T\""), "{e}");
    }

    #[test]
    fn v26_start_times() {
        for ok in
            ["2024-01-02 15:04:05", "2024-01-02T15:04:05Z", "2024-01-02T15:04:05+04:00", "2024-01-02 15:04:05-0800"]
        {
            assert_eq!(start_time_error(ok, Generation::V263), None, "{ok}");
        }
        for bad in ["2024-01-02", "2024-01-02 15:04:05.123", "2024/01/02 15:04:05", "2024-13-02 15:04:05", "é"] {
            let e = start_time_error(bad, Generation::Head).unwrap();
            assert!(e.contains("unsupported start-time format"), "{bad}: {e}");
        }
    }

    #[test]
    fn empty_strings_are_absent_but_stored() {
        let req = StartTaskRequest { start_time: Some(String::new()), ..Default::default() };
        let args = start_args(&req, Generation::V854).unwrap().unwrap();
        assert_eq!(args["start_time"], "");
        let req = StopTaskRequest { timeout_duration: Some(String::new()), ..Default::default() };
        assert!(stop_args(&req).unwrap().is_some());
        let err =
            stop_args(&StopTaskRequest { timeout_duration: Some("soon".into()), ..Default::default() }).unwrap_err();
        assert_eq!(err.code, 0);
        assert!(
            err.error_msg().starts_with(
                "while converting task command line arguments: error while parse stop_wait_timeout_duration"
            )
        );
    }
}
