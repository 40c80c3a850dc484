//! The in-app inbox (what needs someone's action) and the time-limit watcher that marks
//! overdue steps, notifies and escalates by policy, exactly once per step.

use domain::catalogue::StepLimits;
use domain::incident::{Action, Step};
use domain::{Principal, Role};
use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use crate::StoreError;
use crate::audit::Actor;
use crate::db::Db;
use crate::incidents::{Incident, TransitionInput};

/// One item of an inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub id: i64,
    pub incident_id: i64,
    /// dispatched, returned, verification_due, overdue
    pub kind: String,
    pub message: String,
    pub created_at: i64,
    pub read: bool,
}

/// Who a notification is for: a role within an area, or a department's handlers.
pub(crate) enum Audience<'a> {
    Area(Role, &'a str),
    Department(&'a str),
}

pub(crate) async fn notify(
    tx: &mut Transaction<'static, Any>,
    incident_id: i64,
    kind: &str,
    to: Audience<'_>,
    message: &str,
    now: i64,
) -> Result<(), StoreError> {
    let (role, area, department) = match to {
        Audience::Area(r, a) => (r.as_str(), Some(a), None),
        Audience::Department(d) => (Role::DepartmentHandler.as_str(), None, Some(d)),
    };
    sqlx::query("INSERT INTO notifications (incident_id, kind, role, area_code, department, message, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(incident_id)
        .bind(kind)
        .bind(role)
        .bind(area)
        .bind(department)
        .bind(message)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The step's limit for an incident.
pub fn limit_of(limits: &StepLimits, step: Step) -> domain::calendar::TimeLimit {
    match step {
        Step::File => limits.file,
        Step::Dispatch => limits.dispatch,
        Step::Handle => limits.handle,
        Step::Verify => limits.verify,
    }
}

fn step_name(s: Step) -> &'static str {
    match s {
        Step::File => "file",
        Step::Dispatch => "dispatch",
        Step::Handle => "handle",
        Step::Verify => "verify",
    }
}

impl Db {
    /// A signed-in account's inbox, newest first.
    pub async fn inbox(&self, p: &Principal, unread_only: bool, limit: i64) -> Result<Vec<Notification>, StoreError> {
        self.inbox_where(p, if unread_only { " AND r.read_at IS NULL" } else { "" }, None, limit).await
    }

    /// The inbox query: the account's role, and its area's subtree or its department.
    async fn inbox_where(&self, p: &Principal, extra: &str, id: Option<i64>, limit: i64) -> Result<Vec<Notification>, StoreError> {
        let one = if id.is_some() { " AND n.id = $5" } else { "" };
        let sql = format!(
            "SELECT n.id, n.incident_id, n.kind, n.message, n.created_at, r.read_at FROM notifications n \
             LEFT JOIN notification_reads r ON r.notification_id = n.id AND r.account_id = $1 \
             WHERE n.role = $2 AND ((n.department IS NOT NULL AND n.department = $3) OR (n.area_code IS NOT NULL AND n.area_code LIKE $4)){extra}{one} \
             ORDER BY n.id DESC LIMIT {}",
            limit.clamp(1, 500)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(p.account_id)
            .bind(p.role.as_str())
            .bind(p.department.clone().unwrap_or_default())
            .bind(format!("{}%", p.area));
        if let Some(id) = id {
            q = q.bind(id);
        }
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(Notification {
                    id: r.try_get("id")?,
                    incident_id: r.try_get("incident_id")?,
                    kind: r.try_get("kind")?,
                    message: r.try_get("message")?,
                    created_at: r.try_get("created_at")?,
                    read: r.try_get::<Option<i64>, _>("read_at")?.is_some(),
                })
            })
            .collect()
    }

    /// Mark an inbox item read (only an item of the account's own inbox).
    pub async fn mark_read(&self, p: &Principal, id: i64) -> Result<(), StoreError> {
        if self.inbox_where(p, "", Some(id), 1).await?.is_empty() {
            return Err(StoreError::NotFound(format!("notification {id}")));
        }
        sqlx::query(
            "INSERT INTO notification_reads (notification_id, account_id, read_at) VALUES ($1, $2, $3) ON CONFLICT (notification_id, account_id) DO NOTHING",
        )
        .bind(id)
        .bind(p.account_id)
        .bind(self.now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Find open steps past their limit; for each, once: record it, tell the shift leads
    /// over its area, and escalate overdue handling one area level. Returns the incidents
    /// newly found overdue.
    pub async fn watch_time_limits(&self) -> Result<Vec<i64>, StoreError> {
        let now = self.now_ms();
        let mut found = Vec::new();
        for inc in self.overdue_unmarked(now).await? {
            let Some(step) = inc.loop_.state.step() else { continue };
            let mut tx = self.write_tx().await?;
            let fresh = sqlx::query(
                "INSERT INTO overdue_steps (incident_id, step, step_started_at, marked_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (incident_id, step, step_started_at) DO NOTHING",
            )
            .bind(inc.id)
            .bind(step_name(step))
            .bind(inc.step_started_at)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if fresh == 0 {
                continue;
            }
            let before = crate::kpis::read_in(&mut tx, inc.id).await?;
            sqlx::query("UPDATE incidents SET late = 1 WHERE id = $1").bind(inc.id).execute(&mut *tx).await?;
            if let Some(b) = &before {
                crate::kpis::track(&mut tx, Some(b), inc.id).await?;
            }
            let message = format!("事件 #{} 的{}环节已超时", inc.id, step_zh(step));
            notify(&mut tx, inc.id, "overdue", Audience::Area(Role::ShiftLead, inc.area.as_str()), &message, now).await?;
            tx.commit().await?;
            found.push(inc.id);
            // Policy: overdue handling goes one level up (小事不出网格，大事不出街道).
            if step == Step::Handle && inc.loop_.level != domain::Level::District {
                let system = Actor { kind: "system".into(), id: None, name: "time-limit watcher".into(), operation_id: String::new(), client_addr: "local".into() };
                let input = TransitionInput { note: "处置超时，自动上报上一级".into(), ..TransitionInput::default() };
                // A concurrent change wins; the step is still marked, so this is not retried.
                let _ = self.transition(&system, domain::incident::Actor::System, inc.id, inc.version, Action::Escalate, &input).await;
            }
        }
        Ok(found)
    }

    /// Running steps past their stored deadline that the watcher has not marked yet, by
    /// the `due_at` index (never a scan of every open incident).
    async fn overdue_unmarked(&self, now: i64) -> Result<Vec<Incident>, StoreError> {
        let sql = format!(
            "SELECT {} FROM incidents i WHERE i.due_at < $1 AND NOT EXISTS \
             (SELECT 1 FROM overdue_steps o WHERE o.incident_id = i.id AND o.step_started_at = i.step_started_at) ORDER BY i.due_at LIMIT 1000",
            crate::incidents::COLUMNS
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).fetch_all(&self.pool).await?.iter().map(crate::incidents::incident).collect()
    }
}

fn step_zh(s: Step) -> &'static str {
    match s {
        Step::File => "立案",
        Step::Dispatch => "派遣",
        Step::Handle => "处置",
        Step::Verify => "核查",
    }
}

impl Db {
    /// Notifications after `after` (for outbound delivery), oldest first.
    pub async fn notifications_since(&self, after: i64, limit: i64) -> Result<Vec<(i64, String, String, Option<String>, Option<String>, String)>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, kind, role, area_code, department, message FROM notifications WHERE id > $1 ORDER BY id LIMIT {}",
            limit.clamp(1, 1000)
        )))
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("kind")?, r.try_get("role")?, r.try_get("area_code")?, r.try_get("department")?, r.try_get("message")?)))
            .collect()
    }
}

impl Db {
    /// The newest notification's id, 0 when there is none.
    pub async fn last_notification_id(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COALESCE(MAX(id), 0) FROM notifications").fetch_one(&self.pool).await?.try_get(0)?)
    }
}
