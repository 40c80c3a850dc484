//! Key figures (考核指标): the daily rollup `kpi_daily` and the queries over it.
//!
//! Each incident contributes a fixed set of counters (`domain::kpi::Counters::of`) to the
//! rows keyed by its report day, where it happened (its grid, or its owning area while it
//! has none) at each of the four depths (district, street, community, grid), and its
//! department (and `'*'`, all departments). The writers of incidents call [`track`] in
//! their own transaction with the row as it was: it reads the row as it is now and adds
//! the difference of the two contributions. Writes hold the store's write lock, so the
//! deltas never race. [`Db::rebuild_kpis`] recomputes the table from the incidents alone
//! (the database is the source of truth); a test checks that both agree.
//!
//! The one figure that depends on the clock, incidents whose running step is past its
//! deadline now but not yet marked `late` by the watcher, is counted at query time
//! through a partial index. Per-person figures are read from the base tables (reports
//! by `reporter_account`, on-site checks from `incident_transitions`).

use std::collections::{BTreeMap, HashMap};

use domain::calendar::Day;
use domain::kpi::{Counters, Facts, Figures, Grouping};
use domain::{AreaCode, Level};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::StoreError;
use crate::db::Db;
use crate::incidents::{COLUMNS, Incident, incident};

/// The depths (code lengths) the rollup keeps: district, street, community, grid.
const DEPTHS: [usize; 4] = [6, 9, 12, 15];
/// Department key for "all departments together".
pub const ALL_DEPARTMENTS: &str = "*";

const DAY_MS: i64 = 86_400_000;
const SHANGHAI_OFFSET_MS: i64 = 8 * 3_600_000;

/// `domain::kpi::Counters::of` in SQL, over the columns of `incidents`, in
/// `Counters::NAMES` order. Keep the two in step (the rebuild test compares them).
pub(crate) const CONTRIBUTION_SQL: [&str; 13] = [
    "1",
    "CASE WHEN state IN ('reported', 'rejected', 'merged', 'voided') THEN 0 ELSE 1 END",
    "CASE WHEN closed_at IS NOT NULL THEN 1 ELSE 0 END",
    "CASE WHEN closed_at IS NOT NULL AND late = 0 THEN 1 ELSE 0 END",
    "CASE WHEN late <> 0 THEN 1 ELSE 0 END",
    "returns",
    "CASE WHEN returns > 0 THEN 1 ELSE 0 END",
    "reworks",
    "CASE WHEN reworks > 0 THEN 1 ELSE 0 END",
    "COALESCE(closed_at - created_at, 0)",
    "CASE WHEN rating IS NOT NULL THEN 1 ELSE 0 END",
    "COALESCE(rating, 0)",
    "CASE WHEN rating >= 4 THEN 1 ELSE 0 END",
];

/// Where an incident happened, for the figures: its grid, or its owning area without one.
const PLACE_SQL: &str = "COALESCE(grid, area_code)";

fn facts(i: &Incident) -> Facts {
    Facts {
        state: i.loop_.state,
        late: i.late,
        created_at: i.created_at,
        closed_at: i.closed_at,
        returns: i.loop_.returns,
        reworks: i.loop_.reworks,
        rating: i.rating,
    }
}

/// A rollup row's key: depth, department, area, day.
type Key = (i64, String, String, i64);

fn keys(i: &Incident) -> Vec<Key> {
    let place = i.grid.as_ref().unwrap_or(&i.area).as_str().to_string();
    let department = i.department.clone().unwrap_or_default();
    let day = Day::of_instant(i.created_at).0;
    let mut out = Vec::with_capacity(8);
    for depth in DEPTHS.into_iter().filter(|d| *d <= place.len()) {
        let area = place[..depth].to_string();
        out.push((depth as i64, ALL_DEPARTMENTS.to_string(), area.clone(), day));
        out.push((depth as i64, department.clone(), area, day));
    }
    out
}

/// An incident as a transaction sees it (the `before` of [`track`]).
pub(crate) async fn read_in(tx: &mut Transaction<'static, Any>, id: i64) -> Result<Option<Incident>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM incidents WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut **tx).await?;
    row.as_ref().map(incident).transpose()
}

/// Keep the rollup in step with a change to incident `id`, inside the change's
/// transaction. `before` is the row as the transaction first read it (None: just created).
/// Also records the deadline of the step a transition ended (for on-time checks).
pub(crate) async fn track(tx: &mut Transaction<'static, Any>, before: Option<&Incident>, id: i64) -> Result<(), StoreError> {
    let after = read_in(tx, id).await?.ok_or_else(|| StoreError::NotFound(format!("incident {id}")))?;
    let mut delta: HashMap<Key, Counters> = HashMap::new();
    if let Some(b) = before {
        let c = Counters::of(&facts(b));
        for k in keys(b) {
            delta.entry(k).or_default().sub(&c);
        }
    }
    let c = Counters::of(&facts(&after));
    for k in keys(&after) {
        delta.entry(k).or_default().add(&c);
    }
    let changed: Vec<(Key, Counters)> = delta.into_iter().filter(|(_, c)| !c.is_zero()).collect();
    if !changed.is_empty() {
        upsert(tx, &changed).await?;
        // Keys the incident left may be all zeros now (a rebuild would hold no such rows):
        // one statement per (department, day) left, which is one when it moves.
        let mut left: BTreeMap<(&str, i64), Vec<&str>> = BTreeMap::new();
        for ((_, department, area, day), c) in &changed {
            if c.reported < 0 {
                left.entry((department.as_str(), *day)).or_default().push(area.as_str());
            }
        }
        for ((department, day), areas) in left {
            let list: Vec<String> = (0..areas.len()).map(|k| format!("${}", k + 2)).collect();
            let sql = format!(
                "DELETE FROM kpi_daily WHERE depth IN (6, 9, 12, 15) AND department = $1 AND area IN ({}) AND day = ${} AND reported = 0",
                list.join(", "),
                areas.len() + 2
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(department);
            for a in &areas {
                q = q.bind(*a);
            }
            q.bind(day).execute(&mut **tx).await?;
        }
    }
    // The step that ended: remember its deadline on the transition that ended it.
    if let Some(b) = before
        && b.loop_.state != after.loop_.state
        && let Some(clock) = b.clock
    {
        sqlx::query("UPDATE incident_transitions SET step_due_at = $1 WHERE id = (SELECT MAX(id) FROM incident_transitions WHERE incident_id = $2)")
            .bind(clock.due_at)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Add the contributions of incidents just created in this transaction (a batch of
/// reports: one statement for all of them).
pub(crate) async fn track_created(tx: &mut Transaction<'static, Any>, created: &[&Incident]) -> Result<(), StoreError> {
    let mut delta: HashMap<Key, Counters> = HashMap::new();
    for i in created {
        let c = Counters::of(&facts(i));
        for k in keys(i) {
            delta.entry(k).or_default().add(&c);
        }
    }
    let changed: Vec<(Key, Counters)> = delta.into_iter().filter(|(_, c)| !c.is_zero()).collect();
    // A batch of reports spread over many grids and days could pass the binds one
    // statement may carry: upsert in chunks.
    for chunk in changed.chunks(500) {
        upsert(tx, chunk).await?;
    }
    Ok(())
}

/// Add counters to rows, creating them as needed (one statement). Everything is bound,
/// so the statement's text depends only on the number of rows and stays prepared.
async fn upsert(tx: &mut Transaction<'static, Any>, rows: &[(Key, Counters)]) -> Result<(), StoreError> {
    let names = Counters::NAMES.join(", ");
    let sets: Vec<String> = Counters::NAMES.iter().map(|n| format!("{n} = kpi_daily.{n} + excluded.{n}")).collect();
    let width = 4 + Counters::NAMES.len();
    let values: Vec<String> = (0..rows.len())
        .map(|k| {
            let params: Vec<String> = (1..=width).map(|j| format!("${}", k * width + j)).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO kpi_daily (depth, department, area, day, {names}) VALUES {} ON CONFLICT (depth, department, area, day) DO UPDATE SET {}",
        values.join(", "),
        sets.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for ((depth, department, area, day), c) in rows {
        q = q.bind(*depth).bind(department.clone()).bind(area.clone()).bind(*day);
        for v in c.to_array() {
            q = q.bind(v);
        }
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// `CAST(SUM(x) AS BIGINT) AS x` for each counter (PostgreSQL sums BIGINT as NUMERIC).
fn sums_of_columns() -> String {
    Counters::NAMES.iter().map(|n| format!("CAST(SUM({n}) AS BIGINT) AS {n}")).collect::<Vec<_>>().join(", ")
}

/// The same over the incidents themselves.
fn sums_of_contributions() -> String {
    Counters::NAMES.iter().zip(CONTRIBUTION_SQL).map(|(n, e)| format!("CAST(SUM({e}) AS BIGINT) AS {n}")).collect::<Vec<_>>().join(", ")
}

fn counters_of(r: &AnyRow) -> Result<Counters, StoreError> {
    let mut a = [0i64; 13];
    for (k, n) in Counters::NAMES.iter().enumerate() {
        a[k] = r.try_get::<Option<i64>, _>(*n)?.unwrap_or(0);
    }
    Ok(Counters::from_array(a))
}

/// What to compute: incidents reported on the Shanghai days `from..=to`, in `area`'s
/// subtree, grouped `by`.
#[derive(Debug, Clone)]
pub struct KpiQuery {
    pub from: Day,
    pub to: Day,
    pub by: Grouping,
    pub area: AreaCode,
}

/// One row of a KPI table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KpiRow {
    /// An area code, a department code, or an account id; "" for what fits no group
    /// (incidents not yet placed below the area, or not dispatched to a department).
    pub key: String,
    pub name: String,
    /// The account's role, for rows of people.
    pub role: Option<String>,
    pub figures: Figures,
    /// On-site checks (核查: verify or fail_verification) by this person, of incidents of
    /// the cohort. Only in rows of people (and their total).
    pub verifications: Option<i64>,
    /// Of those, the ones done within the check step's deadline.
    pub verifications_on_time: Option<i64>,
}

/// A KPI table: one row per group, and the area's total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KpiTable {
    pub rows: Vec<KpiRow>,
    pub total: KpiRow,
}

/// A group while a table is gathered: name, role, counters, open overdue, and
/// (verifications, on time) for people.
type Group = (String, Option<String>, Counters, i64, Option<(i64, i64)>);

impl KpiQuery {
    fn range_ms(&self) -> (i64, i64) {
        (self.from.0 * DAY_MS - SHANGHAI_OFFSET_MS, (self.to.0 + 1) * DAY_MS - SHANGHAI_OFFSET_MS)
    }
}

impl Db {
    /// Recompute the rollup from the incidents (the source of truth). Returns its rows.
    pub async fn rebuild_kpis(&self) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let n = rebuild_in(&mut tx).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Build the rollup when it is empty but incidents exist (after the upgrade that added
    /// it, or after a restore that did not carry it). Run at start-up.
    pub async fn build_missing_kpis(&self) -> Result<u64, StoreError> {
        let need = sqlx::query("SELECT CASE WHEN EXISTS (SELECT 1 FROM incidents) AND NOT EXISTS (SELECT 1 FROM kpi_daily) THEN 1 ELSE 0 END")
            .fetch_one(&self.pool)
            .await?
            .try_get::<i64, _>(0)?;
        if need == 0 {
            return Ok(0);
        }
        self.rebuild_kpis().await
    }

    /// Every rollup row, in key order (to compare the kept rollup with a rebuild).
    pub async fn kpi_rollup_rows(&self) -> Result<Vec<(i64, String, String, i64, Counters)>, StoreError> {
        let sql = format!("SELECT depth, department, area, day, {} FROM kpi_daily ORDER BY depth, department, area, day", Counters::NAMES.join(", "));
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("depth")?, r.try_get("department")?, r.try_get("area")?, r.try_get("day")?, counters_of(r)?)))
            .collect()
    }

    /// A KPI table. `department`: only incidents dispatched to it (a department
    /// handler's scope); the caller has checked that `q.area` is in scope.
    pub(crate) async fn kpi_table(&self, department: Option<&str>, q: &KpiQuery) -> Result<KpiTable, StoreError> {
        let dept_key = department.unwrap_or(ALL_DEPARTMENTS).to_string();
        let area = q.area.as_str();
        let (d0, d1) = (q.from.0, q.to.0);
        let area_name = self.area(&q.area).await?.map(|a| a.name).unwrap_or_default();
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        let mut total = Counters::default();
        let mut total_verif: Option<(i64, i64)> = None;
        let open_overdue = self.open_overdue(department, q).await?;
        let total_overdue: i64 = open_overdue.get("department").map_or(0, |m| m.values().sum());
        match q.by {
            Grouping::Street | Grouping::Community | Grouping::Grid => {
                let depth = q.by.code_len().unwrap_or(15);
                if depth <= area.len() {
                    return Err(StoreError::Invalid {
                        code: "invalid_grouping",
                        message: format!("by={} needs an area above that level, not {area}", q.by.as_str()),
                    });
                }
                let (lo, hi) = (format!("{area:0<depth$}"), format!("{area:9<depth$}"));
                let sql = format!(
                    "SELECT area AS k, {} FROM kpi_daily WHERE depth = {depth} AND department = $1 AND area >= $2 AND area <= $3 AND day >= {d0} AND day <= {d1} GROUP BY area",
                    sums_of_columns()
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&dept_key).bind(&lo).bind(&hi).fetch_all(&self.pool).await?;
                for r in &rows {
                    groups.entry(r.try_get("k")?).or_insert_with(|| (String::new(), None, Counters::default(), 0, None)).2 = counters_of(r)?;
                }
                let sql = format!(
                    "SELECT {} FROM kpi_daily WHERE depth = {} AND department = $1 AND area = $2 AND day >= {d0} AND day <= {d1}",
                    sums_of_columns(),
                    area.len()
                );
                total = counters_of(&sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&dept_key).bind(area).fetch_one(&self.pool).await?)?;
                // Every area of that level, with or without incidents, and the names.
                let level = match q.by {
                    Grouping::Street => Level::Street,
                    Grouping::Community => Level::Community,
                    _ => Level::Grid,
                };
                let names = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT code, name, level FROM areas WHERE code >= $1 AND code <= $2 AND length(code) = {depth}")))
                    .bind(&lo)
                    .bind(&hi)
                    .fetch_all(&self.pool)
                    .await?;
                for r in &names {
                    let code: String = r.try_get("code")?;
                    let lvl: String = r.try_get("level")?;
                    if lvl == level.as_str() || groups.contains_key(&code) {
                        groups.entry(code).or_insert_with(|| (String::new(), None, Counters::default(), 0, None)).0 = r.try_get("name")?;
                    }
                }
                for (k, n) in open_overdue.get("area").into_iter().flatten() {
                    groups.entry(k.clone()).or_insert_with(|| (String::new(), None, Counters::default(), 0, None)).3 += n;
                }
            }
            Grouping::Department => {
                let only = department.map(|_| " AND department = $2").unwrap_or(" AND department <> '*'");
                let sql = format!(
                    "SELECT department AS k, {} FROM kpi_daily WHERE depth = {} AND area = $1{only} AND day >= {d0} AND day <= {d1} GROUP BY department",
                    sums_of_columns(),
                    area.len()
                );
                let mut qy = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(area);
                if let Some(d) = department {
                    qy = qy.bind(d);
                }
                for r in &qy.fetch_all(&self.pool).await? {
                    let c = counters_of(r)?;
                    total.add(&c);
                    groups.entry(r.try_get("k")?).or_insert_with(|| (String::new(), None, Counters::default(), 0, None)).2 = c;
                }
                for d in self.departments().await? {
                    if department.is_none_or(|x| x == d.code) {
                        groups.entry(d.code).or_insert_with(|| (String::new(), None, Counters::default(), 0, None)).0 = d.name;
                    }
                }
                for (k, n) in open_overdue.get("department").into_iter().flatten() {
                    groups.entry(k.clone()).or_insert_with(|| (String::new(), None, Counters::default(), 0, None)).3 += n;
                }
            }
            Grouping::Person => {
                let (from_ms, to_ms) = q.range_ms();
                let only = if department.is_some() { " AND department = $2" } else { "" };
                let sql = format!(
                    "SELECT reporter_account AS k, {} FROM incidents WHERE reporter_account IS NOT NULL AND created_at >= {from_ms} AND created_at < {to_ms} \
                     AND {PLACE_SQL} LIKE $1{only} GROUP BY reporter_account",
                    sums_of_contributions()
                );
                let mut qy = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(format!("{area}%"));
                if let Some(d) = department {
                    qy = qy.bind(d);
                }
                for r in &qy.fetch_all(&self.pool).await? {
                    let k: i64 = r.try_get("k")?;
                    let c = counters_of(r)?;
                    total.add(&c);
                    let g = groups.entry(k.to_string()).or_insert_with(|| (String::new(), None, Counters::default(), 0, Some((0, 0))));
                    g.2 = c;
                }
                let only = if department.is_some() { " AND i.department = $2" } else { "" };
                let sql = format!(
                    "SELECT t.actor_id AS k, COUNT(*) AS n, CAST(SUM(CASE WHEN t.step_due_at IS NULL OR t.at <= t.step_due_at THEN 1 ELSE 0 END) AS BIGINT) AS on_time \
                     FROM incident_transitions t JOIN incidents i ON i.id = t.incident_id \
                     WHERE t.action IN ('verify', 'fail_verification') AND t.actor_id IS NOT NULL AND i.created_at >= {from_ms} AND i.created_at < {to_ms} \
                     AND COALESCE(i.grid, i.area_code) LIKE $1{only} GROUP BY t.actor_id"
                );
                let mut qy = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(format!("{area}%"));
                if let Some(d) = department {
                    qy = qy.bind(d);
                }
                let mut tv = (0, 0);
                for r in &qy.fetch_all(&self.pool).await? {
                    let k: i64 = r.try_get("k")?;
                    let (n, on): (i64, i64) = (r.try_get("n")?, r.try_get::<Option<i64>, _>("on_time")?.unwrap_or(0));
                    tv = (tv.0 + n, tv.1 + on);
                    let g = groups.entry(k.to_string()).or_insert_with(|| (String::new(), None, Counters::default(), 0, Some((0, 0))));
                    g.4 = Some((n, on));
                }
                total_verif = Some(tv);
                let ids: Vec<i64> = groups.keys().filter_map(|k| k.parse().ok()).collect();
                if !ids.is_empty() {
                    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
                    let sql = format!("SELECT id, display_name, role FROM accounts WHERE id IN ({})", list.join(", "));
                    for r in sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await? {
                        let id: i64 = r.try_get("id")?;
                        if let Some(g) = groups.get_mut(&id.to_string()) {
                            g.0 = r.try_get("display_name")?;
                            g.1 = Some(r.try_get("role")?);
                        }
                    }
                }
                for (k, n) in open_overdue.get("person").into_iter().flatten() {
                    if let Some(g) = groups.get_mut(k) {
                        g.3 += n;
                    }
                }
            }
        }
        let mut rows: Vec<KpiRow> = Vec::with_capacity(groups.len() + 1);
        let mut grouped = Counters::default();
        let mut grouped_overdue = 0;
        for (key, (name, role, c, overdue, verif)) in groups {
            grouped.add(&c);
            grouped_overdue += overdue;
            rows.push(KpiRow { key, name, role, figures: Figures::new(c, overdue), verifications: verif.map(|v| v.0), verifications_on_time: verif.map(|v| v.1) });
        }
        let total_overdue = if q.by == Grouping::Person { grouped_overdue } else { total_overdue };
        // What fits no group (not placed below the area; not dispatched): its own row.
        if q.by != Grouping::Person && rows.iter().all(|r| !r.key.is_empty()) {
            let mut rest = total;
            rest.sub(&grouped);
            if !rest.is_zero() || total_overdue > grouped_overdue {
                rows.push(KpiRow {
                    key: String::new(),
                    name: String::new(),
                    role: None,
                    figures: Figures::new(rest, total_overdue - grouped_overdue),
                    verifications: None,
                    verifications_on_time: None,
                });
            }
        }
        let total = KpiRow {
            key: area.to_string(),
            name: area_name,
            role: None,
            figures: Figures::new(total, total_overdue),
            verifications: total_verif.map(|v| v.0),
            verifications_on_time: total_verif.map(|v| v.1),
        };
        Ok(KpiTable { rows, total })
    }

    /// Incidents of the cohort whose running step is past its deadline now and that the
    /// watcher has not marked late yet, by group kind ("area", "department", "person")
    /// and key. Each incident is in "department" (under '' when not dispatched).
    async fn open_overdue(&self, department: Option<&str>, q: &KpiQuery) -> Result<BTreeMap<&'static str, BTreeMap<String, i64>>, StoreError> {
        let (from_ms, to_ms) = q.range_ms();
        let now = self.now_ms();
        let depth = q.by.code_len().unwrap_or(q.area.as_str().len());
        let only = if department.is_some() { " AND department = $2" } else { "" };
        let sql = format!(
            "SELECT substr({PLACE_SQL}, 1, {depth}) AS a, COALESCE(department, '') AS d, reporter_account AS p FROM incidents \
             WHERE late = 0 AND due_at IS NOT NULL AND due_at < {now} AND created_at + 0 >= {from_ms} AND created_at + 0 < {to_ms} AND {PLACE_SQL} LIKE $1{only}"
        );
        // `created_at + 0`: the partial index on unmarked deadlines holds a few rows; the
        // report-time index would make the planners scan the whole range instead.
        let mut qy = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(format!("{}%", q.area));
        if let Some(d) = department {
            qy = qy.bind(d);
        }
        let mut out: BTreeMap<&'static str, BTreeMap<String, i64>> = BTreeMap::new();
        for r in qy.fetch_all(&self.pool).await? {
            let a: String = r.try_get("a")?;
            let d: String = r.try_get("d")?;
            let p: Option<i64> = r.try_get("p")?;
            if a.len() == depth {
                *out.entry("area").or_default().entry(a).or_default() += 1;
            }
            *out.entry("department").or_default().entry(d).or_default() += 1;
            if let Some(p) = p {
                *out.entry("person").or_default().entry(p.to_string()).or_default() += 1;
            }
        }
        Ok(out)
    }
}

/// Recompute `kpi_daily` inside a write transaction: the finest rows from the incidents,
/// then each coarser depth from the one below, then the all-departments rows.
pub(crate) async fn rebuild_in(tx: &mut Transaction<'static, Any>) -> Result<u64, StoreError> {
    let names = Counters::NAMES.join(", ");
    let sets: Vec<String> = Counters::NAMES.iter().map(|n| format!("{n} = kpi_daily.{n} + excluded.{n}")).collect();
    let sets = sets.join(", ");
    sqlx::query("DELETE FROM kpi_daily").execute(&mut **tx).await?;
    let sql = format!(
        "INSERT INTO kpi_daily (depth, department, area, day, {names}) \
         SELECT length({PLACE_SQL}), COALESCE(department, ''), {PLACE_SQL}, (created_at + {SHANGHAI_OFFSET_MS}) / {DAY_MS}, {} \
         FROM incidents GROUP BY {PLACE_SQL}, COALESCE(department, ''), (created_at + {SHANGHAI_OFFSET_MS}) / {DAY_MS}",
        sums_of_contributions()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut **tx).await?;
    for w in DEPTHS.windows(2).rev() {
        let (depth, below) = (w[0], w[1]);
        let sql = format!(
            "INSERT INTO kpi_daily (depth, department, area, day, {names}) \
             SELECT {depth}, department, substr(area, 1, {depth}), day, {} FROM kpi_daily WHERE depth = {below} \
             GROUP BY department, substr(area, 1, {depth}), day \
             ON CONFLICT (depth, department, area, day) DO UPDATE SET {sets}",
            sums_of_columns()
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut **tx).await?;
    }
    let sql = format!(
        "INSERT INTO kpi_daily (depth, department, area, day, {names}) \
         SELECT depth, '{ALL_DEPARTMENTS}', area, day, {} FROM kpi_daily WHERE department <> '{ALL_DEPARTMENTS}' GROUP BY depth, area, day",
        sums_of_columns()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut **tx).await?;
    Ok(sqlx::query("SELECT COUNT(*) FROM kpi_daily").fetch_one(&mut **tx).await?.try_get::<i64, _>(0)? as u64)
}
