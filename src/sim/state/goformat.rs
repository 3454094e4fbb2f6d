//! Formats DM takes from Go: which time zone names Go's `time.LoadLocation` accepts.

pub(crate) fn valid_timezone(tz: &str) -> bool {
    if tz.is_empty() {
        return true;
    }
    // `SYSTEM` and `Local` are rejected by Task.Adjust (docs/dm-behaviour.md §5); anything Go's LoadLocation knows is
    // accepted.
    if matches!(tz, "SYSTEM" | "Local") {
        return false;
    }
    // A UTC offset within [-12:59, +14:00] is accepted too (`ParseTimeZone`, docs/dm-behaviour.md §15).
    if let Some((sign, rest)) = tz.strip_prefix('+').map(|r| (1, r)).or_else(|| tz.strip_prefix('-').map(|r| (-1, r))) {
        let Some((h, m)) = rest.split_once(':') else { return false };
        let (Ok(h), Ok(m)) = (h.parse::<u32>(), m.parse::<u32>()) else { return false };
        let minutes = h * 60 + m;
        return m < 60 && if sign > 0 { minutes <= 14 * 60 } else { minutes <= 12 * 60 + 59 };
    }
    matches!(tz, "UTC" | "GMT")
        || (tz.contains('/')
            && tz.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
            && !tz.starts_with('/')
            && !tz.ends_with('/'))
}
