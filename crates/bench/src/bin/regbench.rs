//! The register export benchmark (see docs/PERFORMANCE.md, "The register: demo load and
//! exports"):
//!
//! ```text
//! regbench all URL          each mode below in its own process, then a table with ratios
//! regbench select URL       baseline: a raw sqlx SELECT of the persons' columns in the
//!                           district, rows streamed and counted
//! regbench csv URL          GET /api/v1/persons/export?format=csv through the router, as the
//!                           district operator (masked, scoped, audited), body streamed
//! regbench xlsx URL         the same with format=xlsx
//! ```
//! Each mode prints `mode rows bytes seconds peak_rss_kb`. The store must hold the demo
//! register (`civicgrid --db URL demo`). Bench-only: nothing here is part of the product.

use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use domain::{AreaCode, Role};
use sqlx::Row;
use store::Db;
use store::audit::Actor;
use store::auth::NewAccount;
use tower::ServiceExt;

type Failure = Box<dyn std::error::Error>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["all", url] => all(url),
        ["select", url] => select(url).await,
        [mode @ ("csv" | "xlsx"), url] => export(url, mode).await,
        _ => {
            eprintln!("usage: regbench all|select|csv|xlsx URL");
            std::process::exit(2);
        }
    }
}

/// Peak resident set of this process, kB (VmHWM).
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn all(url: &str) -> Result<(), Failure> {
    let exe = std::env::current_exe()?;
    let mut results = Vec::new();
    for mode in ["select", "csv", "xlsx"] {
        let out = std::process::Command::new(&exe).args([mode, url]).output()?;
        if !out.status.success() {
            return Err(format!("{mode}: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        let line = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").to_string();
        let f: Vec<&str> = line.split_whitespace().collect();
        let (rows, bytes, secs, rss): (u64, u64, f64, u64) = (f[1].parse()?, f[2].parse()?, f[3].parse()?, f[4].parse()?);
        results.push((mode, rows, bytes, secs, rss));
    }
    let base = results[0].3;
    println!("{:<8} {:>9} {:>12} {:>9} {:>10} {:>14}", "mode", "rows", "bytes", "seconds", "× select", "peak RSS (MB)");
    for (mode, rows, bytes, secs, rss) in results {
        println!("{mode:<8} {rows:>9} {bytes:>12} {secs:>9.2} {:>10.1} {:>14.1}", secs / base, rss as f64 / 1024.0);
    }
    Ok(())
}

async fn select(url: &str) -> Result<(), Failure> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await?;
    let started = Instant::now();
    let mut rows = sqlx::query(
        "SELECT id, citizen_id, name, gender, birth_day, phone, ethnicity, house_id, area_code, population_type, tags, version, created_at, updated_at \
         FROM persons WHERE area_code >= '430503' AND area_code < '430504' ORDER BY id",
    )
    .fetch(&pool);
    let (mut n, mut bytes) = (0u64, 0u64);
    use futures_core::Stream;
    while let Some(r) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut rows).poll_next(cx)).await {
        let r = r?;
        let name: String = r.try_get("name")?;
        let id: String = r.try_get("citizen_id")?;
        n += 1;
        bytes += (name.len() + id.len()) as u64;
    }
    println!("select {n} {bytes} {:.3} {}", started.elapsed().as_secs_f64(), peak_rss_kb());
    Ok(())
}

async fn export(url: &str, format: &str) -> Result<(), Failure> {
    let db = Db::open(url).await?;
    let name = format!("regbench{}", std::process::id());
    let acc = db
        .create_account(
            &Actor::cli("regbench"),
            NewAccount {
                username: name.clone(),
                display_name: name.clone(),
                role: Role::Operator,
                area: AreaCode::parse("430503")?,
                department: None,
                password: "regbench-pass-2026".into(),
                temporary: false,
            },
        )
        .await?;
    let token = db.create_token(&Actor::cli("regbench"), acc.id, "regbench", None).await?;
    let state = server::AppState::new(db, server::ServerConfig::default()).await?;
    let router = server::router(state);
    let started = Instant::now();
    let req = Request::get(format!("/api/v1/persons/export?format={format}")).header("authorization", format!("Bearer {token}")).body(Body::empty())?;
    let res = router.oneshot(req).await?;
    if !res.status().is_success() {
        return Err(format!("export answered {}", res.status()).into());
    }
    let rows: u64 = res.headers().get("x-row-count").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut stream = res.into_body().into_data_stream();
    let mut bytes = 0u64;
    use futures_core::Stream;
    while let Some(chunk) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut stream).poll_next(cx)).await {
        bytes += chunk?.len() as u64;
    }
    println!("{format} {rows} {bytes} {:.3} {}", started.elapsed().as_secs_f64(), peak_rss_kb());
    Ok(())
}
