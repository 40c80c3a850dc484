//! The key-figure benchmark's own tool (see docs/PERFORMANCE.md, "Key figures"):
//!
//! ```text
//! kpibench load URL N [--timeline]   a fresh store: the demo district (628 grids), the
//!                                    catalogue, N incidents over the year to now
//!                                    (domain::history, seed 1), then the rollup rebuilt
//! kpibench query URL RUNS            the district's figures by street for the whole
//!                                    year through the scoped handle: p50/p95 and the answer
//! kpibench export URL FILE           the rows DuckDB scans, as CSV (place, day, filed, closed)
//! kpibench writes URL N              on a fresh store: N reports, then N filings and N
//!                                    dispatches, one by one (the write path the rollup adds to)
//! ```
//! Bench-only: nothing here is part of the product, and no test depends on it.

use std::io::Write;
use std::time::Instant;

use domain::calendar::{Day, WorkCalendar};
use domain::kpi::Grouping;
use domain::{AreaCode, Credential, Principal, Role};
use store::Db;
use store::kpis::KpiQuery;

type Failure = Box<dyn std::error::Error>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["load", url, n, rest @ ..] => load(url, n.parse()?, rest.contains(&"--timeline")).await,
        ["query", url, runs] => query(url, runs.parse()?).await,
        ["export", url, file] => export(url, file).await,
        ["writes", url, n] => writes(url, n.parse()?).await,
        _ => {
            eprintln!("usage: kpibench load URL N [--timeline] | query URL RUNS | export URL FILE | writes URL N");
            std::process::exit(2);
        }
    }
}

fn calendar() -> WorkCalendar {
    let (holidays, workdays) = domain::calendar::national_2026();
    WorkCalendar {
        holidays: holidays.into_iter().map(|(d, _)| d).collect(),
        workdays: workdays.into_iter().map(|(d, _)| d).collect(),
        ..WorkCalendar::default()
    }
}

async fn load(url: &str, n: u64, timeline: bool) -> Result<(), Failure> {
    let started = Instant::now();
    let db = Db::open(url).await?;
    let district = domain::demo::generate(domain::demo::DemoOptions::default())?;
    db.load_demo(&district).await?;
    let actor = store::audit::Actor::cli("kpibench");
    db.load_catalogue(&actor, &domain::catalogue::demo_departments(), &domain::catalogue::demo_categories(), &store::catalogue::demo_calendar()).await?;
    let places = domain::history::places_of(&district.areas);
    let kinds = domain::history::kinds_of(&domain::catalogue::demo_categories(), 1);
    let cal = calendar();
    let h = domain::history::History::new(1, n, db.now_ms(), &places, &kinds, &cal);
    let actors = store::history::HistoryActors { grid_names: domain::history::grid_workers(&district.team), ..Default::default() };
    const CHUNK: u64 = 100_000;
    let mut at = 0;
    let load_started = Instant::now();
    while at < n {
        let end = (at + CHUNK).min(n);
        db.load_history(&h, &places, &kinds, at..end, &actors, timeline).await?;
        at = end;
        eprintln!("  {at} incidents, {:.0} s", load_started.elapsed().as_secs_f64());
    }
    let loaded = load_started.elapsed();
    let rebuild_started = Instant::now();
    let rows = db.rebuild_kpis().await?;
    println!(
        "loaded {n} incidents{} in {:.1} s; rollup rebuilt ({rows} rows) in {:.1} s; {:.1} s in all",
        if timeline { " with their timelines" } else { "" },
        loaded.as_secs_f64(),
        rebuild_started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn operator() -> Result<Principal, Failure> {
    Ok(Principal {
        account_id: 0,
        username: "kpibench".into(),
        display_name: "kpibench".into(),
        role: Role::ShiftLead,
        area: AreaCode::parse(domain::demo::DISTRICT_CODE)?,
        department: None,
        credential: Credential::Token(0),
        must_change_password: false,
    })
}

async fn query(url: &str, runs: usize) -> Result<(), Failure> {
    let db = Db::open(url).await?;
    let p = operator()?;
    let s = db.scoped(&p, store::audit::Actor::cli("kpibench"));
    let desk = s.kpis().ok_or("no KPI handle")?;
    let today = Day::of_instant(db.now_ms());
    let q = KpiQuery { from: Day(today.0 - 364), to: today, by: Grouping::Street, area: p.area.clone() };
    for _ in 0..3 {
        desk.table(&q).await?;
    }
    let mut times = Vec::with_capacity(runs);
    let mut table = None;
    for _ in 0..runs {
        let t = Instant::now();
        table = Some(desk.table(&q).await?);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let pick = |f: f64| times[((times.len() as f64 * f).ceil() as usize).clamp(1, times.len()) - 1];
    let table = table.ok_or("no runs")?;
    println!("ours: district by street, {} to {}, {runs} runs: p50 {:.2} ms, p95 {:.2} ms", q.from, q.to, pick(0.5), pick(0.95));
    let total = &table.total.figures;
    println!(
        "answer: reported {}, filed {}, closed {}, closure rate {:.4}",
        total.counters.reported,
        total.counters.filed,
        total.counters.closed,
        total.closure_rate.unwrap_or(0.0)
    );
    for r in &table.rows {
        println!("street {} {} {} {}", if r.key.is_empty() { "-" } else { &r.key }, r.figures.counters.reported, r.figures.counters.filed, r.figures.counters.closed);
    }
    Ok(())
}

async fn export(url: &str, file: &str) -> Result<(), Failure> {
    let db = Db::open(url).await?;
    let started = Instant::now();
    let mut out = std::io::BufWriter::new(std::fs::File::create(file)?);
    writeln!(out, "place,created_at,state,closed_at")?;
    let n = db.export_incident_facts(&mut |place: &str, created_at: i64, state: &str, closed_at: Option<i64>| {
        let closed = closed_at.map(|c| c.to_string()).unwrap_or_default();
        writeln!(out, "{place},{created_at},{state},{closed}")
    })
    .await?;
    out.flush()?;
    println!("exported {n} incidents to {file} in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The write path: reports, filings and dispatches one at a time, each in its transaction
/// (with the rollup's upsert in it).
async fn writes(url: &str, n: usize) -> Result<(), Failure> {
    use domain::incident::Action;
    use store::incidents::{NewIncident, Source, TransitionInput};
    let db = Db::open(url).await?;
    let district = domain::demo::generate(domain::demo::DemoOptions::default())?;
    db.load_demo(&district).await?;
    let actor = store::audit::Actor::cli("kpibench");
    db.load_catalogue(&actor, &domain::catalogue::demo_departments(), &domain::catalogue::demo_categories(), &store::catalogue::demo_calendar()).await?;
    let places = domain::history::places_of(&district.areas);
    let acc = db
        .create_account(
            &actor,
            store::auth::NewAccount {
                username: "kpibench".into(),
                display_name: "kpibench".into(),
                role: Role::ShiftLead,
                area: AreaCode::parse(domain::demo::DISTRICT_CODE)?,
                department: None,
                password: "grid-patrol-writes-0425".into(),
                temporary: false,
            },
        )
        .await?;
    let p = Principal { account_id: acc.id, ..operator()? };
    let s = db.scoped(&p, actor.clone());
    let desk = s.incidents().ok_or("no incident desk")?;
    let mut ids = Vec::with_capacity(n);
    let t = Instant::now();
    for k in 0..n {
        let place = &places[k % places.len()];
        let new = NewIncident {
            category: "C0102".into(),
            description: "污水井盖破损".into(),
            point: Some((place.lat, place.lon)),
            address: None,
            source: Source::Hotline,
            grid: Some(AreaCode::parse(&place.grid)?),
            reporter_phone: None,
        };
        ids.push(desk.report(new, None).await?.0.id);
    }
    let reports = t.elapsed();
    let t = Instant::now();
    for id in &ids {
        desk.transition(*id, 1, Action::File, &TransitionInput::default()).await.map_err(|e| format!("{e:?}"))?;
    }
    let files = t.elapsed();
    let t = Instant::now();
    let input = TransitionInput { department: Some("cgj".into()), ..TransitionInput::default() };
    for id in &ids {
        desk.transition(*id, 2, Action::Dispatch, &input).await.map_err(|e| format!("{e:?}"))?;
    }
    let dispatches = t.elapsed();
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!("writes, {n} each, one at a time: report {:.0} µs, file {:.0} µs, dispatch {:.0} µs", per(reports), per(files), per(dispatches));
    Ok(())
}
