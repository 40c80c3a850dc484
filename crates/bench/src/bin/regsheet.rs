//! regsheet: the register import's benchmark material (docs/PERFORMANCE.md, "Register
//! import"), used by scripts/bench-import.sh.
//!
//! - `regsheet sheet --persons N --xlsx OUT.xlsx --csv OUT.csv`: N plausible persons of
//!   the demo district's first street (valid, unique ID numbers, names from
//!   `domain::names`, ages 0-90, mobile phones, the grid of each), as an .xlsx with a merged
//!   title row and shared strings (as Excel writes them) and as a UTF-8 CSV.
//! - `regsheet baseline --db sqlite://PATH --csv FILE`: the baseline: the same rows inserted
//!   into the persons table of a fresh civicgrid store with plain prepared INSERTs in ONE
//!   transaction, nothing checked; prints the seconds it took.

use std::io::{BufRead, BufWriter, Write};
use std::time::Instant;

use domain::demo::{self, DemoOptions};
use domain::register::citizen_id::id_check_character;
use domain::rng::Rng;
use domain::{Level, names};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("sheet") => sheet(&args),
        Some("baseline") => tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string()).and_then(|rt| rt.block_on(baseline(&args))),
        _ => Err("usage: regsheet sheet --persons N --xlsx OUT.xlsx --csv OUT.csv | regsheet baseline --db sqlite://PATH --csv FILE".into()),
    };
    if let Err(e) = result {
        eprintln!("regsheet: {e}");
        std::process::exit(1);
    }
}

const HEADER: [&str; 9] = ["序号", "姓名", "身份证号码", "性别", "出生日期", "联系电话", "民族", "现住址", "所属网格"];

/// One person's cells.
fn person(rng: &mut Rng, i: u64, grids: &[String]) -> [String; 9] {
    // Unique numbers: the day of birth walks 0-90 years back, the sequence takes the rest.
    let days_back = (i % 32_000) as i64;
    let birth = domain::calendar::Day(20_400 - days_back); // 20,400 days after 1970-01-01 is 2025-11-08
    let female = rng.below(2) == 0;
    let seq = (i / 32_000) * 2 + u64::from(!female) + 100; // odd for men
    let (y, m, d) = birth.ymd();
    let body = format!("430503{y:04}{m:02}{d:02}{seq:03}");
    let check = id_check_character(&body).unwrap_or('0');
    let name = names::person_name(rng, female);
    let phone = format!("1{}{:08}", ["38", "39", "58", "86", "37", "59"][rng.below(6)], rng.next_u64() % 100_000_000);
    let ethnicity = if rng.below(20) == 0 { "苗族" } else { "汉族" };
    let grid = grids[(i as usize) % grids.len()].clone();
    let address = format!("大祥区学院路{}号{}栋{}单元{}室", rng.below(300) + 1, rng.below(20) + 1, rng.below(4) + 1, 101 + rng.below(18) * 100 + rng.below(4));
    [
        (i + 1).to_string(),
        name,
        format!("{body}{check}"),
        if female { "女" } else { "男" }.to_string(),
        format!("{y:04}-{m:02}-{d:02}"),
        phone,
        ethnicity.to_string(),
        address,
        grid,
    ]
}

fn sheet(args: &[String]) -> Result<(), String> {
    let n: u64 = arg(args, "--persons").and_then(|v| v.parse().ok()).ok_or("--persons N")?;
    let xlsx = arg(args, "--xlsx").ok_or("--xlsx OUT.xlsx")?;
    let csv = arg(args, "--csv").ok_or("--csv OUT.csv")?;
    let district = demo::generate(DemoOptions::default()).map_err(|e| e.to_string())?;
    let street = district.areas.iter().find(|a| a.level == Level::Street).ok_or("no street")?.code.to_string();
    let grids: Vec<String> =
        district.areas.iter().filter(|a| a.level == Level::Grid && a.code.as_str().starts_with(&street)).map(|a| a.code.to_string()).collect();
    let started = Instant::now();
    let mut book = rust_xlsxwriter::Workbook::new();
    let ws = book.add_worksheet();
    let e = |e: rust_xlsxwriter::XlsxError| e.to_string();
    ws.merge_range(0, 0, 0, 8, "大祥区实有人口信息登记表", &rust_xlsxwriter::Format::new()).map_err(e)?;
    let mut out = BufWriter::new(std::fs::File::create(&csv).map_err(|e| e.to_string())?);
    writeln!(out, "{}", HEADER.join(",")).map_err(|e| e.to_string())?;
    for (c, h) in HEADER.iter().enumerate() {
        ws.write_string(1, c as u16, *h).map_err(e)?;
    }
    let mut rng = Rng::new(5);
    for i in 0..n {
        let p = person(&mut rng, i, &grids);
        for (c, v) in p.iter().enumerate() {
            ws.write_string(i as u32 + 2, c as u16, v).map_err(e)?;
        }
        writeln!(out, "{}", p.join(",")).map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    book.save(&xlsx).map_err(e)?;
    eprintln!("regsheet: {n} persons in {} grids of street {street} written to {xlsx} and {csv} in {:.1} s", grids.len(), started.elapsed().as_secs_f64());
    Ok(())
}

async fn baseline(args: &[String]) -> Result<(), String> {
    let url = arg(args, "--db").ok_or("--db sqlite://PATH")?;
    let csv = arg(args, "--csv").ok_or("--csv FILE")?;
    // A fresh store (migrations run), with the demo's areas for the grids' foreign keys.
    let db = store::Db::open(&url).await.map_err(|e| e.to_string())?;
    db.load_demo(&demo::generate(DemoOptions::default()).map_err(|e| e.to_string())?).await.map_err(|e| e.to_string())?;
    drop(db);
    let path = url.trim_start_matches("sqlite://");
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{path}")).await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut tx = conn.begin().await.map_err(|e| e.to_string())?;
    let file = std::io::BufReader::new(std::fs::File::open(&csv).map_err(|e| e.to_string())?);
    let mut rows = 0u64;
    for line in file.lines().skip(1) {
        let line = line.map_err(|e| e.to_string())?;
        let c: Vec<&str> = line.split(',').collect();
        if c.len() < 9 {
            continue;
        }
        let birth = domain::calendar::Day::parse(c[4]).map(|d| d.0).unwrap_or(0);
        sqlx::query(
            "INSERT INTO persons (citizen_id, name, gender, birth_day, phone, ethnicity, area_code, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, 1)",
        )
        .bind(c[2])
        .bind(c[1])
        .bind(if c[3] == "女" { "female" } else { "male" })
        .bind(birth)
        .bind(c[5])
        .bind(c[6])
        .bind(c[8])
        .execute(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
        rows += 1;
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    let s = started.elapsed().as_secs_f64();
    println!("baseline: {rows} rows inserted in one transaction in {s:.2} s ({:.0} rows/s)", rows as f64 / s);
    Ok(())
}
