//! The audit importer's writer on SQLite: a connection of its own, through SQLite's own API.
//!
//! Every row is inserted by one prepared statement with each value bound where it lies in
//! the spool line. Through the store's pool a batch had to travel as one JSON text that
//! SQLite parsed again and searched eleven times a row (`->>`): measured with `perf`, that
//! JSON work and the copies around it were most of what importing a row cost, and the
//! import was most of what auditing a read cost. The connection takes the same write lock
//! as every other writer (`BEGIN IMMEDIATE`), so rows still chain one after another.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use domain::audit::GENESIS;
use domain::clock::Clock;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::{Batch, PROGRESS_UPSERT, Step, chain_hashes, lines_to_import, Lines};
use crate::StoreError;

const INSERT: &str = "INSERT INTO audit_log (seq, at, actor_kind, actor_id, actor_name, action, object_type, object_id, outcome, detail, operation_id, client_addr, prev_hash, hash) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

fn failed(e: rusqlite::Error) -> StoreError {
    StoreError::Sqlite(e.to_string())
}

/// Open the importer's connection to the store's file (already created and migrated).
pub(super) fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| StoreError::Unreachable(format!("{}: {e}", path.display())))?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(failed)?;
    // As the pool's connections: each import commits durably; checkpoints run in the
    // background, not in whichever commit crosses the WAL's threshold.
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0;").map_err(failed)?;
    Ok(conn)
}

/// One import transaction (see `import_step` in the parent module).
pub(super) fn import_step(conn: &mut Connection, clock: &dyn Clock, name: &str, file: &File, len: u64) -> Result<Step, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(failed)?;
    let imported: Option<i64> = tx
        .prepare_cached("SELECT imported_bytes FROM audit_spool WHERE file = $1")
        .and_then(|mut q| q.query_row([name], |r| r.get(0)).optional())
        .map_err(failed)?;
    // Returning before the commit rolls the transaction back.
    let Lines { buf, end, from } = match lines_to_import(file, name, imported, len)? {
        Ok(lines) => lines,
        Err(nothing) => return Ok(nothing),
    };
    let batch = Batch::parse(&buf[..end], clock, name, from);
    let head: Option<(i64, String)> = tx
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .and_then(|mut q| q.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(failed)?;
    let (last, last_hash) = head.unwrap_or_else(|| (0, GENESIS.to_string()));
    {
        let mut insert = tx.prepare_cached(INSERT).map_err(failed)?;
        let mut prev = [0u8; 64];
        for ((seq, e), hash) in (last + 1..).zip(batch.entries()).zip(chain_hashes(&batch, last, &last_hash)) {
            let prev_hash = if seq == last + 1 { last_hash.as_str() } else { std::str::from_utf8(&prev).unwrap_or_default() };
            let hash_text = std::str::from_utf8(&hash).unwrap_or_default();
            insert
                .execute(params![seq, e.at, e.actor_kind, e.actor_id, e.actor_name, e.action, e.object_type, e.object_id, e.outcome, e.detail, e.operation_id, e.client_addr, prev_hash, hash_text])
                .map_err(failed)?;
            prev = hash;
        }
        let (blocks, actors) = crate::audit::block_summary((last + 1..).zip(batch.entries()).map(|(seq, e)| (seq, e.at, e.actor_name)));
        let mut upsert = tx.prepare_cached(crate::audit::BLOCK_UPSERT_SQLITE).map_err(failed)?;
        for (block, lo, hi) in blocks {
            upsert.execute(params![block, lo, hi]).map_err(failed)?;
        }
        let mut pair = tx.prepare_cached("INSERT INTO audit_block_actor (actor_name, block) VALUES ($1, $2) ON CONFLICT DO NOTHING").map_err(failed)?;
        for (actor, block) in actors {
            pair.execute(params![actor, block]).map_err(failed)?;
        }
        let next = (from + end as u64) as i64;
        tx.prepare_cached(PROGRESS_UPSERT).and_then(|mut q| q.execute(params![name, next, batch.lines as i64, clock.now_ms()])).map_err(failed)?;
    }
    tx.commit().map_err(failed)?;
    Ok(Step { rows: batch.lines, done: from + end as u64 >= len, torn_bytes: 0 })
}
