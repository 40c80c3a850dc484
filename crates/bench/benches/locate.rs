//! Point → grid lookups: `GridIndex::locate_grid` measured against PostGIS in the same run.
//!
//! For the demo district at scale 1 (628 basic grids) and scale 100 (62,800):
//! 1. criterion measures in-process lookups over a batch of random points, on one core;
//! 2. PostGIS gets the same basic-grid polygons (GiST index, ANALYZE) and the same points,
//!    and we time its batch plans (best of a few runs, rows fetched by the client) and a
//!    prepared single-point lookup per call;
//! 3. our answers are compared with PostGIS's on 100,000 random points and on grid vertices
//!    (where the boundary rule decides), `ST_Covers … ORDER BY code LIMIT 1` being the rule.
//!
//! Ratios are printed at the end; nothing is asserted. Run it with `scripts/bench-locate.sh`
//! or `cargo bench -p bench --bench locate`; the baseline is at `CIVICGRID_BENCH_POSTGRES`, in a
//! schema dropped at the end unless `CIVICGRID_BENCH_KEEP_SCHEMA` is set.

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use bench::{
    Estimate, bench_mode, criterion_estimate, drop_schema, fresh_schema, micros, percentile, postgres_url, thousands,
    times,
};
use criterion::{BenchmarkId, Criterion, Throughput};
use domain::demo::{self, DemoOptions};
use domain::geometry::geometry_to_geojson;
use domain::rng::Rng;
use domain::{AreaRecord, GridIndex, Level};
use sqlx::{AssertSqlSafe, PgConnection};

const SCALES: [u32; 2] = [1, 100];
/// The targets for in-process lookups per second on one core, per scale.
const TARGET_LOOKUPS: [f64; 2] = [2_000_000.0, 1_000_000.0];
const TARGET_VS_BATCH: f64 = 10.0;
const TARGET_VS_SINGLE: f64 = 50.0;

const DEMO_SEED: u64 = 1;
const POINT_SEED: u64 = 0x6C6F_6361_7465;
/// Points per criterion iteration.
const BATCH: usize = 10_000;
/// Points compared with PostGIS, and fed to its batch plans.
const CHECK_POINTS: usize = 100_000;
/// Grid vertices compared with PostGIS (points on shared edges and corners).
const VERTICES: usize = 10_000;
const BATCH_RUNS: usize = 5;
const SINGLE_WARMUP: usize = 500;
const SINGLE_CALLS: usize = 5_000;
const SCHEMA: &str = "civicgrid_bench_locate";
/// Mismatches printed per comparison (all are counted).
const SHOW_MISMATCHES: usize = 25;

/// One scale of the demo district, with its index and points.
struct Case {
    scale: u32,
    /// The basic grids (the ones PostGIS gets).
    basic: Vec<AreaRecord>,
    index: GridIndex,
    build: Duration,
    /// Uniform over the district's bounding box: some fall outside every grid.
    points: Vec<(f64, f64)>,
    /// Vertices of basic-grid rings: each lies on the boundary of one or more grids.
    vertices: Vec<(f64, f64)>,
}

impl Case {
    fn new(scale: u32) -> Case {
        let district = demo::generate(DemoOptions { scale, seed: DEMO_SEED }).expect("the demo district generates");
        let bbox = district
            .areas
            .iter()
            .find(|a| a.level == Level::District)
            .and_then(AreaRecord::bbox)
            .expect("the demo district has a boundary");
        let started = Instant::now();
        let index = GridIndex::build(&district.areas);
        let build = started.elapsed();
        let mut rng = Rng::new(POINT_SEED ^ u64::from(scale));
        let points = (0..CHECK_POINTS)
            .map(|_| (rng.range_f64(bbox.min().x, bbox.max().x), rng.range_f64(bbox.min().y, bbox.max().y)))
            .collect();
        let basic: Vec<AreaRecord> = district.areas.into_iter().filter(|a| a.level == Level::Grid).collect();
        let mut all: Vec<(u64, u64)> = basic
            .iter()
            .flat_map(|a| a.geometry.0.iter())
            .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
            .flat_map(|ring| ring.0.iter())
            .map(|c| (c.x.to_bits(), c.y.to_bits()))
            .collect();
        all.sort_unstable();
        all.dedup();
        let step = (all.len() / VERTICES).max(1);
        let vertices =
            all.iter().step_by(step).take(VERTICES).map(|&(x, y)| (f64::from_bits(x), f64::from_bits(y))).collect();
        Case { scale, basic, index, build, points, vertices }
    }

    fn ours(&self, pts: &[(f64, f64)]) -> Vec<Option<&str>> {
        pts.iter().map(|&(lon, lat)| self.index.locate_grid(lon, lat).map(|c| c.as_str())).collect()
    }
}

fn main() {
    let started = SystemTime::now();
    let full = bench_mode();
    let cases: Vec<Case> = SCALES.iter().map(|&s| Case::new(s)).collect();
    for c in &cases {
        let unassigned = c.ours(&c.points).iter().filter(|a| a.is_none()).count();
        println!(
            "scale {}: {} basic grids, index built in {:.1} ms, {} of {} random points unassigned",
            c.scale,
            thousands(c.basic.len() as f64),
            c.build.as_secs_f64() * 1e3,
            thousands(unassigned as f64),
            thousands(c.points.len() as f64),
        );
    }

    run_criterion(&cases);
    if !full {
        println!("criterion test mode (no --bench): the PostGIS baseline and the summary need `cargo bench`.");
        return;
    }
    let ours: Vec<Option<Estimate>> =
        cases.iter().map(|c| criterion_estimate(&format!("locate_grid/grids/{}", c.basic.len()), started)).collect();

    let url = postgres_url();
    println!("\n== PostGIS baseline at {url} ==");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime starts");
    let pg = runtime.block_on(postgis(&url, &cases));
    if let Err(e) = &pg {
        println!("PostGIS baseline UNAVAILABLE: {e}");
        println!("Only the in-process figures are reported. Install it with scripts/bench-locate.sh.");
    }
    summary(&cases, &ours, pg.as_ref().ok());
}

fn run_criterion(cases: &[Case]) {
    let mut c = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8))
        .configure_from_args();
    let mut group = c.benchmark_group("locate_grid");
    group.throughput(Throughput::Elements(BATCH as u64));
    for case in cases {
        let batch = &case.points[..BATCH];
        group.bench_with_input(BenchmarkId::new("grids", case.basic.len()), batch, |b, batch| {
            b.iter(|| {
                let mut found = 0u32;
                for &(lon, lat) in black_box(batch) {
                    found += u32::from(case.index.locate_grid(lon, lat).is_some());
                }
                found
            })
        });
    }
    group.finish();
    c.final_summary();
}

struct PlanFigure {
    name: &'static str,
    best: Duration,
    /// Points whose answer differs from the rule query's.
    disagreements: usize,
    /// PostgreSQL planned parallel workers (so it used more than one core).
    parallel: bool,
}

struct Mismatch {
    lon: f64,
    lat: f64,
    ours: Option<String>,
    postgis: Option<String>,
}

struct Agreement {
    checked: usize,
    mismatches: Vec<Mismatch>,
}

struct PgFigures {
    load: Duration,
    plans: Vec<PlanFigure>,
    single_p50: Duration,
    single_p95: Duration,
    single_rate: f64,
    random: Agreement,
    vertices: Agreement,
}

impl PgFigures {
    fn fastest(&self) -> Option<&PlanFigure> {
        self.plans.iter().filter(|p| p.disagreements == 0).min_by_key(|p| p.best)
    }

    /// The fastest plan that ran in one server process (one core, like ours).
    fn fastest_serial(&self) -> Option<&PlanFigure> {
        self.plans.iter().filter(|p| p.disagreements == 0 && !p.parallel).min_by_key(|p| p.best)
    }
}

struct Pg {
    version: String,
    scales: Vec<PgFigures>,
}

async fn exec(conn: &mut PgConnection, sql: String) -> Result<(), String> {
    sqlx::raw_sql(AssertSqlSafe(sql.clone())).execute(conn).await.map(|_| ()).map_err(|e| format!("{sql}: {e}"))
}

async fn postgis(url: &str, cases: &[Case]) -> Result<Pg, String> {
    let mut conn = fresh_schema(url, SCHEMA).await?;
    exec(&mut conn, "CREATE EXTENSION IF NOT EXISTS postgis SCHEMA public".into())
        .await
        .map_err(|e| format!("PostGIS is not available on this server ({e})"))?;
    let version: String = sqlx::query_scalar("SELECT public.postgis_full_version()")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    println!("{version}");
    let mut scales = Vec::new();
    for case in cases {
        scales.push(measure(&mut conn, case).await?);
    }
    if std::env::var_os("CIVICGRID_BENCH_KEEP_SCHEMA").is_some() {
        println!("keeping schema {SCHEMA} for inspection (CIVICGRID_BENCH_KEEP_SCHEMA is set)");
    } else {
        drop_schema(&mut conn, SCHEMA).await?;
    }
    Ok(Pg { version, scales })
}

async fn load_points(conn: &mut PgConnection, table: &str, pts: &[(f64, f64)]) -> Result<(), String> {
    exec(conn, format!("CREATE TABLE {table} (id int PRIMARY KEY, geom geometry(Point, 4326) NOT NULL)")).await?;
    for (k, chunk) in pts.chunks(20_000).enumerate() {
        let ids: Vec<i32> = (0..chunk.len()).map(|i| (k * 20_000 + i) as i32).collect();
        let (xs, ys): (Vec<f64>, Vec<f64>) = chunk.iter().copied().unzip();
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table} (id, geom) SELECT i, ST_SetSRID(ST_MakePoint(x, y), 4326) \
             FROM unnest($1::int4[], $2::float8[], $3::float8[]) AS t(i, x, y)"
        )))
        .bind(ids)
        .bind(xs)
        .bind(ys)
        .execute(&mut *conn)
        .await
        .map_err(|e| format!("loading {table}: {e}"))?;
    }
    exec(conn, format!("CREATE INDEX ON {table} USING gist (geom)")).await
}

/// The rule query, point by point: `NULL` for unassigned, in point order.
async fn rule_answers(
    conn: &mut PgConnection,
    grids: &str,
    points: &str,
    n: usize,
) -> Result<Vec<Option<String>>, String> {
    let rows: Vec<(i32, Option<String>)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT p.id, g.code FROM {points} p LEFT JOIN LATERAL \
         (SELECT code FROM {grids} g WHERE ST_Covers(g.geom, p.geom) ORDER BY code LIMIT 1) g ON true"
    )))
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| format!("rule query on {points}: {e}"))?;
    by_id(rows, n)
}

fn by_id(rows: Vec<(i32, Option<String>)>, n: usize) -> Result<Vec<Option<String>>, String> {
    let mut out = vec![None; n];
    for (id, code) in rows {
        let slot = out.get_mut(id as usize).ok_or_else(|| format!("point id {id} out of range"))?;
        *slot = code;
    }
    Ok(out)
}

fn agreement(case: &Case, pts: &[(f64, f64)], postgis: &[Option<String>]) -> Agreement {
    let mismatches = case
        .ours(pts)
        .into_iter()
        .zip(postgis)
        .zip(pts)
        .filter(|((o, p), _)| *o != p.as_deref())
        .map(|((o, p), &(lon, lat))| Mismatch { lon, lat, ours: o.map(str::to_string), postgis: p.clone() })
        .collect();
    Agreement { checked: pts.len(), mismatches }
}

fn print_agreement(what: &str, a: &Agreement) {
    println!(
        "  agreement on {what}: {} match, {} mismatch",
        thousands((a.checked - a.mismatches.len()) as f64),
        a.mismatches.len()
    );
    for m in a.mismatches.iter().take(SHOW_MISMATCHES) {
        println!(
            "    MISMATCH at ({:?}, {:?}): ours {}, PostGIS {}",
            m.lon,
            m.lat,
            m.ours.as_deref().unwrap_or("NULL"),
            m.postgis.as_deref().unwrap_or("NULL")
        );
    }
    if a.mismatches.len() > SHOW_MISMATCHES {
        println!("    … and {} more", a.mismatches.len() - SHOW_MISMATCHES);
    }
}

async fn measure(conn: &mut PgConnection, case: &Case) -> Result<PgFigures, String> {
    let (g, p, v) =
        (format!("grids_s{}", case.scale), format!("points_s{}", case.scale), format!("vertices_s{}", case.scale));
    println!("\n-- scale {}: {} basic grids --", case.scale, thousands(case.basic.len() as f64));
    let started = Instant::now();
    exec(
        conn,
        format!("CREATE TABLE {g} (code text COLLATE \"C\" PRIMARY KEY, geom geometry(MultiPolygon, 4326) NOT NULL)"),
    )
    .await?;
    for chunk in case.basic.chunks(5_000) {
        let codes: Vec<String> = chunk.iter().map(|a| a.code.as_str().to_string()).collect();
        let shapes: Vec<String> = chunk.iter().map(|a| geometry_to_geojson(&a.geometry).to_string()).collect();
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {g} (code, geom) SELECT c, ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(j), 4326)) \
             FROM unnest($1::text[], $2::text[]) AS t(c, j)"
        )))
        .bind(codes)
        .bind(shapes)
        .execute(&mut *conn)
        .await
        .map_err(|e| format!("loading {g}: {e}"))?;
    }
    exec(conn, format!("CREATE INDEX ON {g} USING gist (geom)")).await?;
    load_points(conn, &p, &case.points).await?;
    load_points(conn, &v, &case.vertices).await?;
    exec(conn, format!("ANALYZE {g}, {p}, {v}")).await?;
    let load = started.elapsed();
    let invalid: i64 =
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {g} WHERE NOT ST_IsValid(geom)")))
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
    println!(
        "  loaded {} grids (invalid per PostGIS: {invalid}), {} points and {} vertices in {:.1} s",
        thousands(case.basic.len() as f64),
        thousands(case.points.len() as f64),
        thousands(case.vertices.len() as f64),
        load.as_secs_f64()
    );

    // Correctness: the rule query against our index.
    let truth = rule_answers(conn, &g, &p, case.points.len()).await?;
    let random = agreement(case, &case.points, &truth);
    print_agreement(&format!("{} random points", thousands(case.points.len() as f64)), &random);
    let vtruth = rule_answers(conn, &g, &v, case.vertices.len()).await?;
    let vertices = agreement(case, &case.vertices, &vtruth);
    print_agreement(&format!("{} grid vertices", thousands(case.vertices.len() as f64)), &vertices);

    // Batch plans: every point's answer fetched by the client; best of BATCH_RUNS after a warm-up.
    // (name, whether PostgreSQL may use parallel workers, SQL)
    let planner_join = format!(
        "SELECT DISTINCT ON (p.id) p.id, g.code FROM {p} p JOIN {g} g ON ST_Covers(g.geom, p.geom) \
         ORDER BY p.id, g.code"
    );
    let plans: [(&'static str, bool, String); 4] = [
        (
            "point-driven LATERAL (ORDER BY code LIMIT 1)",
            true,
            format!(
                "SELECT p.id, g.code FROM {p} p CROSS JOIN LATERAL \
                 (SELECT code FROM {g} g WHERE ST_Covers(g.geom, p.geom) ORDER BY code LIMIT 1) g"
            ),
        ),
        (
            "polygon-driven LATERAL (min(code) per point)",
            true,
            format!(
                "SELECT p.id, min(g.code) FROM {g} g CROSS JOIN LATERAL \
                 (SELECT id FROM {p} p WHERE ST_Covers(g.geom, p.geom)) p GROUP BY p.id"
            ),
        ),
        ("planner's join (DISTINCT ON point)", true, planner_join.clone()),
        ("planner's join, no parallel workers", false, planner_join),
    ];
    let mut figures = Vec::new();
    for (name, may_parallel, sql) in plans {
        if !may_parallel {
            exec(conn, "SET max_parallel_workers_per_gather = 0".into()).await?;
        }
        let explain: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN (COSTS OFF) {sql}")))
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        let mut best = Duration::MAX;
        let mut disagreements = 0;
        for run in 0..=BATCH_RUNS {
            let t = Instant::now();
            let rows: Vec<(i32, Option<String>)> = sqlx::query_as(AssertSqlSafe(sql.clone()))
                .fetch_all(&mut *conn)
                .await
                .map_err(|e| format!("{name}: {e}"))?;
            let took = t.elapsed();
            if run == 0 {
                let got = by_id(rows, case.points.len())?;
                disagreements = got.iter().zip(&truth).filter(|(a, b)| a != b).count();
            } else {
                best = best.min(took);
            }
        }
        println!(
            "  batch {name}: best of {BATCH_RUNS} {:.0} ms = {} points/s{}",
            best.as_secs_f64() * 1e3,
            thousands(case.points.len() as f64 / best.as_secs_f64()),
            if disagreements > 0 {
                format!(" — DISAGREES with the rule query on {disagreements} points")
            } else {
                String::new()
            }
        );
        let parallel = explain.iter().any(|l| l.contains("Gather"));
        for line in explain {
            println!("      {line}");
        }
        if !may_parallel {
            exec(conn, "RESET max_parallel_workers_per_gather".into()).await?;
        }
        figures.push(PlanFigure { name, best, disagreements, parallel });
    }

    // Prepared single-point lookups, one round trip each.
    let single = format!(
        "SELECT code FROM {g} WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint($1, $2), 4326)) ORDER BY code LIMIT 1"
    );
    let mut lat = Vec::with_capacity(SINGLE_CALLS);
    for k in 0..SINGLE_WARMUP + SINGLE_CALLS {
        let (x, y) = case.points[k % case.points.len()];
        let t = Instant::now();
        let code: Option<String> = sqlx::query_scalar(AssertSqlSafe(single.as_str()))
            .bind(x)
            .bind(y)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| format!("single lookup: {e}"))?;
        let took = t.elapsed();
        black_box(code);
        if k >= SINGLE_WARMUP {
            lat.push(took);
        }
    }
    let total: Duration = lat.iter().sum();
    lat.sort_unstable();
    let (single_p50, single_p95) = (percentile(&lat, 50.0), percentile(&lat, 95.0));
    let single_rate = lat.len() as f64 / total.as_secs_f64();
    println!(
        "  prepared single lookup: {} calls, p50 {}, p95 {}, {} lookups/s",
        thousands(lat.len() as f64),
        micros(single_p50),
        micros(single_p95),
        thousands(single_rate)
    );
    Ok(PgFigures { load, plans: figures, single_p50, single_p95, single_rate, random, vertices })
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn summary(cases: &[Case], ours: &[Option<Estimate>], pg: Option<&Pg>) {
    println!(
        "\n== Point → grid summary ({} core(s); ours is one single-threaded loop) ==",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if let Some(pg) = pg {
        println!("PostGIS: {}", pg.version);
    }
    let rows = |label: &str, cells: Vec<String>| {
        print!("{label:<44}");
        for c in cells {
            print!(" {c:>46}");
        }
        println!();
    };
    rows("", cases.iter().map(|c| format!("{} grids", thousands(c.basic.len() as f64))).collect());
    let rate: Vec<Option<f64>> = ours.iter().map(|e| e.map(|e| BATCH as f64 / (e.ns * 1e-9))).collect();
    rows("in-process lookups/s (criterion)", rate.iter().map(|r| r.map_or("not measured".into(), thousands)).collect());
    rows(
        "  95% CI",
        ours.iter()
            .map(|e| {
                e.map_or(String::new(), |e| {
                    format!(
                        "{}–{}",
                        thousands(BATCH as f64 / (e.upper_ns * 1e-9)),
                        thousands(BATCH as f64 / (e.lower_ns * 1e-9))
                    )
                })
            })
            .collect(),
    );
    rows(
        "  ns per lookup",
        ours.iter().map(|e| e.map_or(String::new(), |e| format!("{:.0} ns", e.ns / BATCH as f64))).collect(),
    );
    rows(
        "  target",
        rate.iter()
            .zip(TARGET_LOOKUPS)
            .map(|(r, t)| format!("≥{} {}", thousands(t), r.map_or("n/a", |r| met(r >= t))))
            .collect(),
    );
    let Some(pg) = pg else {
        println!("PostGIS: unavailable, no ratios.");
        return;
    };
    let figs = &pg.scales;
    rows(
        "PostGIS fastest batch plan, points/s",
        figs.iter()
            .map(|f| {
                f.fastest().map_or("none agreed".into(), |p| thousands(CHECK_POINTS as f64 / p.best.as_secs_f64()))
            })
            .collect(),
    );
    let plan_name = |p: &PlanFigure| if p.parallel { format!("{} +workers", p.name) } else { p.name.to_string() };
    rows("  plan", figs.iter().map(|f| f.fastest().map_or(String::new(), plan_name)).collect());
    rows(
        &format!("  ours ÷ batch (target ≥{TARGET_VS_BATCH}×)"),
        rate.iter()
            .zip(figs)
            .map(|(r, f)| match (r, f.fastest()) {
                (Some(r), Some(p)) => {
                    let ratio = r / (CHECK_POINTS as f64 / p.best.as_secs_f64());
                    format!("{} {}", times(ratio), met(ratio >= TARGET_VS_BATCH))
                }
                _ => "n/a".into(),
            })
            .collect(),
    );
    rows(
        "PostGIS fastest one-process plan, points/s",
        figs.iter()
            .map(|f| {
                f.fastest_serial().map_or("none".into(), |p| thousands(CHECK_POINTS as f64 / p.best.as_secs_f64()))
            })
            .collect(),
    );
    rows("  plan", figs.iter().map(|f| f.fastest_serial().map_or(String::new(), plan_name)).collect());
    rows(
        "  ours ÷ one-process batch (core for core)",
        rate.iter()
            .zip(figs)
            .map(|(r, f)| match (r, f.fastest_serial()) {
                (Some(r), Some(p)) => times(r / (CHECK_POINTS as f64 / p.best.as_secs_f64())),
                _ => "n/a".into(),
            })
            .collect(),
    );
    rows(
        "PostGIS prepared single, p50 / p95",
        figs.iter().map(|f| format!("{} / {}", micros(f.single_p50), micros(f.single_p95))).collect(),
    );
    rows("PostGIS prepared single, lookups/s", figs.iter().map(|f| thousands(f.single_rate)).collect());
    rows(
        &format!("  ours ÷ single (target ≥{TARGET_VS_SINGLE}×)"),
        rate.iter()
            .zip(figs)
            .map(|(r, f)| match r {
                Some(r) => {
                    let ratio = r / f.single_rate;
                    format!("{} {}", times(ratio), met(ratio >= TARGET_VS_SINGLE))
                }
                None => "n/a".into(),
            })
            .collect(),
    );
    rows(
        "agreement, random points (match/mismatch)",
        figs.iter()
            .map(|f| {
                format!(
                    "{} / {}",
                    thousands((f.random.checked - f.random.mismatches.len()) as f64),
                    f.random.mismatches.len()
                )
            })
            .collect(),
    );
    rows(
        "agreement, grid vertices (match/mismatch)",
        figs.iter()
            .map(|f| {
                format!(
                    "{} / {}",
                    thousands((f.vertices.checked - f.vertices.mismatches.len()) as f64),
                    f.vertices.mismatches.len()
                )
            })
            .collect(),
    );
    rows(
        "PostGIS load (grids, points, indexes)",
        figs.iter().map(|f| format!("{:.1} s", f.load.as_secs_f64())).collect(),
    );
    rows("our index build", cases.iter().map(|c| format!("{:.1} ms", c.build.as_secs_f64() * 1e3)).collect());
    for (c, f) in cases.iter().zip(figs) {
        for m in f.random.mismatches.iter().chain(&f.vertices.mismatches).take(SHOW_MISMATCHES) {
            println!(
                "mismatch at scale {}: ({:?}, {:?}) ours {} PostGIS {}",
                c.scale,
                m.lon,
                m.lat,
                m.ours.as_deref().unwrap_or("NULL"),
                m.postgis.as_deref().unwrap_or("NULL")
            );
        }
    }
}
