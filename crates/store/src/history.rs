//! Bulk loading of a generated incident history (`domain::history`): the demo's year of
//! incidents and the benchmarks' millions. A few multi-row statements per thousand
//! incidents, in one transaction per call. The rollup is not kept row by row here: call
//! [`Db::rebuild_kpis`] after the last call.

use std::collections::HashMap;
use std::ops::Range;

use domain::history::{History, Past, Who};
use sqlx::Row;

use crate::StoreError;
use crate::db::{Db, Dialect};

/// Who the history's actors are in this store.
#[derive(Debug, Clone, Default)]
pub struct HistoryActors {
    /// (account id, username) of the centre's operator, dispatcher and shift lead, and of
    /// a department handler.
    pub operator: Option<(i64, String)>,
    pub dispatcher: Option<(i64, String)>,
    pub shift_lead: Option<(i64, String)>,
    pub department: Option<(i64, String)>,
    /// Grid code → (account id, username) of a grid worker with an account.
    pub grid_accounts: HashMap<String, (i64, String)>,
    /// Grid code → the name of its full-time grid worker (team member without an account).
    pub grid_names: HashMap<String, String>,
}

impl HistoryActors {
    /// (kind, account id, name) of an actor at a grid.
    fn of(&self, who: Who, grid: &str) -> (&'static str, Option<i64>, String) {
        let account = |a: &Option<(i64, String)>, fallback: &str| match a {
            Some((id, name)) => ("user", Some(*id), name.clone()),
            None => ("system", None, fallback.to_string()),
        };
        match who {
            Who::Operator => account(&self.operator, "坐席员"),
            Who::Dispatcher => account(&self.dispatcher, "派遣员"),
            Who::ShiftLead => account(&self.shift_lead, "值班长"),
            Who::Department => account(&self.department, "处置部门"),
            Who::Resident => ("anonymous", None, "居民".into()),
            Who::GridWorker => match self.grid_accounts.get(grid) {
                Some((id, name)) => ("user", Some(*id), name.clone()),
                None => ("staff", None, self.grid_names.get(grid).cloned().unwrap_or_else(|| "网格员".into())),
            },
        }
    }
}

/// A text as an SQL literal (standard quoting, which both backends use), or NULL.
/// Generated text only: a NUL character, which neither backend stores, becomes a space.
fn lit(v: Option<&str>) -> String {
    v.map_or_else(|| "NULL".into(), |t| format!("'{}'", t.replace('\'', "''").replace('\0', " ")))
}

/// Receives (place, created_at, state, closed_at) of each exported incident.
pub type FactSink<'a> = dyn FnMut(&str, i64, &str, Option<i64>) -> std::io::Result<()> + 'a;

fn num(v: Option<i64>) -> String {
    v.map_or_else(|| "NULL".into(), |n| n.to_string())
}

impl Db {
    /// Store incidents `range` of a history (with their timelines when `timeline`), with
    /// ids following the store's last. Returns how many were stored.
    pub async fn load_history(&self, h: &History<'_>, places: &[domain::history::Place], kinds: &[domain::history::Kind], range: Range<u64>, actors: &HistoryActors, timeline: bool) -> Result<u64, StoreError> {
        const CHUNK: u64 = 500;
        let mut tx = self.write_tx().await?;
        let first: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM incidents").fetch_one(&mut *tx).await?.try_get(0)?;
        let mut id = first;
        let mut start = range.start;
        let mut steps: Vec<(i64, String, domain::history::Step)> = Vec::new();
        while start < range.end {
            let end = (start + CHUNK).min(range.end);
            let batch: Vec<Past> = (start..end).map(|i| h.incident(i)).collect();
            let mut values = Vec::with_capacity(batch.len());
            for p in &batch {
                id += 1;
                let grid = places.get(p.place).map(|x| x.grid.clone()).unwrap_or_default();
                let (_, reporter, _) = actors.of(p.reporter, &grid);
                values.push(format!(
                    "({id}, {}, {}, {}, {}, {}, {}, {}, 'grid', {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
                    lit(Some(&p.receipt)),
                    lit(kinds.get(p.category).map(|k| k.code.as_str())),
                    lit(Some(&p.description)),
                    p.lat,
                    p.lon,
                    lit(Some(&grid)),
                    lit(Some(&grid)),
                    lit(Some(p.source)),
                    lit(Some(p.state.as_str())),
                    lit(p.department.as_deref()),
                    i64::from(p.on_spot_allowed),
                    p.returns,
                    p.reworks,
                    num(p.rating),
                    num(reporter),
                    p.steps.len(),
                    p.created_at,
                    p.updated_at,
                    p.step_started_at,
                    num(p.clock.map(|c| c.warn_at)),
                    num(p.clock.map(|c| c.due_at)),
                    i64::from(p.late),
                    num(p.closed_at),
                ));
                if timeline {
                    for s in &p.steps {
                        steps.push((id, grid.clone(), s.clone()));
                    }
                }
            }
            // Literals, not binds: sqlx's SQLite driver looks each bind's name up among all
            // of a statement's parameters, which is quadratic in a multi-row statement.
            let sql = format!(
                "INSERT INTO incidents (id, receipt, category, description, lat, lon, grid, area_code, level, source, state, department, \
                 on_spot_allowed, returns, reworks, rating, reporter_account, version, created_at, updated_at, step_started_at, warn_at, due_at, late, closed_at) VALUES {}",
                values.join(", ")
            );
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await?;
            if steps.len() >= 2_000 || end == range.end {
                insert_steps(&mut tx, &steps, actors).await?;
                steps.clear();
            }
            start = end;
        }
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT setval(pg_get_serial_sequence('incidents', 'id'), (SELECT MAX(id) FROM incidents))").execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok((id - first) as u64)
    }
}

async fn insert_steps(tx: &mut sqlx::Transaction<'static, sqlx::Any>, steps: &[(i64, String, domain::history::Step)], actors: &HistoryActors) -> Result<(), StoreError> {
    for chunk in steps.chunks(1_000) {
        let mut values = Vec::with_capacity(chunk.len());
        for (id, grid, s) in chunk {
            let (kind, account, name) = actors.of(s.who, grid);
            values.push(format!(
                "({id}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
                lit(Some(s.action)),
                lit(s.from.map(|f| f.as_str())),
                lit(Some(s.to.as_str())),
                lit(Some(kind)),
                num(account),
                lit(Some(&name)),
                lit(Some(s.note)),
                s.at,
                num(s.step_due_at)
            ));
        }
        let sql = format!(
            "INSERT INTO incident_transitions (incident_id, action, from_state, to_state, actor_kind, actor_id, actor_name, note, at, step_due_at) VALUES {}",
            values.join(", ")
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut **tx).await?;
    }
    Ok(())
}

impl Db {
    /// (closed, open) incidents in the store: closed or evaluated, and still in the loop.
    pub async fn incident_outcomes(&self) -> Result<(i64, i64), StoreError> {
        let r = sqlx::query(
            "SELECT CAST(SUM(CASE WHEN closed_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS closed, \
             CAST(SUM(CASE WHEN state IN ('reported', 'filed', 'dispatched', 'in_progress', 'handled', 'verified') THEN 1 ELSE 0 END) AS BIGINT) AS open FROM incidents",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((r.try_get::<Option<i64>, _>("closed")?.unwrap_or(0), r.try_get::<Option<i64>, _>("open")?.unwrap_or(0)))
    }
}

impl Db {
    /// Stream each incident's (place, created_at, state, closed_at), for exports to other
    /// tools (the benchmark's DuckDB baseline). Returns how many.
    pub async fn export_incident_facts(&self, each: &mut FactSink<'_>) -> Result<u64, StoreError> {
        let mut last = 0i64;
        let mut n = 0;
        loop {
            let rows = sqlx::query("SELECT id, COALESCE(grid, area_code) AS place, created_at, state, closed_at FROM incidents WHERE id > $1 ORDER BY id LIMIT 50000")
                .bind(last)
                .fetch_all(&self.pool)
                .await?;
            let Some(r) = rows.last() else { break };
            last = r.try_get("id")?;
            for r in &rows {
                let place: String = r.try_get("place")?;
                let state: String = r.try_get("state")?;
                each(&place, r.try_get("created_at")?, &state, r.try_get("closed_at")?).map_err(|e| StoreError::Corrupt(format!("export: {e}")))?;
                n += 1;
            }
        }
        Ok(n)
    }
}
