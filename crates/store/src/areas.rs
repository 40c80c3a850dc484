//! Areas, grids and their teams.

use std::collections::{BTreeSet, HashMap};

use domain::demo::DemoDistrict;
use domain::geometry::{self, AreaRecord, ImportProblem};
use domain::{AreaCode, DedicatedKind, Level, TeamMember};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::changes::{self, Op};
use crate::db::Db;
use crate::StoreError;

/// An area without its geometry, as lists and pages show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AreaRow {
    pub code: AreaCode,
    pub name: String,
    pub level: Level,
    pub parent: Option<AreaCode>,
    pub kind: Option<DedicatedKind>,
    /// [min_lon, min_lat, max_lon, max_lat]
    pub bbox: [f64; 4],
}

/// Which areas a list returns. Empty means every area.
#[derive(Debug, Clone, Default)]
pub struct AreaFilter {
    pub parent: Option<AreaCode>,
    pub level: Option<Level>,
    /// Only areas whose code starts with this one (the area itself included).
    pub within: Option<AreaCode>,
    /// Only areas whose code sorts after this one (a page's cursor).
    pub after: Option<AreaCode>,
    pub limit: Option<i64>,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportReport {
    pub inserted: usize,
    pub updated: usize,
}

const ROW_COLUMNS: &str = "code, name, level, parent, kind, min_lon, min_lat, max_lon, max_lat";

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn area_row(r: &AnyRow) -> Result<AreaRow, StoreError> {
    let code: String = r.try_get("code")?;
    let level: String = r.try_get("level")?;
    let parent: Option<String> = r.try_get("parent")?;
    let kind: Option<String> = r.try_get("kind")?;
    Ok(AreaRow {
        code: AreaCode::parse(&code).map_err(|e| corrupt("areas.code", e))?,
        name: r.try_get("name")?,
        level: level.parse().map_err(|e| corrupt("areas.level", e))?,
        parent: parent.map(|p| AreaCode::parse(&p)).transpose().map_err(|e| corrupt("areas.parent", e))?,
        kind: kind.map(|k| k.parse()).transpose().map_err(|e| corrupt("areas.kind", e))?,
        bbox: [r.try_get("min_lon")?, r.try_get("min_lat")?, r.try_get("max_lon")?, r.try_get("max_lat")?],
    })
}

fn area_record(r: &AnyRow) -> Result<AreaRecord, StoreError> {
    let row = area_row(r)?;
    let text: String = r.try_get("geometry")?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| corrupt("areas.geometry", e))?;
    let geometry = geometry::geometry_from_geojson(&value).map_err(|e| corrupt("areas.geometry", e))?;
    Ok(AreaRecord { code: row.code, name: row.name, level: row.level, parent: row.parent, kind: row.kind, geometry })
}

/// `WHERE` clause and its text arguments for a filter (codes and levels are validated
/// types, but they are still bound, never spliced).
fn filter_sql(f: &AreaFilter) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut args = Vec::new();
    if let Some(p) = &f.parent {
        args.push(p.to_string());
        clauses.push(format!("parent = ${}", args.len()));
    }
    if let Some(l) = f.level {
        args.push(l.as_str().to_string());
        clauses.push(format!("level = ${}", args.len()));
    }
    if let Some(w) = &f.within {
        args.push(format!("{w}%"));
        clauses.push(format!("code LIKE ${}", args.len()));
    }
    if let Some(a) = &f.after {
        args.push(a.to_string());
        clauses.push(format!("code > ${}", args.len()));
    }
    let mut sql = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
    sql.push_str(" ORDER BY code");
    if let Some(n) = f.limit {
        sql.push_str(&format!(" LIMIT {}", n.max(0)));
    }
    (sql, args)
}

impl Db {
    pub async fn area(&self, code: &AreaCode) -> Result<Option<AreaRow>, StoreError> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM areas WHERE code = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(code.as_str()).fetch_optional(&self.pool).await?;
        row.as_ref().map(area_row).transpose()
    }

    /// An area with its geometry.
    pub async fn area_record(&self, code: &AreaCode) -> Result<Option<AreaRecord>, StoreError> {
        let sql = format!("SELECT {ROW_COLUMNS}, geometry FROM areas WHERE code = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(code.as_str()).fetch_optional(&self.pool).await?;
        row.as_ref().map(area_record).transpose()
    }

    pub async fn list_areas(&self, f: &AreaFilter) -> Result<Vec<AreaRow>, StoreError> {
        let (tail, args) = filter_sql(f);
        let sql = format!("SELECT {ROW_COLUMNS} FROM areas{tail}");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in args {
            q = q.bind(a);
        }
        q.fetch_all(&self.pool).await?.iter().map(area_row).collect()
    }

    /// Areas with their geometry (exports, the map, the grid index).
    pub async fn area_records(&self, f: &AreaFilter) -> Result<Vec<AreaRecord>, StoreError> {
        let (tail, args) = filter_sql(f);
        let sql = format!("SELECT {ROW_COLUMNS}, geometry FROM areas{tail}");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in args {
            q = q.bind(a);
        }
        q.fetch_all(&self.pool).await?.iter().map(area_record).collect()
    }

    /// How many areas each level has.
    pub async fn count_by_level(&self) -> Result<HashMap<Level, i64>, StoreError> {
        let rows = sqlx::query("SELECT level, COUNT(*) AS n FROM areas GROUP BY level").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let level: String = r.try_get("level")?;
                Ok((level.parse().map_err(|e| corrupt("areas.level", e))?, r.try_get::<i64, _>("n")?))
            })
            .collect()
    }

    pub async fn count_areas(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM areas").fetch_one(&self.pool).await?.try_get(0)?)
    }

    /// How many basic grids lie under each child of `parent` (children with none are absent).
    pub async fn grid_counts_by_child(&self, parent: &AreaRow) -> Result<HashMap<String, i64>, StoreError> {
        let Some(child_level) = parent.level.child() else { return Ok(HashMap::new()) };
        let len = child_level.code_len();
        let sql = format!(
            "SELECT substr(code, 1, {len}) AS child, COUNT(*) AS n FROM areas \
             WHERE level = 'grid' AND code LIKE $1 GROUP BY substr(code, 1, {len})"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(format!("{}%", parent.code))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get::<String, _>("child")?, r.try_get::<i64, _>("n")?))).collect()
    }

    /// Check a GeoJSON FeatureCollection against itself and the stored tree and, when it
    /// has no problem at all, write every feature in one transaction. With any problem,
    /// nothing is written and every problem comes back.
    pub async fn import_areas(&self, text: &str) -> Result<ImportReport, StoreError> {
        let (features, mut problems) = geometry::parse_feature_collection(text).map_err(StoreError::Import)?;
        let mut tx = self.write_tx().await?;
        let existing = existing_context(&mut tx, &features).await?;
        problems.extend(geometry::check_import(&features, &existing));
        if !problems.is_empty() {
            problems.sort_by_key(|p: &ImportProblem| p.index);
            return Err(StoreError::Import(problems));
        }
        let mut records: Vec<AreaRecord> = features.into_iter().map(|(_, r)| r).collect();
        let report = write_areas(self, &mut tx, &mut records).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Fill an empty store with the demo district.
    pub async fn load_demo(&self, demo: &DemoDistrict) -> Result<ImportReport, StoreError> {
        let mut tx = self.write_tx().await?;
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM areas").fetch_one(&mut *tx).await?.try_get(0)?;
        if n > 0 {
            return Err(StoreError::NotEmpty(n));
        }
        let mut records = demo.areas.clone();
        let report = write_areas(self, &mut tx, &mut records).await?;
        insert_team(&mut tx, &demo.team).await?;
        tx.commit().await?;
        Ok(report)
    }

}

/// The stored areas an import is checked against: the parents it names and every basic
/// grid in a community where it adds or replaces grids.
async fn existing_context(
    tx: &mut Transaction<'static, Any>,
    features: &[(usize, AreaRecord)],
) -> Result<HashMap<AreaCode, AreaRecord>, StoreError> {
    let parents: BTreeSet<&AreaCode> = features.iter().filter_map(|(_, r)| r.parent.as_ref()).collect();
    let communities: BTreeSet<&AreaCode> =
        features.iter().filter(|(_, r)| r.level == Level::Grid).filter_map(|(_, r)| r.parent.as_ref()).collect();
    let mut out = HashMap::new();
    let by_code = format!("SELECT {ROW_COLUMNS}, geometry FROM areas WHERE code = $1");
    for p in parents {
        if let Some(row) = sqlx::query(sqlx::AssertSqlSafe(by_code.clone())).bind(p.as_str()).fetch_optional(&mut **tx).await? {
            let rec = area_record(&row)?;
            out.insert(rec.code.clone(), rec);
        }
    }
    let by_parent = format!("SELECT {ROW_COLUMNS}, geometry FROM areas WHERE parent = $1 AND level = 'grid'");
    for c in communities {
        for row in sqlx::query(sqlx::AssertSqlSafe(by_parent.clone())).bind(c.as_str()).fetch_all(&mut **tx).await? {
            let rec = area_record(&row)?;
            out.insert(rec.code.clone(), rec);
        }
    }
    Ok(out)
}

/// Upsert areas, parents first, and log each change.
async fn write_areas(
    db: &Db,
    tx: &mut Transaction<'static, Any>,
    records: &mut [AreaRecord],
) -> Result<ImportReport, StoreError> {
    records.sort_by(|a, b| a.code.as_str().len().cmp(&b.code.as_str().len()).then(a.code.cmp(&b.code)));
    let now = db.now_ms();
    let mut report = ImportReport { inserted: 0, updated: 0 };
    for r in records.iter() {
        let Some(bbox) = r.bbox() else {
            return Err(StoreError::Corrupt(format!("area {} has an empty geometry", r.code)));
        };
        let geometry = geometry::geometry_to_geojson(&r.geometry).to_string();
        let existed = sqlx::query("SELECT 1 FROM areas WHERE code = $1")
            .bind(r.code.as_str())
            .fetch_optional(&mut **tx)
            .await?
            .is_some();
        sqlx::query(
            "INSERT INTO areas (code, name, level, parent, kind, geometry, min_lon, min_lat, max_lon, max_lat, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, level = excluded.level, parent = excluded.parent, \
             kind = excluded.kind, geometry = excluded.geometry, min_lon = excluded.min_lon, min_lat = excluded.min_lat, \
             max_lon = excluded.max_lon, max_lat = excluded.max_lat, updated_at = excluded.updated_at",
        )
        .bind(r.code.as_str())
        .bind(&r.name)
        .bind(r.level.as_str())
        .bind(r.parent.as_ref().map(|p| p.as_str()))
        .bind(r.kind.map(|k| k.as_str()))
        .bind(geometry)
        .bind(bbox.min().x)
        .bind(bbox.min().y)
        .bind(bbox.max().x)
        .bind(bbox.max().y)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        if existed {
            report.updated += 1;
        } else {
            report.inserted += 1;
        }
        changes::append(db, tx, "area", r.code.as_str(), Op::Upsert).await?;
    }
    Ok(report)
}

async fn insert_team(tx: &mut Transaction<'static, Any>, team: &[TeamMember]) -> Result<(), StoreError> {
    let mut position: HashMap<&AreaCode, i64> = HashMap::new();
    for chunk in team.chunks(200) {
        let mut sql = String::from("INSERT INTO team_members (area_code, role, name, phone, position) VALUES ");
        for k in 0..chunk.len() {
            if k > 0 {
                sql.push_str(", ");
            }
            let b = k * 5;
            sql.push_str(&format!("(${}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for m in chunk {
            let p = position.entry(&m.area).or_insert(0);
            *p += 1;
            q = q
                .bind(m.area.as_str())
                .bind(m.role.as_str())
                .bind(m.name.as_str())
                .bind(m.phone.as_ref().map(|p| p.as_str().to_string()))
                .bind(*p);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}
