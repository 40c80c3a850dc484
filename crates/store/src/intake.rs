//! Durable intake with group commit. A report counts as acknowledged only once its
//! transaction is committed, and on SQLite that means `synchronous = FULL`: an fsync of the
//! write-ahead log per commit. One fsync per report would cap intake at the disk's sync
//! rate, so reports queue for one writer task, which takes whatever has queued while the
//! previous commit was syncing and writes it as one transaction: a few statements per batch
//! (each binding the whole batch as one JSON array, and one for the key figures' rollup),
//! one commit, one fsync. Every caller
//! waits for its own commit before it answers.
//!
//! If a batch fails, its reports are written again one by one, so one bad report fails
//! alone and the others still land.

use std::collections::HashMap;

use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;
use crate::audit::Actor;
use crate::db::{Db, Dialect};
use domain::AreaCode;
use domain::incident::Loop;

use crate::incidents::{Incident, NewIncident, new_receipt};

/// Most reports in one transaction.
const BATCH: usize = 256;

/// One report as the writer receives it.
pub(crate) struct Report {
    pub(crate) actor: Actor,
    pub(crate) reporter_account: Option<i64>,
    pub(crate) new: NewIncident,
    pub(crate) key: Option<String>,
}

struct Job {
    /// The store to write to (the writer holds no handle of its own, so it ends when the
    /// last handle is dropped).
    db: Db,
    report: Report,
    reply: oneshot::Sender<Result<(Incident, bool), StoreError>>,
}

#[derive(Clone)]
pub(crate) struct IntakeSink {
    tx: mpsc::Sender<Job>,
}

impl IntakeSink {
    pub(crate) fn start() -> IntakeSink {
        let (tx, mut rx) = mpsc::channel::<Job>(4 * BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let jobs = std::mem::take(&mut batch);
                let db = jobs[0].db.clone();
                let results = match write(&db, &jobs).await {
                    Ok(done) => done.into_iter().map(Ok).collect(),
                    Err(e) if jobs.len() == 1 => vec![Err(e)],
                    Err(e) => {
                        tracing::warn!(error = %e, reports = jobs.len(), "an intake batch failed; writing its reports one by one");
                        let mut out = Vec::with_capacity(jobs.len());
                        for j in &jobs {
                            out.push(write(&db, std::slice::from_ref(j)).await.map(|mut v| v.remove(0)));
                        }
                        out
                    }
                };
                for (job, r) in jobs.into_iter().zip(results) {
                    // A caller that went away still has its report stored (a retry with the
                    // same Idempotency-Key finds it).
                    let _ = job.reply.send(r);
                }
            }
        });
        IntakeSink { tx }
    }

    /// Queue a report and wait for its commit.
    pub(crate) async fn submit(&self, db: &Db, report: Report) -> Result<(Incident, bool), StoreError> {
        let (reply, wait) = oneshot::channel();
        self.tx.send(Job { db: db.clone(), report, reply }).await.map_err(|_| StoreError::Unreachable("the intake writer has stopped".into()))?;
        wait.await.map_err(|_| StoreError::Unreachable("the intake writer has stopped".into()))?
    }
}

/// What happens to one report of a batch.
enum Plan {
    /// A retry of a report already stored.
    Stored(i64),
    /// A retry of a report earlier in this batch.
    SameAs(usize),
    /// A new incident: its receipt.
    New(String),
}

const INSERT_SQLITE: &str = "INSERT INTO incidents (receipt, category, description, lat, lon, address, grid, area_code, level, source, state, \
     on_spot_allowed, reporter_account, reporter_phone, version, created_at, updated_at, step_started_at, warn_at, due_at) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7, value ->> 8, value ->> 9, \
     'reported', value ->> 10, value ->> 11, value ->> 12, 1, $2, $2, $2, value ->> 13, value ->> 14 FROM json_each($1) ORDER BY key";

const INSERT_POSTGRES: &str = "INSERT INTO incidents (receipt, category, description, lat, lon, address, grid, area_code, level, source, state, \
     on_spot_allowed, reporter_account, reporter_phone, version, created_at, updated_at, step_started_at, warn_at, due_at) \
     SELECT r ->> 0, r ->> 1, r ->> 2, (r ->> 3)::float8, (r ->> 4)::float8, r ->> 5, r ->> 6, r ->> 7, r ->> 8, r ->> 9, \
     'reported', (r ->> 10)::bigint, (r ->> 11)::bigint, r ->> 12, 1, $2, $2, $2, (r ->> 13)::bigint, (r ->> 14)::bigint \
     FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS b(r, n) ORDER BY n";

const STEPS_SQLITE: &str = "INSERT INTO incident_transitions (incident_id, action, from_state, to_state, actor_kind, actor_id, actor_name, note, at) \
     SELECT value ->> 0, 'report', NULL, 'reported', value ->> 1, value ->> 2, value ->> 3, '', $2 FROM json_each($1) ORDER BY key";

const STEPS_POSTGRES: &str = "INSERT INTO incident_transitions (incident_id, action, from_state, to_state, actor_kind, actor_id, actor_name, note, at) \
     SELECT (r ->> 0)::bigint, 'report', NULL, 'reported', r ->> 1, (r ->> 2)::bigint, r ->> 3, '', $2 \
     FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS b(r, n) ORDER BY n";

const KEYS_SQLITE: &str = "INSERT INTO idempotency_keys (account_id, key, incident_id, created_at) \
     SELECT value ->> 0, value ->> 1, value ->> 2, $2 FROM json_each($1) ORDER BY key";

const KEYS_POSTGRES: &str = "INSERT INTO idempotency_keys (account_id, key, incident_id, created_at) \
     SELECT (r ->> 0)::bigint, r ->> 1, (r ->> 2)::bigint, $2 FROM jsonb_array_elements($1::jsonb) AS b(r)";

const FIND_KEYS_SQLITE: &str = "SELECT k.account_id, k.key, k.incident_id FROM json_each($1) j \
     JOIN idempotency_keys k ON k.account_id = j.value ->> 0 AND k.key = j.value ->> 1";

const FIND_KEYS_POSTGRES: &str = "SELECT k.account_id, k.key, k.incident_id FROM jsonb_array_elements($1::jsonb) AS j(r) \
     JOIN idempotency_keys k ON k.account_id = (j.r ->> 0)::bigint AND k.key = j.r ->> 1";

/// Write a batch of reports in one transaction; the results in the jobs' order.
async fn write(db: &Db, jobs: &[Job]) -> Result<Vec<(Incident, bool)>, StoreError> {
    let pg = db.dialect == Dialect::Postgres;
    let timing = db.timing().await?;
    let mut tx = db.write_tx().await?;
    let now = db.now_ms();

    // Retries: keys already stored, and keys repeated within the batch.
    let keyed: Vec<serde_json::Value> =
        jobs.iter().filter_map(|j| Some(serde_json::json!([j.report.reporter_account?, j.report.key.as_deref()?]))).collect();
    let mut stored: HashMap<(i64, String), i64> = HashMap::new();
    if !keyed.is_empty() {
        let sql = if pg { FIND_KEYS_POSTGRES } else { FIND_KEYS_SQLITE };
        for r in sqlx::query(sql).bind(serde_json::Value::Array(keyed).to_string()).fetch_all(&mut *tx).await? {
            stored.insert((r.try_get("account_id")?, r.try_get("key")?), r.try_get("incident_id")?);
        }
    }
    // Unplaced reports belong to the district until an operator places them.
    let district = if jobs.iter().any(|j| j.report.new.grid.is_none()) {
        let d = sqlx::query("SELECT code FROM areas WHERE level = 'district' ORDER BY code LIMIT 1").fetch_optional(&mut *tx).await?;
        Some(d.map(|r| r.try_get::<String, _>(0)).transpose()?.ok_or_else(|| StoreError::Invalid {
            code: "no_district",
            message: "the store holds no district yet".into(),
        })?)
    } else {
        None
    };

    let mut plans = Vec::with_capacity(jobs.len());
    let mut templates: HashMap<String, Incident> = HashMap::new();
    let mut first_of_key: HashMap<(i64, &str), usize> = HashMap::new();
    let mut rows = Vec::new();
    for (k, j) in jobs.iter().enumerate() {
        if let (Some(acc), Some(key)) = (j.report.reporter_account, j.report.key.as_deref()) {
            if let Some(id) = stored.get(&(acc, key.to_string())) {
                plans.push(Plan::Stored(*id));
                continue;
            }
            if let Some(first) = first_of_key.get(&(acc, key)) {
                plans.push(Plan::SameAs(*first));
                continue;
            }
            first_of_key.insert((acc, key), k);
        }
        let n = &j.report.new;
        let on_spot = timing.on_spot.get(&n.category).copied().ok_or_else(|| StoreError::Invalid {
            code: "unknown_category",
            message: format!("{:?} is not a second-level category (see GET /api/v1/categories)", n.category),
        })?;
        let (area, level) = match &n.grid {
            Some(g) => (g.to_string(), domain::Level::Grid),
            None => (district.clone().unwrap_or_default(), domain::Level::District),
        };
        let clock = timing.clock(&n.category, domain::incident::Step::File, now, 0);
        let receipt = new_receipt(now)?;
        // The incident as it will read back (its id comes from the insert).
        let address = n.address.as_deref().map(str::trim).filter(|a| !a.is_empty()).map(str::to_string);
        templates.insert(
            receipt.clone(),
            Incident {
                id: 0,
                receipt: receipt.clone(),
                category: n.category.clone(),
                description: n.description.trim().to_string(),
                lat: n.point.map(|p| p.0),
                lon: n.point.map(|p| p.1),
                address,
                grid: n.grid.clone(),
                area: AreaCode::parse(&area).map_err(|e| StoreError::Corrupt(format!("district code: {e}")))?,
                source: n.source.as_str().to_string(),
                department: None,
                assignee_area: None,
                loop_: Loop { level, ..Loop::new(on_spot) },
                rating: None,
                merged_into: None,
                reporter_phone_masked: n.reporter_phone.as_ref().map(|p| domain::access::mask_phone(p.as_str())),
                version: 1,
                created_at: now,
                updated_at: now,
                step_started_at: now,
                clock,
                extension_ms: 0,
                extension_requested_ms: 0,
                late: false,
                closed_at: None,
            },
        );
        rows.push(serde_json::json!([
            receipt,
            n.category,
            n.description.trim(),
            n.point.map(|p| p.0),
            n.point.map(|p| p.1),
            n.address.as_deref().map(str::trim).filter(|a| !a.is_empty()),
            n.grid.as_ref().map(|g| g.to_string()),
            area,
            level.as_str(),
            n.source.as_str(),
            i64::from(on_spot),
            j.report.reporter_account,
            n.reporter_phone.as_ref().map(|p| p.as_str().to_string()),
            clock.map(|c| c.warn_at),
            clock.map(|c| c.due_at),
        ]));
        plans.push(Plan::New(receipt));
    }

    let mut created: HashMap<String, Incident> = HashMap::new();
    if !rows.is_empty() {
        // Only the ids come back: the rest of each incident is what was just written.
        let sql = format!("{} RETURNING id, receipt", if pg { INSERT_POSTGRES } else { INSERT_SQLITE });
        for r in sqlx::query(sqlx::AssertSqlSafe(sql)).bind(serde_json::Value::Array(rows).to_string()).bind(now).fetch_all(&mut *tx).await? {
            let receipt: String = r.try_get("receipt")?;
            let mut inc = templates.remove(&receipt).ok_or_else(|| StoreError::Corrupt(format!("an unknown receipt {receipt} came back")))?;
            inc.id = r.try_get("id")?;
            created.insert(receipt, inc);
        }
        let mut steps = Vec::new();
        let mut keys = Vec::new();
        for (j, p) in jobs.iter().zip(&plans) {
            let Plan::New(receipt) = p else { continue };
            let inc = created.get(receipt).ok_or_else(|| StoreError::Corrupt(format!("the new incident {receipt} did not come back")))?;
            steps.push(serde_json::json!([inc.id, j.report.actor.kind, j.report.actor.id, j.report.actor.name]));
            if let (Some(acc), Some(key)) = (j.report.reporter_account, j.report.key.as_deref()) {
                keys.push(serde_json::json!([acc, key, inc.id]));
            }
        }
        let sql = if pg { STEPS_POSTGRES } else { STEPS_SQLITE };
        sqlx::query(sql).bind(serde_json::Value::Array(steps).to_string()).bind(now).execute(&mut *tx).await?;
        if !keys.is_empty() {
            let sql = if pg { KEYS_POSTGRES } else { KEYS_SQLITE };
            sqlx::query(sql).bind(serde_json::Value::Array(keys).to_string()).bind(now).execute(&mut *tx).await?;
        }
        // The key figures count the new reports in the same transaction.
        crate::kpis::track_created(&mut tx, &created.values().collect::<Vec<_>>()).await?;
    }
    tx.commit().await?;

    let mut out: Vec<(Incident, bool)> = Vec::with_capacity(jobs.len());
    for p in &plans {
        out.push(match p {
            Plan::New(receipt) => (created.remove(receipt).ok_or_else(|| StoreError::Corrupt(format!("incident {receipt} lost")))?, true),
            Plan::SameAs(k) => (out[*k].0.clone(), false),
            Plan::Stored(id) => (db.incident(*id).await?.ok_or_else(|| StoreError::NotFound(format!("incident {id}")))?, false),
        });
    }
    Ok(out)
}
