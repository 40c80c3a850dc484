//! The command centre's key figures (考核指标, DOMAIN.md §3), defined once.
//!
//! Every figure is about a *cohort*: the incidents **reported** on the Shanghai days of a
//! range (by `created_at`), whatever happened to them later. Each incident contributes a
//! fixed set of counters ([`Counters::of`]) that depends only on its stored row, never on
//! the clock; the store keeps daily sums of them (the rollup) and adds the one figure that
//! depends on "now" (open steps past their deadline) at query time. The rates are derived
//! from the sums ([`Figures`]).
//!
//! The same definitions are written in SQL for the rollup's rebuild
//! (`store::kpis::CONTRIBUTION_SQL`); a test compares both after random transitions.

use serde::Serialize;

use crate::incident::State;

/// Whether an incident in this state counts as filed (立案): it was accepted into the loop
/// and not annulled. Not filed: still waiting (`reported`), rejected (不予立案), merged into
/// another as a duplicate, or voided (作废).
pub fn counts_as_filed(s: State) -> bool {
    !matches!(s, State::Reported | State::Rejected | State::Merged | State::Voided)
}

/// The fields of an incident that its counters depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub state: State,
    /// Some step ran past its limit.
    pub late: bool,
    pub created_at: i64,
    pub closed_at: Option<i64>,
    pub returns: u32,
    pub reworks: u32,
    pub rating: Option<i64>,
}

/// Additive counters: one incident's contribution, or the sum over many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// 上报数: incidents reported (every report, whatever became of it).
    pub reported: i64,
    /// 立案数: reports accepted into the loop and not annulled ([`counts_as_filed`]).
    pub filed: i64,
    /// 结案数: incidents closed (结案) and not reopened since (`closed_at` is set).
    pub closed: i64,
    /// 按期结案数: closed, and no step ever ran past its limit (`late` is not set).
    pub closed_on_time: i64,
    /// Incidents with the `late` mark (some step ended past its limit, or the watcher found
    /// one running past it).
    pub late: i64,
    /// 退回次数: returns of a mis-dispatch, summed.
    pub returns: i64,
    /// Incidents returned at least once.
    pub returned: i64,
    /// 返工次数: failed on-site checks, summed.
    pub reworks: i64,
    /// Incidents sent back to rework at least once.
    pub reworked: i64,
    /// Sum over closed incidents of (closed_at − created_at), ms.
    pub handle_ms: i64,
    /// Incidents with a satisfaction rating (1–5).
    pub rated: i64,
    /// Sum of the ratings.
    pub rating_sum: i64,
    /// Ratings of 4 or 5 (满意).
    pub satisfied: i64,
}

impl Counters {
    /// The contribution of one incident.
    pub fn of(f: &Facts) -> Counters {
        let closed = f.closed_at.is_some();
        Counters {
            reported: 1,
            filed: i64::from(counts_as_filed(f.state)),
            closed: i64::from(closed),
            closed_on_time: i64::from(closed && !f.late),
            late: i64::from(f.late),
            returns: i64::from(f.returns),
            returned: i64::from(f.returns > 0),
            reworks: i64::from(f.reworks),
            reworked: i64::from(f.reworks > 0),
            handle_ms: f.closed_at.map_or(0, |c| c - f.created_at),
            rated: i64::from(f.rating.is_some()),
            rating_sum: f.rating.unwrap_or(0),
            satisfied: i64::from(f.rating.is_some_and(|r| r >= 4)),
        }
    }

    /// The counters as an array, in [`Counters::NAMES`] order.
    pub fn to_array(&self) -> [i64; 13] {
        [
            self.reported,
            self.filed,
            self.closed,
            self.closed_on_time,
            self.late,
            self.returns,
            self.returned,
            self.reworks,
            self.reworked,
            self.handle_ms,
            self.rated,
            self.rating_sum,
            self.satisfied,
        ]
    }

    pub fn from_array(a: [i64; 13]) -> Counters {
        Counters {
            reported: a[0],
            filed: a[1],
            closed: a[2],
            closed_on_time: a[3],
            late: a[4],
            returns: a[5],
            returned: a[6],
            reworks: a[7],
            reworked: a[8],
            handle_ms: a[9],
            rated: a[10],
            rating_sum: a[11],
            satisfied: a[12],
        }
    }

    /// Column names, in array order.
    pub const NAMES: [&'static str; 13] =
        ["reported", "filed", "closed", "closed_on_time", "late", "returns", "returned", "reworks", "reworked", "handle_ms", "rated", "rating_sum", "satisfied"];

    pub fn add(&mut self, o: &Counters) {
        let (mut a, b) = (self.to_array(), o.to_array());
        for (x, y) in a.iter_mut().zip(b) {
            *x += y;
        }
        *self = Counters::from_array(a);
    }

    pub fn sub(&mut self, o: &Counters) {
        let (mut a, b) = (self.to_array(), o.to_array());
        for (x, y) in a.iter_mut().zip(b) {
            *x -= y;
        }
        *self = Counters::from_array(a);
    }

    pub fn is_zero(&self) -> bool {
        self.to_array().iter().all(|x| *x == 0)
    }
}

/// The figures of one row of a KPI table: the counters and what is derived from them.
/// Rates are fractions (0.0–1.0), None when their denominator is 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub counters: Counters,
    /// 超期数: `late` incidents, plus those whose running step is past its deadline now
    /// and not yet marked late by the watcher.
    pub overdue: i64,
    /// 结案率 = closed / filed.
    pub closure_rate: Option<f64>,
    /// 按期结案率 = closed_on_time / filed (应结案数 taken as the filed incidents).
    pub on_time_closure_rate: Option<f64>,
    /// 返工率 = reworked / filed.
    pub rework_rate: Option<f64>,
    /// 平均处置时长 = handle_ms / closed (report to close, ms of wall-clock time).
    pub mean_handling_ms: Option<i64>,
    /// 平均满意度 = rating_sum / rated (1–5).
    pub mean_rating: Option<f64>,
    /// 满意率 = satisfied / rated.
    pub satisfied_share: Option<f64>,
}

fn ratio(a: i64, b: i64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

impl Figures {
    /// `open_overdue`: incidents not marked late whose running step is past due now.
    pub fn new(c: Counters, open_overdue: i64) -> Figures {
        Figures {
            overdue: c.late + open_overdue,
            closure_rate: ratio(c.closed, c.filed),
            on_time_closure_rate: ratio(c.closed_on_time, c.filed),
            rework_rate: ratio(c.reworked, c.filed),
            mean_handling_ms: (c.closed > 0).then(|| c.handle_ms / c.closed),
            mean_rating: ratio(c.rating_sum, c.rated),
            satisfied_share: ratio(c.satisfied, c.rated),
            counters: c,
        }
    }
}

/// How a KPI table is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    Street,
    Community,
    Grid,
    Department,
    /// 按人员: grid workers (and anyone who reported or checked on site).
    Person,
}

impl Grouping {
    pub const ALL: [Grouping; 5] = [Grouping::Street, Grouping::Community, Grouping::Grid, Grouping::Department, Grouping::Person];

    pub fn as_str(self) -> &'static str {
        match self {
            Grouping::Street => "street",
            Grouping::Community => "community",
            Grouping::Grid => "grid",
            Grouping::Department => "department",
            Grouping::Person => "person",
        }
    }

    pub fn parse(s: &str) -> Option<Grouping> {
        Grouping::ALL.into_iter().find(|g| g.as_str() == s)
    }

    /// The length of the area codes it groups by (street 9, community 12, grid 15).
    pub fn code_len(self) -> Option<usize> {
        match self {
            Grouping::Street => Some(9),
            Grouping::Community => Some(12),
            Grouping::Grid => Some(15),
            Grouping::Department | Grouping::Person => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(state: State) -> Facts {
        Facts { state, late: false, created_at: 1_000, closed_at: None, returns: 0, reworks: 0, rating: None }
    }

    #[test]
    fn one_incident_counts_once_and_rates_follow() {
        let closed = Facts { closed_at: Some(3_601_000), reworks: 2, rating: Some(4), ..facts(State::Evaluated) };
        let late = Facts { late: true, closed_at: Some(7_201_000), returns: 1, rating: Some(2), ..facts(State::Closed) };
        let mut sum = Counters::default();
        for f in [closed, late, facts(State::Reported), facts(State::Voided), facts(State::InProgress)] {
            sum.add(&Counters::of(&f));
        }
        assert_eq!((sum.reported, sum.filed, sum.closed, sum.closed_on_time, sum.late), (5, 3, 2, 1, 1));
        assert_eq!((sum.returns, sum.returned, sum.reworks, sum.reworked), (1, 1, 2, 1));
        let f = Figures::new(sum, 1);
        assert_eq!(f.overdue, 2);
        assert_eq!(f.closure_rate, Some(2.0 / 3.0));
        assert_eq!(f.on_time_closure_rate, Some(1.0 / 3.0));
        assert_eq!(f.mean_handling_ms, Some(5_400_000));
        assert_eq!((f.mean_rating, f.satisfied_share), (Some(3.0), Some(0.5)));
        let mut back = sum;
        back.sub(&sum);
        assert!(back.is_zero());
        assert_eq!(Figures::new(Counters::default(), 0).closure_rate, None);
    }
}
