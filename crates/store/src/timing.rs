//! Time limits applied: the work calendar and each category's step limits, read once and
//! cached, and the stored clock (`warn_at`, `due_at`) of every running step.
//!
//! An incident's running step carries its clock in its row, computed when the step starts,
//! when an extension (延期) is approved, and again for every open incident when the
//! calendar or the catalogue changes (in that change's own transaction). The board filters
//! on it, reads need no calendar arithmetic, and the watcher finds overdue steps by index.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use domain::calendar::{Day, StepClock, WorkCalendar};
use domain::catalogue::StepLimits;
use domain::incident::{State, Step};
use sqlx::{AnyConnection, Row};

use crate::StoreError;
use crate::db::Db;

/// The calendar and the limits, as of one read.
#[derive(Debug, Clone, Default)]
pub struct Timing {
    pub calendar: WorkCalendar,
    pub limits: HashMap<String, StepLimits>,
    /// The categories a report may name (second-level), and whether a grid worker may
    /// handle them on the spot.
    pub on_spot: HashMap<String, bool>,
    /// Every category's name, for messages.
    pub names: HashMap<String, String>,
}

impl Timing {
    /// The clock of `step` of an incident of `category` that started at `start`, with
    /// `extension_ms` of working time granted on top. None: the category has no limits.
    pub fn clock(&self, category: &str, step: Step, start: i64, extension_ms: i64) -> Option<StepClock> {
        let l = self.limits.get(category)?;
        let limit = crate::notifications::limit_of(l, step);
        Some(self.calendar.step_clock(start, self.calendar.limit_ms(limit) + extension_ms.max(0)))
    }
}

/// How long another process's calendar edit may go unseen by this one's new steps (its
/// open incidents are recomputed at once, in the edit's transaction).
const TTL: Duration = Duration::from_secs(30);

#[derive(Default)]
pub(crate) struct TimingCache {
    inner: RwLock<Option<(Instant, Arc<Timing>)>>,
}

impl TimingCache {
    pub(crate) fn clear(&self) {
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Read the calendar and the limits through a connection (a transaction's, so that a
/// change sees its own writes).
pub(crate) async fn load(conn: &mut AnyConnection) -> Result<Timing, StoreError> {
    let mut calendar = WorkCalendar::default();
    for r in sqlx::query("SELECT day, kind FROM calendar_days").fetch_all(&mut *conn).await? {
        let day = Day(r.try_get("day")?);
        match r.try_get::<String, _>("kind")?.as_str() {
            "holiday" => calendar.holidays.insert(day),
            "workday" => calendar.workdays.insert(day),
            k => return Err(StoreError::Corrupt(format!("calendar_days.kind: {k:?}"))),
        };
    }
    let (mut limits, mut on_spot, mut names) = (HashMap::new(), HashMap::new(), HashMap::new());
    for c in crate::catalogue::categories_on(conn).await? {
        names.insert(c.code.clone(), c.name.clone());
        if c.parent.is_some() {
            on_spot.insert(c.code.clone(), c.on_spot);
        }
        if let Some(l) = c.limits {
            limits.insert(c.code, l);
        }
    }
    Ok(Timing { calendar, limits, on_spot, names })
}

/// States whose step has a clock.
const RUNNING: [State; 5] = [State::Reported, State::Filed, State::Dispatched, State::InProgress, State::Handled];

/// Recompute the clock of every open incident (after a calendar or catalogue change).
pub(crate) async fn recompute(conn: &mut AnyConnection, timing: &Timing, only_missing: bool) -> Result<u64, StoreError> {
    let states: Vec<String> = RUNNING.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let missing = if only_missing { " AND due_at IS NULL" } else { "" };
    let sql = format!("SELECT id, category, state, step_started_at, extension_ms FROM incidents WHERE state IN ({}){missing}", states.join(", "));
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *conn).await?;
    let mut n = 0;
    for r in rows {
        let state: String = r.try_get("state")?;
        let state: State = state.parse().map_err(|e| StoreError::Corrupt(format!("incidents.state: {e}")))?;
        let Some(step) = state.step() else { continue };
        let category: String = r.try_get("category")?;
        let clock = timing.clock(&category, step, r.try_get("step_started_at")?, r.try_get("extension_ms")?);
        sqlx::query("UPDATE incidents SET warn_at = $1, due_at = $2 WHERE id = $3")
            .bind(clock.map(|c| c.warn_at))
            .bind(clock.map(|c| c.due_at))
            .bind(r.try_get::<i64, _>("id")?)
            .execute(&mut *conn)
            .await?;
        n += 1;
    }
    Ok(n)
}

impl Db {
    /// The calendar and limits, from a cache that lives `TTL` (and is dropped at once by
    /// this process's own edits).
    pub async fn timing(&self) -> Result<Arc<Timing>, StoreError> {
        if let Some((at, t)) = self.timing_cache.inner.read().unwrap_or_else(|e| e.into_inner()).as_ref()
            && at.elapsed() < TTL
        {
            return Ok(t.clone());
        }
        let mut conn = self.pool.acquire().await?;
        let t = Arc::new(load(&mut conn).await?);
        *self.timing_cache.inner.write().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), t.clone()));
        Ok(t)
    }

    /// Give open incidents that have none a clock (incidents stored before clocks were
    /// stored, or whose category gained limits). Run at start-up.
    pub async fn fill_missing_clocks(&self) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let timing = load(&mut tx).await?;
        let n = recompute(&mut tx, &timing, true).await?;
        tx.commit().await?;
        Ok(n)
    }
}
