//! The audit trail's own benchmark (see docs/PERFORMANCE.md, "The audit spool"):
//!
//! ```text
//! auditbench URL N    on a fresh store: N read-audit rows appended to the spool (as the
//!                     server writes them), then the time until all are in audit_log; and
//!                     the baseline: the same N rows inserted into a copy of the table by
//!                     one prepared INSERT in one transaction, hashes computed beforehand
//! ```
//! Bench-only: nothing here is part of the product, and no test depends on it.

use std::time::Instant;

use domain::audit::AuditEntry;
use sqlx::any::AnyPoolOptions;
use store::Db;
use store::audit::Actor;

type Failure = Box<dyn std::error::Error>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, n] = args.as_slice() else {
        eprintln!("usage: auditbench URL N");
        std::process::exit(2);
    };
    let n: u64 = n.parse()?;
    let spool = std::env::var_os("AUDITBENCH_SPOOL").map(std::path::PathBuf::from);
    let db = Db::open_with(url, std::sync::Arc::new(domain::clock::SystemClock), spool).await?;
    db.flush_audit().await?;
    let actor = Actor { kind: "token".into(), id: Some(1), name: "admin".into(), operation_id: "5d3a0526-000eeb1f".into(), client_addr: "127.0.0.1".into() };

    let (c0, start) = (cpu_seconds(), Instant::now());
    for i in 0..n {
        db.audit_as(&actor, "account.read", "account", &(i % 1000).to_string(), "ok", "").await?;
    }
    let (c1, appended) = (cpu_seconds(), start.elapsed());
    db.flush_audit().await?;
    let (c2, imported) = (cpu_seconds(), start.elapsed());
    eprintln!("cpu: append {:.2} µs/row, import {:.2} µs/row", (c1 - c0) * 1e6 / n as f64, (c2 - c1) * 1e6 / n as f64);
    db.close_audit().await?;
    drop(db);
    if std::env::var_os("AUDITBENCH_NO_BASELINE").is_some() {
        println!("{:.2} µs/row appended, {:.2} µs/row imported", appended.as_secs_f64() * 1e6 / n as f64, (imported - appended).as_secs_f64() * 1e6 / n as f64);
        return Ok(());
    }

    // Baseline: the same rows, hashed first, through one prepared INSERT in one transaction.
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new().max_connections(1).connect(url).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS audit_bench AS SELECT * FROM audit_log WHERE 0 = 1").execute(&pool).await?;
    sqlx::query("DELETE FROM audit_bench").execute(&pool).await?;
    sqlx::query("CREATE INDEX IF NOT EXISTS audit_bench_at ON audit_bench (at)").execute(&pool).await?;
    sqlx::query("CREATE INDEX IF NOT EXISTS audit_bench_actor ON audit_bench (actor_name, at)").execute(&pool).await?;
    let t = Instant::now();
    let mut tx = pool.begin().await?;
    let mut prev = String::from("0");
    for i in 0..n as i64 {
        let e = AuditEntry {
            at: i,
            actor_kind: "token".into(),
            actor_id: Some(1),
            actor_name: "admin".into(),
            action: "account.read".into(),
            object_type: "account".into(),
            object_id: (i % 1000).to_string(),
            outcome: "ok".into(),
            operation_id: actor.operation_id.clone(),
            client_addr: actor.client_addr.clone(),
            ..Default::default()
        };
        let hash = e.chain_hash(i + 1, &prev);
        sqlx::query(
            "INSERT INTO audit_bench (seq, at, actor_kind, actor_id, actor_name, action, object_type, object_id, outcome, detail, operation_id, client_addr, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(i + 1)
        .bind(e.at)
        .bind(e.actor_kind)
        .bind(e.actor_id)
        .bind(e.actor_name)
        .bind(e.action)
        .bind(e.object_type)
        .bind(e.object_id)
        .bind(e.outcome)
        .bind(e.detail)
        .bind(e.operation_id)
        .bind(e.client_addr)
        .bind(std::mem::replace(&mut prev, hash.clone()))
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    let baseline = t.elapsed();
    sqlx::query("DROP TABLE audit_bench").execute(&pool).await?;

    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "{{\"rows\":{n},\"append_us_per_row\":{:.2},\"import_us_per_row\":{:.2},\"spool_total_us_per_row\":{:.2},\"baseline_insert_us_per_row\":{:.2},\"ratio\":{:.2}}}",
        per(appended),
        per(imported - appended),
        per(imported),
        per(baseline),
        per(imported) / per(baseline)
    );
    Ok(())
}

/// This process's CPU time so far (user and system), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = after.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the command name.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}
