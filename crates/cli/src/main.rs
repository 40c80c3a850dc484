//! The `civicgrid` binary: serve, demo, areas import/export, config.

mod config;
mod import;
mod users;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use domain::demo::{self, DemoOptions};
use domain::geometry::feature_collection;
use domain::{AreaCode, Level};
use store::{AreaFilter, Db, StoreError};

use crate::config::Config;

#[derive(Parser)]
#[command(name = "civicgrid", version, about = "civicgrid: the platform a district's grid management command center (网格化管理指挥中心) runs on")]
struct Cli {
    /// Store URL: sqlite://PATH (default sqlite://data/civicgrid.db) or postgres://… [env: CIVICGRID_DB]
    #[arg(long, global = true, value_name = "URL")]
    db: Option<String>,
    /// Config file (TOML) [env: CIVICGRID_CONFIG; default ./civicgrid.toml when present]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (API, web UI).
    Serve {
        /// Address to listen on [env: CIVICGRID_LISTEN; default 127.0.0.1:8080]
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Fill an empty store with the demo district before serving.
        #[arg(long)]
        demo: bool,
        /// With --demo: the share of the demo register to load (1 = about 270,000 people).
        #[arg(long, value_name = "SHARE", env = "CIVICGRID_DEMO_POPULATION", default_value_t = 1.0)]
        population: f64,
    },
    /// Fill an empty store with a deterministic synthetic district.
    Demo {
        /// Multiply communities, grids and dedicated grids (1 to 100).
        #[arg(long, default_value_t = 1)]
        scale: u32,
        /// Seed of the generator: the same seed gives the same district.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The share of the register to load: 1 = about 270,000 people, 110,000 houses,
        /// 90,000 households and 3,000 organisations per scale; 0 loads none.
        #[arg(long, value_name = "SHARE", env = "CIVICGRID_DEMO_POPULATION", default_value_t = 1.0)]
        population: f64,
    },
    /// Areas and grids as GeoJSON.
    Areas {
        #[command(subcommand)]
        command: AreasCommand,
    },
    /// Print the effective configuration, with where each value came from (secrets redacted).
    Config,
    /// Accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Key figures (考核指标).
    Kpi {
        #[command(subcommand)]
        command: KpiCommand,
    },
    /// Import the register from a spreadsheet (.xlsx, or .csv in UTF-8 or GBK). Every row
    /// is checked; the report lists each bad row by row number, column and reason. A file
    /// with any bad row imports nothing (exit code 1) unless --partial is given.
    Import {
        /// persons (实有人口), houses (实有房屋) or organisations (实有单位).
        #[arg(value_parser = ["persons", "houses", "organisations"])]
        kind: String,
        /// The spreadsheet.
        file: PathBuf,
        /// Import the good rows even when some are bad.
        #[arg(long)]
        partial: bool,
        /// The grid (15-digit code) of rows that have no 网格 column or leave it empty.
        #[arg(long, value_name = "CODE")]
        grid: Option<String>,
        /// The account the import is made as: history and audit name it, and its role and
        /// area decide what it may write (grid workers and leaders, community and street staff).
        #[arg(long = "as", value_name = "USERNAME")]
        as_user: String,
        /// Write the bad rows, with their cells and an 错误原因 column, to this .xlsx.
        #[arg(long, value_name = "OUT.xlsx")]
        report: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KpiCommand {
    /// Recompute the key-figure rollup from the incidents (the source of truth).
    Rebuild,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account. Reads the password from standard input: two lines, the password
    /// and its confirmation.
    Add {
        /// Username: 3-32 of a-z, 0-9, '.', '_', '-'.
        name: String,
        /// operator, dispatcher, shift_lead, department_handler, street_staff, community_staff,
        /// grid_leader, grid_worker, volunteer, auditor, admin, api_client
        #[arg(long)]
        role: String,
        /// The area the account sees (its subtree), e.g. 430503 or 430503001.
        #[arg(long)]
        area: String,
        /// The department (department handlers).
        #[arg(long)]
        department: Option<String>,
        /// The display name (default: the username).
        #[arg(long)]
        display_name: Option<String>,
        /// The password is temporary: it must be changed at first login.
        #[arg(long)]
        temporary: bool,
    },
    /// Change a password (two lines on standard input). Ends the account's sessions and
    /// revokes its tokens.
    Passwd { name: String },
    /// Disable an account: its sessions end and its tokens are revoked.
    Disable { name: String },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a bearer token for an account and print it, alone, on standard output. It is
    /// shown once and stored hashed.
    Create {
        name: String,
        /// Days until it expires (default: never).
        #[arg(long)]
        expires: Option<u32>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain of the whole trail; exits non-zero and names the first broken row.
    Verify,
}

#[derive(Subcommand)]
enum AreasCommand {
    /// Import a GeoJSON FeatureCollection (properties: code, name, level, parent, kind).
    /// Every feature is checked; a file with any problem imports nothing.
    Import {
        /// The file, or - for standard input.
        file: PathBuf,
    },
    /// Export areas as a GeoJSON FeatureCollection on standard output.
    Export {
        /// Only this level: district, street, community, grid, dedicated.
        #[arg(long)]
        level: Option<String>,
        /// Only areas under this code.
        #[arg(long)]
        within: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

/// A failure with the message the operator sees.
struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let listen_flag = match &cli.command {
        Command::Serve { listen, .. } => listen.clone(),
        _ => None,
    };
    let cfg = match Config::load(
        cli.config.as_deref(),
        &|k| std::env::var(k).ok(),
        &[("db", "--db", cli.db.clone()), ("listen", "--listen", listen_flag)],
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("civicgrid: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(cfg.log());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("civicgrid: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_and_close(cli.command, cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(msg)) => {
            eprintln!("civicgrid: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// The stores a command opened, so that their audit spools are imported before it exits.
#[derive(Default)]
struct Opened(std::sync::Mutex<Vec<Db>>);

impl Opened {
    async fn close(self) {
        let dbs = self.0.into_inner().unwrap_or_default();
        for db in dbs {
            if let Err(e) = db.close_audit().await {
                // Not lost: the next start imports what is left.
                tracing::warn!(error = %e, "the audit spool is left for the next start");
            }
        }
    }
}

async fn open(cfg: &Config, opened: &Opened) -> Result<Db, Failure> {
    let db = Db::open_with(cfg.db(), std::sync::Arc::new(domain::clock::SystemClock), cfg.audit_spool()).await.map_err(|e| Failure(e.to_string()))?;
    if let Ok(mut v) = opened.0.lock() {
        v.push(db.clone());
    }
    Ok(db)
}

async fn run_and_close(command: Command, cfg: Config) -> Result<(), Failure> {
    let opened = Opened::default();
    let result = run(command, cfg, &opened).await;
    opened.close().await;
    result
}

async fn run(command: Command, cfg: Config, opened: &Opened) -> Result<(), Failure> {
    match command {
        Command::Config => {
            print!("{}", cfg.render());
            Ok(())
        }
        Command::Serve { demo, population, .. } => {
            let started = Instant::now();
            let db = open(&cfg, opened).await?;
            if demo && db.count_areas().await? == 0 {
                load_demo(&db, DemoOptions::default(), population).await?;
            }
            let server_cfg = server::ServerConfig {
                tile_url: cfg.tile_url(),
                tile_attribution: cfg.tile_attribution(),
                change_poll: Duration::from_millis(cfg.change_poll_ms()?),
                session_policy: cfg.session_policy()?,
                secure_cookies: cfg.secure_cookies()?,
                audit_reads: cfg.audit_reads()?,
                photo_max_bytes: cfg.photo_max_bytes()?,
                import_max_bytes: cfg.import_max_bytes()?,
            };
            let state = server::AppState::new(db, server_cfg).await?;
            tracing::info!(
                grids = state.grids.snapshot().len(),
                ms = started.elapsed().as_millis() as u64,
                "store opened and grid index built"
            );
            server::serve(state, cfg.listen()?).await?;
            Ok(())
        }
        Command::Kpi { command: KpiCommand::Rebuild } => {
            let db = open(&cfg, opened).await?;
            let started = Instant::now();
            let rows = db.rebuild_kpis().await?;
            println!("key-figure rollup rebuilt: {rows} rows in {:.2} s", started.elapsed().as_secs_f64());
            Ok(())
        }
        Command::Demo { scale, seed, population } => {
            let db = open(&cfg, opened).await?;
            load_demo(&db, DemoOptions { scale, seed }, population).await
        }
        Command::Areas { command: AreasCommand::Import { file } } => {
            let text = read_input(&file)?;
            let db = open(&cfg, opened).await?;
            match db.import_areas(&text).await {
                Ok(report) => {
                    println!("imported {} new and {} updated areas from {}", report.inserted, report.updated, file.display());
                    Ok(())
                }
                Err(StoreError::Import(problems)) => {
                    for p in &problems {
                        eprintln!("{}: {p}", file.display());
                    }
                    Err(Failure(format!(
                        "{}: {} problem(s) found; nothing was imported",
                        file.display(),
                        problems.len()
                    )))
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::User { command } => users::run(command, &open(&cfg, opened).await?).await,
        Command::Import { kind, file, partial, grid, as_user, report } => {
            let db = open(&cfg, opened).await?;
            import::run(&db, import::Args { kind, file, partial, grid, as_user, report }).await
        }
        Command::Token { command: TokenCommand::Create { name, expires } } => {
            let db = open(&cfg, opened).await?;
            let acc = db.account_by_username(&name).await?.ok_or_else(|| Failure(format!("no account named {name}")))?;
            let expires_at = expires.map(|d| db.now_ms() + i64::from(d) * 86_400_000);
            let token = db.create_token(&store::audit::Actor::cli("token create"), acc.id, "cli", expires_at).await?;
            println!("{token}");
            Ok(())
        }
        Command::Audit { command: AuditCommand::Verify } => {
            let db = open(&cfg, opened).await?;
            match db.verify_audit().await? {
                store::audit::ChainCheck::Intact { rows } => {
                    println!("audit trail intact: {rows} rows, every hash chains to the row before");
                    Ok(())
                }
                store::audit::ChainCheck::Broken { seq, reason } => {
                    Err(Failure(format!("audit trail broken at row {seq}: {reason}")))
                }
            }
        }
        Command::Areas { command: AreasCommand::Export { level, within, out } } => {
            let level = level.map(|l| l.parse::<Level>()).transpose()?;
            let within = within.map(|w| AreaCode::parse(&w)).transpose()?;
            let db = open(&cfg, opened).await?;
            let records = db.area_records(&AreaFilter { level, within, ..AreaFilter::default() }).await?;
            let text = feature_collection(&records).to_string();
            match out {
                Some(path) => {
                    std::fs::write(&path, text).map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?;
                    eprintln!("exported {} areas to {}", records.len(), path.display());
                }
                None => println!("{text}"),
            }
            Ok(())
        }
    }
}

fn read_input(file: &PathBuf) -> Result<String, Failure> {
    if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| Failure(format!("cannot read standard input: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(file).map_err(|e| Failure(format!("cannot read {}: {e}", file.display())))
}

async fn load_demo(db: &Db, opts: DemoOptions, population: f64) -> Result<(), Failure> {
    if !(0.0..=1.0).contains(&population) {
        return Err(Failure(format!("--population must be a share from 0 to 1, got {population}")));
    }
    let started = Instant::now();
    let district = demo::generate(opts)?;
    let generated = started.elapsed();
    let report = db.load_demo(&district).await?;
    db.load_catalogue(
        &store::audit::Actor::cli("demo"),
        &domain::catalogue::demo_departments(),
        &domain::catalogue::demo_categories(),
        &store::catalogue::demo_calendar(),
    )
    .await?;
    let areas_done = started.elapsed();
    // After the catalogue: the department handler's account names a department.
    let accounts = users::demo_accounts(db, &district).await?;
    let history = load_history(db, &district, opts).await?;
    let live = users::demo_worklist(db, &district).await?;
    let register_started = Instant::now();
    let plan = domain::population::Population::plan(&district, opts.seed, population, domain::calendar::Day::of_instant(db.now_ms()));
    let register = db.load_population(&plan).await?;
    let register_seconds = register_started.elapsed().as_secs_f64();
    let collection = store::collection::seed_demo(db, "gridworker").await?;
    let count = |l: Level| district.areas.iter().filter(|a| a.level == l).count();
    println!(
        "demo district {} {} (scale {}, seed {}): {} streets and townships, {} communities and villages, {} basic grids, {} dedicated grids, {} team members; {} areas stored in {:.1} s (generated in {:.1} s)",
        demo::DISTRICT_CODE,
        demo::DISTRICT_NAME,
        opts.scale,
        opts.seed,
        count(Level::Street),
        count(Level::Community),
        count(Level::Grid),
        count(Level::Dedicated),
        district.team.len(),
        report.inserted,
        areas_done.as_secs_f64(),
        generated.as_secs_f64(),
    );
    println!(
        "incident history: {} incidents reported over the last 365 days, {} closed ({:.1} %), {} still open, stored in {:.1} s",
        history.reported,
        history.closed,
        100.0 * history.closed as f64 / history.reported.max(1) as f64,
        history.open,
        history.seconds
    );
    println!(
        "register: {} people in {} houses and {} households, {} organisations, stored in {:.1} s",
        register.persons, register.houses, register.households, register.organisations, register_seconds
    );
    println!("{collection}");
    println!("open work for the demo accounts: {live} incidents in grid {} (a dispatch for dept, one for the grid, one to verify)", 
        district.areas.iter().find(|a| a.level == Level::Grid).map(|a| a.code.to_string()).unwrap_or_default());
    println!("\ndemo accounts (passwords generated for this run; change them with civicgrid user passwd NAME):");
    for (username, role, area, password) in accounts {
        println!("  {username:<12} {password}  {role:<18} {area}");
    }
    Ok(())
}

struct HistoryReport {
    reported: u64,
    closed: i64,
    open: i64,
    seconds: f64,
}

/// A year of incidents up to now (about 1,310 per base district, times the scale), with
/// the demo accounts and grid teams as actors, then the key-figure rollup built from them.
async fn load_history(db: &Db, district: &demo::DemoDistrict, opts: DemoOptions) -> Result<HistoryReport, Failure> {
    use domain::history::{self, History};
    let started = Instant::now();
    let places = history::places_of(&district.areas);
    let kinds = history::kinds_of(&domain::catalogue::demo_categories(), opts.seed);
    let (holidays, workdays) = domain::calendar::national_2026();
    let calendar = domain::calendar::WorkCalendar {
        holidays: holidays.into_iter().map(|(d, _)| d).collect(),
        workdays: workdays.into_iter().map(|(d, _)| d).collect(),
        ..domain::calendar::WorkCalendar::default()
    };
    let account = |name: &'static str| async move {
        db.account_by_username(name).await.map(|a| a.map(|a| (a.id, a.username)))
    };
    let mut actors = store::history::HistoryActors {
        operator: account("operator").await?,
        dispatcher: account("dispatcher").await?,
        shift_lead: account("shiftlead").await?,
        department: account("dept").await?,
        grid_names: history::grid_workers(&district.team),
        ..Default::default()
    };
    if let Some(a) = db.account_by_username("gridworker").await? {
        actors.grid_accounts.insert(a.area.to_string(), (a.id, a.username));
    }
    let count = history::REPORTS_PER_YEAR * u64::from(opts.scale);
    let h = History::new(opts.seed, count, db.now_ms(), &places, &kinds, &calendar);
    let reported = db.load_history(&h, &places, &kinds, 0..count, &actors, true).await?;
    db.rebuild_kpis().await?;
    let (closed, open) = db.incident_outcomes().await?;
    Ok(HistoryReport { reported, closed, open, seconds: started.elapsed().as_secs_f64() })
}
