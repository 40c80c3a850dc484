//! The door-to-door collection benchmark (see docs/PERFORMANCE.md, "Door-to-door
//! collection"):
//!
//! ```text
//! collectbench URL RUNS   a fresh store: the demo district (628 grids), 110,000 houses and
//!                         270,000 persons spread over the grids (raw multi-row inserts, a
//!                         fixture), the demo's collection round (one open task per grid, a
//!                         visit to every third house), ANALYZE; then, RUNS times each, p50/p95 of
//!                         - the district's collection overview (every task with its progress,
//!                           as /register/collection reads it) against the bare count of
//!                           houses per grid, one of the three grouped reads it makes;
//!                         - a grid worker's /m/register (the grid's open tasks with progress,
//!                           the latest visit per house, the first 200 houses) against a bare
//!                           read of the grid's first 200 houses.
//! ```
//! Bench-only: nothing here is part of the product, and no test depends on it.

use std::time::{Duration, Instant};

use domain::{AreaCode, Credential, Level, Principal, Role};
use sqlx::Row;
use store::Db;
use store::audit::Actor;
use store::register::RegisterQuery;

type Failure = Box<dyn std::error::Error>;

const HOUSES: i64 = 110_000;
const PERSONS: i64 = 270_000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, runs) = match args.as_slice() {
        [url, runs] => (url.clone(), runs.parse::<usize>()?),
        _ => {
            eprintln!("usage: collectbench URL RUNS   (URL: an empty store, sqlite://PATH or postgres://…)");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let db = Db::open(&url).await?;
    let district = domain::demo::generate(domain::demo::DemoOptions::default())?;
    db.load_demo(&district).await?;
    let grids: Vec<String> = district.areas.iter().filter(|a| a.level == Level::Grid).map(|a| a.code.to_string()).collect();
    sqlx::any::install_default_drivers();
    let raw = sqlx::AnyPool::connect(&url).await?;
    load_register(&raw, &grids, db.now_ms()).await?;
    let (tasks, visits) = store::collection::seed_round(&db).await?;
    // Planner statistics after the bulk load, as an operator would after an import.
    sqlx::raw_sql("ANALYZE").execute(&raw).await?;
    println!(
        "{} fixture: {HOUSES} houses, {PERSONS} persons, {tasks} tasks, {visits} visits in {:.1} s",
        db.dialect().name(),
        started.elapsed().as_secs_f64()
    );

    let who = |role: Role, area: &str| Principal {
        account_id: 1,
        username: "bench".into(),
        display_name: "bench".into(),
        role,
        area: AreaCode::parse(area).expect("area"),
        department: None,
        credential: Credential::Token(1),
        must_change_password: false,
    };
    db.set_audit_reads(true);
    let street = who(Role::StreetStaff, "430503");
    let s = db.scoped(&street, Actor::cli("collectbench"));
    let collect = s.collection().ok_or("no collection desk")?;
    let overview = time(runs, || async {
        let t = collect.tasks(None, false).await.expect("tasks");
        assert_eq!(t.len(), grids.len());
    })
    .await;
    let baseline = time(runs, || async {
        let rows = sqlx::query("SELECT area_code, COUNT(*) AS n FROM houses GROUP BY area_code").fetch_all(&raw).await.expect("count");
        assert_eq!(rows.len(), grids.len());
    })
    .await;
    report("district overview, 628 tasks with progress", overview, "houses per grid (GROUP BY)", baseline);

    let grid = &grids[0];
    let worker = who(Role::GridWorker, grid);
    let ws = db.scoped(&worker, Actor::cli("collectbench"));
    let (wc, wd) = (ws.collection().ok_or("no desk")?, ws.register().ok_or("no desk")?);
    let in_grid: i64 = sqlx::query("SELECT COUNT(*) FROM houses WHERE area_code = $1").bind(grid.as_str()).fetch_one(&raw).await?.try_get(0)?;
    let home = time(runs, || async {
        let t = wc.tasks(None, true).await.expect("tasks");
        let v = wc.last_visits(t[0].id).await.expect("visits");
        let h = wd.find_houses(&RegisterQuery { limit: 200, ..RegisterQuery::default() }).await.expect("houses");
        assert!(!h.is_empty() && v.len() <= h.len() + 200);
    })
    .await;
    let bare = time(runs, || async {
        let rows = sqlx::query("SELECT id, address, area_code, lat, lon, area_m2, house_use, version, created_at, updated_at FROM houses WHERE area_code = $1 ORDER BY id LIMIT 200")
            .bind(grid.as_str())
            .fetch_all(&raw)
            .await
            .expect("houses");
        assert!(!rows.is_empty());
    })
    .await;
    report(&format!("a grid worker's /m/register reads ({in_grid} houses in the grid)"), home, "the grid's first 200 houses", bare);
    Ok(())
}

/// Houses and persons, spread evenly over the grids, in multi-row statements.
async fn load_register(pool: &sqlx::AnyPool, grids: &[String], now: i64) -> Result<(), Failure> {
    const CHUNK: i64 = 500;
    let mut tx = pool.begin().await?;
    let mut at = 0;
    while at < HOUSES {
        let end = (at + CHUNK).min(HOUSES);
        let values: Vec<String> = (at..end)
            .map(|i| format!("('建设路 {} 号 {} 室', '{}', 'residential', {now}, {now}, 1)", i / 40, i % 40 + 101, grids[(i as usize) % grids.len()]))
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(format!("INSERT INTO houses (address, area_code, house_use, created_at, updated_at, version) VALUES {}", values.join(", "))))
            .execute(&mut *tx)
            .await?;
        at = end;
    }
    let first: i64 = sqlx::query("SELECT MIN(id) FROM houses").fetch_one(&mut *tx).await?.try_get(0)?;
    let mut at = 0;
    while at < PERSONS {
        let end = (at + CHUNK).min(PERSONS);
        let values: Vec<String> = (at..end)
            .map(|i| {
                let house = i % HOUSES;
                let grid = &grids[(house as usize) % grids.len()];
                // Every fifth person changed within the last 20 days.
                let updated = if i % 5 == 0 { now - (i % 20) * 86_400_000 } else { now - 400 * 86_400_000 };
                format!("('B{i:017}', '居民{i}', 'male', 5000, NULL, NULL, {}, '{grid}', {updated}, {updated}, 1)", first + house)
            })
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO persons (citizen_id, name, gender, birth_day, phone, ethnicity, house_id, area_code, created_at, updated_at, version) VALUES {}",
            values.join(", ")
        )))
        .execute(&mut *tx)
        .await?;
        at = end;
    }
    tx.commit().await?;
    Ok(())
}

async fn time<F, Fut>(runs: usize, mut f: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f().await; // warm
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await;
        out.push(t.elapsed());
    }
    out.sort();
    out
}

fn pct(v: &[Duration], p: f64) -> f64 {
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

fn report(what: &str, ours: Vec<Duration>, base_what: &str, base: Vec<Duration>) {
    println!(
        "{what}: p50 {:.2} ms, p95 {:.2} ms | baseline {base_what}: p50 {:.2} ms, p95 {:.2} ms | ratio p50 {:.1}x, p95 {:.1}x",
        pct(&ours, 0.5),
        pct(&ours, 0.95),
        pct(&base, 0.5),
        pct(&base, 0.95),
        pct(&ours, 0.5) / pct(&base, 0.5),
        pct(&ours, 0.95) / pct(&base, 0.95)
    );
}
