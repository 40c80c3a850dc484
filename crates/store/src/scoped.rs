//! Access control as types (STYLE habit 4). A request's handler gets a [`Scoped`] handle
//! built from the caller's principal. Reads through it are limited to the caller's area
//! subtree. Writes exist only on the handles that [`Scoped`] hands to roles that may
//! write: [`TeamEditor`], [`AccountAdmin`], [`AuditReader`].
//!
//! An object outside the caller's scope answers `NotFound`, exactly as if it did not exist,
//! and the attempt leaves a `denied` row in the audit trail.

use domain::access::mask_phone;
use domain::{AreaCode, Phone, Principal, Role, TeamRole};
use serde::Serialize;
use sqlx::Row;

use crate::StoreError;
use crate::audit::{self, Actor, AuditQuery, AuditRow};
use crate::auth::{Account, NewAccount};
use crate::incidents::{Incident, IncidentCounts, IncidentFilter, IncidentScope, NewIncident, Transition, TransitionFailure, TransitionInput};
use crate::db::Db;

/// A grid team member as any signed-in account sees it: the phone masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamView {
    pub id: i64,
    pub role: TeamRole,
    pub name: String,
    /// `138****5678`; the full number needs [`Scoped::unmask_team_phone`].
    pub phone_masked: Option<String>,
}

/// A member for [`TeamEditor::set_team`].
#[derive(Debug, Clone)]
pub struct TeamInput {
    pub role: TeamRole,
    pub name: String,
    pub phone: Option<Phone>,
}

/// The caller's view of the store.
pub struct Scoped<'a> {
    pub(crate) db: &'a Db,
    pub(crate) who: &'a Principal,
    pub(crate) actor: Actor,
}

impl Db {
    /// The handle for a signed-in caller.
    pub fn scoped<'a>(&'a self, who: &'a Principal, actor: Actor) -> Scoped<'a> {
        Scoped { db: self, who, actor }
    }

    /// A grid team, phones masked.
    pub async fn team_view(&self, code: &AreaCode) -> Result<Vec<TeamView>, StoreError> {
        let rows = sqlx::query("SELECT id, role, name, phone FROM team_members WHERE area_code = $1 ORDER BY position, id")
            .bind(code.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let role: String = r.try_get("role")?;
                let phone: Option<String> = r.try_get("phone")?;
                Ok(TeamView {
                    id: r.try_get("id")?,
                    role: role.parse().map_err(|e| StoreError::Corrupt(format!("team_members.role: {e}")))?,
                    name: r.try_get("name")?,
                    phone_masked: phone.as_deref().map(mask_phone),
                })
            })
            .collect()
    }
}

impl<'a> Scoped<'a> {
    pub fn principal(&self) -> &Principal {
        self.who
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Whether an area lies in the caller's subtree.
    pub fn in_scope(&self, code: &AreaCode) -> bool {
        self.who.scope().contains(code)
    }

    /// Record a refused attempt and answer as if the object did not exist.
    pub async fn deny(&self, action: &str, object_type: &str, object_id: &str) -> StoreError {
        let entry = self.actor.entry(action, object_type, object_id, "denied", &format!("role={} area={}", self.who.role, self.who.area));
        if let Err(e) = self.db.audit(entry).await {
            tracing::error!(error = %e, "could not audit a denied attempt");
            return e;
        }
        StoreError::NotFound(format!("{object_type} {object_id}"))
    }

    /// Read a team member's full phone number, with a stated reason (audited).
    pub async fn unmask_team_phone(&self, member_id: i64, reason: &str) -> Result<String, StoreError> {
        let object = member_id.to_string();
        let row = sqlx::query("SELECT area_code, phone FROM team_members WHERE id = $1")
            .bind(member_id)
            .fetch_optional(&self.db.pool)
            .await?;
        let in_scope = match &row {
            Some(r) => AreaCode::parse(&r.try_get::<String, _>("area_code")?).is_ok_and(|c| self.in_scope(&c)),
            None => false,
        };
        if !self.who.role.may_unmask() || !in_scope {
            return Err(self.deny("read_sensitive", "team_member.phone", &object).await);
        }
        let reason = reason.trim();
        if reason.chars().count() < 2 {
            return Err(StoreError::Invalid { code: "reason_required", message: "reading a sensitive value needs a stated reason".into() });
        }
        let phone: Option<String> = row.as_ref().map(|r| r.try_get("phone")).transpose()?.flatten();
        let Some(phone) = phone else {
            return Err(StoreError::NotFound(format!("team_member.phone {object}")));
        };
        self.db.audit(self.actor.entry("read_sensitive", "team_member.phone", &object, "ok", reason)).await?;
        Ok(phone)
    }

    /// The team editor, for roles that may change teams.
    pub fn team_editor(&self) -> Option<TeamEditor<'_>> {
        self.who.role.edits_teams().then_some(TeamEditor { s: self })
    }

    /// The account administrator, for admins.
    pub fn account_admin(&self) -> Option<AccountAdmin<'_>> {
        self.who.role.manages_accounts().then_some(AccountAdmin { s: self })
    }

    /// The incident desk, for the roles that work incidents (not auditors or admins).
    pub fn incidents(&self) -> Option<IncidentDesk<'_>> {
        (!matches!(self.who.role, Role::Auditor | Role::Admin)).then_some(IncidentDesk { s: self, scope: IncidentScope::of(self.who) })
    }

    /// Key figures (考核指标) over the caller's scope, for the roles that work incidents:
    /// its area's subtree, or for a department handler, its department's dispatches.
    /// Like other list reads, not audited.
    pub fn kpis(&self) -> Option<KpiDesk<'_>> {
        (!matches!(self.who.role, Role::Auditor | Role::Admin)).then_some(KpiDesk { s: self, scope: IncidentScope::of(self.who) })
    }

    /// The work calendar's editor, for district-level shift leads and admins (the calendar
    /// is the whole district's).
    pub fn calendar_editor(&self) -> Option<CalendarEditor<'_>> {
        (self.who.role.edits_calendar() && self.who.area.as_str().len() == domain::Level::District.code_len())
            .then_some(CalendarEditor { s: self })
    }

    /// The audit trail, for auditors.
    pub fn audit_reader(&self) -> Option<AuditReader<'_>> {
        self.who.role.reads_audit().then_some(AuditReader { s: self })
    }
}

/// Changes grid teams in the caller's area.
pub struct TeamEditor<'s> {
    s: &'s Scoped<'s>,
}

impl TeamEditor<'_> {
    /// Replace the team of a grid (basic or dedicated) in scope.
    pub async fn set_team(&self, grid: &AreaCode, members: &[TeamInput]) -> Result<(), StoreError> {
        let db = self.s.db;
        let area = db.area(grid).await?;
        if !self.s.in_scope(grid) || area.as_ref().is_none_or(|a| !a.level.is_grid()) {
            return Err(self.s.deny("team.update", "area", grid.as_str()).await);
        }
        for m in members {
            if m.name.trim().is_empty() {
                return Err(StoreError::Invalid { code: "invalid_member", message: "a team member needs a name".into() });
            }
        }
        let mut tx = db.write_tx().await?;
        sqlx::query("DELETE FROM team_members WHERE area_code = $1").bind(grid.as_str()).execute(&mut *tx).await?;
        for (k, m) in members.iter().enumerate() {
            sqlx::query("INSERT INTO team_members (area_code, role, name, phone, position) VALUES ($1, $2, $3, $4, $5)")
                .bind(grid.as_str())
                .bind(m.role.as_str())
                .bind(m.name.trim())
                .bind(m.phone.as_ref().map(|p| p.as_str().to_string()))
                .bind(k as i64 + 1)
                .execute(&mut *tx)
                .await?;
        }
        let detail = format!("{} members", members.len());
        audit::append(db, &mut tx, self.s.actor.entry("team.update", "area", grid.as_str(), "ok", &detail)).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Manages accounts whose area lies in the admin's area.
pub struct AccountAdmin<'s> {
    s: &'s Scoped<'s>,
}

impl AccountAdmin<'_> {
    pub async fn list(&self) -> Result<Vec<Account>, StoreError> {
        self.s.db.accounts_within(&self.s.who.area).await
    }

    /// One account in scope, its read audited; any other id is denied (and audited) as not found.
    pub async fn get(&self, id: i64) -> Result<Account, StoreError> {
        let a = self.find(id, "account.read").await?;
        if self.s.db.audit_reads() {
            self.s.db.audit_as(&self.s.actor, "account.read", "account", &id.to_string(), "ok", "").await?;
        }
        Ok(a)
    }

    /// An account in scope, before acting on it.
    async fn find(&self, id: i64, action: &str) -> Result<Account, StoreError> {
        match self.s.db.account_by_id(id).await? {
            Some(a) if self.s.in_scope(&a.area) => Ok(a),
            _ => Err(self.s.deny(action, "account", &id.to_string()).await),
        }
    }

    fn area_in_scope(&self, area: &AreaCode) -> Result<(), StoreError> {
        if self.s.in_scope(area) {
            Ok(())
        } else {
            Err(StoreError::Invalid {
                code: "area_out_of_scope",
                message: format!("area {area} is outside your area {}", self.s.who.area),
            })
        }
    }

    pub async fn create(&self, a: NewAccount) -> Result<Account, StoreError> {
        self.area_in_scope(&a.area)?;
        self.s.db.create_account(&self.s.actor, a).await
    }

    pub async fn set_active(&self, id: i64, active: bool) -> Result<(), StoreError> {
        let acc = self.find(id, if active { "account.enable" } else { "account.disable" }).await?;
        if acc.id == self.s.who.account_id && !active {
            return Err(StoreError::Invalid { code: "cannot_disable_self", message: "you cannot disable your own account".into() });
        }
        self.s.db.set_active(&self.s.actor, id, active).await
    }

    /// Give the account a temporary password, to be changed at its next login.
    pub async fn reset_password(&self, id: i64, temporary: &str) -> Result<(), StoreError> {
        self.find(id, "account.reset_password").await?;
        self.s.db.set_password(&self.s.actor, id, temporary, true, None).await
    }

    pub async fn update(&self, id: i64, role: Role, area: &AreaCode, department: Option<&str>) -> Result<Account, StoreError> {
        self.find(id, "account.update").await?;
        self.area_in_scope(area)?;
        self.s.db.update_account(&self.s.actor, id, role, area, department).await
    }
}

/// Searches the audit trail (auditors only). Each search is itself audited.
pub struct AuditReader<'s> {
    s: &'s Scoped<'s>,
}

impl AuditReader<'_> {
    pub async fn search(&self, q: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        let rows = self.s.db.search_audit(q).await?;
        let detail = format!(
            "actor={} action={} outcome={} object={}",
            q.actor.as_deref().unwrap_or(""),
            q.action.as_deref().unwrap_or(""),
            q.outcome.as_deref().unwrap_or(""),
            q.object_id.as_deref().unwrap_or("")
        );
        self.s.db.audit(self.s.actor.entry("audit.search", "audit_log", "", "ok", &detail)).await?;
        Ok(rows)
    }
}

/// Edits the district's work calendar.
pub struct CalendarEditor<'s> {
    s: &'s Scoped<'s>,
}

impl CalendarEditor<'_> {
    /// Mark a day as a holiday or a make-up workday, or (None) return it to the weekly pattern.
    pub async fn set_day(&self, day: domain::calendar::Day, entry: Option<(crate::catalogue::DayKind, &str)>) -> Result<(), StoreError> {
        if let Some((_, name)) = entry
            && name.trim().is_empty() {
                return Err(StoreError::Invalid { code: "invalid_day_name", message: "a holiday or make-up workday needs a name".into() });
            }
        self.s.db.set_calendar_day(&self.s.actor, day, entry).await
    }
}

/// Reports, reads and moves incidents in the caller's scope: its area's subtree, or for a
/// department handler, what is dispatched to its department.
pub struct IncidentDesk<'s> {
    s: &'s Scoped<'s>,
    scope: IncidentScope,
}

impl IncidentDesk<'_> {
    /// Report an incident. Department handlers receive work; they do not report it.
    pub async fn report(&self, new: NewIncident, idempotency_key: Option<&str>) -> Result<(Incident, bool), StoreError> {
        if self.s.who.role == Role::DepartmentHandler {
            return Err(self.s.deny("incident.report", "incident", "").await);
        }
        self.s.db.create_incident(&self.s.actor, Some(self.s.who.account_id), new, idempotency_key).await
    }

    pub async fn list(&self, f: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        self.s.db.incidents_where(&self.scope, f).await
    }

    /// One incident in scope, with its timeline; anything else is denied as not found.
    pub async fn get(&self, id: i64) -> Result<(Incident, Vec<Transition>), StoreError> {
        match self.s.db.incident(id).await? {
            Some(i) if self.scope.contains(&i) => {
                let t = self.s.db.timeline(id).await?;
                Ok((i, t))
            }
            _ => Err(self.s.deny("incident.read", "incident", &id.to_string()).await),
        }
    }

    /// Add a photo (stripped of metadata by the caller) to an incident in scope.
    pub async fn add_photo(&self, id: i64, mime: &str, bytes: Vec<u8>) -> Result<crate::photos::PhotoRef, StoreError> {
        match self.s.db.incident(id).await? {
            Some(i) if self.scope.contains(&i) && i.loop_.state != domain::incident::State::Voided => {
                self.s.db.add_photo(&self.s.actor, id, mime, bytes).await
            }
            _ => Err(self.s.deny("incident.photo", "incident", &id.to_string()).await),
        }
    }

    /// A photo of an incident in scope.
    pub async fn photo(&self, hash: &str) -> Result<(String, Vec<u8>), StoreError> {
        for id in self.s.db.photo_incidents(hash).await? {
            if self.s.db.incident(id).await?.is_some_and(|i| self.scope.contains(&i))
                && let Some(p) = self.s.db.photo_bytes(hash).await? {
                    return Ok(p);
                }
        }
        Err(self.s.deny("photo.read", "photo", hash).await)
    }

    /// Open incidents of the same category within 50 m and 72 h (duplicate suggestions), in scope.
    pub async fn duplicate_candidates(&self, i: &Incident) -> Result<Vec<Incident>, StoreError> {
        let near = self.s.db.nearby_open(i, 50.0, 72).await?;
        Ok(near.into_iter().filter(|n| self.scope.contains(n)).collect())
    }

    /// How many incidents in scope match the filter, by state and by warning colour now
    /// (each facet ignoring its own part of the filter).
    pub async fn counts(&self, f: &IncidentFilter) -> Result<IncidentCounts, StoreError> {
        self.s.db.incident_counts(&self.scope, f, self.s.db.now_ms()).await
    }

    /// The actions the caller may take on an incident now: those the loop allows the role,
    /// less the dispatched work that went to someone else.
    pub fn allowed(&self, i: &Incident) -> Vec<domain::incident::Action> {
        domain::incident::allowed(&i.loop_, domain::incident::Actor::Staff(self.s.who.role))
            .into_iter()
            .filter(|a| !assignee_only(*a) || self.is_assignee(i))
            .collect()
    }

    /// Whether dispatched work is the caller's: the department's handlers, or the people
    /// of the grid it went to.
    fn is_assignee(&self, i: &Incident) -> bool {
        let who = self.s.who;
        match (&i.department, &i.assignee_area) {
            (Some(d), _) => who.role == Role::DepartmentHandler && who.department.as_deref() == Some(d.as_str()),
            (None, Some(g)) => who.role != Role::DepartmentHandler && g.starts_with(&who.area),
            (None, None) => false,
        }
    }

    /// Whether the caller's role may place address-only reports (the command centre's).
    pub fn may_place(&self) -> bool {
        matches!(self.s.who.role, Role::Operator | Role::Dispatcher | Role::ShiftLead)
    }

    /// Place an address-only report (定位): give it the point an operator found and the
    /// basic grid that point lies in, which moves it from the district's unassigned queue
    /// to that grid. Versioned like a transition, written in the timeline as a `place` step
    /// (who, when, the note) and audited in the same transaction. The incident must be in
    /// scope (else denied as not found) and so must the grid.
    pub async fn place(&self, id: i64, version: i64, point: (f64, f64), grid: &domain::AreaCode, note: &str) -> Result<Incident, TransitionFailure> {
        let inc = match self.s.db.incident(id).await? {
            Some(i) if self.scope.contains(&i) => i,
            _ => return Err(TransitionFailure::Store(self.s.deny("incident.place", "incident", &id.to_string()).await)),
        };
        if !self.may_place() {
            return Err(TransitionFailure::Refused(domain::incident::TransitionError::Forbidden { action: "place" }));
        }
        if !self.s.in_scope(grid) {
            return Err(StoreError::Invalid { code: "area_out_of_scope", message: format!("grid {grid} is outside your area {}", self.s.who.area) }.into());
        }
        self.s.db.place_incident(&self.s.actor, inc.id, version, point, grid, note).await
    }

    pub async fn transition(
        &self,
        id: i64,
        version: i64,
        action: domain::incident::Action,
        input: &TransitionInput,
    ) -> Result<Incident, TransitionFailure> {
        let deny = |what: String| async move { TransitionFailure::Store(self.s.deny(&format!("incident.{}", action.as_str()), "incident", &what).await) };
        let inc = match self.s.db.incident(id).await? {
            Some(i) if self.scope.contains(&i) => i,
            _ => return Err(deny(id.to_string()).await),
        };
        // Work that was dispatched is done by whom it was dispatched to: the department's
        // handlers, or the people of the grid.
        if assignee_only(action) && !self.is_assignee(&inc) {
            return Err(TransitionFailure::Refused(domain::incident::TransitionError::Forbidden { action: action.as_str() }));
        }
        // A merge's survivor must be in scope too.
        if let Some(into) = input.into {
            match self.s.db.incident(into).await? {
                Some(t) if self.scope.contains(&t) => {}
                _ => return Err(deny(into.to_string()).await),
            }
        }
        let who = domain::incident::Actor::Staff(self.s.who.role);
        self.s.db.transition(&self.s.actor, who, id, version, action, input).await
    }
}

/// Actions only the assignee of dispatched work takes.
fn assignee_only(a: domain::incident::Action) -> bool {
    use domain::incident::Action as A;
    matches!(a, A::Accept | A::Return | A::RequestExtension | A::Handle)
}

/// Reads key figures within the caller's scope.
pub struct KpiDesk<'s> {
    s: &'s Scoped<'s>,
    scope: IncidentScope,
}

impl KpiDesk<'_> {
    /// A KPI table for an area in the caller's subtree (any other area is denied, and
    /// audited, as not found). A department handler's figures count only its department.
    pub async fn table(&self, q: &crate::kpis::KpiQuery) -> Result<crate::kpis::KpiTable, StoreError> {
        if !self.s.in_scope(&q.area) {
            return Err(self.s.deny("kpi.read", "area", q.area.as_str()).await);
        }
        match &self.scope {
            IncidentScope::Department(d) => self.s.db.kpi_table(Some(d), q).await,
            IncidentScope::Area(_) | IncidentScope::All => self.s.db.kpi_table(None, q).await,
        }
    }
}
