//! Incidents: the closed loop stored. Every change goes through the domain's state machine
//! (`domain::incident::apply`); the store writes the transition and the new state in one
//! transaction, guarded by the incident's version, so two dispatchers cannot both win.

use domain::access::mask_phone;
use domain::calendar::{StepClock, Warning};
use domain::incident::{self, Action, Loop, State, TransitionError};
use domain::{AreaCode, Level, Phone, Principal, Role};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::StoreError;
use crate::audit::Actor;
use crate::auth::random_secret;
use crate::db::Db;

/// Where a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// 网格员巡查
    GridPatrol,
    /// 居民 (web form, Open311)
    Resident,
    /// 12345 hotline, entered by an operator
    Hotline,
    /// 视频巡查, entered by a camera operator
    Camera,
    /// 领导交办
    Leader,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::GridPatrol => "grid_patrol",
            Source::Resident => "resident",
            Source::Hotline => "hotline",
            Source::Camera => "camera",
            Source::Leader => "leader",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        [Source::GridPatrol, Source::Resident, Source::Hotline, Source::Camera, Source::Leader].into_iter().find(|x| x.as_str() == s)
    }
}

/// A new report.
#[derive(Debug, Clone)]
pub struct NewIncident {
    pub category: String,
    pub description: String,
    /// (lat, lon), WGS-84.
    pub point: Option<(f64, f64)>,
    pub address: Option<String>,
    pub source: Source,
    /// The basic grid the point falls in (from the grid index).
    pub grid: Option<AreaCode>,
    pub reporter_phone: Option<Phone>,
}

/// An incident as staff see it (the reporter's phone masked).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub id: i64,
    pub receipt: String,
    pub category: String,
    pub description: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub address: Option<String>,
    pub grid: Option<AreaCode>,
    pub area: AreaCode,
    pub source: String,
    pub department: Option<String>,
    pub assignee_area: Option<AreaCode>,
    pub loop_: Loop,
    pub rating: Option<i64>,
    /// The incident this duplicate was merged into.
    pub merged_into: Option<i64>,
    pub reporter_phone_masked: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub step_started_at: i64,
    /// The running step's time limit (None: no step runs, or the category has no limits).
    pub clock: Option<StepClock>,
    /// Working time granted to the running step by approved extensions (延期).
    pub extension_ms: i64,
    /// Working time asked for by a pending extension request.
    pub extension_requested_ms: i64,
    /// Some step ran past its limit.
    pub late: bool,
    pub closed_at: Option<i64>,
}

/// One step of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub actor_kind: String,
    pub actor_name: String,
    pub note: String,
    pub at: i64,
}

/// What a transition carries besides its action.
#[derive(Debug, Clone, Default)]
pub struct TransitionInput {
    /// Dispatch to a department …
    pub department: Option<String>,
    /// … or to a grid.
    pub grid: Option<AreaCode>,
    /// The reason, result or note.
    pub note: String,
    /// Evaluation, 1–5.
    pub rating: Option<u8>,
    /// merge: the incident that survives.
    pub into: Option<i64>,
    /// request_extension: how much more working time, in working hours.
    pub extension_hours: Option<u32>,
}

/// The longest description a report may carry, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 4000;

/// The longest extension one request may ask for: 60 working days of 6.5 h.
pub const MAX_EXTENSION_HOURS: u32 = 390;

/// Why a transition did not happen.
#[derive(Debug)]
pub enum TransitionFailure {
    /// The state machine refused it (it names the allowed actions).
    Refused(TransitionError),
    /// The incident changed since the caller read it.
    Stale { current: i64 },
    Store(StoreError),
}

impl From<StoreError> for TransitionFailure {
    fn from(e: StoreError) -> Self {
        TransitionFailure::Store(e)
    }
}

impl From<sqlx::Error> for TransitionFailure {
    fn from(e: sqlx::Error) -> Self {
        TransitionFailure::Store(e.into())
    }
}

pub(crate) const COLUMNS: &str = "id, receipt, category, description, lat, lon, address, grid, area_code, level, source, state, department, \
    assignee_area, supervised, reopened, extension_pending, on_spot_allowed, returns, reworks, rating, merged_into, reporter_phone, version, \
    created_at, updated_at, step_started_at, warn_at, due_at, extension_ms, extension_requested_ms, late, closed_at";

fn code(v: Option<String>, col: &str) -> Result<Option<AreaCode>, StoreError> {
    v.map(|c| AreaCode::parse(&c).map_err(|e| StoreError::Corrupt(format!("incidents.{col}: {e}")))).transpose()
}

pub(crate) fn incident(r: &AnyRow) -> Result<Incident, StoreError> {
    let corrupt = |col: &str, e: String| StoreError::Corrupt(format!("incidents.{col}: {e}"));
    let state: String = r.try_get("state")?;
    let level: String = r.try_get("level")?;
    let flag = |c: &str| -> Result<bool, StoreError> { Ok(r.try_get::<i64, _>(c)? != 0) };
    let phone: Option<String> = r.try_get("reporter_phone")?;
    Ok(Incident {
        id: r.try_get("id")?,
        receipt: r.try_get("receipt")?,
        category: r.try_get("category")?,
        description: r.try_get("description")?,
        lat: r.try_get("lat")?,
        lon: r.try_get("lon")?,
        address: r.try_get("address")?,
        grid: code(r.try_get("grid")?, "grid")?,
        area: code(Some(r.try_get("area_code")?), "area_code")?.ok_or_else(|| corrupt("area_code", "missing".into()))?,
        source: r.try_get("source")?,
        department: r.try_get("department")?,
        assignee_area: code(r.try_get("assignee_area")?, "assignee_area")?,
        loop_: Loop {
            state: state.parse().map_err(|e| corrupt("state", e))?,
            level: level.parse().map_err(|e: domain::DomainError| corrupt("level", e.to_string()))?,
            extension_pending: flag("extension_pending")?,
            supervised: flag("supervised")?,
            reopened: flag("reopened")?,
            on_spot_allowed: flag("on_spot_allowed")?,
            returns: r.try_get::<i64, _>("returns")? as u32,
            reworks: r.try_get::<i64, _>("reworks")? as u32,
        },
        rating: r.try_get("rating")?,
        merged_into: r.try_get("merged_into")?,
        reporter_phone_masked: phone.as_deref().map(mask_phone),
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        step_started_at: r.try_get("step_started_at")?,
        clock: match (r.try_get::<Option<i64>, _>("warn_at")?, r.try_get::<Option<i64>, _>("due_at")?) {
            (Some(warn_at), Some(due_at)) => Some(StepClock { warn_at, due_at }),
            _ => None,
        },
        extension_ms: r.try_get("extension_ms")?,
        extension_requested_ms: r.try_get("extension_requested_ms")?,
        late: flag("late")?,
        closed_at: r.try_get("closed_at")?,
    })
}

/// A receipt code a resident can read out on the phone: the date and six characters with
/// no look-alikes (no 0/O, 1/I/L).
pub(crate) fn new_receipt(now: i64) -> Result<String, StoreError> {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    let secret = random_secret()?;
    let tail: String = secret
        .as_bytes()
        .chunks(2)
        .take(6)
        .map(|p| {
            let v = u8::from_str_radix(std::str::from_utf8(p).unwrap_or("00"), 16).unwrap_or(0);
            ALPHABET[usize::from(v) % ALPHABET.len()] as char
        })
        .collect();
    let day = domain::calendar::Day::of_instant(now).to_string().replace('-', "");
    Ok(format!("{day}-{tail}"))
}

/// A filter for lists of incidents.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub state: Option<State>,
    pub category: Option<String>,
    /// Only those owned by (or dispatched to) this area's subtree, within the scope.
    pub area: Option<AreaCode>,
    /// Only those dispatched to this department.
    pub department: Option<String>,
    pub source: Option<Source>,
    /// Only running steps of this colour at `now`.
    pub warning: Option<(Warning, i64)>,
    /// Only ids below this one (the next page of a newest-first list).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Incidents by state and by warning colour (see [`crate::scoped::IncidentDesk::counts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IncidentCounts {
    /// Each state of the queue ([`QUEUE_STATES`]) that has incidents, in the loop's order.
    pub by_state: Vec<(State, i64)>,
    pub green: i64,
    pub yellow: i64,
    pub red: i64,
}

/// Incidents owned by, placed in, or dispatched to an area in `a`'s subtree. An incident
/// escalated up (小事不出网格，大事不出街道) stays visible where it happened, so the grid's
/// workers still verify it on site. A community or a grid holds a small share of the
/// incidents: a code range on `grid` (an incident owned below the community level is
/// owned by its own grid) and on `assignee_area`, which the (grid, id) and
/// (assignee_area, id) indexes serve. A street or the district holds a large share: a
/// prefix match the planner cannot turn into an index range, so it walks the newest
/// incidents (or a state's, a colour's) and keeps the matching ones, which comes sooner
/// than sorting the whole subtree by id.
fn area_clause(a: &AreaCode, clauses: &mut Vec<String>, texts: &mut Vec<String>) {
    if a.as_str().len() < Level::Community.code_len() {
        texts.push(format!("{a}%"));
        clauses.push(format!("(area_code LIKE ${n} OR grid LIKE ${n} OR assignee_area LIKE ${n})", n = texts.len()));
        return;
    }
    // Codes are digits: everything under "430503001001" lies in ["430503001001", "430503001002").
    texts.push(a.to_string());
    let lo = texts.len();
    match successor(a.as_str()) {
        Some(hi) => {
            texts.push(hi);
            let hi = texts.len();
            clauses.push(format!("((grid >= ${lo} AND grid < ${hi}) OR (assignee_area >= ${lo} AND assignee_area < ${hi}))"));
        }
        None => clauses.push(format!("(grid >= ${lo} OR assignee_area >= ${lo})")),
    }
}

/// The next string of digits of the same length ("0419" → "0420"); None after all nines.
pub(crate) fn successor(digits: &str) -> Option<String> {
    let mut b = digits.as_bytes().to_vec();
    for i in (0..b.len()).rev() {
        if b[i] == b'9' {
            b[i] = b'0';
        } else {
            b[i] += 1;
            return String::from_utf8(b).ok();
        }
    }
    None
}

/// States of the queue: what still needs someone (shelved items too). The board counts
/// these; finished ones (closed, evaluated, rejected, merged, void) are listed, not counted,
/// so the counts stay cheap however many incidents a year closes.
pub const QUEUE_STATES: [State; 7] =
    [State::Reported, State::Filed, State::Dispatched, State::InProgress, State::Handled, State::Verified, State::Shelved];

/// The WHERE clauses of a scoped, filtered list, and the texts they bind ($1, $2 …).
fn where_of(scope: &IncidentScope, f: &IncidentFilter) -> (Vec<String>, Vec<String>) {
    let mut clauses = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    match scope {
        IncidentScope::Area(a) => area_clause(a, &mut clauses, &mut texts),
        IncidentScope::Department(d) => {
            texts.push(d.clone());
            clauses.push(format!("department = ${}", texts.len()));
        }
        IncidentScope::All => clauses.push("1 = 1".into()),
    }
    if let Some(s) = f.state {
        texts.push(s.as_str().into());
        clauses.push(format!("state = ${}", texts.len()));
    }
    if let Some(c) = &f.category {
        texts.push(c.clone());
        clauses.push(format!("category = ${}", texts.len()));
    }
    if let Some(a) = &f.area {
        area_clause(a, &mut clauses, &mut texts);
    }
    if let Some(d) = &f.department {
        texts.push(d.clone());
        clauses.push(format!("department = ${}", texts.len()));
    }
    if let Some(src) = f.source {
        texts.push(src.as_str().into());
        clauses.push(format!("source = ${}", texts.len()));
    }
    if let Some((w, now)) = f.warning {
        // Integers are formatted, not bound: texts are the only binds here.
        clauses.push(match w {
            Warning::Green => format!("due_at IS NOT NULL AND warn_at > {now}"),
            Warning::Yellow => format!("due_at IS NOT NULL AND warn_at <= {now} AND due_at >= {now}"),
            Warning::Red => format!("due_at IS NOT NULL AND due_at < {now}"),
        });
    }
    if let Some(b) = f.before_id {
        clauses.push(format!("id < {b}"));
    }
    (clauses, texts)
}

impl Db {
    /// Store a new report. With an idempotency key, a retry returns the first incident
    /// (and `false`). It returns once the report is committed (see `intake.rs`: reports
    /// arriving together share one commit).
    pub async fn create_incident(
        &self,
        actor: &Actor,
        reporter_account: Option<i64>,
        new: NewIncident,
        idempotency_key: Option<&str>,
    ) -> Result<(Incident, bool), StoreError> {
        if new.description.trim().is_empty() {
            return Err(StoreError::Invalid { code: "invalid_description", message: "the description is empty".into() });
        }
        let chars = new.description.trim().chars().count();
        if chars > MAX_DESCRIPTION_CHARS {
            return Err(StoreError::Invalid {
                code: "description_too_long",
                message: format!("the description has {chars} characters; at most {MAX_DESCRIPTION_CHARS} are kept"),
            });
        }
        if new.point.is_none() && new.address.as_deref().is_none_or(|a| a.trim().is_empty()) {
            return Err(StoreError::Invalid { code: "location_required", message: "a report needs a location or an address".into() });
        }
        if !self.timing().await?.on_spot.contains_key(&new.category) {
            return Err(StoreError::Invalid {
                code: "unknown_category",
                message: format!("{:?} is not a second-level category (see GET /api/v1/categories)", new.category),
            });
        }
        let report = crate::intake::Report { actor: actor.clone(), reporter_account, new, key: idempotency_key.map(str::to_string) };
        self.intake.submit(self, report).await
    }

    pub async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(incident).transpose()
    }

    /// The resident's view goes through the receipt, never the id. A receipt of a merged
    /// duplicate leads to the incident it was merged into (its reporter follows that one).
    pub async fn incident_by_receipt(&self, receipt: &str) -> Result<Option<Incident>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE receipt = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(receipt.trim().to_uppercase()).fetch_optional(&self.pool).await?;
        let mut found = row.as_ref().map(incident).transpose()?;
        // Follow merges (a short chain; bounded in case of a cycle in bad data).
        for _ in 0..8 {
            match found.as_ref().and_then(|i| i.merged_into) {
                Some(next) => found = self.incident(next).await?,
                None => break,
            }
        }
        Ok(found)
    }

    /// Ids of the incidents merged into this one.
    pub async fn duplicates_of(&self, id: i64) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query("SELECT id FROM incidents WHERE merged_into = $1 ORDER BY id").bind(id).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get::<i64, _>(0)?)).collect()
    }

    /// Open incidents of the same category within `metres` and `hours` of this one: the
    /// duplicates to suggest when filing.
    pub(crate) async fn nearby_open(&self, i: &Incident, metres: f64, hours: i64) -> Result<Vec<Incident>, StoreError> {
        let (Some(lat), Some(lon)) = (i.lat, i.lon) else { return Ok(Vec::new()) };
        // A box a little larger than the circle, then the exact distance.
        let dlat = metres / 111_000.0 * 1.1;
        let dlon = metres / (111_000.0 * lat.to_radians().cos().max(0.01)) * 1.1;
        let span = hours * 3_600_000;
        let sql = format!(
            "SELECT {COLUMNS} FROM incidents WHERE category = $1 AND id <> $2 AND created_at BETWEEN $3 AND $4 \
             AND lat BETWEEN $5 AND $6 AND lon BETWEEN $7 AND $8 \
             AND state IN ('reported', 'filed', 'dispatched', 'in_progress', 'handled', 'verified') ORDER BY id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&i.category)
            .bind(i.id)
            .bind(i.created_at - span)
            .bind(i.created_at + span)
            .bind(lat - dlat)
            .bind(lat + dlat)
            .bind(lon - dlon)
            .bind(lon + dlon)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            let other = incident(r)?;
            if let (Some(a), Some(b)) = (other.lat, other.lon)
                && metres_between(lat, lon, a, b) <= metres {
                    out.push(other);
                }
        }
        Ok(out)
    }

    pub async fn timeline(&self, id: i64) -> Result<Vec<Transition>, StoreError> {
        let rows = sqlx::query(
            "SELECT action, from_state, to_state, actor_kind, actor_name, note, at FROM incident_transitions WHERE incident_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Transition {
                    action: r.try_get("action")?,
                    from_state: r.try_get("from_state")?,
                    to_state: r.try_get("to_state")?,
                    actor_kind: r.try_get("actor_kind")?,
                    actor_name: r.try_get("actor_name")?,
                    note: r.try_get("note")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    /// Incidents visible under a scope: an area prefix, or a department's dispatches.
    pub(crate) async fn incidents_where(&self, scope: &IncidentScope, f: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        let (clauses, texts) = where_of(scope, f);
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE {} ORDER BY id DESC LIMIT {}", clauses.join(" AND "), f.limit.clamp(1, 500));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for t in texts {
            q = q.bind(t);
        }
        q.fetch_all(&self.pool).await?.iter().map(incident).collect()
    }

    /// How many incidents under a scope match the filter, by state and by warning colour
    /// at `now`. The state counts ignore the filter's state and the colour counts its colour,
    /// so that each count says what choosing it would show. `before_id` and `limit` are ignored.
    pub(crate) async fn incident_counts(&self, scope: &IncidentScope, f: &IncidentFilter, now: i64) -> Result<IncidentCounts, StoreError> {
        // One pass over the queue in scope, grouped by state, with each state's colours:
        // the state counts (under the colour filter, if any) and the colour counts (under
        // the state filter, if any) both come out of it.
        let (mut clauses, texts) = where_of(scope, &IncidentFilter { state: None, warning: None, before_id: None, ..f.clone() });
        let queue: Vec<String> = QUEUE_STATES.iter().map(|s| format!("'{}'", s.as_str())).collect();
        clauses.push(format!("state IN ({})", queue.join(", ")));
        // Integers are formatted, not bound: texts are the only binds here.
        let sql = format!(
            "SELECT state, COUNT(*) AS n, COALESCE(SUM(CASE WHEN warn_at > {now} THEN 1 ELSE 0 END), 0) AS green, \
             COALESCE(SUM(CASE WHEN warn_at <= {now} AND due_at >= {now} THEN 1 ELSE 0 END), 0) AS yellow, \
             COALESCE(SUM(CASE WHEN due_at < {now} THEN 1 ELSE 0 END), 0) AS red FROM incidents WHERE {} GROUP BY state",
            clauses.join(" AND ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for t in texts {
            q = q.bind(t);
        }
        let mut rows = Vec::new();
        for r in q.fetch_all(&self.pool).await? {
            let s: String = r.try_get("state")?;
            let s = s.parse::<State>().map_err(|e| StoreError::Corrupt(format!("incidents.state: {e}")))?;
            let get = |c: &str| -> Result<i64, StoreError> { Ok(r.try_get::<i64, _>(c)?) };
            rows.push((s, get("n")?, [get("green")?, get("yellow")?, get("red")?]));
        }
        rows.sort_by_key(|(s, _, _)| State::ALL.iter().position(|x| x == s));
        let colour = |w: Warning| match w {
            Warning::Green => 0,
            Warning::Yellow => 1,
            Warning::Red => 2,
        };
        let by_state: Vec<(State, i64)> = rows
            .iter()
            .map(|(s, n, c)| (*s, f.warning.map_or(*n, |(w, _)| c[colour(w)])))
            .filter(|(_, n)| f.warning.is_none() || *n > 0)
            .collect();
        let mut colours = [0i64; 3];
        for (s, _, c) in &rows {
            if f.state.is_none_or(|x| x == *s) {
                for (total, n) in colours.iter_mut().zip(c) {
                    *total += n;
                }
            }
        }
        Ok(IncidentCounts { by_state, green: colours[0], yellow: colours[1], red: colours[2] })
    }

    /// Give an address-only report its point and grid (see [`crate::scoped::IncidentDesk::place`]).
    pub(crate) async fn place_incident(
        &self,
        actor: &Actor,
        id: i64,
        version: i64,
        point: (f64, f64),
        grid: &AreaCode,
        note: &str,
    ) -> Result<Incident, TransitionFailure> {
        let mut tx = self.write_tx().await?;
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *tx).await?;
        let cur = incident(&row.ok_or_else(|| StoreError::NotFound(format!("incident {id}")))?)?;
        if cur.version != version {
            return Err(TransitionFailure::Stale { current: cur.version });
        }
        if cur.grid.is_some() || !(cur.loop_.state.is_open() || cur.loop_.state == State::Shelved) {
            return Err(StoreError::Invalid {
                code: "already_placed",
                message: format!("incident {id} is placed already or no longer open; only an open address-only report is placed"),
            }
            .into());
        }
        let known = sqlx::query("SELECT 1 FROM areas WHERE code = $1 AND level = 'grid'").bind(grid.as_str()).fetch_optional(&mut *tx).await?;
        if known.is_none() {
            return Err(StoreError::Invalid { code: "unknown_grid", message: format!("no basic grid {grid}") }.into());
        }
        let now = self.now_ms();
        // An unplaced report is the district's; placed, it is its grid's, like any report
        // made with a point (the same grid workers verify it and the same leads see it).
        let (area, level) = (grid.to_string(), Level::Grid);
        let n = sqlx::query(
            "UPDATE incidents SET lat = $1, lon = $2, grid = $3, area_code = $4, level = $5, version = version + 1, updated_at = $6 \
             WHERE id = $7 AND version = $8",
        )
        .bind(point.0)
        .bind(point.1)
        .bind(grid.as_str())
        .bind(&area)
        .bind(level.as_str())
        .bind(now)
        .bind(id)
        .bind(version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(TransitionFailure::Stale { current: version + 1 });
        }
        let state = cur.loop_.state;
        let why = if note.trim().is_empty() { format!("定位至网格 {grid}") } else { format!("定位至网格 {grid}：{}", note.trim()) };
        insert_transition(&mut tx, id, "place", Some(state), state, actor, &why, now).await?;
        // The figures move from the district's unplaced row to the grid's.
        crate::kpis::track(&mut tx, Some(&cur), id).await?;
        let detail = format!("grid={grid} lat={} lon={}", point.0, point.1);
        crate::audit::append(self, &mut tx, actor.entry("incident.place", "incident", &id.to_string(), "ok", &detail)).await?;
        tx.commit().await?;
        Ok(self.incident(id).await?.ok_or_else(|| StoreError::NotFound(format!("incident {id}")))?)
    }

    /// Apply a transition if the incident is still at `version`.
    pub(crate) async fn transition(
        &self,
        actor: &Actor,
        who: incident::Actor,
        id: i64,
        version: i64,
        action: Action,
        input: &TransitionInput,
    ) -> Result<Incident, TransitionFailure> {
        if action == Action::RequestExtension && !input.extension_hours.is_some_and(|h| (1..=MAX_EXTENSION_HOURS).contains(&h)) {
            return Err(StoreError::Invalid {
                code: "invalid_extension",
                message: format!("an extension request needs extension_hours, 1 to {MAX_EXTENSION_HOURS} working hours"),
            }
            .into());
        }
        let timing = self.timing().await?;
        let mut tx = self.write_tx().await?;
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *tx).await?;
        let cur = incident(&row.ok_or_else(|| StoreError::NotFound(format!("incident {id}")))?)?;
        if cur.version != version {
            return Err(TransitionFailure::Stale { current: cur.version });
        }
        let next = incident::apply(&cur.loop_, who, action, input.rating).map_err(TransitionFailure::Refused)?;
        let now = self.now_ms();
        let (mut department, mut assignee) = (cur.department.clone(), cur.assignee_area.as_ref().map(|a| a.to_string()));
        let mut area = cur.area.to_string();
        let mut merged_into = cur.merged_into;
        let mut survivor_state = State::Reported;
        match action {
            Action::Dispatch => match (&input.department, &input.grid) {
                (Some(d), None) => {
                    let known = sqlx::query("SELECT 1 FROM departments WHERE code = $1").bind(d).fetch_optional(&mut *tx).await?;
                    if known.is_none() {
                        return Err(StoreError::Invalid { code: "unknown_department", message: format!("no department {d}") }.into());
                    }
                    (department, assignee) = (Some(d.clone()), None);
                }
                (None, Some(g)) => {
                    let known = sqlx::query("SELECT 1 FROM areas WHERE code = $1 AND level IN ('grid', 'dedicated')").bind(g.as_str()).fetch_optional(&mut *tx).await?;
                    if known.is_none() {
                        return Err(StoreError::Invalid { code: "unknown_grid", message: format!("no grid {g}") }.into());
                    }
                    (department, assignee) = (None, Some(g.to_string()));
                }
                _ => {
                    return Err(StoreError::Invalid {
                        code: "dispatch_target",
                        message: "dispatch to exactly one of a department or a grid".into(),
                    }
                    .into());
                }
            },
            Action::Return => (department, assignee) = (None, None),
            Action::Merge => {
                let Some(into) = input.into.filter(|t| *t != id) else {
                    return Err(StoreError::Invalid { code: "merge_target", message: "merge needs the id of another incident to merge into".into() }.into());
                };
                let sql = format!("SELECT {COLUMNS} FROM incidents WHERE id = $1");
                let target = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(into).fetch_optional(&mut *tx).await?;
                let target = target.as_ref().map(incident).transpose()?;
                match target {
                    Some(t) if t.loop_.state.is_open() && t.merged_into.is_none() => survivor_state = t.loop_.state,
                    _ => {
                        return Err(StoreError::Invalid {
                            code: "merge_target",
                            message: format!("incident {into} is not an open incident to merge into"),
                        }
                        .into());
                    }
                }
                merged_into = Some(into);
            }
            Action::Escalate => {
                let len = next.level.code_len().min(area.len());
                area.truncate(len);
            }
            _ => {}
        }
        let step_changed = next.state != cur.loop_.state;
        let step_started = if step_changed { now } else { cur.step_started_at };
        let rating = if action == Action::Evaluate { input.rating.map(i64::from) } else { cur.rating };
        // The step's clock: a new step starts a new one; an approved extension adds the
        // working time asked for to the running one.
        let (mut extension_ms, mut requested_ms) = if step_changed { (0, 0) } else { (cur.extension_ms, cur.extension_requested_ms) };
        match action {
            Action::RequestExtension => requested_ms = i64::from(input.extension_hours.unwrap_or(0)) * 3_600_000,
            Action::ApproveExtension => (extension_ms, requested_ms) = (extension_ms + requested_ms, 0),
            Action::DenyExtension => requested_ms = 0,
            _ => {}
        }
        let clock = match next.state.step() {
            Some(step) if step_changed || action == Action::ApproveExtension => timing.clock(&cur.category, step, step_started, extension_ms),
            Some(_) => cur.clock,
            None => None,
        };
        // A step that ends past its deadline makes the incident late (the watcher marks
        // steps that are still running).
        let late = cur.late || (step_changed && cur.clock.is_some_and(|c| now > c.due_at));
        let closed_at = match next.state {
            State::Closed if cur.loop_.state != State::Closed => Some(now),
            State::Closed | State::Evaluated => cur.closed_at,
            _ => None,
        };
        let n = sqlx::query(
            "UPDATE incidents SET state = $1, level = $2, area_code = $3, department = $4, assignee_area = $5, supervised = $6, reopened = $7, \
             extension_pending = $8, returns = $9, reworks = $10, rating = $11, version = version + 1, updated_at = $12, step_started_at = $13, \
             merged_into = $16, warn_at = $17, due_at = $18, extension_ms = $19, extension_requested_ms = $20, late = $21, closed_at = $22 \
             WHERE id = $14 AND version = $15",
        )
        .bind(next.state.as_str())
        .bind(next.level.as_str())
        .bind(&area)
        .bind(department)
        .bind(assignee)
        .bind(i64::from(next.supervised))
        .bind(i64::from(next.reopened))
        .bind(i64::from(next.extension_pending))
        .bind(i64::from(next.returns))
        .bind(i64::from(next.reworks))
        .bind(rating)
        .bind(now)
        .bind(step_started)
        .bind(id)
        .bind(version)
        .bind(merged_into)
        .bind(clock.map(|c| c.warn_at))
        .bind(clock.map(|c| c.due_at))
        .bind(extension_ms)
        .bind(requested_ms)
        .bind(i64::from(late))
        .bind(closed_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(TransitionFailure::Stale { current: version + 1 });
        }
        insert_transition(&mut tx, id, action.as_str(), Some(cur.loop_.state), next.state, actor, &input.note, now).await?;
        crate::kpis::track(&mut tx, Some(&cur), id).await?;
        let category = timing.names.get(&cur.category).unwrap_or(&cur.category);
        let note_for = |what: &str| format!("事件 #{id}（{category}）{what}");
        match action {
            Action::Dispatch => {
                let msg = note_for("已派遣，请接收处置");
                match (&input.department, &input.grid) {
                    (Some(d), _) => crate::notifications::notify(&mut tx, id, "dispatched", crate::notifications::Audience::Department(d), &msg, now).await?,
                    (_, Some(g)) => {
                        for role in [Role::GridWorker, Role::GridLeader] {
                            crate::notifications::notify(&mut tx, id, "dispatched", crate::notifications::Audience::Area(role, g.as_str()), &msg, now).await?;
                        }
                    }
                    _ => {}
                }
            }
            Action::Return => {
                let msg = format!("{}：{}", note_for("被退回，请重新派遣"), input.note);
                crate::notifications::notify(&mut tx, id, "returned", crate::notifications::Audience::Area(Role::Dispatcher, cur.area.as_str()), &msg, now).await?;
            }
            Action::Handle | Action::HandleOnSpot => {
                let grid = cur.grid.as_ref().map(|g| g.to_string()).unwrap_or_else(|| cur.area.to_string());
                let msg = note_for("已处置，请现场核查");
                crate::notifications::notify(&mut tx, id, "verification_due", crate::notifications::Audience::Area(Role::GridWorker, &grid), &msg, now).await?;
            }
            _ => {}
        }
        if let (Action::Merge, Some(into)) = (action, merged_into) {
            // The survivor's timeline shows the merge too: the link runs both ways.
            let note = format!("合并重复事件 #{id}");
            insert_transition(&mut tx, into, "merge_in", Some(survivor_state), survivor_state, actor, &note, now).await?;
            sqlx::query("UPDATE incidents SET updated_at = $1 WHERE id = $2").bind(now).bind(into).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(self.incident(id).await?.ok_or_else(|| StoreError::NotFound(format!("incident {id}")))?)
    }
}

/// Great-circle distance in metres.
pub fn metres_between(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let (dp, dl) = ((lat2 - lat1).to_radians(), (lon2 - lon1).to_radians());
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * a.sqrt().asin()
}

#[allow(clippy::too_many_arguments)]
async fn insert_transition(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: i64,
    action: &str,
    from: Option<State>,
    to: State,
    actor: &Actor,
    note: &str,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO incident_transitions (incident_id, action, from_state, to_state, actor_kind, actor_id, actor_name, note, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(action)
    .bind(from.map(|s| s.as_str()))
    .bind(to.as_str())
    .bind(&actor.kind)
    .bind(actor.id)
    .bind(&actor.name)
    .bind(note)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Which incidents a caller sees.
#[derive(Debug, Clone)]
pub enum IncidentScope {
    /// Those owned by an area in this subtree.
    Area(AreaCode),
    /// Those dispatched to this department, wherever they are.
    Department(String),
    /// Every incident: civicgrid's own watcher only (never a caller).
    All,
}

impl IncidentScope {
    pub fn of(p: &Principal) -> IncidentScope {
        match (&p.role, &p.department) {
            (Role::DepartmentHandler, Some(d)) => IncidentScope::Department(d.clone()),
            _ => IncidentScope::Area(p.area.clone()),
        }
    }

    pub fn contains(&self, i: &Incident) -> bool {
        match self {
            IncidentScope::Area(a) => {
                i.area.starts_with(a)
                    || i.grid.as_ref().is_some_and(|g| g.starts_with(a))
                    || i.assignee_area.as_ref().is_some_and(|g| g.starts_with(a))
            }
            IncidentScope::Department(d) => i.department.as_deref() == Some(d.as_str()),
            IncidentScope::All => true,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn successors_of_digit_strings() {
        assert_eq!(super::successor("430503001001").as_deref(), Some("430503001002"));
        assert_eq!(super::successor("430503001099").as_deref(), Some("430503001100"));
        assert_eq!(super::successor("999"), None);
    }
}
