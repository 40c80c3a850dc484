//! The register's reads for the desk and mobile screens: lists filtered by area, name and
//! address a page at a time, and the neighbours of one record (a house's people and
//! organisations, a person's household). Same scope and masking as every read of
//! [`RegisterDesk`]: rows outside the caller's subtree never come back, ID numbers and
//! phones leave masked, reads of persons are audited.
//!
//! Name and address filters are substring matches (`LIKE '%…%'`, with `%`, `_` and `\`
//! taken literally) over the scope's code range: a screen's filter, not the search engine
//! (the search box of issue 5 point 5 answers those questions at scale).

use domain::AreaCode;
use serde::Serialize;
use sqlx::Row;

use super::{HouseView, HouseholdView, MAX_PAGE, OrganisationView, PersonView, RegisterDesk, Tenure, house_row, org_row, person_row};
use crate::StoreError;

/// A list's filter and page: the caller's scope, narrowed to `area`'s subtree (itself in
/// scope), to names and addresses containing the given text, ids after `after`.
#[derive(Debug, Clone, Default)]
pub struct RegisterQuery {
    pub area: Option<AreaCode>,
    /// Part of a person's or organisation's name.
    pub name: String,
    /// Part of an address (a person's current house, a house, a household, an organisation).
    pub address: String,
    pub after: Option<i64>,
    /// 1..=[`MAX_PAGE`]; 0 means 50.
    pub limit: i64,
}

/// A person in a list, with the address of their current house.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonListRow {
    pub person: PersonView,
    pub address: Option<String>,
}

/// A `LIKE` pattern that finds `text` anywhere, its wildcards taken literally.
fn contains(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.trim().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// SQL under construction with its text parameters.
struct Sql {
    sql: String,
    texts: Vec<String>,
}

impl Sql {
    fn text(&mut self, clause: &str, v: String) {
        self.texts.push(v);
        self.sql.push_str(&clause.replace("$?", &format!("${}", self.texts.len())));
    }
}

impl RegisterDesk<'_> {
    /// The root of a list: the filter's area (denied when outside scope) or the caller's.
    async fn root_of(&self, what: &str, q: &RegisterQuery) -> Result<AreaCode, StoreError> {
        match &q.area {
            Some(a) if self.s.in_scope(a) => Ok(a.clone()),
            Some(a) => Err(self.s.deny(&format!("{what}.list"), "area", a.as_str()).await),
            None => Ok(self.s.who.area.clone()),
        }
    }

    /// `SELECT columns FROM from WHERE alias.area_code in range`, then the caller's clauses.
    fn start(root: &AreaCode, columns: &str, from: &str, alias: &str) -> Sql {
        let mut s = Sql { sql: format!("SELECT {columns} FROM {from} WHERE"), texts: Vec::new() };
        s.text(&format!(" {alias}.area_code >= $?"), root.to_string());
        if let Some(hi) = crate::incidents::successor(root.as_str()) {
            s.text(&format!(" AND {alias}.area_code < $?"), hi);
        }
        s
    }

    async fn run(&self, mut s: Sql, alias: &str, q: &RegisterQuery) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        let limit = if q.limit <= 0 { 50 } else { q.limit.min(MAX_PAGE) };
        s.sql.push_str(&format!(" AND {alias}.id > ${} ORDER BY {alias}.id LIMIT {limit}", s.texts.len() + 1));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(s.sql.clone()));
        for t in &s.texts {
            query = query.bind(t.as_str());
        }
        Ok(query.bind(q.after.unwrap_or(0)).fetch_all(&self.db().pool).await?)
    }

    /// Persons in scope matching the filter (masked, with their address), oldest first;
    /// audited with the count.
    pub async fn find_persons(&self, q: &RegisterQuery) -> Result<Vec<PersonListRow>, StoreError> {
        let root = self.root_of("persons", q).await?;
        let cols = "p.id, p.citizen_id, p.name, p.gender, p.birth_day, p.phone, p.ethnicity, p.house_id, p.area_code, p.population_type, p.tags, p.version, p.created_at, p.updated_at, h.address";
        let mut s = Self::start(&root, cols, "persons p LEFT JOIN houses h ON h.id = p.house_id", "p");
        if !q.name.trim().is_empty() {
            s.text(" AND p.name LIKE $? ESCAPE '\\'", contains(&q.name));
        }
        if !q.address.trim().is_empty() {
            s.text(" AND h.address LIKE $? ESCAPE '\\'", contains(&q.address));
        }
        let rows = self.run(s, "p", q).await?;
        let out = rows
            .iter()
            .map(|r| Ok(PersonListRow { person: person_row(r)?.view, address: r.try_get("address")? }))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.audit_read("person.list", "person", "", &format!("{} rows", out.len())).await?;
        Ok(out)
    }

    /// Houses in scope whose address contains the filter's, oldest first.
    pub async fn find_houses(&self, q: &RegisterQuery) -> Result<Vec<HouseView>, StoreError> {
        let root = self.root_of("houses", q).await?;
        let cols = "h.id, h.address, h.area_code, h.lat, h.lon, h.area_m2, h.house_use, h.version, h.created_at, h.updated_at";
        let mut s = Self::start(&root, cols, "houses h", "h");
        if !q.address.trim().is_empty() {
            s.text(" AND h.address LIKE $? ESCAPE '\\'", contains(&q.address));
        }
        self.run(s, "h", q).await?.iter().map(house_row).collect()
    }

    /// Households in scope whose address (their own, or their house's) contains the
    /// filter's, or with a member whose name contains the filter's name; audited.
    pub async fn find_households(&self, q: &RegisterQuery) -> Result<Vec<HouseholdView>, StoreError> {
        let root = self.root_of("households", q).await?;
        let mut s = Self::start(&root, "d.id", "households d LEFT JOIN houses h ON h.id = d.house_id", "d");
        if !q.address.trim().is_empty() {
            s.text(" AND (d.address LIKE $? ESCAPE '\\'", contains(&q.address));
            s.text(" OR h.address LIKE $? ESCAPE '\\')", contains(&q.address));
        }
        if !q.name.trim().is_empty() {
            s.text(
                " AND d.id IN (SELECT m.household_id FROM household_members m JOIN persons p ON p.id = m.person_id WHERE p.name LIKE $? ESCAPE '\\')",
                contains(&q.name),
            );
        }
        let ids: Vec<i64> = self.run(s, "d", q).await?.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
        self.households_by_id(&ids).await
    }

    async fn households_by_id(&self, ids: &[i64]) -> Result<Vec<HouseholdView>, StoreError> {
        let mut conn = self.db().pool.begin().await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.household_in(&mut conn, *id).await {
                Ok(v) => out.push(v),
                Err(super::Fail::Store(e)) => return Err(e),
                Err(super::Fail::Deny(..)) => {}
            }
        }
        drop(conn);
        self.audit_read("household.list", "household", "", &format!("{} rows", out.len())).await?;
        Ok(out)
    }

    /// Organisations in scope whose name (or credit code) and address contain the filter's.
    pub async fn find_organisations(&self, q: &RegisterQuery) -> Result<Vec<OrganisationView>, StoreError> {
        let root = self.root_of("organisations", q).await?;
        let cols = "o.id, o.name, o.credit_code, o.address, o.house_id, o.area_code, o.legal_rep, o.phone, o.version";
        let mut s = Self::start(&root, cols, "organisations o", "o");
        if !q.name.trim().is_empty() {
            s.text(" AND (o.name LIKE $? ESCAPE '\\'", contains(&q.name));
            s.text(" OR o.credit_code LIKE $? ESCAPE '\\')", contains(&q.name.to_uppercase()));
        }
        if !q.address.trim().is_empty() {
            s.text(" AND o.address LIKE $? ESCAPE '\\'", contains(&q.address));
        }
        self.run(s, "o", q).await?.iter().map(|r| org_row(r).map(|o| o.0)).collect()
    }

    /// Everyone linked to a house in scope: who lives there, owns it or rents it (masked),
    /// by person id; audited as a read of the house's people.
    pub async fn house_people(&self, house: i64) -> Result<Vec<(PersonView, Tenure)>, StoreError> {
        self.house(house).await?;
        let rows = sqlx::query(
            "SELECT p.id, p.citizen_id, p.name, p.gender, p.birth_day, p.phone, p.ethnicity, p.house_id, p.area_code, p.population_type, p.tags, p.version, \
             p.created_at, p.updated_at, l.kind FROM person_houses l JOIN persons p ON p.id = l.person_id WHERE l.house_id = $1 ORDER BY p.id, l.kind",
        )
        .bind(house)
        .fetch_all(&self.db().pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let kind: String = r.try_get("kind")?;
            let tenure = Tenure::parse(&kind).ok_or_else(|| super::corrupt("person_houses.kind"))?;
            out.push((person_row(r)?.view, tenure));
        }
        self.audit_read("person.list", "house", &house.to_string(), &format!("{} links", out.len())).await?;
        Ok(out)
    }

    /// Organisations at a house in scope (lying there, or using it as premises).
    pub async fn house_organisations(&self, house: i64) -> Result<Vec<OrganisationView>, StoreError> {
        self.house(house).await?;
        let rows = sqlx::query(
            "SELECT id, name, credit_code, address, house_id, area_code, legal_rep, phone, version FROM organisations \
             WHERE house_id = $1 OR id IN (SELECT organisation_id FROM organisation_houses WHERE house_id = $1) ORDER BY id",
        )
        .bind(house)
        .fetch_all(&self.db().pool)
        .await?;
        // An organisation registered elsewhere may use premises here: only those in scope show.
        Ok(rows.iter().map(|r| org_row(r).map(|o| o.0)).collect::<Result<Vec<_>, _>>()?.into_iter().filter(|o| self.in_scope(&o.area)).collect())
    }

    /// The households at a house in scope.
    pub async fn house_households(&self, house: i64) -> Result<Vec<HouseholdView>, StoreError> {
        self.house(house).await?;
        let ids: Vec<i64> = sqlx::query("SELECT id FROM households WHERE house_id = $1 ORDER BY id")
            .bind(house)
            .fetch_all(&self.db().pool)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        self.households_by_id(&ids).await
    }
}

/// The fields of a form that edits a person without showing the full ID number or phone:
/// `None` keeps the stored value, which never leaves the store.
#[derive(Debug, Clone)]
pub struct PersonFormEdit {
    pub citizen_id: Option<domain::register::CitizenId>,
    pub name: String,
    /// `None`: keep; `Some(None)`: remove; `Some(Some(p))`: set.
    pub phone: Option<Option<domain::Phone>>,
    pub ethnicity: Option<String>,
    /// `None` keeps the stored 人口类型.
    pub population_type: Option<domain::register::PopulationType>,
}

impl RegisterDesk<'_> {
    /// Change a person from a form at the version read (see [`PersonFormEdit`]); the same
    /// checks, history and audit as [`RegisterDesk::update_person`].
    pub async fn update_person_form(&self, id: i64, version: i64, f: PersonFormEdit) -> Result<PersonView, StoreError> {
        let mut tx = self.begin("person.update", "person", &id.to_string()).await?;
        let r = async {
            let cur = self.person_in(&mut tx, id).await?;
            let citizen_id = match f.citizen_id {
                Some(c) => c,
                None => domain::register::CitizenId::from_stored(&cur.citizen_id).map_err(|_| super::corrupt("persons.citizen_id"))?,
            };
            let phone = match f.phone {
                Some(p) => p,
                None => cur.phone.as_deref().map(domain::Phone::parse).transpose().map_err(|_| super::corrupt("persons.phone"))?,
            };
            let edit = super::PersonEdit { citizen_id, name: f.name, phone, ethnicity: f.ethnicity, population_type: f.population_type.unwrap_or(cur.view.population_type), tags: cur.view.tags.clone() };
            self.update_person_in(&mut tx, id, version, edit).await
        }
        .await;
        self.finish(tx, "person.update", r).await
    }
}
