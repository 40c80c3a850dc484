//! The dispatcher board over a large store: N synthetic incidents (a year of them, the
//! newest 3 % still open) in the demo district, then the board's queries as each kind of
//! caller makes them (a page of 200 and the counts by state and colour), through
//! civicgrid's own store handles, on SQLite and on PostgreSQL in
//! the same run. Prints p50, p95 and max per query kind as JSON lines.
//!
//!   board [--incidents N] [--samples K] [--backend sqlite|postgres|both] [--keep]

use std::time::{Duration, Instant};

use domain::access::Credential;
use domain::calendar::Warning;
use domain::demo::{self, DemoOptions};
use domain::{AreaCode, Level, Principal, Role};
use sqlx::{AnyConnection, Connection};
use store::incidents::{IncidentFilter, Source};
use store::{Db, Dialect};

const YEAR_MS: i64 = 365 * 86_400_000;

fn usage() -> ! {
    eprintln!("usage: board [--incidents N] [--samples K] [--backend sqlite|postgres|both] [--keep]");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let n: i64 = flag("--incidents").map(|v| v.parse().unwrap_or_else(|_| usage())).unwrap_or(1_000_000);
    let samples: usize = flag("--samples").map(|v| v.parse().unwrap_or_else(|_| usage())).unwrap_or(200);
    let backends = match flag("--backend").as_deref().unwrap_or("both") {
        "sqlite" => vec![Dialect::Sqlite],
        "postgres" => vec![Dialect::Postgres],
        "both" => vec![Dialect::Sqlite, Dialect::Postgres],
        _ => usage(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let keep = args.iter().any(|a| a == "--keep");
    for d in backends {
        runtime.block_on(run(d, n, samples, keep));
    }
}

async fn run(d: Dialect, n: i64, samples: usize, keep: bool) {
    let (url, cleanup) = match d {
        Dialect::Sqlite => {
            let dir = std::env::temp_dir().join(format!("civicgrid-board-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("dir");
            (format!("sqlite://{}", dir.join("board.db").display()), Cleanup::Dir(dir))
        }
        Dialect::Postgres => {
            let base = bench::postgres_url();
            let name = format!("civicgrid_board_{}", std::process::id());
            let mut admin = AnyConnection::connect(&base).await.expect("connect to PostgreSQL");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).execute(&mut admin).await.expect("drop");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.expect("create");
            let (root, _) = base.rsplit_once('/').expect("a database name");
            (format!("{root}/{name}"), Cleanup::Database(base, name))
        }
    };
    sqlx::any::install_default_drivers();
    let db = Db::open(&url).await.expect("open");
    let district = demo::generate(DemoOptions::default()).expect("demo");
    db.load_demo(&district).await.expect("demo");
    let actor = store::audit::Actor::cli("bench");
    db.load_catalogue(&actor, &domain::catalogue::demo_departments(), &domain::catalogue::demo_categories(), &store::catalogue::demo_calendar())
        .await
        .expect("catalogue");
    let started = Instant::now();
    load(&url, d, n, db.now_ms()).await;
    let loaded = started.elapsed();

    let grids: Vec<AreaCode> = district.areas.iter().filter(|a| a.level == Level::Grid).map(|a| a.code.clone()).collect();
    let streets: Vec<AreaCode> = district.areas.iter().filter(|a| a.level == Level::Street).map(|a| a.code.clone()).collect();
    let principal = |role: Role, area: &AreaCode, department: Option<&str>| Principal {
        account_id: 1,
        username: "bench".into(),
        display_name: "bench".into(),
        role,
        area: area.clone(),
        department: department.map(str::to_string),
        credential: Credential::Token(1),
        must_change_password: false,
    };
    let district_code = AreaCode::parse(demo::DISTRICT_CODE).expect("district");
    let now = db.now_ms();
    let filter = |f: IncidentFilter| IncidentFilter { limit: 200, ..f };
    // (name, caller k → principal, filter)
    type Case<'a> = (&'static str, Box<dyn Fn(usize) -> (Principal, IncidentFilter) + 'a>);
    let cases: Vec<Case> = vec![
        ("district dispatcher, newest 200", Box::new(|_| (principal(Role::Dispatcher, &district_code, None), filter(IncidentFilter::default())))),
        (
            "district dispatcher, state reported",
            Box::new(|_| (principal(Role::Dispatcher, &district_code, None), filter(IncidentFilter { state: Some(domain::incident::State::Reported), ..Default::default() }))),
        ),
        (
            "district dispatcher, red",
            Box::new(|_| (principal(Role::Dispatcher, &district_code, None), filter(IncidentFilter { warning: Some((Warning::Red, now)), ..Default::default() }))),
        ),
        (
            "district dispatcher, one street, hotline",
            Box::new(|k| {
                let f = IncidentFilter { area: Some(streets[k % streets.len()].clone()), source: Some(Source::Hotline), ..Default::default() };
                (principal(Role::Dispatcher, &district_code, None), filter(f))
            }),
        ),
        (
            "district dispatcher, one category",
            Box::new(|k| (principal(Role::Dispatcher, &district_code, None), filter(IncidentFilter { category: Some(format!("C01{:02}", 1 + k % 5)), ..Default::default() }))),
        ),
        ("street staff, newest 200", Box::new(|k| (principal(Role::StreetStaff, &streets[k % streets.len()], None), filter(IncidentFilter::default())))),
        ("grid worker, newest 200", Box::new(|k| (principal(Role::GridWorker, &grids[k * 7 % grids.len()], None), filter(IncidentFilter::default())))),
        (
            "grid worker, state handled",
            Box::new(|k| {
                let f = IncidentFilter { state: Some(domain::incident::State::Handled), ..Default::default() };
                (principal(Role::GridWorker, &grids[k * 7 % grids.len()], None), filter(f))
            }),
        ),
        ("department handler, newest 200", Box::new(|_| (principal(Role::DepartmentHandler, &district_code, Some("cgj")), filter(IncidentFilter::default())))),
    ];
    for (name, case) in &cases {
        let mut times = Vec::with_capacity(samples);
        let (mut lists, mut counts) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
        let mut rows = 0;
        for k in 0..samples {
            let (p, f) = case(k);
            let t = Instant::now();
            let s = db.scoped(&p, actor.clone());
            let desk = s.incidents().expect("desk");
            // A board page: the page of incidents and the counts by state and colour.
            rows += desk.list(&f).await.expect("list").len();
            let listed = t.elapsed();
            desk.counts(&f).await.expect("counts");
            times.push(t.elapsed());
            lists.push(listed);
            counts.push(t.elapsed() - listed);
        }
        report(d, n, name, &mut times, &mut lists, &mut counts, rows / samples, loaded);
    }
    db.close().await;
    if keep {
        eprintln!("kept {}", store::redact_url(&url));
    } else {
        cleanup.run().await;
    }
}

#[allow(clippy::too_many_arguments)]
fn report(d: Dialect, n: i64, name: &str, times: &mut [Duration], lists: &mut [Duration], counts: &mut [Duration], rows: usize, loaded: Duration) {
    let pct = |v: &mut [Duration], p: f64| {
        v.sort_unstable();
        (v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 100_000.0).round() / 100.0
    };
    println!(
        "{}",
        serde_json::json!({"backend": d.name(), "incidents": n, "query": name, "rows": rows, "samples": times.len(),
            "p50_ms": pct(times, 0.5), "p95_ms": pct(times, 0.95), "max_ms": pct(times, 1.0),
            "list_p95_ms": pct(lists, 0.95), "counts_p95_ms": pct(counts, 0.95), "load_s": loaded.as_secs()})
    );
}

enum Cleanup {
    Dir(std::path::PathBuf),
    Database(String, String),
}

impl Cleanup {
    async fn run(self) {
        match self {
            Cleanup::Dir(d) => {
                let _ = std::fs::remove_dir_all(d);
            }
            Cleanup::Database(base, name) => {
                if let Ok(mut admin) = AnyConnection::connect(&base).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut admin).await;
                }
            }
        }
    }
}

/// Write `n` incidents straight into the store in chunks, with SQL generating the rows:
/// reported over the past year, spread over every grid and category; all but the newest
/// 3 % closed; the open ones in every open state, some dispatched to departments.
async fn load(url: &str, d: Dialect, n: i64, now: i64) {
    let mut c = AnyConnection::connect(url).await.expect("connect");
    sqlx::raw_sql(
        "CREATE TABLE bench_grids (k INTEGER PRIMARY KEY, code TEXT NOT NULL); \
         CREATE TABLE bench_cats (k INTEGER PRIMARY KEY, code TEXT NOT NULL, department TEXT NOT NULL)",
    )
    .execute(&mut c)
    .await
    .expect("helper tables");
    sqlx::raw_sql(
        "INSERT INTO bench_grids (k, code) SELECT ROW_NUMBER() OVER (ORDER BY code) - 1, code FROM areas WHERE level = 'grid'; \
         INSERT INTO bench_cats (k, code, department) SELECT ROW_NUMBER() OVER (ORDER BY code) - 1, code, department FROM categories WHERE parent IS NOT NULL AND department IS NOT NULL",
    )
    .execute(&mut c)
    .await
    .expect("helper rows");
    let open_from = n - n * 3 / 100;
    let series = match d {
        Dialect::Sqlite => "WITH RECURSIVE s(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM s WHERE i < $2) SELECT i FROM s",
        Dialect::Postgres => "SELECT generate_series($1::bigint, $2::bigint) AS i",
    };
    // Open states by i % 6: reported, filed, dispatched (grid), in_progress (department),
    // handled, dispatched (department).
    let sql = format!(
        "INSERT INTO incidents (receipt, category, description, lat, lon, grid, area_code, level, source, state, department, assignee_area, \
         on_spot_allowed, returns, reworks, version, created_at, updated_at, step_started_at, warn_at, due_at, late, closed_at) \
         SELECT 'BENCH' || s.i, c.code, '井盖缺失，行人有坠落危险 ' || s.i, 27.2, 111.45, g.code, g.code, 'grid', \
         CASE s.i % 4 WHEN 0 THEN 'grid_patrol' WHEN 1 THEN 'resident' WHEN 2 THEN 'hotline' ELSE 'camera' END, \
         CASE WHEN s.i < {open_from} THEN 'closed' ELSE CASE s.i % 6 WHEN 0 THEN 'reported' WHEN 1 THEN 'filed' WHEN 2 THEN 'dispatched' \
              WHEN 3 THEN 'in_progress' WHEN 4 THEN 'handled' ELSE 'dispatched' END END, \
         CASE WHEN s.i % 6 IN (3, 5) OR s.i < {open_from} THEN c.department ELSE NULL END, \
         CASE WHEN s.i >= {open_from} AND s.i % 6 = 2 THEN g.code ELSE NULL END, \
         0, 0, 0, 1, t.at, t.at, t.at, \
         CASE WHEN s.i < {open_from} THEN NULL ELSE t.at + 43200000 END, CASE WHEN s.i < {open_from} THEN NULL ELSE t.at + 86400000 END, \
         0, CASE WHEN s.i < {open_from} THEN t.at + 172800000 ELSE NULL END \
         FROM ({series}) s \
         JOIN bench_grids g ON g.k = s.i % (SELECT COUNT(*) FROM bench_grids) \
         JOIN bench_cats c ON c.k = (s.i / 7) % (SELECT COUNT(*) FROM bench_cats) \
",
    );
    let at = format!("({now} - {YEAR_MS} + s.i * {})", YEAR_MS / n.max(1));
    let sql = sql.replace("t.at", &at);
    let chunk = 100_000;
    let mut lo = 0;
    while lo < n {
        let hi = (lo + chunk).min(n) - 1;
        let mut tx = c.begin().await.expect("begin");
        sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(lo).bind(hi).execute(&mut *tx).await.expect("insert");
        tx.commit().await.expect("commit");
        lo = hi + 1;
    }
    sqlx::raw_sql("DROP TABLE bench_grids; DROP TABLE bench_cats; ANALYZE").execute(&mut c).await.expect("analyze");
}
