//! The incident catalogue (departments, categories) and the work calendar.

use std::collections::BTreeSet;

use domain::calendar::{Day, TimeLimit, WorkCalendar};
use domain::catalogue::{Category, Department, StepLimits, check_category_code};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::StoreError;
use crate::audit::{self, Actor};
use crate::db::Db;

/// A day that differs from the weekly pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// A public holiday: no working time.
    Holiday,
    /// A make-up workday (调休): a weekend day with working time.
    Workday,
}

impl DayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Holiday => "holiday",
            DayKind::Workday => "workday",
        }
    }
}

/// One entry of the calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CalendarDay {
    pub day: Day,
    pub kind: DayKind,
    pub name: String,
}

fn limit(r: &AnyRow, col: &str) -> Result<Option<TimeLimit>, StoreError> {
    let v: Option<String> = r.try_get(col)?;
    v.map(|s| TimeLimit::parse(&s).map_err(|e| StoreError::Corrupt(format!("categories.{col}: {e}")))).transpose()
}

fn category(r: &AnyRow) -> Result<Category, StoreError> {
    let kind: String = r.try_get("kind")?;
    let limits = match (limit(r, "file_limit")?, limit(r, "dispatch_limit")?, limit(r, "handle_limit")?, limit(r, "verify_limit")?) {
        (Some(file), Some(dispatch), Some(handle), Some(verify)) => Some(StepLimits { file, dispatch, handle, verify }),
        _ => None,
    };
    Ok(Category {
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        kind: kind.parse().map_err(|e| StoreError::Corrupt(format!("categories.kind: {e}")))?,
        parent: r.try_get("parent")?,
        department: r.try_get("department")?,
        limits,
        on_spot: r.try_get::<i64, _>("on_spot")? != 0,
    })
}

pub(crate) async fn categories_on(conn: &mut sqlx::AnyConnection) -> Result<Vec<Category>, StoreError> {
    let rows = sqlx::query(
        "SELECT code, name, kind, parent, department, file_limit, dispatch_limit, handle_limit, verify_limit, on_spot FROM categories ORDER BY code",
    )
    .fetch_all(conn)
    .await?;
    rows.iter().map(category).collect()
}

impl Db {
    /// Store departments, categories and calendar days (the demo's, or a district's own),
    /// replacing entries with the same codes, in one transaction.
    pub async fn load_catalogue(
        &self,
        actor: &Actor,
        departments: &[Department],
        categories: &[Category],
        days: &[CalendarDay],
    ) -> Result<(), StoreError> {
        for c in categories {
            check_category_code(&c.code, c.kind, c.parent.as_deref())
                .map_err(|e| StoreError::Invalid { code: "invalid_category", message: e.to_string() })?;
        }
        let mut tx = self.write_tx().await?;
        for d in departments {
            sqlx::query("INSERT INTO departments (code, name) VALUES ($1, $2) ON CONFLICT (code) DO UPDATE SET name = excluded.name")
                .bind(&d.code)
                .bind(&d.name)
                .execute(&mut *tx)
                .await?;
        }
        // Top-level categories first, so that parents exist.
        let mut ordered: Vec<&Category> = categories.iter().collect();
        ordered.sort_by_key(|c| (c.parent.is_some(), c.code.clone()));
        for c in ordered {
            let l = c.limits.map(|l| [l.file, l.dispatch, l.handle, l.verify].map(|x| x.to_string()));
            let get = |i: usize| l.as_ref().map(|a| a[i].clone());
            sqlx::query(
                "INSERT INTO categories (code, name, kind, parent, department, file_limit, dispatch_limit, handle_limit, verify_limit, on_spot) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (code) DO UPDATE SET name = excluded.name, kind = excluded.kind, \
                 parent = excluded.parent, department = excluded.department, file_limit = excluded.file_limit, \
                 dispatch_limit = excluded.dispatch_limit, handle_limit = excluded.handle_limit, verify_limit = excluded.verify_limit, \
                 on_spot = excluded.on_spot",
            )
            .bind(&c.code)
            .bind(&c.name)
            .bind(c.kind.as_str())
            .bind(c.parent.clone())
            .bind(c.department.clone())
            .bind(get(0))
            .bind(get(1))
            .bind(get(2))
            .bind(get(3))
            .bind(i64::from(c.on_spot))
            .execute(&mut *tx)
            .await?;
        }
        for d in days {
            upsert_day(&mut tx, d).await?;
        }
        let timing = crate::timing::load(&mut tx).await?;
        let open = crate::timing::recompute(&mut tx, &timing, false).await?;
        let detail = format!(
            "{} departments, {} categories, {} calendar days; {open} open incidents' time limits recomputed",
            departments.len(),
            categories.len(),
            days.len()
        );
        audit::append(self, &mut tx, actor.entry("catalogue.load", "catalogue", "", "ok", &detail)).await?;
        tx.commit().await?;
        self.timing_cache.clear();
        Ok(())
    }

    pub async fn departments(&self) -> Result<Vec<Department>, StoreError> {
        let rows = sqlx::query("SELECT code, name FROM departments ORDER BY code").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(Department { code: r.try_get("code")?, name: r.try_get("name")? })).collect()
    }

    pub async fn categories(&self) -> Result<Vec<Category>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        categories_on(&mut conn).await
    }

    /// Calendar entries between two days, inclusive.
    pub async fn calendar_days(&self, from: Day, to: Day) -> Result<Vec<CalendarDay>, StoreError> {
        let rows = sqlx::query("SELECT day, kind, name FROM calendar_days WHERE day >= $1 AND day <= $2 ORDER BY day")
            .bind(from.0)
            .bind(to.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok(CalendarDay {
                    day: Day(r.try_get("day")?),
                    kind: if kind == "holiday" { DayKind::Holiday } else { DayKind::Workday },
                    name: r.try_get("name")?,
                })
            })
            .collect()
    }

    /// The whole calendar, for deadline arithmetic.
    pub async fn work_calendar(&self) -> Result<WorkCalendar, StoreError> {
        let days = self.calendar_days(Day(i64::MIN / 4), Day(i64::MAX / 4)).await?;
        let pick = |k: DayKind| days.iter().filter(|d| d.kind == k).map(|d| d.day).collect::<BTreeSet<Day>>();
        Ok(WorkCalendar { holidays: pick(DayKind::Holiday), workdays: pick(DayKind::Workday), ..WorkCalendar::default() })
    }

    /// Mark a day as a holiday or a make-up workday, or (None) back to the weekly pattern.
    pub(crate) async fn set_calendar_day(&self, actor: &Actor, day: Day, entry: Option<(DayKind, &str)>) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let detail = match entry {
            Some((kind, name)) => {
                upsert_day(&mut tx, &CalendarDay { day, kind, name: name.to_string() }).await?;
                format!("{} {name}", kind.as_str())
            }
            None => {
                sqlx::query("DELETE FROM calendar_days WHERE day = $1").bind(day.0).execute(&mut *tx).await?;
                "normal".to_string()
            }
        };
        let timing = crate::timing::load(&mut tx).await?;
        let open = crate::timing::recompute(&mut tx, &timing, false).await?;
        let detail = format!("{detail}; {open} open incidents' time limits recomputed");
        audit::append(self, &mut tx, actor.entry("calendar.update", "calendar_day", &day.to_string(), "ok", &detail)).await?;
        tx.commit().await?;
        self.timing_cache.clear();
        Ok(())
    }
}

async fn upsert_day(tx: &mut sqlx::Transaction<'static, sqlx::Any>, d: &CalendarDay) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO calendar_days (day, kind, name) VALUES ($1, $2, $3) ON CONFLICT (day) DO UPDATE SET kind = excluded.kind, name = excluded.name")
        .bind(d.day.0)
        .bind(d.kind.as_str())
        .bind(&d.name)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The demo's calendar: this year's national holidays and make-up workdays.
pub fn demo_calendar() -> Vec<CalendarDay> {
    let (holidays, workdays) = domain::calendar::national_2026();
    holidays
        .into_iter()
        .map(|(day, name)| CalendarDay { day, kind: DayKind::Holiday, name: name.into() })
        .chain(workdays.into_iter().map(|(day, name)| CalendarDay { day, kind: DayKind::Workday, name: name.into() }))
        .collect()
}
