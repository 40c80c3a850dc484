//! Times are stored in UTC (milliseconds since the epoch) and shown in Asia/Shanghai,
//! which is UTC+8 all year (China has kept no daylight saving time since 1991).

pub(crate) const SHANGHAI_OFFSET_MS: i64 = 8 * 3600 * 1000;

/// Civil date from days since 1970-01-01 (proleptic Gregorian).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2026-11-25 17:24:58` in Asia/Shanghai.
pub fn format_shanghai(ms: i64) -> String {
    let local = ms + SHANGHAI_OFFSET_MS;
    let secs = local.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 of a civil date, or None for an impossible one (2026-02-30).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (m, d) = (i64::from(m), i64::from(d));
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (civil_from_days(days) == (y, m as u32, d as u32)).then_some(days)
}

/// Milliseconds since the epoch (UTC) of a Shanghai date `YYYY-MM-DD` at 00:00, or None.
pub fn parse_shanghai_date(s: &str) -> Option<i64> {
    crate::calendar::Day::parse(s).map(|d| d.at_minute(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shanghai_is_utc_plus_eight() {
        assert_eq!(format_shanghai(0), "1970-01-01 08:00:00");
        // 2026-11-25 09:24:58 UTC
        assert_eq!(format_shanghai(1_795_598_698_000), "2026-11-25 17:24:58");
        assert_eq!(format_shanghai(951_782_400_000), "2000-02-29 08:00:00");
        assert_eq!(parse_shanghai_date("2026-11-25"), Some(1_795_536_000_000));
        assert_eq!(parse_shanghai_date("1999-02-30"), None);
        assert_eq!(parse_shanghai_date("x"), None);
    }
}
