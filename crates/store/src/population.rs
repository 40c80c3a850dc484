//! Bulk loading of the demo register (`domain::population`): houses, persons, households
//! and their members, organisations and the person↔house and organisation↔house links.
//!
//! A batch of grids goes in one write transaction as multi-row statements with literal
//! values (generated text only; see `history.rs` for why not binds), with ids following
//! each table's last. Each batch also writes, with one `INSERT … SELECT` per table:
//! - one `register_history` row per record (action `demo`, field `record`), so a record's
//!   history says where it came from; field-by-field rows are left out: they would only
//!   repeat the record, and would double the load;
//! - one change-log entry per record (`person`, `house`, `household`, `organisation`), so a
//!   derived index that follows the log sees the people whether it was built before or after.

use domain::population::{GridPopulation, Population};
use domain::register::PersonTag;
use sqlx::Row;

use crate::StoreError;
use crate::db::{Db, Dialect};

/// What a load stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PopulationReport {
    pub houses: u64,
    pub persons: u64,
    pub households: u64,
    pub organisations: u64,
}

/// Grids per transaction: about 7,000 people at the base density.
const GRIDS_PER_TX: usize = 16;
/// Rows per statement.
const ROWS: usize = 500;

fn lit(t: &str) -> String {
    format!("'{}'", t.replace('\'', "''").replace('\0', " "))
}

fn opt(t: Option<&str>) -> String {
    t.map_or_else(|| "NULL".into(), lit)
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

async fn insert(tx: &mut Tx, head: &str, rows: &[String]) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS) {
        let sql = format!("{head} VALUES {}", chunk.join(", "));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut **tx).await?;
    }
    Ok(())
}

async fn max_id(tx: &mut Tx, table: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COALESCE(MAX(id), 0) FROM {table}"))).fetch_one(&mut **tx).await?.try_get(0)?)
}

impl Db {
    /// Store the whole demo register, a batch of grids per transaction. Returns the counts.
    pub async fn load_population(&self, population: &Population) -> Result<PopulationReport, StoreError> {
        let mut report = PopulationReport::default();
        let mut batch: Vec<GridPopulation> = Vec::with_capacity(GRIDS_PER_TX);
        for g in population.grids() {
            batch.push(g);
            if batch.len() == GRIDS_PER_TX {
                self.load_grids(&batch, &mut report).await?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            self.load_grids(&batch, &mut report).await?;
        }
        Ok(report)
    }

    async fn load_grids(&self, grids: &[GridPopulation], report: &mut PopulationReport) -> Result<(), StoreError> {
        let now = self.now_ms();
        let mut tx = self.write_tx().await?;
        let first = [max_id(&mut tx, "houses").await?, max_id(&mut tx, "persons").await?, max_id(&mut tx, "households").await?, max_id(&mut tx, "organisations").await?];
        let [mut house_id, mut person_id, mut household_id, mut org_id] = first;
        let (mut houses, mut persons, mut households, mut members, mut links, mut orgs, mut org_links) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for g in grids {
            let grid = lit(g.grid.as_str());
            let house_base = house_id;
            for h in &g.houses {
                house_id += 1;
                houses.push(format!("({house_id}, {}, {grid}, {}, {}, {}, {}, {now}, {now}, 1)", lit(&h.address), h.lat, h.lon, h.area_m2, lit(h.house_use)));
            }
            let person_base = person_id;
            for p in &g.persons {
                person_id += 1;
                let house = house_base + 1 + p.house as i64;
                persons.push(format!(
                    "({person_id}, {}, {}, {}, {}, {}, {}, {house}, {grid}, {}, {}, {now}, {now}, 1)",
                    lit(&p.citizen_id),
                    lit(&p.name),
                    lit(if p.female { "female" } else { "male" }),
                    p.birth.0,
                    opt(p.phone.as_deref()),
                    lit(p.ethnicity),
                    lit(p.population.as_str()),
                    lit(&PersonTag::join(&p.tags)),
                ));
                links.push(format!("({person_id}, {house}, 'lives', {now})"));
            }
            for t in &g.tenures {
                let kind = if t.owns { "owns" } else { "rents" };
                links.push(format!("({}, {}, '{kind}', {now})", person_base + 1 + t.person as i64, house_base + 1 + t.house as i64));
            }
            for hh in &g.households {
                household_id += 1;
                let house = house_base + 1 + hh.house as i64;
                let address = &g.houses[hh.house].address;
                households.push(format!("({household_id}, {house}, {}, {grid}, {now}, {now}, 1)", lit(address)));
                for (p, rel) in &hh.members {
                    members.push(format!("({household_id}, {}, '{}')", person_base + 1 + *p as i64, rel.as_str()));
                }
            }
            for o in &g.organisations {
                org_id += 1;
                let house = house_base + 1 + o.house as i64;
                orgs.push(format!(
                    "({org_id}, {}, {}, {}, {house}, {grid}, {}, {}, {now}, {now}, 1)",
                    lit(&o.name),
                    lit(&o.credit_code),
                    lit(&g.houses[o.house].address),
                    lit(&o.legal_rep),
                    lit(&o.phone)
                ));
                org_links.push(format!("({org_id}, {house}, {now})"));
            }
        }
        insert(&mut tx, "INSERT INTO houses (id, address, area_code, lat, lon, area_m2, house_use, created_at, updated_at, version)", &houses).await?;
        insert(
            &mut tx,
            "INSERT INTO persons (id, citizen_id, name, gender, birth_day, phone, ethnicity, house_id, area_code, population_type, tags, created_at, updated_at, version)",
            &persons,
        )
        .await?;
        insert(&mut tx, "INSERT INTO person_houses (person_id, house_id, kind, since)", &links).await?;
        insert(&mut tx, "INSERT INTO households (id, house_id, address, area_code, created_at, updated_at, version)", &households).await?;
        insert(&mut tx, "INSERT INTO household_members (household_id, person_id, relation)", &members).await?;
        insert(&mut tx, "INSERT INTO organisations (id, name, credit_code, address, house_id, area_code, legal_rep, phone, created_at, updated_at, version)", &orgs).await?;
        insert(&mut tx, "INSERT INTO organisation_houses (organisation_id, house_id, since)", &org_links).await?;
        // One history row and one change-log entry per record, straight from the rows just written.
        let last = [house_id, person_id, household_id, org_id];
        for (k, (table, entity)) in [("houses", "house"), ("persons", "person"), ("households", "household"), ("organisations", "organisation")].into_iter().enumerate() {
            let range = format!("FROM {table} WHERE id > {} AND id <= {}", first[k], last[k]);
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "INSERT INTO register_history (at, actor_kind, actor_id, actor_name, operation_id, action, entity, entity_id, field, old_value, new_value) \
                 SELECT {now}, 'system', NULL, 'demo', 'demo', 'demo', '{entity}', id, 'record', NULL, 'demo' {range} ORDER BY id"
            )))
            .execute(&mut *tx)
            .await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "INSERT INTO change_log (entity, key, op, at) SELECT '{entity}', CAST(id AS TEXT), 'upsert', {now} {range} ORDER BY id"
            )))
            .execute(&mut *tx)
            .await?;
        }
        if self.dialect == Dialect::Postgres {
            for table in ["houses", "persons", "households", "organisations"] {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST((SELECT MAX(id) FROM {table}), 1))"
                )))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        report.houses += (house_id - first[0]) as u64;
        report.persons += (person_id - first[1]) as u64;
        report.households += (household_id - first[2]) as u64;
        report.organisations += (org_id - first[3]) as u64;
        Ok(())
    }
}
