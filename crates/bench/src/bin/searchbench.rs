//! The register search at scale (docs/PERFORMANCE.md, "Register search"): N synthetic
//! people (names from `domain::names` with its surname frequencies, valid ID numbers,
//! phones), about 2.5 to a house, with addresses like 幸福路18号3栋2单元501室 across the
//! demo district's 628 grids, loaded into SQLite (multi-row INSERTs) and PostgreSQL (COPY).
//! Then our index is built from the store (time, RSS before and after) and each query kind
//! is timed over sampled queries: through `RegisterDesk::search` (index, then the rows
//! read back from SQLite and from PostgreSQL), the index alone, and, in the same run,
//! PostgreSQL with pg_trgm GIN indexes (`LIKE '%q%'`, prepared statements as an
//! application sends them) and its B-tree for the exact ID number. Exact names are checked
//! for 100% recall against `WHERE name = $1`.
//!
//!   searchbench [--people N] [--queries Q] [--pg-budget SECONDS]
//!
//! Bench-only: nothing here is part of the product, and no test depends on it.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::{Duration, Instant};

use domain::access::Credential;
use domain::calendar::Day;
use domain::demo::{self, DemoOptions};
use domain::register::citizen_id::id_check_character;
use domain::rng::Rng;
use domain::{AreaCode, Level, Principal, Role};
use sqlx::{AnyConnection, Connection, PgConnection, Row};
use store::Db;
use store::search::{Field, Query, SearchIndex};

type Failure = Box<dyn std::error::Error>;

fn usage() -> ! {
    eprintln!("usage: searchbench [--people N] [--queries Q] [--pg-budget SECONDS]");
    std::process::exit(2)
}

const SUFFIXES: [&str; 6] = ["路", "街", "大道", "巷", "东路", "西路"];

/// A query kind: its name, its queries, and the pg_trgm statement (and whether its pattern
/// is a suffix).
type Kind = (&'static str, Vec<String>, Option<(&'static str, bool)>);

/// One sampled person, remembered while generating.
#[derive(Clone)]
struct Sample {
    name: String,
    cid: String,
    phone: Option<String>,
    address: String,
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let n: u64 = flag("--people").map(|v| v.parse().unwrap_or_else(|_| usage())).unwrap_or(10_000_000);
    let q: usize = flag("--queries").map(|v| v.parse().unwrap_or_else(|_| usage())).unwrap_or(200);
    let budget: u64 = flag("--pg-budget").map(|v| v.parse().unwrap_or_else(|_| usage())).unwrap_or(60);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(run(n, q, Duration::from_secs(budget)))
}

async fn run(n: u64, nq: usize, pg_budget: Duration) -> Result<(), Failure> {
    sqlx::any::install_default_drivers();
    let dir = std::env::var("SEARCH_BENCH_DIR").unwrap_or_else(|_| "/tmp/search-bench".into());
    std::fs::create_dir_all(&dir)?;
    let file = format!("{dir}/search-{n}.db");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{file}{ext}"));
    }
    let sqlite_url = format!("sqlite://{file}");
    let base = bench::postgres_url();
    let name = "civicgrid_searchbench";
    {
        let mut admin = AnyConnection::connect(&base).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).execute(&mut admin).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await?;
    }
    let (root, _) = base.rsplit_once('/').ok_or("a database name in the PostgreSQL URL")?;
    let pg_url = format!("{root}/{name}");
    let sqlite = Db::open(&sqlite_url).await?;
    let pg = Db::open(&pg_url).await?;
    let district = demo::generate(DemoOptions::default())?;
    sqlite.load_demo(&district).await?;
    pg.load_demo(&district).await?;
    let grids: Vec<String> = district.areas.iter().filter(|a| a.level == Level::Grid).map(|a| a.code.to_string()).collect();

    // ---- generate and load
    let houses = (n * 2 / 5).max(1);
    let mut rng = Rng::new(20_260_505);
    let mut picks: Vec<u64> = (0..nq * 12).map(|_| 1 + rng.next_u64() % n).collect();
    picks.sort_unstable();
    picks.dedup();
    let mut samples: BTreeMap<u64, Sample> = BTreeMap::new();
    let roads: Vec<String> = domain::names::PLACE_ROOTS.iter().flat_map(|r| SUFFIXES.iter().map(move |s| format!("{r}{s}"))).collect();
    let now = sqlite.now_ms();
    let started = Instant::now();
    let mut lite = AnyConnection::connect(&sqlite_url).await?;
    sqlx::raw_sql("PRAGMA synchronous=OFF; PRAGMA cache_size=-1000000; BEGIN").execute(&mut lite).await?;
    let mut pgc = PgConnection::connect(&pg_url).await?;
    let address_of = |h: u64, rng: &mut Rng| -> (String, String) {
        let g = ((h - 1) * grids.len() as u64 / houses) as usize;
        let road = &roads[(g * 7 + rng.below(2) * 13) % roads.len()];
        let addr = format!(
            "{road}{}号{}栋{}单元{}{:02}室",
            1 + rng.below(200),
            1 + rng.below(12),
            1 + rng.below(4),
            1 + rng.below(18),
            1 + rng.below(4)
        );
        (addr, grids[g].clone())
    };
    // Houses, in chunks.
    let mut house_addr: HashMap<u64, String> = HashMap::new();
    let wanted_houses: std::collections::HashSet<u64> = picks.iter().map(|&i| house_of(i, n, houses)).collect();
    let mut h = 1;
    while h <= houses {
        let end = (h + 5_000).min(houses + 1);
        let mut sql = String::from("INSERT INTO houses (id, address, area_code, house_use, created_at, updated_at, version) VALUES ");
        let mut copy = String::new();
        for id in h..end {
            let (addr, grid) = address_of(id, &mut rng);
            if id > h {
                sql.push(',');
            }
            sql.push_str(&format!("({id},'{addr}','{grid}','residential',{now},{now},1)"));
            copy.push_str(&format!("{id}\t{addr}\t{grid}\tresidential\t{now}\t{now}\t1\n"));
            if wanted_houses.contains(&id) {
                house_addr.insert(id, addr);
            }
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut lite).await?;
        let mut cp = pgc.copy_in_raw("COPY houses (id, address, area_code, house_use, created_at, updated_at, version) FROM STDIN").await?;
        cp.send(copy.into_bytes()).await?;
        cp.finish().await?;
        h = end;
    }
    eprintln!("  {houses} houses, {:.0} s", started.elapsed().as_secs_f64());
    // Persons.
    let mut next_pick = 0;
    let mut i = 1;
    let base_day = Day::from_ymd(1940, 1, 1).ok_or("day")?.0;
    while i <= n {
        let end = (i + 2_000).min(n + 1);
        let mut sql = String::from(
            "INSERT INTO persons (id, citizen_id, name, gender, birth_day, phone, ethnicity, house_id, area_code, created_at, updated_at, version) VALUES ",
        );
        let mut copy = String::new();
        for id in i..end {
            let k = id - 1;
            let female = rng.below(2) == 0;
            let pname = domain::names::person_name(&mut rng, female);
            // Unique by construction: 29,200 birth days × a sequence from k.
            let day = Day(base_day + (k % 29_200) as i64);
            let (y, m, d) = day.ymd();
            // The sequence (odd: male) spread over 000-999, unique per birth day: 337 is
            // prime to 500, so j ↦ (337 j + c) mod 500 is one-to-one for j < 500.
            let seq = ((k / 29_200) * 337 + (k % 29_200) * 7) % 500 * 2 + u64::from(!female);
            let code = if rng.below(10) < 8 { "430503" } else { ["430502", "430511", "430521", "430522"][rng.below(4)] };
            let body = format!("{code}{y:04}{m:02}{d:02}{:03}", seq % 1000);
            let cid = format!("{body}{}", id_check_character(&body).ok_or("digits")?);
            let phone = (rng.below(10) < 9).then(|| format!("1{}{:09}", 3 + rng.below(7), rng.next_u64() % 1_000_000_000));
            let house = house_of(id, n, houses);
            let g = ((house - 1) * grids.len() as u64 / houses) as usize;
            let grid = &grids[g];
            let gender = if female { "female" } else { "male" };
            if id > i {
                sql.push(',');
            }
            let ph = phone.as_deref().map_or("NULL".to_string(), |p| format!("'{p}'"));
            sql.push_str(&format!("({id},'{cid}','{pname}','{gender}',{},{ph},'汉族',{house},'{grid}',{now},{now},1)", day.0));
            copy.push_str(&format!("{id}\t{cid}\t{pname}\t{gender}\t{}\t{}\t汉族\t{house}\t{grid}\t{now}\t{now}\t1\n", day.0, phone.as_deref().unwrap_or("\\N")));
            if next_pick < picks.len() && picks[next_pick] == id {
                let address = house_addr.get(&house).cloned().unwrap_or_default();
                samples.insert(id, Sample { name: pname, cid, phone, address });
                next_pick += 1;
            }
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut lite).await?;
        let mut cp = pgc
            .copy_in_raw("COPY persons (id, citizen_id, name, gender, birth_day, phone, ethnicity, house_id, area_code, created_at, updated_at, version) FROM STDIN")
            .await?;
        cp.send(copy.into_bytes()).await?;
        cp.finish().await?;
        if (end - 1) % 1_000_000 == 0 || end > n {
            sqlx::raw_sql("COMMIT; BEGIN").execute(&mut lite).await?;
            eprintln!("  {} people, {:.0} s", end - 1, started.elapsed().as_secs_f64());
        }
        i = end;
    }
    sqlx::raw_sql("COMMIT").execute(&mut lite).await?;
    drop(lite);
    // Let the sequences of both backends continue after the loaded ids.
    sqlx::raw_sql("SELECT setval(pg_get_serial_sequence('persons', 'id'), (SELECT MAX(id) FROM persons)); SELECT setval(pg_get_serial_sequence('houses', 'id'), (SELECT MAX(id) FROM houses)); ANALYZE")
        .execute(&mut pgc)
        .await?;
    let loaded = started.elapsed();
    let t = Instant::now();
    sqlx::raw_sql(
        "CREATE EXTENSION IF NOT EXISTS pg_trgm; SET maintenance_work_mem = '1GB';
         CREATE INDEX bench_persons_name_trgm ON persons USING gin (name gin_trgm_ops);
         CREATE INDEX bench_persons_cid_trgm ON persons USING gin (citizen_id gin_trgm_ops);
         CREATE INDEX bench_persons_phone_trgm ON persons USING gin (phone gin_trgm_ops);
         CREATE INDEX bench_houses_address_trgm ON houses USING gin (address gin_trgm_ops);
         ANALYZE",
    )
    .execute(&mut pgc)
    .await?;
    let trgm_built = t.elapsed();
    println!("# Register search, {n} people in {houses} houses, {} grids", grids.len());
    println!("loaded into SQLite and PostgreSQL in {:.1} s; pg_trgm GIN indexes built in {:.1} s", loaded.as_secs_f64(), trgm_built.as_secs_f64());

    // ---- our index
    let rss0 = rss_kb();
    let t = Instant::now();
    let index = SearchIndex::start(&sqlite).await?;
    let built = t.elapsed();
    let rss1 = rss_kb();
    let stats = index.snapshot().stats();
    println!(
        "index built from SQLite in {:.1} s: {} people, {} distinct names, {} houses; RSS {} MB before, {} MB after (+{} MB); heap estimate {} MB",
        built.as_secs_f64(),
        stats.persons,
        stats.distinct_names,
        stats.houses,
        rss0 / 1024,
        rss1 / 1024,
        (rss1.saturating_sub(rss0)) / 1024,
        stats.bytes >> 20
    );
    let t = Instant::now();
    let from_pg = SearchIndex::start(&pg).await?;
    println!("index built from PostgreSQL in {:.1} s (then dropped)", t.elapsed().as_secs_f64());
    drop(from_pg);
    sqlite.set_audit_reads(false);
    pg.set_audit_reads(false);

    // ---- queries
    let all: Vec<&Sample> = samples.values().collect();
    let take = |f: &dyn Fn(&Sample) -> Option<String>| -> Vec<String> { all.iter().filter_map(|s| f(s)).take(nq).collect() };
    let first_readings = |name: &str| -> Vec<&'static str> { store::search::readings(name).into_iter().filter_map(|r| r.first().copied()).collect() };
    let kinds: Vec<Kind> = vec![
        // (kind, queries, pg_trgm statement and whether its pattern is a suffix)
        ("2-character name", take(&|s| (s.name.chars().count() == 2).then(|| s.name.clone())), Some((PG_NAME, false))),
        ("3-character name", take(&|s| (s.name.chars().count() == 3).then(|| s.name.clone())), Some((PG_NAME, false))),
        ("pinyin initials", take(&|s| Some(first_readings(&s.name).iter().map(|r| &r[..1]).collect())), None),
        ("full pinyin", take(&|s| Some(first_readings(&s.name).concat())), None),
        ("ID suffix (6)", take(&|s| Some(s.cid[12..].to_string())), Some((PG_CID, true))),
        ("phone suffix (4)", take(&|s| s.phone.as_ref().map(|p| p[7..].to_string())), Some((PG_PHONE, true))),
        ("address fragment", take(&|s| s.address.find('号').map(|e| s.address[..e + '号'.len_utf8()].to_string())), Some((PG_ADDRESS, false))),
        ("exact ID", take(&|s| Some(s.cid.clone())), Some((PG_EXACT, false))),
    ];
    let operator = Principal {
        account_id: 1,
        username: "searchbench".into(),
        display_name: "searchbench".into(),
        role: Role::Operator,
        area: AreaCode::parse(demo::DISTRICT_CODE)?,
        department: None,
        credential: Credential::Token(1),
        must_change_password: false,
    };
    let actor = store::audit::Actor::cli("searchbench");
    let today = Day::of_instant(sqlite.now_ms());
    println!();
    println!("| query kind | queries | ours, rows from SQLite p50 / p95 / p99 ms | ours, rows from PostgreSQL p50 / p95 / p99 | index alone p50 / p95 / p99 | pg_trgm (or B-tree) p50 / p95 / p99 | pg queries run | mean hits ours / pg |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut recall = (0usize, 0usize, 0usize);
    for (kind, queries, baseline) in &kinds {
        let mut ours_lite = Vec::new();
        let mut ours_pg = Vec::new();
        let mut alone = Vec::new();
        let mut hits = 0usize;
        for (db, times) in [(&sqlite, &mut ours_lite), (&pg, &mut ours_pg)] {
            let s = db.scoped(&operator, actor.clone());
            let desk = s.register().ok_or("operators read the register")?;
            for qs in queries.iter().take(3) {
                desk.search(&index, qs, None, 20).await?;
            }
            for qs in queries {
                let t = Instant::now();
                let got = desk.search(&index, qs, None, 20).await?;
                times.push(t.elapsed());
                hits += got.len();
            }
        }
        let snap = index.snapshot();
        for qs in queries {
            let parsed = Query::parse(qs, today)?;
            let t = Instant::now();
            let c = snap.search(&parsed, demo::DISTRICT_CODE, None, 20);
            alone.push(t.elapsed());
            std::hint::black_box(c);
        }
        // Exact names: every person of that name, and only them, comes first.
        if kind.ends_with("name") {
            for qs in queries {
                let want: Vec<i64> = sqlx::query("SELECT id FROM persons WHERE name = $1 ORDER BY id")
                    .bind(qs)
                    .fetch_all(&mut pgc)
                    .await?
                    .iter()
                    .map(|r| r.try_get::<i64, _>(0))
                    .collect::<Result<_, _>>()?;
                let parsed = Query::parse(qs, today)?;
                let got: Vec<i64> = snap
                    .search(&parsed, demo::DISTRICT_CODE, Some(store::search::SearchKind::Person), want.len() + 1)
                    .iter()
                    .filter(|c| c.class == 0 && c.field == Field::Name)
                    .map(|c| c.id)
                    .collect();
                recall.0 += 1;
                recall.1 += want.len();
                recall.2 += want.iter().filter(|w| got.contains(w)).count();
                assert_eq!(got, want, "exact name {qs}");
            }
        }
        // The baseline, prepared as an application would, within a time budget.
        let mut pg_times = Vec::new();
        let mut pg_hits = 0usize;
        if let Some((sql, suffix)) = baseline {
            let started = Instant::now();
            for qs in queries {
                let arg = if *sql == PG_EXACT {
                    qs.clone()
                } else if *suffix {
                    format!("%{qs}")
                } else {
                    format!("%{qs}%")
                };
                let t = Instant::now();
                let rows = sqlx::query(sqlx::AssertSqlSafe(*sql)).bind(arg).fetch_all(&mut pgc).await?;
                pg_times.push(t.elapsed());
                pg_hits += rows.len();
                if started.elapsed() > pg_budget {
                    break;
                }
            }
        }
        let pct = |v: &mut Vec<Duration>| -> String {
            if v.is_empty() {
                return "—".into();
            }
            v.sort();
            let p = |f: f64| v[((v.len() as f64 * f).ceil() as usize).clamp(1, v.len()) - 1].as_secs_f64() * 1000.0;
            format!("{:.2} / {:.2} / {:.2}", p(0.5), p(0.95), p(0.99))
        };
        let pg_n = pg_times.len();
        println!(
            "| {kind} | {} | {} | {} | {} | {} | {} | {:.1} / {} |",
            queries.len(),
            pct(&mut ours_lite),
            pct(&mut ours_pg),
            pct(&mut alone),
            pct(&mut pg_times),
            if baseline.is_some() { pg_n.to_string() } else { "no baseline".into() },
            hits as f64 / (2 * queries.len().max(1)) as f64,
            if pg_n > 0 { format!("{:.1}", pg_hits as f64 / pg_n as f64) } else { "—".into() },
        );
        std::io::stdout().flush()?;
    }
    println!();
    println!("exact names: {} queries, {} people of those names, {} found first by the index (recall {:.1}%)", recall.0, recall.1, recall.2, 100.0 * recall.2 as f64 / recall.1.max(1) as f64);
    Ok(())
}

fn house_of(person: u64, n: u64, houses: u64) -> u64 {
    (person - 1) * houses / n + 1
}

// The baseline returns what a hit shows (as ours reads back): the person, the ID number and
// phone (masked by the caller), the grid and the address.
const PG_NAME: &str = "SELECT p.id, p.citizen_id, p.name, p.phone, p.area_code, h.address FROM persons p LEFT JOIN houses h ON h.id = p.house_id \
    WHERE p.name LIKE $1 ORDER BY length(p.name), p.id LIMIT 20";
const PG_CID: &str = "SELECT p.id, p.citizen_id, p.name, p.phone, p.area_code, h.address FROM persons p LEFT JOIN houses h ON h.id = p.house_id \
    WHERE p.citizen_id LIKE $1 ORDER BY p.id LIMIT 20";
const PG_PHONE: &str = "SELECT p.id, p.citizen_id, p.name, p.phone, p.area_code, h.address FROM persons p LEFT JOIN houses h ON h.id = p.house_id \
    WHERE p.phone LIKE $1 ORDER BY p.id LIMIT 20";
const PG_ADDRESS: &str = "SELECT p.id, p.citizen_id, p.name, p.phone, p.area_code, h.address FROM houses h JOIN persons p ON p.house_id = h.id \
    WHERE h.address LIKE $1 ORDER BY length(h.address), p.id LIMIT 20";
const PG_EXACT: &str = "SELECT p.id, p.citizen_id, p.name, p.phone, p.area_code, h.address FROM persons p LEFT JOIN houses h ON h.id = p.house_id \
    WHERE p.citizen_id = $1";
