//! The work calendar (工作日历) that incident time limits run on: working days (weekdays,
//! minus public holidays, plus make-up workdays 调休) and working hours within them, in
//! Asia/Shanghai. Time limits are in working hours or working days; a deadline is the
//! moment that much working time has passed.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::time::{SHANGHAI_OFFSET_MS, civil_from_days, days_from_civil};

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// A date as days since 1970-01-01 (in Asia/Shanghai when it comes from an instant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Day(pub i64);

impl Day {
    pub fn from_ymd(y: i64, m: u32, d: u32) -> Option<Day> {
        let days = days_from_civil(y, m, d)?;
        Some(Day(days))
    }

    /// `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Option<Day> {
        let mut it = s.trim().splitn(3, '-');
        let y = it.next()?.parse().ok()?;
        let m = it.next()?.parse().ok()?;
        let d = it.next()?.parse().ok()?;
        Day::from_ymd(y, m, d)
    }

    pub fn ymd(self) -> (i64, u32, u32) {
        civil_from_days(self.0)
    }

    /// 0 = Monday … 6 = Sunday (1970-01-01 was a Thursday).
    pub fn weekday(self) -> u32 {
        (self.0 + 3).rem_euclid(7) as u32
    }

    /// The Shanghai date of an instant (ms since the epoch, UTC).
    pub fn of_instant(ms: i64) -> Day {
        Day((ms + SHANGHAI_OFFSET_MS).div_euclid(DAY_MS))
    }

    /// The instant (ms, UTC) at a number of minutes after this day's Shanghai midnight.
    pub fn at_minute(self, minute: u32) -> i64 {
        self.0 * DAY_MS - SHANGHAI_OFFSET_MS + i64::from(minute) * MINUTE_MS
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// A time limit of one step of the incident loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "unit", content = "value", rename_all = "snake_case")]
pub enum TimeLimit {
    /// Working hours (工作时).
    WorkingHours(u32),
    /// Working days (工作日): that many whole working days' worth of working time.
    WorkingDays(u32),
}

/// Warning colour of a running step (DOMAIN.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Warning {
    /// Under 80 % of the limit used.
    Green,
    /// 80–100 %.
    Yellow,
    /// Past the limit.
    Red,
}

/// The two instants of a running step's time limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepClock {
    /// From here on the step is yellow (80 % of its working time used).
    pub warn_at: i64,
    /// After this instant the step is red (overdue).
    pub due_at: i64,
}

impl StepClock {
    /// The colour at `now`: green before `warn_at`, red after `due_at`.
    pub fn warning(&self, now: i64) -> Warning {
        if now > self.due_at {
            Warning::Red
        } else if now >= self.warn_at {
            Warning::Yellow
        } else {
            Warning::Green
        }
    }
}

/// Working days and hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkCalendar {
    /// Public holidays that fall on what would be a working day (or any day: listing a
    /// weekend day changes nothing).
    pub holidays: BTreeSet<Day>,
    /// Make-up workdays (调休上班): weekend days that are working days.
    pub workdays: BTreeSet<Day>,
    /// Working periods of a working day, as minutes after midnight: [start, end).
    pub periods: Vec<(u32, u32)>,
}

impl Default for WorkCalendar {
    /// Weekdays 08:30-12:00 and 14:30-17:30, no holidays.
    fn default() -> Self {
        WorkCalendar { holidays: BTreeSet::new(), workdays: BTreeSet::new(), periods: vec![(510, 720), (870, 1050)] }
    }
}

impl WorkCalendar {
    pub fn is_working_day(&self, d: Day) -> bool {
        if self.workdays.contains(&d) {
            return true;
        }
        if self.holidays.contains(&d) {
            return false;
        }
        d.weekday() < 5
    }

    /// Working minutes in one working day.
    pub fn minutes_per_day(&self) -> i64 {
        self.periods.iter().map(|(a, b)| i64::from(b.saturating_sub(*a))).sum()
    }

    /// A limit as working time (ms).
    pub fn limit_ms(&self, limit: TimeLimit) -> i64 {
        match limit {
            TimeLimit::WorkingHours(h) => i64::from(h) * 60 * MINUTE_MS,
            TimeLimit::WorkingDays(d) => i64::from(d) * self.minutes_per_day() * MINUTE_MS,
        }
    }

    /// The instant when `limit` of working time has passed since `start`.
    pub fn deadline(&self, start: i64, limit: TimeLimit) -> i64 {
        self.add_working(start, self.limit_ms(limit))
    }

    /// The instant `working_ms` of working time after `start`. A start outside working time
    /// counts from the next working period.
    pub fn add_working(&self, start: i64, working_ms: i64) -> i64 {
        let mut left = working_ms.max(0);
        let mut day = Day::of_instant(start);
        // A calendar with no working time at all never reaches a deadline: stop after ten years.
        for _ in 0..3660 {
            if self.is_working_day(day) {
                for &(a, b) in &self.periods {
                    let (from, to) = (day.at_minute(a).max(start), day.at_minute(b));
                    if to <= from {
                        continue;
                    }
                    if to - from >= left {
                        return from + left;
                    }
                    left -= to - from;
                }
            }
            day = Day(day.0 + 1);
        }
        i64::MAX
    }

    /// Working time (ms) between two instants.
    pub fn working_between(&self, start: i64, end: i64) -> i64 {
        if end <= start {
            return 0;
        }
        let mut total = 0;
        let mut day = Day::of_instant(start);
        let last = Day::of_instant(end);
        while day <= last {
            if self.is_working_day(day) {
                for &(a, b) in &self.periods {
                    let (from, to) = (day.at_minute(a).max(start), day.at_minute(b).min(end));
                    if to > from {
                        total += to - from;
                    }
                }
            }
            day = Day(day.0 + 1);
        }
        total
    }

    /// When a step that started at `start` with `allowed_ms` of working time turns yellow
    /// (80 % used) and when it is due. Stored with the incident, so that the board filters
    /// by colour and the watcher finds overdue steps without recomputing every deadline.
    pub fn step_clock(&self, start: i64, allowed_ms: i64) -> StepClock {
        StepClock { warn_at: self.add_working(start, (allowed_ms * 4 + 4) / 5), due_at: self.add_working(start, allowed_ms) }
    }

    /// The warning colour of a step that started at `start` with `limit`, seen at `now`.
    pub fn warning(&self, start: i64, limit: TimeLimit, now: i64) -> Warning {
        self.step_clock(start, self.limit_ms(limit)).warning(now)
    }
}

/// Days with their names (holidays, or make-up workdays).
pub type NamedDays = Vec<(Day, &'static str)>;

/// The national public holidays and make-up workdays of 2026, as published by the General
/// Office of the State Council (国务院办公厅关于2026年部分节假日安排的通知). A district
/// edits its calendar when a new year's notice is published.
pub fn national_2026() -> (NamedDays, NamedDays) {
    let d = |m, day| Day::from_ymd(2026, m, day).unwrap_or(Day(0));
    let range = |m, from: u32, to: u32, name: &'static str| (from..=to).map(move |x| (d(m, x), name));
    let holidays: Vec<(Day, &'static str)> = range(1, 1, 3, "元旦")
        .chain(range(2, 15, 23, "春节"))
        .chain(range(4, 4, 6, "清明节"))
        .chain(range(5, 1, 5, "劳动节"))
        .chain(range(6, 19, 21, "端午节"))
        .chain(range(9, 25, 27, "中秋节"))
        .chain(range(10, 1, 7, "国庆节"))
        .collect();
    let workdays = vec![
        (d(1, 4), "元旦调休上班"),
        (d(2, 14), "春节调休上班"),
        (d(2, 28), "春节调休上班"),
        (d(5, 9), "劳动节调休上班"),
        (d(9, 20), "国庆节调休上班"),
        (d(10, 10), "国庆节调休上班"),
    ];
    (holidays, workdays)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, m: u32, d: u32, hh: u32, mm: u32) -> i64 {
        Day::from_ymd(y, m, d).expect("date").at_minute(hh * 60 + mm)
    }

    fn cal_2026() -> WorkCalendar {
        let (h, w) = national_2026();
        WorkCalendar { holidays: h.into_iter().map(|x| x.0).collect(), workdays: w.into_iter().map(|x| x.0).collect(), ..Default::default() }
    }

    #[test]
    fn days_and_weekdays() {
        let d = Day::parse("2026-11-25").expect("day");
        assert_eq!(d.weekday(), 2, "a Wednesday");
        assert_eq!(d.to_string(), "2026-11-25");
        assert_eq!(Day::of_instant(at(2026, 11, 25, 23, 59)), d);
        assert_eq!(Day::of_instant(at(2026, 11, 26, 0, 0)), Day(d.0 + 1));
        assert!(Day::parse("2026-02-30").is_none());
    }

    #[test]
    fn hours_run_only_in_working_periods() {
        let c = WorkCalendar::default();
        // Wednesday 11:00 + 2 working hours: one hour before lunch, one after.
        assert_eq!(c.deadline(at(2026, 11, 25, 11, 0), TimeLimit::WorkingHours(2)), at(2026, 11, 25, 15, 30));
        // Friday 17:00 + 1 hour: half an hour on Friday, the rest on Monday morning.
        assert_eq!(c.deadline(at(2026, 11, 27, 17, 0), TimeLimit::WorkingHours(1)), at(2026, 11, 30, 9, 0));
        // Reported on Saturday night: the clock starts on Monday.
        assert_eq!(c.deadline(at(2026, 11, 28, 22, 0), TimeLimit::WorkingHours(1)), at(2026, 11, 30, 9, 30));
        // One working day is 6.5 working hours.
        assert_eq!(c.minutes_per_day(), 390);
        assert_eq!(c.deadline(at(2026, 11, 25, 8, 30), TimeLimit::WorkingDays(1)), at(2026, 11, 25, 17, 30));
        assert_eq!(c.deadline(at(2026, 11, 25, 9, 0), TimeLimit::WorkingDays(3)), at(2026, 11, 30, 9, 0));
    }

    #[test]
    fn holidays_and_make_up_days() {
        let c = cal_2026();
        // 国庆: Wednesday 30 September 17:00 + 1 hour runs into Thursday 8 October.
        assert_eq!(c.deadline(at(2026, 9, 30, 17, 0), TimeLimit::WorkingHours(1)), at(2026, 10, 8, 9, 0));
        // Saturday 10 October is a make-up workday.
        assert!(c.is_working_day(Day::parse("2026-10-10").expect("day")));
        assert_eq!(c.deadline(at(2026, 10, 9, 17, 0), TimeLimit::WorkingHours(1)), at(2026, 10, 10, 9, 0));
        assert!(!c.is_working_day(Day::parse("2026-02-16").expect("day")), "春节");
        assert!(c.is_working_day(Day::parse("2026-02-14").expect("day")), "a Saturday worked for 春节");
    }

    #[test]
    fn warning_colours() {
        let c = WorkCalendar::default();
        let start = at(2026, 11, 25, 8, 30);
        let limit = TimeLimit::WorkingHours(10);
        assert_eq!(c.warning(start, limit, at(2026, 11, 25, 14, 0)), Warning::Green);
        // 6.5 h on Wednesday + 1.5 h on Thursday = 8 h = 80 %.
        assert_eq!(c.warning(start, limit, at(2026, 11, 26, 10, 0)), Warning::Yellow);
        // 6.5 h + 3.5 h: the limit is reached at Thursday 12:00; at the deadline it is still
        // yellow, and once it has passed (over the lunch break too) it is red.
        assert_eq!(c.deadline(start, limit), at(2026, 11, 26, 12, 0));
        assert_eq!(c.warning(start, limit, at(2026, 11, 26, 12, 0)), Warning::Yellow);
        assert_eq!(c.warning(start, limit, at(2026, 11, 26, 12, 1)), Warning::Red);
        assert_eq!(c.warning(start, limit, at(2026, 11, 26, 14, 30)), Warning::Red);
        // The stored clock says the same.
        let clock = c.step_clock(start, c.limit_ms(limit));
        assert_eq!(clock.due_at, at(2026, 11, 26, 12, 0));
        assert_eq!(clock.warn_at, at(2026, 11, 26, 10, 0));
        // The weekend does not count.
        assert_eq!(c.working_between(at(2026, 11, 27, 17, 30), at(2026, 11, 30, 8, 30)), 0);
    }
}
