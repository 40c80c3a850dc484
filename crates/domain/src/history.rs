//! The demo's incident history: a year of reports up to "now", each walked through the
//! loop with plausible outcomes and times on the work calendar. Pure and deterministic:
//! incident `i` depends only on the seed, the inputs and `i`, so the history can be made
//! in chunks (or in parallel) and is the same every time.
//!
//! The proportions follow the reference district's pilot (655 reported, 635 closed in a
//! half-year): about 1,310 reports a year per base district, about 97 % closed, a few
//! percent late, some returns of mis-dispatches and reworks, ratings mostly 4–5, and the
//! reports of the last days still open with their clocks running.

use crate::calendar::{Day, StepClock, WorkCalendar};
use crate::catalogue::StepLimits;
use crate::incident::{Action, State};
use crate::rng::{Rng, hash3};

/// Reports a year in the base district (twice the pilot's half-year).
pub const REPORTS_PER_YEAR: u64 = 1_310;

const MINUTE_MS: i64 = 60_000;

/// A grid reports can come from.
#[derive(Debug, Clone)]
pub struct Place {
    pub grid: String,
    pub lat: f64,
    pub lon: f64,
}

/// A second-level category as the history needs it.
#[derive(Debug, Clone)]
pub struct Kind {
    pub code: String,
    pub name: String,
    pub department: String,
    pub limits: StepLimits,
    pub on_spot: bool,
    /// Relative frequency.
    pub weight: u32,
}

/// Who took a step; the caller maps these to accounts or team members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The grid's worker (reports on patrol, checks on site, handles on the spot).
    GridWorker,
    /// A resident (web form).
    Resident,
    Operator,
    Dispatcher,
    ShiftLead,
    /// The department's handler.
    Department,
}

/// One transition of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub action: &'static str,
    pub from: Option<State>,
    pub to: State,
    pub who: Who,
    pub at: i64,
    pub note: &'static str,
    /// The deadline of the timed step this transition ended.
    pub step_due_at: Option<i64>,
}

/// One incident of the history, as its stored row and timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Past {
    pub receipt: String,
    pub category: usize,
    pub place: usize,
    pub lat: f64,
    pub lon: f64,
    pub description: String,
    pub source: &'static str,
    pub reporter: Who,
    pub state: State,
    pub department: Option<String>,
    pub returns: u32,
    pub reworks: u32,
    pub rating: Option<i64>,
    pub on_spot_allowed: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub step_started_at: i64,
    pub clock: Option<StepClock>,
    pub late: bool,
    pub closed_at: Option<i64>,
    pub steps: Vec<Step>,
}

/// The basic grids of a district, at the middle of their bounding boxes.
pub fn places_of(areas: &[crate::AreaRecord]) -> Vec<Place> {
    areas
        .iter()
        .filter(|a| a.level == crate::Level::Grid)
        .filter_map(|a| {
            let b = a.bbox()?;
            Some(Place { grid: a.code.to_string(), lat: (b.min().y + b.max().y) / 2.0, lon: (b.min().x + b.max().x) / 2.0 })
        })
        .collect()
}

/// The second-level categories with limits, weighted: illegal parking, street vending,
/// garbage and the like are reported far more often than a fire hydrant.
pub fn kinds_of(categories: &[crate::catalogue::Category], seed: u64) -> Vec<Kind> {
    categories
        .iter()
        .filter_map(|c| {
            Some(Kind {
                code: c.code.clone(),
                name: c.name.clone(),
                department: c.department.clone()?,
                limits: c.limits?,
                on_spot: c.on_spot,
                weight: if c.on_spot { 6 } else { 2 } + (hash3(seed, c.code.len() as u64, c.code.bytes().map(u64::from).sum()) % 6) as u32,
            })
        })
        .collect()
}

/// The team member who works a grid (its full-time member, else its first member).
pub fn grid_workers(team: &[crate::TeamMember]) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    for m in team.iter().filter(|m| m.role == crate::TeamRole::FullTimeMember) {
        out.entry(m.area.to_string()).or_insert_with(|| m.name.clone());
    }
    for m in team {
        out.entry(m.area.to_string()).or_insert_with(|| m.name.clone());
    }
    out
}

/// The history's plan: how many reports, over which days, with what weights.
pub struct History<'a> {
    seed: u64,
    count: u64,
    now: i64,
    places: &'a [Place],
    kinds: &'a [Kind],
    calendar: &'a WorkCalendar,
    /// Cumulative report weight at the end of each day, the first day first.
    cumulative: Vec<f64>,
    first_day: Day,
    /// Cumulative category weights.
    kind_cumulative: Vec<u64>,
    departments: Vec<String>,
}

impl<'a> History<'a> {
    /// `count` reports over the 365 days up to `now` (ms UTC).
    pub fn new(seed: u64, count: u64, now: i64, places: &'a [Place], kinds: &'a [Kind], calendar: &'a WorkCalendar) -> History<'a> {
        let last = Day::of_instant(now);
        let first_day = Day(last.0 - 364);
        let mut cumulative = Vec::with_capacity(365);
        let mut acc = 0.0;
        for k in 0..365 {
            let day = Day(first_day.0 + k);
            let (_, month, _) = day.ymd();
            // More in summer (rain, heat, night markets), fewer in deep winter and at the
            // Spring Festival; fewer on rest days (patrols run on working days).
            let season = 1.0 + 0.25 * ((f64::from(month) - 7.0) / 12.0 * std::f64::consts::TAU).cos();
            let rest = if calendar.is_working_day(day) { 1.0 } else { 0.45 };
            acc += season * rest;
            cumulative.push(acc);
        }
        let mut kind_cumulative = Vec::with_capacity(kinds.len());
        let mut k = 0u64;
        for kind in kinds {
            k += u64::from(kind.weight.max(1));
            kind_cumulative.push(k);
        }
        let mut departments: Vec<String> = kinds.iter().map(|k| k.department.clone()).collect();
        departments.sort();
        departments.dedup();
        History { seed, count, now, places, kinds, calendar, cumulative, first_day, kind_cumulative, departments }
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The report instant of incident `i`: the i-th quantile of the year's weights, so the
    /// ids follow the report days.
    fn report_time(&self, i: u64, rng: &mut Rng, patrol: bool) -> i64 {
        let total = *self.cumulative.last().unwrap_or(&1.0);
        let q = (i as f64 + 0.5) / self.count.max(1) as f64 * total;
        let k = self.cumulative.partition_point(|c| *c < q).min(364);
        let day = Day(self.first_day.0 + k as i64);
        // Patrol reports in working hours; others from 07:00 to 22:00.
        let minute = if patrol { 510 + rng.below(540) as u32 } else { 420 + rng.below(900) as u32 };
        day.at_minute(minute) + rng.below(60) as i64 * 1000
    }

    /// Incident `i` (0-based) of the history.
    pub fn incident(&self, i: u64) -> Past {
        let mut rng = Rng::new(hash3(self.seed, 0x6869_7374, i));
        let kind_at = rng.next_u64() % self.kind_cumulative.last().copied().unwrap_or(1).max(1);
        let category = self.kind_cumulative.partition_point(|c| *c <= kind_at).min(self.kinds.len().saturating_sub(1));
        let kind = &self.kinds[category];
        // Some grids report far more than others (markets, old quarters).
        let place = {
            let a = rng.below(self.places.len().max(1));
            let b = rng.below(self.places.len().max(1));
            if hash3(self.seed, a as u64, 7).is_multiple_of(3) { a } else { a.min(b) }
        };
        let source = *rng.weighted(&[("grid_patrol", 60), ("resident", 15), ("hotline", 18), ("camera", 5), ("leader", 2)]);
        let reporter = match source {
            "grid_patrol" => Who::GridWorker,
            "resident" => Who::Resident,
            _ => Who::Operator,
        };
        let created_at = self.report_time(i, &mut rng, source == "grid_patrol");
        let p = self.places.get(place).cloned().unwrap_or(Place { grid: String::new(), lat: 0.0, lon: 0.0 });
        let (lat, lon) = (p.lat + rng.range_f64(-0.0004, 0.0004), p.lon + rng.range_f64(-0.0004, 0.0004));
        let what = *rng.pick(&["，请尽快处理", "，影响居民出行", "，群众反映多次", "，存在安全隐患", ""]);
        let mut sim = Sim {
            cal: self.calendar,
            now: self.now,
            rng,
            t: created_at,
            state: State::Reported,
            clock: None,
            step_started_at: created_at,
            late: false,
            steps: vec![Step { action: "report", from: None, to: State::Reported, who: reporter, at: created_at, note: "", step_due_at: None }],
            open: true,
        };
        sim.clock = Some(self.calendar.step_clock(created_at, self.calendar.limit_ms(kind.limits.file)));
        let mut out = Past {
            receipt: receipt(self.seed, i, created_at),
            category,
            place,
            lat,
            lon,
            description: format!("{}{}", kind.name, what),
            source,
            reporter,
            state: State::Reported,
            department: None,
            returns: 0,
            reworks: 0,
            rating: None,
            on_spot_allowed: kind.on_spot,
            created_at,
            updated_at: created_at,
            step_started_at: created_at,
            clock: None,
            late: false,
            closed_at: None,
            steps: Vec::new(),
        };
        // Which step (if any) runs past its limit: about 4 % of incidents.
        let late_step = if sim.rng.below(100) < 4 { Some(sim.rng.below(4)) } else { None };
        let frac = |sim: &mut Sim, k: usize, lo: f64, hi: f64| if late_step == Some(k) { sim.rng.range_f64(1.05, 2.5) } else { sim.rng.range_f64(lo, hi) };
        let l = &kind.limits;
        let lim = |t| self.calendar.limit_ms(t);
        'walk: {
            if kind.on_spot && source == "grid_patrol" && sim.rng.below(2) == 0 {
                // 自行处置: handled on the spot, still checked.
                let f = frac(&mut sim, 0, 0.05, 0.4);
                if !sim.go(Action::HandleOnSpot, State::Handled, Who::GridWorker, f, lim(l.file), Some(lim(l.verify)), "现场处置完毕") {
                    break 'walk;
                }
            } else {
                let f = frac(&mut sim, 0, 0.05, 0.6);
                if sim.rng.below(1000) < 15 {
                    sim.go(Action::Reject, State::Rejected, Who::Operator, f, lim(l.file), None, "不属于受理范围");
                    break 'walk;
                }
                if !sim.go(Action::File, State::Filed, Who::Operator, f, lim(l.file), Some(lim(l.dispatch)), "") {
                    break 'walk;
                }
                if sim.rng.below(1000) < 5 {
                    sim.go(Action::Void, State::Voided, Who::ShiftLead, 0.1, lim(l.dispatch), None, "重复受理，作废");
                    break 'walk;
                }
                // A mis-dispatch (about 3 %) comes back, and goes out again.
                if sim.rng.below(100) < 3
                    && let Some(wrong) = self.departments.iter().find(|d| **d != kind.department).cloned()
                {
                    let f = frac(&mut sim, 1, 0.05, 0.6);
                    if !sim.go(Action::Dispatch, State::Dispatched, Who::Dispatcher, f, lim(l.dispatch), Some(lim(l.handle)), "") {
                        break 'walk;
                    }
                    out.department = Some(wrong);
                    let f = sim.rng.range_f64(0.02, 0.2);
                    if !sim.go(Action::Return, State::Filed, Who::Department, f, lim(l.handle), Some(lim(l.dispatch)), "非本单位职责，申请退回") {
                        break 'walk;
                    }
                    out.department = None;
                    out.returns += 1;
                }
                let f = frac(&mut sim, 1, 0.05, 0.6);
                if !sim.go(Action::Dispatch, State::Dispatched, Who::Dispatcher, f, lim(l.dispatch), Some(lim(l.handle)), "") {
                    break 'walk;
                }
                out.department = Some(kind.department.clone());
                if sim.rng.below(1000) < 3 {
                    sim.go(Action::Shelve, State::Shelved, Who::ShiftLead, 0.2, lim(l.handle), None, "需统筹解决，挂账办理");
                    break 'walk;
                }
                let f = sim.rng.range_f64(0.01, 0.1);
                if !sim.go(Action::Accept, State::InProgress, Who::Department, f, lim(l.handle), Some(lim(l.handle)), "") {
                    break 'walk;
                }
                let f = frac(&mut sim, 2, 0.1, 0.8);
                if !sim.go(Action::Handle, State::Handled, Who::Department, f, lim(l.handle), Some(lim(l.verify)), "已处置") {
                    break 'walk;
                }
            }
            // The on-site check; about 4 % fail once and are redone.
            if sim.rng.below(100) < 4 {
                let f = sim.rng.range_f64(0.05, 0.5);
                if !sim.go(Action::FailVerification, State::InProgress, Who::GridWorker, f, lim(l.verify), Some(lim(l.handle)), "现场核查未通过") {
                    break 'walk;
                }
                out.reworks += 1;
                let f = sim.rng.range_f64(0.1, 0.6);
                if !sim.go(Action::Handle, State::Handled, Who::Department, f, lim(l.handle), Some(lim(l.verify)), "已返工") {
                    break 'walk;
                }
            }
            let f = frac(&mut sim, 3, 0.05, 0.6);
            if !sim.go(Action::Verify, State::Verified, Who::GridWorker, f, lim(l.verify), None, "现场核查通过") {
                break 'walk;
            }
            // Closing is not timed: within the working hour or two after the check.
            let close_ms = sim.rng.range_f64(10.0, 120.0) as i64 * MINUTE_MS;
            if !sim.untimed(Action::Close, State::Closed, Who::Dispatcher, close_ms) {
                break 'walk;
            }
            // The reporter is asked back (回访) for about 70 %: mostly satisfied.
            if sim.rng.below(100) < 70 {
                let rating = *sim.rng.weighted(&[(5i64, 56), (4, 30), (3, 8), (2, 4), (1, 2)]);
                let wait = sim.rng.range_f64(60.0, 900.0) as i64 * MINUTE_MS;
                if sim.untimed(Action::Evaluate, State::Evaluated, Who::Operator, wait) {
                    out.rating = Some(rating);
                }
            }
        }
        let closed_at = sim.steps.iter().find(|s| s.to == State::Closed).map(|s| s.at);
        out.state = sim.state;
        out.closed_at = closed_at.filter(|_| matches!(sim.state, State::Closed | State::Evaluated));
        out.late = sim.late;
        out.step_started_at = sim.step_started_at;
        out.updated_at = sim.steps.last().map_or(created_at, |s| s.at);
        out.clock = if sim.open && sim.state.step().is_some() { sim.clock } else { None };
        out.steps = sim.steps;
        out
    }
}

/// The walk through the loop.
struct Sim<'c> {
    cal: &'c WorkCalendar,
    now: i64,
    rng: Rng,
    t: i64,
    state: State,
    clock: Option<StepClock>,
    step_started_at: i64,
    late: bool,
    steps: Vec<Step>,
    /// Still running (false: ended in a terminal state).
    open: bool,
}

impl Sim<'_> {
    /// End the running step after `fraction` of its limit (`limit_ms` of working time) with
    /// `action`; the next step's limit is `next_ms`. False if that instant is still to come:
    /// the incident stays where it is, its clock running.
    #[allow(clippy::too_many_arguments)]
    fn go(&mut self, action: Action, to: State, who: Who, fraction: f64, limit_ms: i64, next_ms: Option<i64>, note: &'static str) -> bool {
        let start = self.step_started_at;
        let at = self.cal.add_working(start, (limit_ms as f64 * fraction) as i64).max(self.t + MINUTE_MS);
        if at > self.now {
            return false;
        }
        let due = self.clock.map(|c| c.due_at);
        if due.is_some_and(|d| at > d) {
            self.late = true;
        }
        self.steps.push(Step { action: action.as_str(), from: Some(self.state), to, who, at, note, step_due_at: due });
        self.t = at;
        self.state = to;
        self.step_started_at = at;
        self.clock = next_ms.map(|ms| self.cal.step_clock(at, ms));
        self.open = next_ms.is_some();
        true
    }

    /// A step with no time limit, `working_ms` of working time later.
    fn untimed(&mut self, action: Action, to: State, who: Who, working_ms: i64) -> bool {
        let at = self.cal.add_working(self.t, working_ms);
        if at > self.now {
            return false;
        }
        self.steps.push(Step { action: action.as_str(), from: Some(self.state), to, who, at, note: "", step_due_at: None });
        self.t = at;
        self.state = to;
        self.step_started_at = at;
        self.clock = None;
        self.open = false;
        true
    }
}

/// A receipt code like the store's (`YYYYMMDD-` and six characters with no look-alikes),
/// unique per incident index.
fn receipt(seed: u64, i: u64, at: i64) -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    let (y, m, d) = Day::of_instant(at).ymd();
    // An affine map modulo 31^6 with a multiplier prime to 31: a permutation of 0..31^6,
    // so indices below 887,503,681 get distinct codes.
    const P: u64 = 887_503_681;
    let mut v = (i.wrapping_mul(104_729).wrapping_add(seed % P)) % P;
    let mut tail = [b'2'; 6];
    for c in tail.iter_mut().rev() {
        *c = ALPHABET[(v % 31) as usize];
        v /= 31;
    }
    format!("{y:04}{m:02}{d:02}-{}", String::from_utf8_lossy(&tail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::demo_categories;

    fn kinds() -> Vec<Kind> {
        demo_categories()
            .into_iter()
            .filter_map(|c| Some(Kind { code: c.code, name: c.name, department: c.department?, limits: c.limits?, on_spot: c.on_spot, weight: 1 }))
            .collect()
    }

    #[test]
    fn a_year_of_history_looks_like_the_pilot() {
        let places: Vec<Place> = (0..628).map(|k| Place { grid: format!("430503001001{k:03}"), lat: 27.2, lon: 111.4 }).collect();
        let kinds = kinds();
        let cal = WorkCalendar::default();
        let now = 1_795_598_698_000;
        let h = History::new(1, REPORTS_PER_YEAR, now, &places, &kinds, &cal);
        let all: Vec<Past> = (0..h.len()).map(|i| h.incident(i)).collect();
        let closed = all.iter().filter(|p| p.closed_at.is_some()).count();
        let late = all.iter().filter(|p| p.late).count();
        let open = all.iter().filter(|p| p.state.is_open()).count();
        assert!((0.95..=0.99).contains(&(closed as f64 / all.len() as f64)), "closed {closed} of {}", all.len());
        assert!((10..=120).contains(&late), "late {late}");
        assert!((1..=60).contains(&open), "open {open}");
        assert!(all.iter().any(|p| p.returns > 0) && all.iter().any(|p| p.reworks > 0));
        assert!(all.iter().all(|p| p.created_at <= now && p.steps.iter().all(|s| s.at <= now)));
        assert!(all.iter().all(|p| p.steps.windows(2).all(|w| w[0].at <= w[1].at && w[0].to == w[1].from.unwrap_or(State::Voided))));
        // Open incidents carry a running clock; the same seed gives the same history.
        assert!(all.iter().filter(|p| p.state.is_open() && p.state.step().is_some()).all(|p| p.clock.is_some()));
        assert_eq!(h.incident(17), all[17]);
        let mut receipts: Vec<&String> = all.iter().map(|p| &p.receipt).collect();
        receipts.sort();
        receipts.dedup();
        assert_eq!(receipts.len(), all.len());
    }
}
