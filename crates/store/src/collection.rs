//! Door-to-door collection (全科数据采集, issue 5 point 2): each basic grid has collection
//! tasks over a period of days, and grid workers record a visit to each of the grid's
//! houses (recorded, nobody home, refused, vacant) while they add and correct the people
//! living there through the register ([`crate::register::RegisterDesk`]).
//!
//! **Progress** of a task is computed when read, never stored:
//! - houses visited: distinct houses with at least one visit under the task, against the
//!   houses the grid holds now;
//! - people recorded: persons who now lie in the grid and whose record was created or
//!   changed (`persons.updated_at`) during the task's period, Shanghai days, both ends
//!   included. It counts the register's work, whoever did it (a visit, a correction at a
//!   desk, an import), which is what a street asks of a collection round.
//!
//! Who gets a [`CollectionDesk`] follows the register: grid workers and grid leaders (their
//! grid), community and street staff (their subtree) create tasks and record visits; the
//! command centre (operators, dispatchers, shift leads) reads; other roles get none. A task
//! or house out of scope is denied (audited) and answered as not found. Every write leaves
//! a `register_history` row (the task's fields on creation and closing; a `visit` row on the
//! house), one audit row and a change-log entry, in one transaction.

use domain::calendar::Day;
use domain::{AreaCode, Role};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::audit::{self, Actor};
use crate::changes::{self, Op};
use crate::db::Db;
use crate::register::{Fail, History, invalid};
use crate::scoped::Scoped;
use crate::StoreError;

type Tx = Transaction<'static, Any>;

/// What came of a visit (入户结果).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// 已采集: the household was seen and its people recorded or checked.
    Recorded,
    /// 无人在家
    NobodyHome,
    /// 拒绝采集
    Refused,
    /// 空置房
    Vacant,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [Outcome::Recorded, Outcome::NobodyHome, Outcome::Refused, Outcome::Vacant];
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Recorded => "recorded",
            Outcome::NobodyHome => "nobody_home",
            Outcome::Refused => "refused",
            Outcome::Vacant => "vacant",
        }
    }
    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// A new task for one basic grid.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub grid: AreaCode,
    pub title: String,
    /// First and last day (Shanghai), both included.
    pub start: Day,
    pub end: Day,
}

/// A task with its progress, as of the read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskProgress {
    pub id: i64,
    /// The grid.
    pub area: String,
    pub title: String,
    pub period_start: Day,
    pub period_end: Day,
    pub created_by: String,
    /// `open` or `closed`.
    pub state: String,
    pub version: i64,
    pub created_at: i64,
    /// Houses in the grid now.
    pub houses_total: i64,
    /// Distinct houses visited under this task.
    pub houses_visited: i64,
    /// Visits made (a house may be visited again after nobody was home).
    pub visits: i64,
    /// Persons in the grid created or changed during the period.
    pub people_recorded: i64,
}

impl TaskProgress {
    /// Houses visited, in whole percent of the grid's houses (0 for a grid without houses).
    pub fn percent(&self) -> i64 {
        if self.houses_total <= 0 { 0 } else { (self.houses_visited * 100 / self.houses_total).min(100) }
    }
    pub fn is_open(&self) -> bool {
        self.state == "open"
    }
}

/// One visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VisitView {
    pub id: i64,
    pub task_id: i64,
    pub house_id: i64,
    pub visited_at: i64,
    pub actor_name: String,
    pub outcome: Outcome,
    pub note: Option<String>,
}

/// The longest list of tasks one read returns.
pub const MAX_TASKS: i64 = 2000;

const TASK_COLUMNS: &str = "id, area_code, title, period_start, period_end, created_by, state, version, created_at";
const VISIT_COLUMNS: &str = "id, task_id, house_id, visited_at, actor_name, outcome, note";
/// Milliseconds from a day number to its Shanghai midnight: `day * 86400000 - 28800000`.
const DAY_MS: i64 = 86_400_000;
const SHANGHAI_MS: i64 = 8 * 3_600_000;

fn task_row(r: &AnyRow) -> Result<TaskProgress, StoreError> {
    Ok(TaskProgress {
        id: r.try_get("id")?,
        area: r.try_get("area_code")?,
        title: r.try_get("title")?,
        period_start: Day(r.try_get("period_start")?),
        period_end: Day(r.try_get("period_end")?),
        created_by: r.try_get("created_by")?,
        state: r.try_get("state")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        houses_total: 0,
        houses_visited: 0,
        visits: 0,
        people_recorded: 0,
    })
}

fn visit_row(r: &AnyRow) -> Result<VisitView, StoreError> {
    let outcome: String = r.try_get("outcome")?;
    Ok(VisitView {
        id: r.try_get("id")?,
        task_id: r.try_get("task_id")?,
        house_id: r.try_get("house_id")?,
        visited_at: r.try_get("visited_at")?,
        actor_name: r.try_get("actor_name")?,
        outcome: Outcome::parse(&outcome).ok_or_else(|| StoreError::Corrupt("collection_visits.outcome".into()))?,
        note: r.try_get("note")?,
    })
}



/// Collection tasks and visits within the caller's area subtree.
pub struct CollectionDesk<'s> {
    s: &'s Scoped<'s>,
    writes: bool,
}

impl<'a> Scoped<'a> {
    /// The collection desk: the same roles as the register's desk, with the same rights.
    pub fn collection(&self) -> Option<CollectionDesk<'_>> {
        let writes = crate::register::register_writes(self.who.role);
        let reads = writes || matches!(self.who.role, Role::Operator | Role::Dispatcher | Role::ShiftLead);
        reads.then_some(CollectionDesk { s: self, writes })
    }
}

impl CollectionDesk<'_> {
    /// Whether this caller may create tasks and record visits.
    pub fn may_write(&self) -> bool {
        self.writes
    }

    fn db(&self) -> &Db {
        self.s.db
    }

    fn in_scope(&self, area: &str) -> bool {
        AreaCode::parse(area).is_ok_and(|c| self.s.in_scope(&c))
    }

    async fn begin(&self, action: &str, entity: &str, id: &str) -> Result<Tx, StoreError> {
        crate::register::begin_write(self.s, self.writes, action, entity, id).await
    }

    async fn finish<T>(&self, tx: Tx, action: &str, r: Result<T, Fail>) -> Result<T, StoreError> {
        crate::register::finish_write(self.s, tx, action, r).await
    }

    async fn done(&self, tx: &mut Tx, action: &str, task: i64, detail: &str) -> Result<(), StoreError> {
        audit::append(self.s.db, tx, self.s.actor.entry(action, "collection_task", &task.to_string(), "ok", detail)).await?;
        changes::append(self.s.db, tx, "collection_task", &task.to_string(), Op::Upsert).await
    }

    async fn task_in(&self, tx: &mut Tx, id: i64) -> Result<TaskProgress, Fail> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {TASK_COLUMNS} FROM collection_tasks WHERE id = $1"))).bind(id).fetch_optional(&mut **tx).await?;
        match row.map(|r| task_row(&r)).transpose()? {
            Some(t) if self.in_scope(&t.area) => Ok(t),
            _ => Err(Fail::Deny("collection_task", id.to_string())),
        }
    }

    /// Create an open task for a basic grid in scope.
    pub async fn create_task(&self, t: NewTask) -> Result<TaskProgress, StoreError> {
        let mut tx = self.begin("collection.create", "collection_task", "").await?;
        let r = async {
            let title = t.title.trim();
            if title.is_empty() {
                return Err(invalid("field_required", "title is required"));
            }
            if title.chars().count() > 100 {
                return Err(invalid("field_too_long", "title has more than 100 characters"));
            }
            if t.end < t.start || t.end.0 - t.start.0 > 366 {
                return Err(invalid("invalid_period", "a task's period ends on or after its start, within a year"));
            }
            let level: Option<String> = sqlx::query("SELECT level FROM areas WHERE code = $1")
                .bind(t.grid.as_str())
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
            match level.as_deref() {
                None => return Err(invalid("unknown_area", format!("area {} does not exist", t.grid))),
                Some("grid") => {}
                Some(_) => return Err(invalid("not_a_grid", format!("area {} is not a basic grid", t.grid))),
            }
            if !self.s.in_scope(&t.grid) {
                return Err(invalid("area_out_of_scope", format!("area {} is outside your area {}", t.grid, self.s.who.area)));
            }
            let now = self.db().now_ms();
            let id: i64 = sqlx::query(
                "INSERT INTO collection_tasks (area_code, title, period_start, period_end, created_by_id, created_by, state, created_at, updated_at, version) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $7, 1) RETURNING id",
            )
            .bind(t.grid.as_str())
            .bind(title)
            .bind(t.start.0)
            .bind(t.end.0)
            .bind(self.s.actor.id)
            .bind(&self.s.actor.name)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            let act = "collection.create";
            let h = History::new(self.db(), &self.s.actor, act);
            h.row(&mut tx, "collection_task", id, "area_code", None, Some(t.grid.as_str())).await?;
            h.row(&mut tx, "collection_task", id, "title", None, Some(title)).await?;
            h.row(&mut tx, "collection_task", id, "period", None, Some(&format!("{} – {}", t.start, t.end))).await?;
            self.done(&mut tx, act, id, t.grid.as_str()).await?;
            self.task_in(&mut tx, id).await
        }
        .await;
        let task = self.finish(tx, "collection.create", r).await?;
        self.with_progress(vec![task]).await.map(|mut v| v.remove(0))
    }

    /// Close an open task at the version read (no more visits are recorded under it).
    pub async fn close_task(&self, id: i64, version: i64) -> Result<TaskProgress, StoreError> {
        let mut tx = self.begin("collection.close", "collection_task", &id.to_string()).await?;
        let r = async {
            let cur = self.task_in(&mut tx, id).await?;
            if cur.version != version {
                return Err(Fail::Store(StoreError::Conflict { code: "stale_version", message: format!("task {id} changed since it was read (now version {})", cur.version) }));
            }
            if !cur.is_open() {
                return Err(Fail::Store(StoreError::Conflict { code: "task_closed", message: format!("task {id} is already closed") }));
            }
            sqlx::query("UPDATE collection_tasks SET state = 'closed', updated_at = $1, version = version + 1 WHERE id = $2").bind(self.db().now_ms()).bind(id).execute(&mut *tx).await?;
            let h = History::new(self.db(), &self.s.actor, "collection.close");
            h.row(&mut tx, "collection_task", id, "state", Some("open"), Some("closed")).await?;
            self.done(&mut tx, "collection.close", id, "").await?;
            self.task_in(&mut tx, id).await
        }
        .await;
        let task = self.finish(tx, "collection.close", r).await?;
        self.with_progress(vec![task]).await.map(|mut v| v.remove(0))
    }

    /// Record a visit to a house of the task's grid while the task is open. The house's
    /// history gets a `visit` row with the outcome.
    pub async fn record_visit(&self, task: i64, house: i64, outcome: Outcome, note: &str) -> Result<VisitView, StoreError> {
        let mut tx = self.begin("collection.visit", "collection_task", &task.to_string()).await?;
        let r = async {
            let t = self.task_in(&mut tx, task).await?;
            let area: Option<String> =
                sqlx::query("SELECT area_code FROM houses WHERE id = $1").bind(house).fetch_optional(&mut *tx).await?.map(|r| r.try_get(0)).transpose()?;
            let Some(area) = area.filter(|a| self.in_scope(a)) else { return Err(Fail::Deny("house", house.to_string())) };
            if area != t.area {
                return Err(invalid("house_in_other_grid", format!("house {house} lies in grid {area}, not in the task's grid {}", t.area)));
            }
            if !t.is_open() {
                return Err(Fail::Store(StoreError::Conflict { code: "task_closed", message: format!("task {task} is closed") }));
            }
            let note = Some(note.trim()).filter(|n| !n.is_empty());
            if note.is_some_and(|n| n.chars().count() > 200) {
                return Err(invalid("field_too_long", "note has more than 200 characters"));
            }
            let id: i64 = sqlx::query(
                "INSERT INTO collection_visits (task_id, house_id, visited_at, actor_id, actor_name, outcome, note) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(task)
            .bind(house)
            .bind(self.db().now_ms())
            .bind(self.s.actor.id)
            .bind(&self.s.actor.name)
            .bind(outcome.as_str())
            .bind(note)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            let shown = match note {
                Some(n) => format!("{} ({n})", outcome.as_str()),
                None => outcome.as_str().to_string(),
            };
            let h = History::new(self.db(), &self.s.actor, "collection.visit");
            h.row(&mut tx, "house", house, "visit", None, Some(&shown)).await?;
            self.done(&mut tx, "collection.visit", task, &format!("house {house}: {}", outcome.as_str())).await?;
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {VISIT_COLUMNS} FROM collection_visits WHERE id = $1"))).bind(id).fetch_one(&mut *tx).await?;
            Ok(visit_row(&row)?)
        }
        .await;
        self.finish(tx, "collection.visit", r).await
    }

    /// One task in scope, with its progress.
    pub async fn task(&self, id: i64) -> Result<TaskProgress, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {TASK_COLUMNS} FROM collection_tasks WHERE id = $1"))).bind(id).fetch_optional(&self.db().pool).await?;
        match row.map(|r| task_row(&r)).transpose()? {
            Some(t) if self.in_scope(&t.area) => self.with_progress(vec![t]).await.map(|mut v| v.remove(0)),
            _ => Err(self.s.deny("collection.read", "collection_task", &id.to_string()).await),
        }
    }

    /// Tasks in scope (narrowed to `area`'s subtree, itself in scope), newest first, each
    /// with its progress; only open ones when asked. At most [`MAX_TASKS`].
    pub async fn tasks(&self, area: Option<&AreaCode>, open_only: bool) -> Result<Vec<TaskProgress>, StoreError> {
        let root = match area {
            Some(a) if self.s.in_scope(a) => a.clone(),
            Some(a) => return Err(self.s.deny("collection.list", "area", a.as_str()).await),
            None => self.s.who.area.clone(),
        };
        let (lo, hi) = range_of(&root);
        let state = if open_only { " AND state = 'open'" } else { "" };
        let sql = format!("SELECT {TASK_COLUMNS} FROM collection_tasks WHERE area_code >= $1 AND area_code < $2{state} ORDER BY id DESC LIMIT {MAX_TASKS}");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&lo).bind(&hi).fetch_all(&self.db().pool).await?;
        let tasks = rows.iter().map(task_row).collect::<Result<Vec<_>, _>>()?;
        self.with_progress(tasks).await
    }

    /// Fill in the progress of tasks with three grouped reads over the range of areas they
    /// cover: houses per grid, visits per task, persons changed per task.
    async fn with_progress(&self, mut tasks: Vec<TaskProgress>) -> Result<Vec<TaskProgress>, StoreError> {
        if tasks.is_empty() {
            return Ok(tasks);
        }
        let lo = tasks.iter().map(|t| t.area.clone()).min().unwrap_or_default();
        let hi_area = tasks.iter().map(|t| t.area.clone()).max().unwrap_or_default();
        let hi = crate::incidents::successor(&hi_area).unwrap_or_else(|| format!("{hi_area}~"));
        let (min_id, max_id) = (tasks.iter().map(|t| t.id).min().unwrap_or(0), tasks.iter().map(|t| t.id).max().unwrap_or(0));
        let pool = &self.db().pool;
        let houses: std::collections::HashMap<String, i64> =
            sqlx::query("SELECT area_code, COUNT(*) AS n FROM houses WHERE area_code >= $1 AND area_code < $2 GROUP BY area_code")
                .bind(&lo)
                .bind(&hi)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get::<String, _>("area_code")?, r.try_get::<i64, _>("n")?)))
                .collect::<Result<_, StoreError>>()?;
        let visited: std::collections::HashMap<i64, (i64, i64)> = sqlx::query(
            "SELECT task_id, COUNT(DISTINCT house_id) AS houses, COUNT(*) AS visits FROM collection_visits WHERE task_id >= $1 AND task_id <= $2 GROUP BY task_id",
        )
        .bind(min_id)
        .bind(max_id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get::<i64, _>("task_id")?, (r.try_get::<i64, _>("houses")?, r.try_get::<i64, _>("visits")?))))
        .collect::<Result<_, StoreError>>()?;
        let people: std::collections::HashMap<i64, i64> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t.id, COUNT(p.id) AS n FROM collection_tasks t JOIN persons p ON p.area_code = t.area_code \
             AND p.updated_at >= t.period_start * {DAY_MS} - {SHANGHAI_MS} AND p.updated_at < (t.period_end + 1) * {DAY_MS} - {SHANGHAI_MS} \
             WHERE t.id >= $1 AND t.id <= $2 AND t.area_code >= $3 AND t.area_code < $4 GROUP BY t.id"
        )))
        .bind(min_id)
        .bind(max_id)
        .bind(&lo)
        .bind(&hi)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get::<i64, _>("id")?, r.try_get::<i64, _>("n")?)))
        .collect::<Result<_, StoreError>>()?;
        for t in &mut tasks {
            t.houses_total = houses.get(&t.area).copied().unwrap_or(0);
            (t.houses_visited, t.visits) = visited.get(&t.id).copied().unwrap_or((0, 0));
            t.people_recorded = people.get(&t.id).copied().unwrap_or(0);
        }
        Ok(tasks)
    }

    /// The latest visit to each house under a task, by house id.
    pub async fn last_visits(&self, task: i64) -> Result<std::collections::HashMap<i64, VisitView>, StoreError> {
        self.task(task).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {VISIT_COLUMNS} FROM collection_visits WHERE task_id = $1 ORDER BY id"))).bind(task).fetch_all(&self.db().pool).await?;
        let mut out = std::collections::HashMap::new();
        for r in &rows {
            let v = visit_row(r)?;
            out.insert(v.house_id, v);
        }
        Ok(out)
    }

    /// The visits to a house in scope, newest first.
    pub async fn house_visits(&self, house: i64) -> Result<Vec<VisitView>, StoreError> {
        let area: Option<String> = sqlx::query("SELECT area_code FROM houses WHERE id = $1").bind(house).fetch_optional(&self.db().pool).await?.map(|r| r.try_get(0)).transpose()?;
        if !area.is_some_and(|a| self.in_scope(&a)) {
            return Err(self.s.deny("collection.read", "house", &house.to_string()).await);
        }
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {VISIT_COLUMNS} FROM collection_visits WHERE house_id = $1 ORDER BY id DESC LIMIT 100")))
            .bind(house)
            .fetch_all(&self.db().pool)
            .await?;
        rows.iter().map(visit_row).collect()
    }
}

/// The code range `[lo, hi)` of an area's subtree.
fn range_of(root: &AreaCode) -> (String, String) {
    let lo = root.to_string();
    let hi = crate::incidents::successor(&lo).unwrap_or_else(|| format!("{lo}~"));
    (lo, hi)
}

/// What [`seed_demo`] made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub tasks: i64,
    pub visits: i64,
    pub houses_made: i64,
    pub people_made: i64,
}

impl std::fmt::Display for SeedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "door-to-door collection: {} open tasks (one per basic grid), {} visits recorded; {} houses and {} people added in the grid worker's grid",
            self.tasks, self.visits, self.houses_made, self.people_made
        )
    }
}

/// The bulk part of [`seed_demo`]: an open task this month for every basic grid, and a
/// visit to every third house of each grid. Returns (tasks, visits).
pub async fn seed_round(db: &Db) -> Result<(i64, i64), StoreError> {
    let today = Day::of_instant(db.now_ms());
    let (y, m, _) = today.ymd();
    let start = Day::from_ymd(y, m, 1).unwrap_or(today);
    let end = Day(start.0 + 60);
    let mut tx = db.write_tx().await?;
    let now = db.now_ms();
    let title = format!("{y}年{m}月入户采集");
    let tasks = sqlx::query(
        "INSERT INTO collection_tasks (area_code, title, period_start, period_end, created_by_id, created_by, state, created_at, updated_at, version) \
         SELECT code, $1, $2, $3, NULL, 'demo', 'open', $4, $4, 1 FROM areas WHERE level = 'grid' ORDER BY code",
    )
    .bind(&title)
    .bind(start.0)
    .bind(end.0)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected() as i64;
    // Every third house, an outcome picked from its id; a few hours before now.
    let visits = sqlx::query(
        "INSERT INTO collection_visits (task_id, house_id, visited_at, actor_id, actor_name, outcome, note) \
         SELECT t.id, h.id, $1 - (h.id % 48) * 3600000, NULL, 'demo', \
                CASE h.id % 9 WHEN 0 THEN 'nobody_home' WHEN 3 THEN 'vacant' WHEN 6 THEN 'refused' ELSE 'recorded' END, NULL \
         FROM houses h JOIN collection_tasks t ON t.area_code = h.area_code AND t.created_at = $1 AND t.title = $2 WHERE h.id % 3 = 1",
    )
    .bind(now)
    .bind(&title)
    .execute(&mut *tx)
    .await?
    .rows_affected() as i64;
    audit::append(db, &mut tx, Actor::cli("demo").entry("collection.seed", "collection_task", "*", "ok", &format!("{tasks} tasks, {visits} visits"))).await?;
    tx.commit().await?;
    Ok((tasks, visits))
}

/// The demo's collection round: an open task for every basic grid (this month), and a visit
/// to about a third of each grid's houses, whatever houses the store holds (none
/// included). Then a few houses and people in the grid of the demo account `worker`, made
/// through the register desk as that account, so its `/m/register` has work: houses to
/// visit, and one already recorded. The bulk part is two `INSERT … SELECT` statements in
/// one transaction, with one audit row (like the demo's incident history); the worker's
/// part writes its history like any form.
pub async fn seed_demo(db: &Db, worker: &str) -> Result<SeedReport, StoreError> {
    use crate::register::{HouseInput, HouseUse, NewPerson};
    let account = db.account_by_username(worker).await?.ok_or_else(|| StoreError::NotFound(format!("account {worker}")))?;
    let p = domain::Principal {
        account_id: account.id,
        username: account.username.clone(),
        display_name: account.display_name.clone(),
        role: account.role,
        area: account.area.clone(),
        department: None,
        credential: domain::access::Credential::Session("demo".into()),
        must_change_password: false,
    };
    let (tasks, visits) = seed_round(db).await?;
    let mut report = SeedReport { tasks, visits, ..SeedReport::default() };

    // The demo worker's own grid: a few houses and people made through the register.
    let s = db.scoped(&p, Actor::of(&p, "demo", "local"));
    let (Some(desk), Some(collect)) = (s.register(), s.collection()) else { return Ok(report) };
    let street = ["解放路", "红旗路", "人民路"];
    let names = [("张伟", "19780312", 1u32), ("李娜", "19820705", 2), ("王芳", "19550918", 4), ("刘洋", "20010122", 5)];
    let mut houses = Vec::new();
    for (i, road) in street.iter().enumerate() {
        let h = desk
            .create_house(HouseInput {
                address: format!("{road} {} 号 {} 栋 {} 单元 {}0{} 室", 10 + i, i + 1, 1, i + 2, i + 1),
                area: p.area.clone(),
                point: None,
                area_m2: Some(80.0 + 10.0 * i as f64),
                house_use: HouseUse::Residential,
            })
            .await;
        match h {
            Ok(h) => houses.push(h),
            // The worker's area is not a basic grid in this store: nothing more to show.
            Err(StoreError::Invalid { .. }) => return Ok(report),
            Err(e) => return Err(e),
        }
    }
    report.houses_made = houses.len() as i64;
    for (i, (name, ymd, seq)) in names.iter().enumerate() {
        let body = format!("430503{ymd}{:03}", 100 + seq);
        let Some(check) = domain::register::citizen_id::id_check_character(&body) else { continue };
        let Ok(id) = domain::register::CitizenId::from_stored(&format!("{body}{check}")) else { continue };
        let phone = domain::Phone::parse(&format!("1390739{:04}", 1000 + i)).ok();
        let house = houses[i.min(houses.len() - 1) / 2].id;
        match desk.create_person(NewPerson { citizen_id: id, name: (*name).into(), phone, ethnicity: Some("汉族".into()), house_id: Some(house), area: None, population_type: Default::default(), tags: Vec::new() }).await {
            Ok(_) => report.people_made += 1,
            // Already stored (a second seed of the same store): leave it.
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(task) = collect.tasks(Some(&p.area), true).await?.first() {
        collect.record_visit(task.id, houses[0].id, Outcome::Recorded, "户主在家，信息已核对").await?;
        report.visits += 1;
    }
    Ok(report)
}
