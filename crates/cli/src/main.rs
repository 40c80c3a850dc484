//! The `civicgrid` binary: serve, demo, areas import/export, config.

mod config;

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
    },
    /// Fill an empty store with a deterministic synthetic district.
    Demo {
        /// Multiply communities, grids and dedicated grids (1 to 100).
        #[arg(long, default_value_t = 1)]
        scale: u32,
        /// Seed of the generator: the same seed gives the same district.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Areas and grids as GeoJSON.
    Areas {
        #[command(subcommand)]
        command: AreasCommand,
    },
    /// Print the effective configuration, with where each value came from (secrets redacted).
    Config,
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
    match runtime.block_on(run(cli.command, cfg)) {
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

async fn open(cfg: &Config) -> Result<Db, Failure> {
    Db::open(cfg.db()).await.map_err(|e| Failure(e.to_string()))
}

async fn run(command: Command, cfg: Config) -> Result<(), Failure> {
    match command {
        Command::Config => {
            print!("{}", cfg.render());
            Ok(())
        }
        Command::Serve { demo, .. } => {
            let started = Instant::now();
            let db = open(&cfg).await?;
            if demo && db.count_areas().await? == 0 {
                load_demo(&db, DemoOptions::default()).await?;
            }
            let server_cfg = server::ServerConfig {
                tile_url: cfg.tile_url(),
                tile_attribution: cfg.tile_attribution(),
                change_poll: Duration::from_millis(cfg.change_poll_ms()?),
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
        Command::Demo { scale, seed } => {
            let db = open(&cfg).await?;
            load_demo(&db, DemoOptions { scale, seed }).await
        }
        Command::Areas { command: AreasCommand::Import { file } } => {
            let text = read_input(&file)?;
            let db = open(&cfg).await?;
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
        Command::Areas { command: AreasCommand::Export { level, within, out } } => {
            let level = level.map(|l| l.parse::<Level>()).transpose()?;
            let within = within.map(|w| AreaCode::parse(&w)).transpose()?;
            let db = open(&cfg).await?;
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

async fn load_demo(db: &Db, opts: DemoOptions) -> Result<(), Failure> {
    let started = Instant::now();
    let district = demo::generate(opts)?;
    let generated = started.elapsed();
    let report = db.load_demo(&district).await?;
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
        started.elapsed().as_secs_f64(),
        generated.as_secs_f64(),
    );
    Ok(())
}
