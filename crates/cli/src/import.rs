//! `civicgrid import persons|houses|organisations FILE`: the register's import from the
//! command line, made as a named account (`--as`), with a progress bar on standard error.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use domain::access::{Credential, Principal};
use domain::AreaCode;
use store::Db;
use store::audit::Actor;
use store::register_import::{self, ImportKind, ImportOptions, ImportProgress, ImportReport, Phase};

use crate::Failure;

pub struct Args {
    pub kind: String,
    pub file: PathBuf,
    pub partial: bool,
    pub grid: Option<String>,
    pub as_user: String,
    pub report: Option<PathBuf>,
}

pub async fn run(db: &Db, a: Args) -> Result<(), Failure> {
    let kind = ImportKind::parse(&a.kind).ok_or_else(|| Failure(format!("unknown kind {:?}: persons, houses or organisations", a.kind)))?;
    let grid = a.grid.as_deref().map(AreaCode::parse).transpose().map_err(|e| Failure(format!("--grid: {e}")))?;
    let acc = db.account_by_username(&a.as_user).await?.ok_or_else(|| Failure(format!("--as: no account named {}", a.as_user)))?;
    if !acc.active {
        return Err(Failure(format!("--as: the account {} is disabled", acc.username)));
    }
    if !store::register::register_writes(acc.role) {
        return Err(Failure(format!(
            "--as: {} is a {}, a role that does not write the register (grid workers and leaders, community and street staff do)",
            acc.username, acc.role
        )));
    }
    let who = Principal {
        account_id: acc.id,
        username: acc.username.clone(),
        display_name: acc.display_name.clone(),
        role: acc.role,
        area: acc.area.clone(),
        department: acc.department.clone(),
        credential: Credential::Token(0),
        must_change_password: false,
    };
    let actor = Actor { kind: "user".into(), id: Some(acc.id), name: acc.username.clone(), operation_id: "cli:import".into(), client_addr: "local".into() };
    let scoped = db.scoped(&who, actor);
    let Some(desk) = scoped.register() else {
        return Err(Failure(format!("--as: {} cannot write the register", acc.username)));
    };
    let file_name = a.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let opts = ImportOptions { kind, partial: a.partial, grid, file_name };
    let progress = Arc::new(ImportProgress::default());
    let bar = tokio::spawn(show_progress(progress.clone()));
    let started = Instant::now();
    let result = desk.import(&a.file, &opts, progress).await;
    bar.abort();
    let _ = bar.await;
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K");
    }
    let report = match result {
        Ok(r) => r,
        Err(store::StoreError::NotFound(_)) => {
            return Err(Failure(format!(
                "--grid {}: not a basic grid within the area of {} ({})",
                a.grid.as_deref().unwrap_or("-"),
                acc.username,
                acc.area
            )));
        }
        Err(e) => return Err(Failure(format!("{}: {e}", a.file.display()))),
    };
    print_report(&report, &a.file.display().to_string());
    if let Some(out) = &a.report {
        let bytes = register_import::report_xlsx(&report)?;
        std::fs::write(out, bytes).map_err(|e| Failure(format!("cannot write {}: {e}", out.display())))?;
        println!("error report written to {}", out.display());
    }
    println!(
        "{}: {} rows read, {} valid, {} with errors, {} with warnings; {} created, {} updated, {} unchanged, {} merged duplicates; {:.1} s",
        a.file.display(),
        report.rows_read,
        report.rows_valid,
        report.rows_with_errors,
        report.rows_with_warnings,
        report.created,
        report.updated,
        report.unchanged,
        report.merged,
        started.elapsed().as_secs_f64()
    );
    if report.committed && (report.households_created > 0 || report.household_members_added > 0) {
        println!("households: {} created, {} members added", report.households_created, report.household_members_added);
    }
    if !report.committed {
        return Err(Failure(format!("{} row(s) with errors; nothing was imported (use --partial to import the good rows)", report.rows_with_errors)));
    }
    if report.imported() == 0 && report.rows_with_errors > 0 {
        return Err(Failure(format!("{} row(s) with errors and no good row; nothing was imported", report.rows_with_errors)));
    }
    Ok(())
}

/// The report: each row with an error or a warning, by row, column and reason (notes are
/// counted); then the columns not imported.
fn print_report(r: &ImportReport, file: &str) {
    let mut out = std::io::stdout().lock();
    let mut notes = 0usize;
    for row in &r.rows {
        for f in &row.findings {
            if f.severity == "note" {
                notes += 1;
                continue;
            }
            let level = if f.severity == "error" { "错误 error" } else { "警告 warning" };
            let _ = writeln!(out, "{file}: 第 {} 行 row {}, {}: {level}: {} [{}]", row.row, row.row, f.column, f.message, f.code);
        }
    }
    if r.rows_not_listed > 0 {
        let _ = writeln!(out, "{file}: {} more row(s) with findings are not listed", r.rows_not_listed);
    }
    if notes > 0 {
        let _ = writeln!(out, "{file}: {notes} note(s) on values normalised (full-width digits, spaces, lowercase x …)");
    }
    if !r.ignored_columns.is_empty() {
        let _ = writeln!(out, "{file}: columns not imported: {}", r.ignored_columns.join(", "));
    }
}

/// A progress bar on standard error when it is a terminal; otherwise a line every 5 s.
async fn show_progress(p: Arc<ImportProgress>) {
    let tty = std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval(if tty { Duration::from_millis(200) } else { Duration::from_secs(5) });
    tick.tick().await;
    loop {
        tick.tick().await;
        let read = p.rows_read.load(Ordering::Relaxed);
        let total = p.rows_total.load(Ordering::Relaxed);
        let written = p.rows_written.load(Ordering::Relaxed);
        let line = match p.phase() {
            Phase::Queued => continue,
            Phase::Checking => format!("checking: {read} rows read"),
            Phase::Writing => {
                let pct = (written * 100).checked_div(total).map_or(100, |p| p.min(100));
                let filled = (pct / 5) as usize;
                format!("writing:  [{}{}] {pct:>3}% {written}/{total} rows", "#".repeat(filled), ".".repeat(20 - filled))
            }
            Phase::Done => continue,
        };
        if tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
    }
}
