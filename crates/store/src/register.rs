//! The register (实有人口、房屋、单位, issue 5): persons, households, houses and
//! organisations, the links between them, and the history of every change.
//!
//! Handlers reach it only through [`RegisterDesk`] (from `Scoped::register`), whose reads
//! and writes are limited to the caller's area subtree. Who gets which desk:
//! - grid workers and grid leaders write in their grid; community and street staff write in
//!   their subtree (采集: they collect and correct the register);
//! - the command centre (operators, dispatchers, shift leads) reads its subtree, to find
//!   who lives at an incident's address, and does not write;
//! - department handlers, volunteers, auditors, admins and API clients get no desk: the
//!   register is personal data (PIPL), and none of those roles needs it for its work.
//!
//! **A write's path.** `RegisterDesk::<write>` → the write lock (`Db::write_tx`) → the
//! objects it touches are read inside the transaction and checked (exist, in scope, version
//! current, input valid) → the rows are written → one `register_history` row per changed
//! field (who, when, the action, the entity, old and new values; the citizen ID number and
//! phones are stored there masked) → one audit row → one change-log entry per changed
//! entity (the search index, `store::search`, follows them) → commit. Anything refused rolls the
//! transaction back, so nothing of it is stored; an object out of scope is then denied
//! (a `denied` audit row, written after the rollback) and answered as not found.
//!
//! Persons leave the store masked ([`PersonView`]); [`RegisterDesk::unmask_person`] returns
//! the full ID number or phone to a role that may unmask (`Role::may_unmask`), with a
//! stated reason, and audits it. Reads of persons are audited like account reads
//! (`Db::audit_reads`).

use domain::access::{mask_id_number, mask_phone};
use domain::calendar::Day;
use domain::register::{CitizenId, CreditCode, PersonTag, PopulationType, Relation};
use domain::{AreaCode, Phone, Role};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::audit::{self, Actor};
use crate::changes::{self, Op};
use crate::db::Db;
use crate::scoped::Scoped;
use crate::StoreError;

mod lists;
pub use lists::{PersonFormEdit, PersonListRow, RegisterQuery};

type Tx = Transaction<'static, Any>;

/// The longest page a list returns.
pub const MAX_PAGE: i64 = 500;

/// What a house is used for (房屋用途).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HouseUse {
    /// 住宅
    Residential,
    /// 商铺
    Shop,
    /// 商住两用
    Mixed,
    /// 办公
    Office,
    /// 厂房
    Factory,
    /// 其他
    Other,
}

impl HouseUse {
    pub const ALL: [HouseUse; 6] = [HouseUse::Residential, HouseUse::Shop, HouseUse::Mixed, HouseUse::Office, HouseUse::Factory, HouseUse::Other];
    pub fn as_str(self) -> &'static str {
        match self {
            HouseUse::Residential => "residential",
            HouseUse::Shop => "shop",
            HouseUse::Mixed => "mixed",
            HouseUse::Office => "office",
            HouseUse::Factory => "factory",
            HouseUse::Other => "other",
        }
    }
    pub fn parse(s: &str) -> Option<HouseUse> {
        HouseUse::ALL.into_iter().find(|u| u.as_str() == s)
    }
}

/// How a person is linked to a house.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tenure {
    /// 居住: lives there.
    Lives,
    /// 产权人: owns it.
    Owns,
    /// 承租人: rents it.
    Rents,
}

impl Tenure {
    pub fn as_str(self) -> &'static str {
        match self {
            Tenure::Lives => "lives",
            Tenure::Owns => "owns",
            Tenure::Rents => "rents",
        }
    }
    pub fn parse(s: &str) -> Option<Tenure> {
        [Tenure::Lives, Tenure::Owns, Tenure::Rents].into_iter().find(|t| t.as_str() == s)
    }
}

/// A person as it leaves the store: the ID number and the phone masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonView {
    pub id: i64,
    /// `430503********1234`; the full number needs [`RegisterDesk::unmask_person`].
    pub citizen_id_masked: String,
    pub name: String,
    /// `male` or `female`, from the number.
    pub gender: String,
    /// From the number.
    pub birth_date: Day,
    /// `138****5678`.
    pub phone_masked: Option<String>,
    pub ethnicity: Option<String>,
    pub house_id: Option<i64>,
    /// The grid of the current house (or where the person was recorded).
    pub area: String,
    /// 户籍 / 常住 / 流动.
    pub population_type: PopulationType,
    /// 独居老人, 残疾人 … (sorted).
    pub tags: Vec<PersonTag>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A new person. The ID number is parsed before it gets here (see [`parse_citizen_id`]);
/// gender and birth date come from it. The person lives in `house_id` (and in its grid), or,
/// without a house, is recorded in `area` (a grid).
#[derive(Debug, Clone)]
pub struct NewPerson {
    pub citizen_id: CitizenId,
    pub name: String,
    pub phone: Option<Phone>,
    pub ethnicity: Option<String>,
    pub house_id: Option<i64>,
    pub area: Option<AreaCode>,
    pub population_type: PopulationType,
    pub tags: Vec<PersonTag>,
}

/// The editable fields of a person (all replaced). The house changes only by
/// [`RegisterDesk::move_person`].
#[derive(Debug, Clone)]
pub struct PersonEdit {
    pub citizen_id: CitizenId,
    pub name: String,
    pub phone: Option<Phone>,
    pub ethnicity: Option<String>,
    pub population_type: PopulationType,
    pub tags: Vec<PersonTag>,
}

/// A house, new or edited (all fields replaced).
#[derive(Debug, Clone, PartialEq)]
pub struct HouseInput {
    pub address: String,
    /// The grid it lies in.
    pub area: AreaCode,
    /// (lat, lon), WGS-84.
    pub point: Option<(f64, f64)>,
    pub area_m2: Option<f64>,
    pub house_use: HouseUse,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HouseView {
    pub id: i64,
    pub address: String,
    pub area: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub area_m2: Option<f64>,
    pub house_use: HouseUse,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A new household: its house (whose grid it takes) or an address and a grid, and its
/// members, exactly one of them the head.
#[derive(Debug, Clone)]
pub struct NewHousehold {
    pub house_id: Option<i64>,
    pub address: Option<String>,
    pub area: Option<AreaCode>,
    pub members: Vec<(i64, Relation)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    pub person_id: i64,
    pub name: String,
    pub relation: Relation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HouseholdView {
    pub id: i64,
    pub house_id: Option<i64>,
    pub address: Option<String>,
    pub area: String,
    pub version: i64,
    /// The head first, then by person id.
    pub members: Vec<MemberView>,
}

/// An organisation, new or edited (all fields replaced). It lies at `house_id` (and in
/// its grid) or in `area`.
#[derive(Debug, Clone)]
pub struct OrganisationInput {
    pub name: String,
    pub credit_code: CreditCode,
    pub address: Option<String>,
    pub house_id: Option<i64>,
    pub area: Option<AreaCode>,
    pub legal_rep: Option<String>,
    pub phone: Option<Phone>,
}

/// An organisation as it leaves the store (its contact phone masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrganisationView {
    pub id: i64,
    pub name: String,
    pub credit_code: String,
    pub address: Option<String>,
    pub house_id: Option<i64>,
    pub area: String,
    pub legal_rep: Option<String>,
    pub phone_masked: Option<String>,
    pub version: i64,
}

/// A list's filter and page: rows in the caller's scope, narrowed to `area`'s subtree
/// (itself in scope) and to one house, with ids after `after` (the last id of the previous
/// page), oldest first.
#[derive(Debug, Clone, Default)]
pub struct RegisterFilter {
    pub area: Option<AreaCode>,
    pub house_id: Option<i64>,
    pub after: Option<i64>,
    /// 1..=[`MAX_PAGE`]; 0 means 50.
    pub limit: i64,
    /// Persons only: the name contains this text.
    pub name: Option<String>,
    /// Persons only: `male` or `female`.
    pub gender: Option<String>,
    /// Persons only: born on or after / on or before this day (an age range, as days).
    pub born_from: Option<Day>,
    pub born_to: Option<Day>,
    /// Persons only.
    pub population_type: Option<PopulationType>,
    /// Persons only: carries this tag.
    pub tag: Option<PersonTag>,
    /// Houses and organisations: the address contains this text; organisations: or the name.
    pub text: Option<String>,
}

/// One change of one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryRow {
    pub id: i64,
    pub at: i64,
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub actor_name: String,
    pub operation_id: String,
    /// What the write was: `person.create`, `person.move` …
    pub action: String,
    pub entity: String,
    pub entity_id: i64,
    pub field: String,
    /// Sensitive values (ID number, phones) masked.
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

/// What a register export lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportEntity {
    Persons,
    Houses,
    Households,
    Organisations,
}

impl ExportEntity {
    pub fn table(self) -> &'static str {
        match self {
            ExportEntity::Persons => "persons",
            ExportEntity::Houses => "houses",
            ExportEntity::Households => "households",
            ExportEntity::Organisations => "organisations",
        }
    }
    pub fn entity(self) -> &'static str {
        match self {
            ExportEntity::Persons => "person",
            ExportEntity::Houses => "house",
            ExportEntity::Households => "household",
            ExportEntity::Organisations => "organisation",
        }
    }
}

/// A connection held for the pages of one export ([`RegisterDesk::export_reader`]).
pub struct ExportReader(sqlx::pool::PoolConnection<Any>);

/// A household as an export lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HouseholdLine {
    pub id: i64,
    pub house_id: Option<i64>,
    pub address: Option<String>,
    pub area: String,
    pub members: i64,
    pub head_name: Option<String>,
    pub head_citizen_id_masked: Option<String>,
}

/// A bound argument of a list query.
enum Arg {
    Text(String),
    Int(i64),
}

/// A sensitive value of a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sensitive {
    CitizenId,
    Phone,
}

/// Read an ID number typed into a form (see `CitizenId::parse`), refusing it as `Invalid`
/// with the domain's code and message.
pub fn parse_citizen_id(raw: &str, today: Day) -> Result<CitizenId, StoreError> {
    CitizenId::parse(raw, today).map(|p| p.value).map_err(|e| StoreError::Invalid { code: e.code(), message: e.to_string() })
}

/// Why a write stopped: a store error, or an object the caller may not touch (denied
/// after the transaction is rolled back, answered as not found).
pub(crate) enum Fail {
    Store(StoreError),
    Deny(&'static str, String),
}

impl<E: Into<StoreError>> From<E> for Fail {
    fn from(e: E) -> Self {
        Fail::Store(e.into())
    }
}

/// Start a write of a desk (the register's, collection's): a role that may not write is
/// denied (audited, answered as not found) before the write lock is taken.
pub(crate) async fn begin_write(s: &Scoped<'_>, writes: bool, action: &str, entity: &str, id: &str) -> Result<Tx, StoreError> {
    if !writes {
        return Err(s.deny(action, entity, id).await);
    }
    s.db.write_tx().await
}

/// Commit a desk's write that succeeded; roll back one that failed, then deny it if it was
/// out of scope (the denial's audit row is written after the rollback).
pub(crate) async fn finish_write<T>(s: &Scoped<'_>, tx: Tx, action: &str, r: Result<T, Fail>) -> Result<T, StoreError> {
    match r {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(Fail::Store(e)) => Err(e),
        Err(Fail::Deny(entity, id)) => {
            drop(tx);
            Err(s.deny(action, entity, &id).await)
        }
    }
}

pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Fail {
    Fail::Store(StoreError::Invalid { code, message: message.into() })
}

fn stale(entity: &str, id: i64, current: i64) -> Fail {
    Fail::Store(StoreError::Conflict { code: "stale_version", message: format!("{entity} {id} changed since it was read (now version {current})") })
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("register: {what}"))
}

/// A name or address: trimmed, not empty, at most `max` characters.
fn text_field(field: &'static str, v: &str, max: usize) -> Result<String, Fail> {
    let t = v.trim();
    if t.is_empty() {
        return Err(invalid("field_required", format!("{field} is required")));
    }
    if t.chars().count() > max {
        return Err(invalid("field_too_long", format!("{field} has more than {max} characters")));
    }
    Ok(t.to_string())
}

fn opt_text(field: &'static str, v: Option<&str>, max: usize) -> Result<Option<String>, Fail> {
    match v.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => text_field(field, t, max).map(Some),
        None => Ok(None),
    }
}

const PERSON_COLUMNS: &str = "id, citizen_id, name, gender, birth_day, phone, ethnicity, house_id, area_code, population_type, tags, version, created_at, updated_at";
const HOUSE_COLUMNS: &str = "id, address, area_code, lat, lon, area_m2, house_use, version, created_at, updated_at";
const ORG_COLUMNS: &str = "id, name, credit_code, address, house_id, area_code, legal_rep, phone, version";

/// A person row as stored (the full values stay inside this module).
struct PersonRow {
    view: PersonView,
    citizen_id: String,
    phone: Option<String>,
}

fn person_row(r: &AnyRow) -> Result<PersonRow, StoreError> {
    let citizen_id: String = r.try_get("citizen_id")?;
    let phone: Option<String> = r.try_get("phone")?;
    let population_type: String = r.try_get("population_type")?;
    let tags: String = r.try_get("tags")?;
    Ok(PersonRow {
        view: PersonView {
            id: r.try_get("id")?,
            citizen_id_masked: mask_id_number(&citizen_id),
            name: r.try_get("name")?,
            gender: r.try_get("gender")?,
            birth_date: Day(r.try_get("birth_day")?),
            phone_masked: phone.as_deref().map(mask_phone),
            ethnicity: r.try_get("ethnicity")?,
            house_id: r.try_get("house_id")?,
            area: r.try_get("area_code")?,
            population_type: PopulationType::parse(&population_type).ok_or_else(|| corrupt("persons.population_type"))?,
            tags: PersonTag::split(&tags).map_err(|_| corrupt("persons.tags"))?,
            version: r.try_get("version")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        },
        citizen_id,
        phone,
    })
}

fn house_row(r: &AnyRow) -> Result<HouseView, StoreError> {
    let house_use: String = r.try_get("house_use")?;
    Ok(HouseView {
        id: r.try_get("id")?,
        address: r.try_get("address")?,
        area: r.try_get("area_code")?,
        lat: r.try_get("lat")?,
        lon: r.try_get("lon")?,
        area_m2: r.try_get("area_m2")?,
        house_use: HouseUse::parse(&house_use).ok_or_else(|| corrupt("houses.house_use"))?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// An organisation row; the full phone stays here.
fn org_row(r: &AnyRow) -> Result<(OrganisationView, Option<String>), StoreError> {
    let phone: Option<String> = r.try_get("phone")?;
    Ok((
        OrganisationView {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            credit_code: r.try_get("credit_code")?,
            address: r.try_get("address")?,
            house_id: r.try_get("house_id")?,
            area: r.try_get("area_code")?,
            legal_rep: r.try_get("legal_rep")?,
            phone_masked: phone.as_deref().map(mask_phone),
            version: r.try_get("version")?,
        },
        phone,
    ))
}

fn relation_of(s: &str) -> Result<Relation, StoreError> {
    Relation::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| corrupt("household_members.relation"))
}

/// The history rows of one write, all stamped with its actor, action and time.
pub(crate) struct History<'a> {
    db: &'a Db,
    actor: &'a Actor,
    action: &'a str,
}

impl<'a> History<'a> {
    pub(crate) fn new(db: &'a Db, actor: &'a Actor, action: &'a str) -> History<'a> {
        History { db, actor, action }
    }

    pub(crate) async fn row(&self, tx: &mut Tx, entity: &str, id: i64, field: &str, old: Option<&str>, new: Option<&str>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO register_history (at, actor_kind, actor_id, actor_name, operation_id, action, entity, entity_id, field, old_value, new_value) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(self.db.now_ms())
        .bind(&self.actor.kind)
        .bind(self.actor.id)
        .bind(&self.actor.name)
        .bind(&self.actor.operation_id)
        .bind(self.action)
        .bind(entity)
        .bind(id)
        .bind(field)
        .bind(old.map(str::to_string))
        .bind(new.map(str::to_string))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// A row only when the value changed.
    async fn diff(&self, tx: &mut Tx, entity: &str, id: i64, field: &str, old: Option<&str>, new: Option<&str>) -> Result<(), StoreError> {
        if old != new {
            self.row(tx, entity, id, field, old, new).await?;
        }
        Ok(())
    }
}

fn fmt_f64(v: Option<f64>) -> Option<String> {
    v.map(|v| v.to_string())
}

/// Reads and writes the register within the caller's area subtree.
pub struct RegisterDesk<'s> {
    pub(crate) s: &'s Scoped<'s>,
    pub(crate) writes: bool,
}

impl<'a> Scoped<'a> {
    /// The register desk: read and write for grid workers and leaders (their grid) and
    /// community and street staff (their subtree); read-only for the command centre
    /// (operators, dispatchers, shift leads); none for other roles.
    pub fn register(&self) -> Option<RegisterDesk<'_>> {
        let writes = register_writes(self.who.role);
        let reads = writes || matches!(self.who.role, Role::Operator | Role::Dispatcher | Role::ShiftLead);
        reads.then_some(RegisterDesk { s: self, writes })
    }
}

/// Roles that collect and correct the register.
pub fn register_writes(role: Role) -> bool {
    matches!(role, Role::GridWorker | Role::GridLeader | Role::CommunityStaff | Role::StreetStaff)
}

impl RegisterDesk<'_> {
    /// Whether this caller may write (else every write is denied as not found).
    pub fn may_write(&self) -> bool {
        self.writes
    }

    fn db(&self) -> &Db {
        self.s.db
    }

    /// The caller's handle (for the search in `store::search`).
    pub(crate) fn scoped(&self) -> &Scoped<'_> {
        self.s
    }

    pub(crate) fn in_scope(&self, area: &str) -> bool {
        AreaCode::parse(area).is_ok_and(|c| self.s.in_scope(&c))
    }

    pub(crate) fn history<'h>(&'h self, action: &'h str) -> History<'h> {
        History { db: self.s.db, actor: &self.s.actor, action }
    }

    /// Commit a write that succeeded; roll back one that failed, then deny it if it was out
    /// of scope.
    async fn finish<T>(&self, tx: Tx, action: &str, r: Result<T, Fail>) -> Result<T, StoreError> {
        finish_write(self.s, tx, action, r).await
    }

    /// The write lock, or the denial of a read-only caller.
    async fn begin(&self, action: &str, entity: &str, id: &str) -> Result<Tx, StoreError> {
        begin_write(self.s, self.writes, action, entity, id).await
    }

    async fn audit_ok(&self, tx: &mut Tx, action: &str, entity: &str, id: i64, detail: &str) -> Result<(), StoreError> {
        audit::append(self.s.db, tx, self.s.actor.entry(action, entity, &id.to_string(), "ok", detail)).await?;
        changes::append(self.s.db, tx, entity, &id.to_string(), Op::Upsert).await
    }

    pub(crate) async fn audit_read(&self, action: &str, entity: &str, id: &str, detail: &str) -> Result<(), StoreError> {
        if self.db().audit_reads() {
            self.db().audit_as(&self.s.actor, action, entity, id, "ok", detail).await?;
        }
        Ok(())
    }

    // ---- reads inside a write transaction ----

    async fn house_in(&self, tx: &mut Tx, id: i64) -> Result<HouseView, Fail> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {HOUSE_COLUMNS} FROM houses WHERE id = $1"))).bind(id).fetch_optional(&mut **tx).await?;
        match row.map(|r| house_row(&r)).transpose()? {
            Some(h) if self.in_scope(&h.area) => Ok(h),
            _ => Err(Fail::Deny("house", id.to_string())),
        }
    }

    async fn person_in(&self, tx: &mut Tx, id: i64) -> Result<PersonRow, Fail> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PERSON_COLUMNS} FROM persons WHERE id = $1"))).bind(id).fetch_optional(&mut **tx).await?;
        match row.map(|r| person_row(&r)).transpose()? {
            Some(p) if self.in_scope(&p.view.area) => Ok(p),
            _ => Err(Fail::Deny("person", id.to_string())),
        }
    }

    async fn org_in(&self, tx: &mut Tx, id: i64) -> Result<(OrganisationView, Option<String>), Fail> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ORG_COLUMNS} FROM organisations WHERE id = $1"))).bind(id).fetch_optional(&mut **tx).await?;
        match row.map(|r| org_row(&r)).transpose()? {
            Some(o) if self.in_scope(&o.0.area) => Ok(o),
            _ => Err(Fail::Deny("organisation", id.to_string())),
        }
    }

    /// A basic grid that exists and lies in scope.
    async fn grid_in(&self, tx: &mut Tx, area: &AreaCode) -> Result<(), Fail> {
        let level: Option<String> = sqlx::query("SELECT level FROM areas WHERE code = $1")
            .bind(area.as_str())
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        match level {
            None => Err(invalid("unknown_area", format!("area {area} does not exist"))),
            // Houses lie in basic grids, which tile the district (a point lies in exactly one);
            // dedicated grids overlap them, and a record there would leave its basic grid's view.
            Some(l) if l != "grid" => Err(invalid("not_a_grid", format!("area {area} is not a basic grid"))),
            Some(_) if !self.s.in_scope(area) => {
                Err(invalid("area_out_of_scope", format!("area {area} is outside your area {}", self.s.who.area)))
            }
            Some(_) => Ok(()),
        }
    }

    /// Where a person, household or organisation lies: its house's grid, or the grid given.
    /// Both given and different is refused.
    async fn place_of(&self, tx: &mut Tx, house_id: Option<i64>, area: Option<&AreaCode>) -> Result<String, Fail> {
        match (house_id, area) {
            (Some(h), area) => {
                let house = self.house_in(tx, h).await?;
                if let Some(a) = area
                    && a.as_str() != house.area
                {
                    return Err(invalid("house_in_other_grid", format!("house {h} lies in grid {}, not {a}", house.area)));
                }
                Ok(house.area)
            }
            (None, Some(a)) => {
                self.grid_in(tx, a).await?;
                Ok(a.to_string())
            }
            (None, None) => Err(invalid("place_required", "a house or a grid is required")),
        }
    }

    async fn citizen_id_free(&self, tx: &mut Tx, id: &CitizenId, except: Option<i64>) -> Result<(), Fail> {
        let other: Option<i64> = sqlx::query("SELECT id FROM persons WHERE citizen_id = $1")
            .bind(id.expose())
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        match other {
            Some(o) if Some(o) != except => Err(Fail::Store(StoreError::Conflict {
                code: "duplicate_citizen_id",
                message: format!("ID number {} is already in the register", id.masked()),
            })),
            _ => Ok(()),
        }
    }

    // ---- persons ----

    /// Record a person (实有人口). A duplicate ID number is a conflict; nothing is stored.
    pub async fn create_person(&self, p: NewPerson) -> Result<PersonView, StoreError> {
        let mut tx = self.begin("person.create", "person", "").await?;
        let r = self.create_person_in(&mut tx, p).await;
        self.finish(tx, "person.create", r).await
    }

    async fn create_person_in(&self, tx: &mut Tx, p: NewPerson) -> Result<PersonView, Fail> {
        let name = text_field("name", &p.name, 50)?;
        let ethnicity = opt_text("ethnicity", p.ethnicity.as_deref(), 20)?;
        let area = self.place_of(tx, p.house_id, p.area.as_ref()).await?;
        self.citizen_id_free(tx, &p.citizen_id, None).await?;
        let now = self.db().now_ms();
        let id: i64 = sqlx::query(
            "INSERT INTO persons (citizen_id, name, gender, birth_day, phone, ethnicity, house_id, area_code, created_at, updated_at, version, population_type, tags) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 1, $10, $11) RETURNING id",
        )
        .bind(p.citizen_id.expose())
        .bind(&name)
        .bind(p.citizen_id.gender().as_str())
        .bind(p.citizen_id.birth_date().0)
        .bind(p.phone.as_ref().map(|x| x.as_str().to_string()))
        .bind(&ethnicity)
        .bind(p.house_id)
        .bind(&area)
        .bind(now)
        .bind(p.population_type.as_str())
        .bind(PersonTag::join(&p.tags))
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
        let h = self.history("person.create");
        h.row(tx, "person", id, "citizen_id", None, Some(&p.citizen_id.masked())).await?;
        h.row(tx, "person", id, "name", None, Some(&name)).await?;
        h.diff(tx, "person", id, "phone", None, p.phone.as_ref().map(|x| x.masked()).as_deref()).await?;
        h.diff(tx, "person", id, "ethnicity", None, ethnicity.as_deref()).await?;
        h.row(tx, "person", id, "area_code", None, Some(&area)).await?;
        h.row(tx, "person", id, "population_type", None, Some(p.population_type.as_str())).await?;
        h.diff(tx, "person", id, "tags", None, Some(PersonTag::join(&p.tags)).filter(|t| !t.is_empty()).as_deref()).await?;
        if let Some(house) = p.house_id {
            h.row(tx, "person", id, "house_id", None, Some(&house.to_string())).await?;
            self.link_person_in(tx, &h, id, house, Tenure::Lives).await?;
        }
        self.audit_ok(tx, "person.create", "person", id, &area).await?;
        Ok(self.person_in(tx, id).await?.view)
    }

    /// Change a person's fields at the version the caller read; a stale version is a
    /// conflict.
    pub async fn update_person(&self, id: i64, version: i64, e: PersonEdit) -> Result<PersonView, StoreError> {
        let mut tx = self.begin("person.update", "person", &id.to_string()).await?;
        let r = self.update_person_in(&mut tx, id, version, e).await;
        self.finish(tx, "person.update", r).await
    }

    async fn update_person_in(&self, tx: &mut Tx, id: i64, version: i64, e: PersonEdit) -> Result<PersonView, Fail> {
        let cur = self.person_in(tx, id).await?;
        if cur.view.version != version {
            return Err(stale("person", id, cur.view.version));
        }
        let name = text_field("name", &e.name, 50)?;
        let ethnicity = opt_text("ethnicity", e.ethnicity.as_deref(), 20)?;
        self.citizen_id_free(tx, &e.citizen_id, Some(id)).await?;
        let phone = e.phone.as_ref().map(|x| x.as_str().to_string());
        sqlx::query(
            "UPDATE persons SET citizen_id = $1, name = $2, gender = $3, birth_day = $4, phone = $5, ethnicity = $6, updated_at = $7, \
             version = version + 1, population_type = $9, tags = $10 WHERE id = $8",
        )
        .bind(e.citizen_id.expose())
        .bind(&name)
        .bind(e.citizen_id.gender().as_str())
        .bind(e.citizen_id.birth_date().0)
        .bind(&phone)
        .bind(&ethnicity)
        .bind(self.db().now_ms())
        .bind(id)
        .bind(e.population_type.as_str())
        .bind(PersonTag::join(&e.tags))
        .execute(&mut **tx)
        .await?;
        let h = self.history("person.update");
        if cur.citizen_id != e.citizen_id.expose() {
            h.row(tx, "person", id, "citizen_id", Some(&cur.view.citizen_id_masked), Some(&e.citizen_id.masked())).await?;
        }
        h.diff(tx, "person", id, "name", Some(&cur.view.name), Some(&name)).await?;
        if cur.phone != phone {
            h.row(tx, "person", id, "phone", cur.view.phone_masked.as_deref(), phone.as_deref().map(mask_phone).as_deref()).await?;
        }
        h.diff(tx, "person", id, "ethnicity", cur.view.ethnicity.as_deref(), ethnicity.as_deref()).await?;
        h.diff(tx, "person", id, "population_type", Some(cur.view.population_type.as_str()), Some(e.population_type.as_str())).await?;
        let (old_tags, new_tags) = (PersonTag::join(&cur.view.tags), PersonTag::join(&e.tags));
        h.diff(tx, "person", id, "tags", Some(old_tags.as_str()).filter(|t| !t.is_empty()), Some(new_tags.as_str()).filter(|t| !t.is_empty())).await?;
        self.audit_ok(tx, "person.update", "person", id, "").await?;
        Ok(self.person_in(tx, id).await?.view)
    }

    /// Move a person out of their house and into another (迁出/迁入), as one transaction:
    /// the `lives` link to the old house ends, one to the new house starts, the person's
    /// house and grid change, and the history shows both sides (on the person, and a
    /// `resident` row on each house). Both the person and the new house must be in scope,
    /// so a move across grids is made by someone whose area holds both.
    pub async fn move_person(&self, id: i64, version: i64, to_house: i64) -> Result<PersonView, StoreError> {
        let mut tx = self.begin("person.move", "person", &id.to_string()).await?;
        let r = self.move_person_in(&mut tx, id, version, to_house).await;
        self.finish(tx, "person.move", r).await
    }

    async fn move_person_in(&self, tx: &mut Tx, id: i64, version: i64, to_house: i64) -> Result<PersonView, Fail> {
        let cur = self.person_in(tx, id).await?;
        if cur.view.version != version {
            return Err(stale("person", id, cur.view.version));
        }
        let to = self.house_in(tx, to_house).await?;
        if cur.view.house_id == Some(to_house) {
            return Err(invalid("same_house", format!("person {id} already lives in house {to_house}")));
        }
        let h = self.history("person.move");
        if let Some(from) = cur.view.house_id {
            sqlx::query("DELETE FROM person_houses WHERE person_id = $1 AND house_id = $2 AND kind = 'lives'")
                .bind(id)
                .bind(from)
                .execute(&mut **tx)
                .await?;
            h.row(tx, "house", from, "resident", Some(&id.to_string()), None).await?;
            changes::append(self.s.db, tx, "house", &from.to_string(), Op::Upsert).await?;
        }
        sqlx::query("UPDATE persons SET house_id = $1, area_code = $2, updated_at = $3, version = version + 1 WHERE id = $4")
            .bind(to_house)
            .bind(&to.area)
            .bind(self.db().now_ms())
            .bind(id)
            .execute(&mut **tx)
            .await?;
        let old_house = cur.view.house_id.map(|x| x.to_string());
        h.row(tx, "person", id, "house_id", old_house.as_deref(), Some(&to_house.to_string())).await?;
        h.diff(tx, "person", id, "area_code", Some(&cur.view.area), Some(&to.area)).await?;
        self.link_person_in(tx, &h, id, to_house, Tenure::Lives).await?;
        let detail = format!("from house {} to house {to_house}", old_house.as_deref().unwrap_or("-"));
        self.audit_ok(tx, "person.move", "person", id, &detail).await?;
        Ok(self.person_in(tx, id).await?.view)
    }

    /// One person in scope (masked); the read is audited. Anything else is denied as not
    /// found.
    pub async fn person(&self, id: i64) -> Result<PersonView, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PERSON_COLUMNS} FROM persons WHERE id = $1"))).bind(id).fetch_optional(&self.db().pool).await?;
        match row.map(|r| person_row(&r)).transpose()? {
            Some(p) if self.in_scope(&p.view.area) => {
                self.audit_read("person.read", "person", &id.to_string(), "").await?;
                Ok(p.view)
            }
            _ => Err(self.s.deny("person.read", "person", &id.to_string()).await),
        }
    }

    /// The person with this exact ID number, in scope (masked). The raw text is parsed
    /// first (a malformed number is `Invalid`); a number not in scope, or not stored,
    /// is denied as not found. Audited with the masked number.
    pub async fn person_by_citizen_id(&self, raw: &str) -> Result<PersonView, StoreError> {
        let id = parse_citizen_id(raw, Day::of_instant(self.db().now_ms()))?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PERSON_COLUMNS} FROM persons WHERE citizen_id = $1")))
            .bind(id.expose())
            .fetch_optional(&self.db().pool)
            .await?;
        match row.map(|r| person_row(&r)).transpose()? {
            Some(p) if self.in_scope(&p.view.area) => {
                self.audit_read("person.lookup", "person", &p.view.id.to_string(), &id.masked()).await?;
                Ok(p.view)
            }
            _ => Err(self.s.deny("person.lookup", "person", &id.masked()).await),
        }
    }

    /// Persons in scope (masked), a page at a time; audited with the count.
    pub async fn persons(&self, f: &RegisterFilter) -> Result<Vec<PersonView>, StoreError> {
        let rows = self.list("persons", PERSON_COLUMNS, f).await?;
        let out: Vec<PersonView> = rows.iter().map(|r| person_row(r).map(|p| p.view)).collect::<Result<_, _>>()?;
        self.audit_read("person.list", "person", "", &format!("{} rows", out.len())).await?;
        Ok(out)
    }

    /// A person's full ID number or phone, with a stated reason, for a role that may
    /// unmask; audited (`read_sensitive`).
    pub async fn unmask_person(&self, id: i64, what: Sensitive, reason: &str) -> Result<Option<String>, StoreError> {
        let object_type = match what {
            Sensitive::CitizenId => "person.citizen_id",
            Sensitive::Phone => "person.phone",
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PERSON_COLUMNS} FROM persons WHERE id = $1"))).bind(id).fetch_optional(&self.db().pool).await?;
        let p = match row.map(|r| person_row(&r)).transpose()? {
            Some(p) if self.in_scope(&p.view.area) && self.s.who.role.may_unmask() => p,
            _ => return Err(self.s.deny("read_sensitive", object_type, &id.to_string()).await),
        };
        let reason = reason.trim();
        if reason.chars().count() < 2 {
            return Err(StoreError::Invalid { code: "reason_required", message: "reading a sensitive value needs a stated reason".into() });
        }
        self.db().audit(self.s.actor.entry("read_sensitive", object_type, &id.to_string(), "ok", reason)).await?;
        Ok(match what {
            Sensitive::CitizenId => Some(p.citizen_id),
            Sensitive::Phone => p.phone,
        })
    }

    /// The history of one person, house, household or organisation in scope, oldest first.
    pub async fn history_of(&self, entity: &str, id: i64) -> Result<Vec<HistoryRow>, StoreError> {
        let table = match entity {
            "person" => "persons",
            "house" => "houses",
            "household" => "households",
            "organisation" => "organisations",
            _ => return Err(StoreError::Invalid { code: "unknown_entity", message: format!("no register entity {entity:?}") }),
        };
        let area: Option<String> = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT area_code FROM {table} WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.db().pool)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        if !area.is_some_and(|a| self.in_scope(&a)) {
            return Err(self.s.deny("history.read", entity, &id.to_string()).await);
        }
        let rows = sqlx::query(
            "SELECT id, at, actor_kind, actor_id, actor_name, operation_id, action, entity, entity_id, field, old_value, new_value \
             FROM register_history WHERE entity = $1 AND entity_id = $2 ORDER BY id",
        )
        .bind(entity)
        .bind(id)
        .fetch_all(&self.db().pool)
        .await?;
        self.audit_read("history.read", entity, &id.to_string(), "").await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryRow {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor_kind: r.try_get("actor_kind")?,
                    actor_id: r.try_get("actor_id")?,
                    actor_name: r.try_get("actor_name")?,
                    operation_id: r.try_get("operation_id")?,
                    action: r.try_get("action")?,
                    entity: r.try_get("entity")?,
                    entity_id: r.try_get("entity_id")?,
                    field: r.try_get("field")?,
                    old_value: r.try_get("old_value")?,
                    new_value: r.try_get("new_value")?,
                })
            })
            .collect()
    }

    /// Rows of `table` in scope (and in the filter's area, which must be in scope), ids
    /// after the cursor, oldest first. Scope is a code range on `area_code`, which the
    /// (area_code, id) indexes serve.
    async fn list(&self, table: &str, columns: &str, f: &RegisterFilter) -> Result<Vec<AnyRow>, StoreError> {
        let limit = if f.limit <= 0 { 50 } else { f.limit.min(MAX_PAGE) };
        self.list_rows(table, columns, f, limit).await
    }

    /// The rows of [`RegisterDesk::list`], any page size (exports page through with larger
    /// pages than a screen's).
    async fn list_rows(&self, table: &str, columns: &str, f: &RegisterFilter, limit: i64) -> Result<Vec<AnyRow>, StoreError> {
        let mut conn = self.db().pool.acquire().await?;
        self.list_rows_on(&mut conn, table, columns, f, limit).await
    }

    async fn list_rows_on(&self, conn: &mut sqlx::AnyConnection, table: &str, columns: &str, f: &RegisterFilter, limit: i64) -> Result<Vec<AnyRow>, StoreError> {
        let (sql, args) = self.list_sql(table, columns, f).await?;
        let sql = format!("{sql} ORDER BY id LIMIT {limit}");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in args {
            q = match a {
                Arg::Text(t) => q.bind(t),
                Arg::Int(i) => q.bind(i),
            };
        }
        Ok(q.fetch_all(&mut *conn).await?)
    }

    /// `SELECT … WHERE …` of a list (without order and limit), and its arguments.
    async fn list_sql(&self, table: &str, columns: &str, f: &RegisterFilter) -> Result<(String, Vec<Arg>), StoreError> {
        let root = match &f.area {
            Some(a) if self.s.in_scope(a) => a.clone(),
            Some(a) => return Err(self.s.deny(&format!("{table}.list"), "area", a.as_str()).await),
            None => self.s.who.area.clone(),
        };
        let mut args = vec![Arg::Text(root.to_string())];
        let mut sql = format!("SELECT {columns} FROM {table} WHERE area_code >= $1");
        fn push(sql: &mut String, args: &mut Vec<Arg>, cond: &str, a: Arg) {
            args.push(a);
            sql.push_str(&cond.replace("$?", &format!("${}", args.len())));
        }
        if let Some(hi) = crate::incidents::successor(root.as_str()) {
            push(&mut sql, &mut args, " AND area_code < $?", Arg::Text(hi));
        }
        if let Some(h) = f.house_id {
            push(&mut sql, &mut args, " AND house_id = $?", Arg::Int(h));
        }
        let like = |t: &str| format!("%{}%", t.trim().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        if table == "persons" {
            if let Some(n) = f.name.as_deref().filter(|n| !n.trim().is_empty()) {
                push(&mut sql, &mut args, " AND name LIKE $? ESCAPE '\\'", Arg::Text(like(n)));
            }
            if let Some(g) = &f.gender {
                push(&mut sql, &mut args, " AND gender = $?", Arg::Text(g.clone()));
            }
            if let Some(d) = f.born_from {
                push(&mut sql, &mut args, " AND birth_day >= $?", Arg::Int(d.0));
            }
            if let Some(d) = f.born_to {
                push(&mut sql, &mut args, " AND birth_day <= $?", Arg::Int(d.0));
            }
            if let Some(p) = f.population_type {
                push(&mut sql, &mut args, " AND population_type = $?", Arg::Text(p.as_str().to_string()));
            }
            if let Some(t) = f.tag {
                // Tags are sorted codes joined by commas: match one whole code.
                push(&mut sql, &mut args, " AND (',' || tags || ',') LIKE $?", Arg::Text(format!("%,{},%", t.as_str())));
            }
        }
        if let Some(t) = f.text.as_deref().filter(|t| !t.trim().is_empty()) {
            match table {
                "houses" => push(&mut sql, &mut args, " AND address LIKE $? ESCAPE '\\'", Arg::Text(like(t))),
                "organisations" => {
                    let l = like(t);
                    args.push(Arg::Text(l));
                    let n = args.len();
                    sql.push_str(&format!(" AND (name LIKE ${n} ESCAPE '\\' OR address LIKE ${n} ESCAPE '\\' OR credit_code LIKE ${n} ESCAPE '\\')"));
                }
                "households" => push(&mut sql, &mut args, " AND address LIKE $? ESCAPE '\\'", Arg::Text(like(t))),
                _ => {}
            }
        }
        push(&mut sql, &mut args, " AND id > $?", Arg::Int(f.after.unwrap_or(0)));
        Ok((sql, args))
    }

    // ---- houses ----

    fn check_house(h: &HouseInput) -> Result<String, Fail> {
        let address = text_field("address", &h.address, 200)?;
        if let Some((lat, lon)) = h.point
            && !(lat.is_finite() && lon.is_finite() && (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon))
        {
            return Err(invalid("invalid_point", "a point needs a latitude in -90..90 and a longitude in -180..180"));
        }
        if let Some(a) = h.area_m2
            && !(a.is_finite() && a > 0.0 && a < 1.0e6)
        {
            return Err(invalid("invalid_house_area", "a house's area is a positive number of square metres"));
        }
        Ok(address)
    }

    /// Record a house (实有房屋) in a grid in scope.
    pub async fn create_house(&self, h: HouseInput) -> Result<HouseView, StoreError> {
        let mut tx = self.begin("house.create", "house", "").await?;
        let r = self.create_house_in(&mut tx, h).await;
        self.finish(tx, "house.create", r).await
    }

    async fn create_house_in(&self, tx: &mut Tx, h: HouseInput) -> Result<HouseView, Fail> {
        let address = Self::check_house(&h)?;
        self.grid_in(tx, &h.area).await?;
        let now = self.db().now_ms();
        // A NULL float is never bound (see ARCHITECTURE.md): a flag says whether the value counts.
        let (lat, lon) = h.point.unwrap_or((0.0, 0.0));
        let id: i64 = sqlx::query(
            "INSERT INTO houses (address, area_code, lat, lon, area_m2, house_use, created_at, updated_at, version) \
             VALUES ($1, $2, CASE WHEN $3 = 1 THEN $4 ELSE NULL END, CASE WHEN $3 = 1 THEN $5 ELSE NULL END, \
             CASE WHEN $6 = 1 THEN $7 ELSE NULL END, $8, $9, $9, 1) RETURNING id",
        )
        .bind(&address)
        .bind(h.area.as_str())
        .bind(i64::from(h.point.is_some()))
        .bind(lat)
        .bind(lon)
        .bind(i64::from(h.area_m2.is_some()))
        .bind(h.area_m2.unwrap_or(0.0))
        .bind(h.house_use.as_str())
        .bind(now)
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
        let hist = self.history("house.create");
        hist.row(tx, "house", id, "address", None, Some(&address)).await?;
        hist.row(tx, "house", id, "area_code", None, Some(h.area.as_str())).await?;
        hist.diff(tx, "house", id, "lat", None, fmt_f64(h.point.map(|p| p.0)).as_deref()).await?;
        hist.diff(tx, "house", id, "lon", None, fmt_f64(h.point.map(|p| p.1)).as_deref()).await?;
        hist.diff(tx, "house", id, "area_m2", None, fmt_f64(h.area_m2).as_deref()).await?;
        hist.row(tx, "house", id, "house_use", None, Some(h.house_use.as_str())).await?;
        self.audit_ok(tx, "house.create", "house", id, h.area.as_str()).await?;
        self.house_in(tx, id).await
    }

    /// Change a house at the version read. Its grid may change only within scope; the
    /// grid of the people living there follows it.
    pub async fn update_house(&self, id: i64, version: i64, h: HouseInput) -> Result<HouseView, StoreError> {
        let mut tx = self.begin("house.update", "house", &id.to_string()).await?;
        let r = self.update_house_in(&mut tx, id, version, h).await;
        self.finish(tx, "house.update", r).await
    }

    async fn update_house_in(&self, tx: &mut Tx, id: i64, version: i64, h: HouseInput) -> Result<HouseView, Fail> {
        let cur = self.house_in(tx, id).await?;
        if cur.version != version {
            return Err(stale("house", id, cur.version));
        }
        let address = Self::check_house(&h)?;
        self.grid_in(tx, &h.area).await?;
        let (lat, lon) = h.point.unwrap_or((0.0, 0.0));
        sqlx::query(
            "UPDATE houses SET address = $1, area_code = $2, lat = CASE WHEN $3 = 1 THEN $4 ELSE NULL END, \
             lon = CASE WHEN $3 = 1 THEN $5 ELSE NULL END, area_m2 = CASE WHEN $6 = 1 THEN $7 ELSE NULL END, house_use = $8, \
             updated_at = $9, version = version + 1 WHERE id = $10",
        )
        .bind(&address)
        .bind(h.area.as_str())
        .bind(i64::from(h.point.is_some()))
        .bind(lat)
        .bind(lon)
        .bind(i64::from(h.area_m2.is_some()))
        .bind(h.area_m2.unwrap_or(0.0))
        .bind(h.house_use.as_str())
        .bind(self.db().now_ms())
        .bind(id)
        .execute(&mut **tx)
        .await?;
        let hist = self.history("house.update");
        hist.diff(tx, "house", id, "address", Some(&cur.address), Some(&address)).await?;
        hist.diff(tx, "house", id, "area_code", Some(&cur.area), Some(h.area.as_str())).await?;
        hist.diff(tx, "house", id, "lat", fmt_f64(cur.lat).as_deref(), fmt_f64(h.point.map(|p| p.0)).as_deref()).await?;
        hist.diff(tx, "house", id, "lon", fmt_f64(cur.lon).as_deref(), fmt_f64(h.point.map(|p| p.1)).as_deref()).await?;
        hist.diff(tx, "house", id, "area_m2", fmt_f64(cur.area_m2).as_deref(), fmt_f64(h.area_m2).as_deref()).await?;
        hist.diff(tx, "house", id, "house_use", Some(cur.house_use.as_str()), Some(h.house_use.as_str())).await?;
        if cur.area != h.area.as_str() {
            // The people who live there, and the households and organisations at it, move grid with it.
            for table in ["persons", "households", "organisations"] {
                let entity = match table {
                    "persons" => "person",
                    "households" => "household",
                    _ => "organisation",
                };
                let ids: Vec<i64> = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT id FROM {table} WHERE house_id = $1")))
                    .bind(id)
                    .fetch_all(&mut **tx)
                    .await?
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()?;
                sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE {table} SET area_code = $1, version = version + 1 WHERE house_id = $2")))
                    .bind(h.area.as_str())
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
                for other in ids {
                    hist.row(tx, entity, other, "area_code", Some(&cur.area), Some(h.area.as_str())).await?;
                    changes::append(self.s.db, tx, entity, &other.to_string(), Op::Upsert).await?;
                }
            }
        }
        self.audit_ok(tx, "house.update", "house", id, "").await?;
        self.house_in(tx, id).await
    }

    /// One house in scope.
    pub async fn house(&self, id: i64) -> Result<HouseView, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {HOUSE_COLUMNS} FROM houses WHERE id = $1"))).bind(id).fetch_optional(&self.db().pool).await?;
        match row.map(|r| house_row(&r)).transpose()? {
            Some(h) if self.in_scope(&h.area) => Ok(h),
            _ => Err(self.s.deny("house.read", "house", &id.to_string()).await),
        }
    }

    /// Houses in scope, a page at a time (`house_id` in the filter is ignored).
    pub async fn houses(&self, f: &RegisterFilter) -> Result<Vec<HouseView>, StoreError> {
        let f = RegisterFilter { house_id: None, ..f.clone() };
        self.list("houses", HOUSE_COLUMNS, &f).await?.iter().map(house_row).collect()
    }

    // ---- links ----

    async fn link_person_in(&self, tx: &mut Tx, h: &History<'_>, person: i64, house: i64, kind: Tenure) -> Result<(), Fail> {
        let exists = sqlx::query("SELECT 1 FROM person_houses WHERE person_id = $1 AND house_id = $2 AND kind = $3")
            .bind(person)
            .bind(house)
            .bind(kind.as_str())
            .fetch_optional(&mut **tx)
            .await?
            .is_some();
        if exists {
            return Err(Fail::Store(StoreError::Conflict { code: "already_linked", message: format!("person {person} already {} house {house}", kind.as_str()) }));
        }
        sqlx::query("INSERT INTO person_houses (person_id, house_id, kind, since) VALUES ($1, $2, $3, $4)")
            .bind(person)
            .bind(house)
            .bind(kind.as_str())
            .bind(self.db().now_ms())
            .execute(&mut **tx)
            .await?;
        h.row(tx, "person", person, &format!("house.{}", kind.as_str()), None, Some(&house.to_string())).await?;
        h.row(tx, "house", house, &format!("person.{}", kind.as_str()), None, Some(&person.to_string())).await?;
        changes::append(self.s.db, tx, "house", &house.to_string(), Op::Upsert).await?;
        Ok(())
    }

    /// Link a person to a house (lives, owns, rents); both in scope. A person's current
    /// house changes only by [`RegisterDesk::move_person`]: a `lives` link here is a second
    /// residence.
    pub async fn link_person_house(&self, person: i64, house: i64, kind: Tenure) -> Result<(), StoreError> {
        let mut tx = self.begin("person.link", "person", &person.to_string()).await?;
        let r = async {
            self.person_in(&mut tx, person).await?;
            self.house_in(&mut tx, house).await?;
            let h = self.history("person.link");
            self.link_person_in(&mut tx, &h, person, house, kind).await?;
            self.audit_ok(&mut tx, "person.link", "person", person, &format!("{} house {house}", kind.as_str())).await?;
            Ok(())
        }
        .await;
        self.finish(tx, "person.link", r).await
    }

    /// End a person's link to a house. The `lives` link to the current house is ended only
    /// by moving.
    pub async fn unlink_person_house(&self, person: i64, house: i64, kind: Tenure) -> Result<(), StoreError> {
        let mut tx = self.begin("person.unlink", "person", &person.to_string()).await?;
        let r = async {
            let p = self.person_in(&mut tx, person).await?;
            self.house_in(&mut tx, house).await?;
            if kind == Tenure::Lives && p.view.house_id == Some(house) {
                return Err(invalid("current_house", "the current house is left by moving the person"));
            }
            let n = sqlx::query("DELETE FROM person_houses WHERE person_id = $1 AND house_id = $2 AND kind = $3")
                .bind(person)
                .bind(house)
                .bind(kind.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(Fail::Store(StoreError::NotFound(format!("link of person {person} to house {house}"))));
            }
            let h = self.history("person.unlink");
            h.row(&mut tx, "person", person, &format!("house.{}", kind.as_str()), Some(&house.to_string()), None).await?;
            h.row(&mut tx, "house", house, &format!("person.{}", kind.as_str()), Some(&person.to_string()), None).await?;
            changes::append(self.s.db, &mut tx, "house", &house.to_string(), Op::Upsert).await?;
            self.audit_ok(&mut tx, "person.unlink", "person", person, &format!("{} house {house}", kind.as_str())).await?;
            Ok(())
        }
        .await;
        self.finish(tx, "person.unlink", r).await
    }

    /// The houses a person is linked to, with how.
    pub async fn person_houses(&self, person: i64) -> Result<Vec<(i64, Tenure)>, StoreError> {
        self.person(person).await?;
        let rows = sqlx::query("SELECT house_id, kind FROM person_houses WHERE person_id = $1 ORDER BY house_id, kind")
            .bind(person)
            .fetch_all(&self.db().pool)
            .await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok((r.try_get("house_id")?, Tenure::parse(&kind).ok_or_else(|| corrupt("person_houses.kind"))?))
            })
            .collect()
    }

    /// Link an organisation to a house it uses; both in scope.
    pub async fn link_organisation_house(&self, org: i64, house: i64) -> Result<(), StoreError> {
        self.org_link(org, house, true).await
    }

    pub async fn unlink_organisation_house(&self, org: i64, house: i64) -> Result<(), StoreError> {
        self.org_link(org, house, false).await
    }

    async fn org_link(&self, org: i64, house: i64, link: bool) -> Result<(), StoreError> {
        let action = if link { "organisation.link" } else { "organisation.unlink" };
        let mut tx = self.begin(action, "organisation", &org.to_string()).await?;
        let r = async {
            self.org_in(&mut tx, org).await?;
            self.house_in(&mut tx, house).await?;
            let exists = sqlx::query("SELECT 1 FROM organisation_houses WHERE organisation_id = $1 AND house_id = $2")
                .bind(org)
                .bind(house)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            let h = self.history(action);
            let hs = house.to_string();
            let os = org.to_string();
            match (link, exists) {
                (true, true) => return Err(Fail::Store(StoreError::Conflict { code: "already_linked", message: format!("organisation {org} already uses house {house}") })),
                (false, false) => return Err(Fail::Store(StoreError::NotFound(format!("link of organisation {org} to house {house}")))),
                (true, false) => {
                    sqlx::query("INSERT INTO organisation_houses (organisation_id, house_id, since) VALUES ($1, $2, $3)")
                        .bind(org)
                        .bind(house)
                        .bind(self.db().now_ms())
                        .execute(&mut *tx)
                        .await?;
                    h.row(&mut tx, "organisation", org, "house", None, Some(&hs)).await?;
                    h.row(&mut tx, "house", house, "organisation", None, Some(&os)).await?;
                }
                (false, true) => {
                    sqlx::query("DELETE FROM organisation_houses WHERE organisation_id = $1 AND house_id = $2").bind(org).bind(house).execute(&mut *tx).await?;
                    h.row(&mut tx, "organisation", org, "house", Some(&hs), None).await?;
                    h.row(&mut tx, "house", house, "organisation", Some(&os), None).await?;
                }
            }
            changes::append(self.s.db, &mut tx, "house", &hs, Op::Upsert).await?;
            self.audit_ok(&mut tx, action, "organisation", org, &format!("house {house}")).await?;
            Ok(())
        }
        .await;
        self.finish(tx, action, r).await
    }

    // ---- households ----

    /// Record a household (户) with its members, exactly one of them the head. Every member
    /// must be in scope and in no other household.
    pub async fn create_household(&self, n: NewHousehold) -> Result<HouseholdView, StoreError> {
        let mut tx = self.begin("household.create", "household", "").await?;
        let r = self.create_household_in(&mut tx, n).await;
        self.finish(tx, "household.create", r).await
    }

    async fn check_members(&self, tx: &mut Tx, household: Option<i64>, members: &[(i64, Relation)]) -> Result<(), Fail> {
        let heads = members.iter().filter(|m| m.1 == Relation::Head).count();
        if heads != 1 {
            return Err(invalid("household_head", format!("a household has exactly one head (户主), not {heads}")));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (p, _) in members {
            if !seen.insert(*p) {
                return Err(invalid("duplicate_member", format!("person {p} is listed twice")));
            }
            self.person_in(tx, *p).await?;
            let other: Option<i64> = sqlx::query("SELECT household_id FROM household_members WHERE person_id = $1")
                .bind(*p)
                .fetch_optional(&mut **tx)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
            if let Some(o) = other
                && Some(o) != household
            {
                return Err(Fail::Store(StoreError::Conflict { code: "already_in_household", message: format!("person {p} belongs to household {o}") }));
            }
        }
        Ok(())
    }

    async fn create_household_in(&self, tx: &mut Tx, n: NewHousehold) -> Result<HouseholdView, Fail> {
        let address = opt_text("address", n.address.as_deref(), 200)?;
        let area = self.place_of(tx, n.house_id, n.area.as_ref()).await?;
        self.check_members(tx, None, &n.members).await?;
        let h = self.history("household.create");
        let id = Self::insert_household(tx, &h, n.house_id, address.as_deref(), &area).await?;
        self.write_members(tx, &h, id, &[], &n.members).await?;
        self.audit_ok(tx, "household.create", "household", id, &format!("{} members", n.members.len())).await?;
        self.household_in(tx, id).await
    }

    /// The household's row and its history rows (no members, no audit, no change log):
    /// shared by `create_household` and the import.
    pub(crate) async fn insert_household(tx: &mut Tx, h: &History<'_>, house_id: Option<i64>, address: Option<&str>, area: &str) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query(
            "INSERT INTO households (house_id, address, area_code, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $4, 1) RETURNING id",
        )
        .bind(house_id)
        .bind(address)
        .bind(area)
        .bind(h.db.now_ms())
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
        h.row(tx, "household", id, "area_code", None, Some(area)).await?;
        h.diff(tx, "household", id, "house_id", None, house_id.map(|x| x.to_string()).as_deref()).await?;
        h.diff(tx, "household", id, "address", None, address).await?;
        Ok(id)
    }

    /// Replace a household's members at the version read (exactly one head).
    pub async fn set_household_members(&self, id: i64, version: i64, members: Vec<(i64, Relation)>) -> Result<HouseholdView, StoreError> {
        let mut tx = self.begin("household.update", "household", &id.to_string()).await?;
        let r = async {
            let cur = self.household_in(&mut tx, id).await?;
            if cur.version != version {
                return Err(stale("household", id, cur.version));
            }
            self.check_members(&mut tx, Some(id), &members).await?;
            let old: Vec<(i64, Relation)> = cur.members.iter().map(|m| (m.person_id, m.relation)).collect();
            let h = self.history("household.update");
            sqlx::query("DELETE FROM household_members WHERE household_id = $1").bind(id).execute(&mut *tx).await?;
            self.write_members(&mut tx, &h, id, &old, &members).await?;
            sqlx::query("UPDATE households SET version = version + 1, updated_at = $1 WHERE id = $2").bind(self.db().now_ms()).bind(id).execute(&mut *tx).await?;
            self.audit_ok(&mut tx, "household.update", "household", id, &format!("{} members", members.len())).await?;
            self.household_in(&mut tx, id).await
        }
        .await;
        self.finish(tx, "household.update", r).await
    }

    /// Insert `new` members (the old rows already deleted) and write a history row per
    /// member whose relation changed, came or went.
    pub(crate) async fn write_members(&self, tx: &mut Tx, h: &History<'_>, id: i64, old: &[(i64, Relation)], new: &[(i64, Relation)]) -> Result<(), Fail> {
        for (p, rel) in new {
            sqlx::query("INSERT INTO household_members (household_id, person_id, relation) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(*p)
                .bind(rel.as_str())
                .execute(&mut **tx)
                .await?;
        }
        let find = |list: &[(i64, Relation)], p: i64| list.iter().find(|m| m.0 == p).map(|m| m.1.as_str());
        let mut people: Vec<i64> = old.iter().chain(new).map(|m| m.0).collect();
        people.sort_unstable();
        people.dedup();
        for p in people {
            let (o, n) = (find(old, p), find(new, p));
            if o != n {
                h.row(tx, "household", id, &format!("member.{p}"), o, n).await?;
                h.row(tx, "person", p, "household", o.map(|_| id.to_string()).as_deref(), n.map(|_| id.to_string()).as_deref()).await?;
            }
        }
        Ok(())
    }

    async fn household_in(&self, tx: &mut Tx, id: i64) -> Result<HouseholdView, Fail> {
        let row = sqlx::query("SELECT id, house_id, address, area_code, version FROM households WHERE id = $1").bind(id).fetch_optional(&mut **tx).await?;
        let Some(r) = row else { return Err(Fail::Deny("household", id.to_string())) };
        let area: String = r.try_get("area_code")?;
        if !self.in_scope(&area) {
            return Err(Fail::Deny("household", id.to_string()));
        }
        let members = sqlx::query(
            "SELECT m.person_id, p.name, m.relation FROM household_members m JOIN persons p ON p.id = m.person_id \
             WHERE m.household_id = $1 ORDER BY CASE WHEN m.relation = 'head' THEN 0 ELSE 1 END, m.person_id",
        )
        .bind(id)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|m| {
            let rel: String = m.try_get("relation")?;
            Ok(MemberView { person_id: m.try_get("person_id")?, name: m.try_get("name")?, relation: relation_of(&rel)? })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(HouseholdView { id, house_id: r.try_get("house_id")?, address: r.try_get("address")?, area, version: r.try_get("version")?, members })
    }

    /// One household in scope, with its members (names only; persons are read one by one).
    pub async fn household(&self, id: i64) -> Result<HouseholdView, StoreError> {
        let mut conn = self.db().pool.begin().await?;
        let r = self.household_in(&mut conn, id).await;
        drop(conn);
        match r {
            Ok(v) => {
                self.audit_read("household.read", "household", &id.to_string(), "").await?;
                Ok(v)
            }
            Err(Fail::Store(e)) => Err(e),
            Err(Fail::Deny(t, i)) => Err(self.s.deny("household.read", t, &i).await),
        }
    }

    /// Households in scope (with their members), a page at a time; audited with the count.
    pub async fn households(&self, f: &RegisterFilter) -> Result<Vec<HouseholdView>, StoreError> {
        let ids: Vec<i64> = self.list("households", "id", f).await?.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
        let mut conn = self.db().pool.begin().await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.household_in(&mut conn, id).await {
                Ok(v) => out.push(v),
                Err(Fail::Store(e)) => return Err(e),
                Err(Fail::Deny(..)) => {} // moved out of scope since the list was read
            }
        }
        drop(conn);
        self.audit_read("household.list", "household", "", &format!("{} rows", out.len())).await?;
        Ok(out)
    }

    /// The household a person in scope belongs to, if any (with its members).
    pub async fn household_of(&self, person: i64) -> Result<Option<HouseholdView>, StoreError> {
        self.person(person).await?;
        let id: Option<i64> = sqlx::query("SELECT household_id FROM household_members WHERE person_id = $1")
            .bind(person)
            .fetch_optional(&self.db().pool)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        match id {
            Some(id) => self.household(id).await.map(Some),
            None => Ok(None),
        }
    }

    // ---- exports ----

    /// The one connection an export reads all its pages through, so that the store's page
    /// cache it fills is one connection's, whatever the export's size.
    pub async fn export_reader(&self) -> Result<ExportReader, StoreError> {
        Ok(ExportReader(self.db().pool.acquire().await?))
    }

    /// Start an export of a filtered list: the rows it will hold are counted, and one audit
    /// row (`register.export`) records the entity, the format, the filter and the count
    /// before any row leaves. An area outside scope is denied as not found.
    pub async fn begin_export(&self, entity: ExportEntity, format: &str, filter: &str, f: &RegisterFilter) -> Result<i64, StoreError> {
        let (sql, args) = self.list_sql(entity.table(), "COUNT(*)", &RegisterFilter { after: None, ..f.clone() }).await?;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in args {
            q = match a {
                Arg::Text(t) => q.bind(t),
                Arg::Int(i) => q.bind(i),
            };
        }
        let n: i64 = q.fetch_one(&self.db().pool).await?.try_get(0)?;
        let detail = format!("{} {format}, {n} rows; {filter}", entity.table());
        self.db().audit(self.s.actor.entry("register.export", entity.entity(), "", "ok", &detail)).await?;
        Ok(n)
    }

    /// One page of an export of persons (masked, not audited: [`RegisterDesk::begin_export`]
    /// audits the export), each with the address of the house they live in.
    pub async fn export_persons(&self, r: &mut ExportReader, f: &RegisterFilter, limit: i64) -> Result<Vec<(PersonView, Option<String>)>, StoreError> {
        let rows = self.list_rows_on(&mut r.0, "persons", PERSON_COLUMNS, f, limit).await?;
        let people: Vec<PersonView> = rows.iter().map(|r| person_row(r).map(|p| p.view)).collect::<Result<_, _>>()?;
        let houses: Vec<String> = people.iter().filter_map(|p| p.house_id).map(|h| h.to_string()).collect();
        let mut address = std::collections::HashMap::new();
        if !houses.is_empty() {
            // Ids from the store, written as numbers.
            let sql = format!("SELECT id, address FROM houses WHERE id IN ({})", houses.join(", "));
            for r in sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *r.0).await? {
                address.insert(r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?);
            }
        }
        Ok(people.into_iter().map(|p| {
            let a = p.house_id.and_then(|h| address.get(&h).cloned());
            (p, a)
        }).collect())
    }

    /// One page of an export of houses.
    pub async fn export_houses(&self, r: &mut ExportReader, f: &RegisterFilter, limit: i64) -> Result<Vec<HouseView>, StoreError> {
        let f = RegisterFilter { house_id: None, ..f.clone() };
        self.list_rows_on(&mut r.0, "houses", HOUSE_COLUMNS, &f, limit).await?.iter().map(house_row).collect()
    }

    /// One page of an export of organisations (phones masked).
    pub async fn export_organisations(&self, r: &mut ExportReader, f: &RegisterFilter, limit: i64) -> Result<Vec<OrganisationView>, StoreError> {
        self.list_rows_on(&mut r.0, "organisations", ORG_COLUMNS, f, limit).await?.iter().map(|r| org_row(r).map(|o| o.0)).collect()
    }

    /// One page of an export of households: each with its head's name and masked ID
    /// number and the number of members, in one query.
    pub async fn export_households(&self, reader: &mut ExportReader, f: &RegisterFilter, limit: i64) -> Result<Vec<HouseholdLine>, StoreError> {
        let rows = self.list_rows_on(&mut reader.0, "households", "id, house_id, address, area_code", f, limit).await?;
        let ids: Vec<String> = rows.iter().map(|r| r.try_get::<i64, _>(0).map(|i| i.to_string())).collect::<Result<_, _>>()?;
        let mut heads = std::collections::HashMap::new();
        if !ids.is_empty() {
            let sql = format!(
                "SELECT m.household_id, COUNT(*) AS n, MAX(CASE WHEN m.relation = 'head' THEN p.name END) AS head, \
                 MAX(CASE WHEN m.relation = 'head' THEN p.citizen_id END) AS head_id \
                 FROM household_members m JOIN persons p ON p.id = m.person_id WHERE m.household_id IN ({}) GROUP BY m.household_id",
                ids.join(", ")
            );
            for r in sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *reader.0).await? {
                let head_id: Option<String> = r.try_get("head_id")?;
                heads.insert(r.try_get::<i64, _>(0)?, (r.try_get::<i64, _>("n")?, r.try_get::<Option<String>, _>("head")?, head_id.as_deref().map(mask_id_number)));
            }
        }
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get(0)?;
                let (members, head_name, head_citizen_id_masked) = heads.remove(&id).unwrap_or((0, None, None));
                Ok(HouseholdLine { id, house_id: r.try_get(1)?, address: r.try_get(2)?, area: r.try_get(3)?, members, head_name, head_citizen_id_masked })
            })
            .collect()
    }

    // ---- organisations ----

    async fn check_org(&self, tx: &mut Tx, o: &OrganisationInput, except: Option<i64>) -> Result<(String, Option<String>, Option<String>, String), Fail> {
        let name = text_field("name", &o.name, 100)?;
        let address = opt_text("address", o.address.as_deref(), 200)?;
        let legal_rep = opt_text("legal_rep", o.legal_rep.as_deref(), 50)?;
        let area = self.place_of(tx, o.house_id, o.area.as_ref()).await?;
        let other: Option<i64> = sqlx::query("SELECT id FROM organisations WHERE credit_code = $1")
            .bind(o.credit_code.as_str())
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        if other.is_some_and(|x| Some(x) != except) {
            return Err(Fail::Store(StoreError::Conflict { code: "duplicate_credit_code", message: format!("credit code {} is already in the register", o.credit_code) }));
        }
        Ok((name, address, legal_rep, area))
    }

    /// Record an organisation (实有单位). A duplicate credit code is a conflict.
    pub async fn create_organisation(&self, o: OrganisationInput) -> Result<OrganisationView, StoreError> {
        let mut tx = self.begin("organisation.create", "organisation", "").await?;
        let r = async {
            let (name, address, legal_rep, area) = self.check_org(&mut tx, &o, None).await?;
            let id: i64 = sqlx::query(
                "INSERT INTO organisations (name, credit_code, address, house_id, area_code, legal_rep, phone, created_at, updated_at, version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, 1) RETURNING id",
            )
            .bind(&name)
            .bind(o.credit_code.as_str())
            .bind(&address)
            .bind(o.house_id)
            .bind(&area)
            .bind(&legal_rep)
            .bind(o.phone.as_ref().map(|p| p.as_str().to_string()))
            .bind(self.db().now_ms())
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            let h = self.history("organisation.create");
            let new = self.org_in(&mut tx, id).await?.0;
            self.org_history(&mut tx, &h, id, None, &new).await?;
            // Phones go into the history masked.
            h.diff(&mut tx, "organisation", id, "phone", None, new.phone_masked.as_deref()).await?;
            self.audit_ok(&mut tx, "organisation.create", "organisation", id, &area).await?;
            Ok(new)
        }
        .await;
        self.finish(tx, "organisation.create", r).await
    }

    /// Change an organisation at the version read.
    pub async fn update_organisation(&self, id: i64, version: i64, o: OrganisationInput) -> Result<OrganisationView, StoreError> {
        let mut tx = self.begin("organisation.update", "organisation", &id.to_string()).await?;
        let r = async {
            let (cur, cur_phone) = self.org_in(&mut tx, id).await?;
            if cur.version != version {
                return Err(stale("organisation", id, cur.version));
            }
            let (name, address, legal_rep, area) = self.check_org(&mut tx, &o, Some(id)).await?;
            sqlx::query(
                "UPDATE organisations SET name = $1, credit_code = $2, address = $3, house_id = $4, area_code = $5, legal_rep = $6, phone = $7, \
                 updated_at = $8, version = version + 1 WHERE id = $9",
            )
            .bind(&name)
            .bind(o.credit_code.as_str())
            .bind(&address)
            .bind(o.house_id)
            .bind(&area)
            .bind(&legal_rep)
            .bind(o.phone.as_ref().map(|p| p.as_str().to_string()))
            .bind(self.db().now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let h = self.history("organisation.update");
            let (new, new_phone) = self.org_in(&mut tx, id).await?;
            self.org_history(&mut tx, &h, id, Some(&cur), &new).await?;
            // Compared in full, written masked: a row even when the two masks look alike.
            if cur_phone != new_phone {
                h.row(&mut tx, "organisation", id, "phone", cur.phone_masked.as_deref(), new.phone_masked.as_deref()).await?;
            }
            self.audit_ok(&mut tx, "organisation.update", "organisation", id, "").await?;
            Ok(new)
        }
        .await;
        self.finish(tx, "organisation.update", r).await
    }

    async fn org_history(&self, tx: &mut Tx, h: &History<'_>, id: i64, old: Option<&OrganisationView>, new: &OrganisationView) -> Result<(), StoreError> {
        let e = "organisation";
        h.diff(tx, e, id, "name", old.map(|o| o.name.as_str()), Some(&new.name)).await?;
        h.diff(tx, e, id, "credit_code", old.map(|o| o.credit_code.as_str()), Some(&new.credit_code)).await?;
        h.diff(tx, e, id, "address", old.and_then(|o| o.address.as_deref()), new.address.as_deref()).await?;
        let house = |o: &OrganisationView| o.house_id.map(|x| x.to_string());
        h.diff(tx, e, id, "house_id", old.and_then(house).as_deref(), house(new).as_deref()).await?;
        h.diff(tx, e, id, "area_code", old.map(|o| o.area.as_str()), Some(&new.area)).await?;
        h.diff(tx, e, id, "legal_rep", old.and_then(|o| o.legal_rep.as_deref()), new.legal_rep.as_deref()).await?;
        Ok(())
    }

    /// One organisation in scope (its phone masked).
    pub async fn organisation(&self, id: i64) -> Result<OrganisationView, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ORG_COLUMNS} FROM organisations WHERE id = $1"))).bind(id).fetch_optional(&self.db().pool).await?;
        match row.map(|r| org_row(&r)).transpose()? {
            Some((o, _)) if self.in_scope(&o.area) => Ok(o),
            _ => Err(self.s.deny("organisation.read", "organisation", &id.to_string()).await),
        }
    }

    /// Organisations in scope, a page at a time.
    pub async fn organisations(&self, f: &RegisterFilter) -> Result<Vec<OrganisationView>, StoreError> {
        self.list("organisations", ORG_COLUMNS, f).await?.iter().map(|r| org_row(r).map(|o| o.0)).collect()
    }
}
