//! The audit importer's writer on PostgreSQL: a connection of its own, outside the store's
//! driver-neutral pool, that moves each batch in with `COPY … FROM STDIN`.
//!
//! Through the pool a batch travelled as one JSON text that PostgreSQL parsed and searched
//! field by field; COPY's text rows are read by PostgreSQL's bulk loader, and only the
//! characters COPY reserves are escaped. The importer takes the same write lock as every
//! other writer (`pg_advisory_xact_lock`), so rows still chain one after another.

use std::fs::File;
use std::str::FromStr;
use std::time::Duration;

use domain::audit::{AuditEntryRef, GENESIS};
use domain::clock::Clock;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::{Batch, PROGRESS_UPSERT, Step, chain_hashes, line, lines_to_import, Lines};
use crate::StoreError;
use crate::db::{WRITE_LOCK_KEY, WRITE_LOCK_POSTGRES, redact_url};

const COPY: &str = "COPY audit_log (seq, at, actor_kind, actor_id, actor_name, action, object_type, object_id, outcome, detail, operation_id, client_addr, prev_hash, hash) FROM STDIN";

/// Connect the importer (one connection) to the store's database.
pub(super) async fn connect(url: &str) -> Result<PgPool, StoreError> {
    let opts = PgConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl(format!("{}: {e}", redact_url(url))))?;
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(opts)
        .await
        .map_err(|e| StoreError::Unreachable(format!("{}: {e}", redact_url(url))))
}

/// One import transaction (see `import_step` in the parent module).
pub(super) async fn import_step(pool: &PgPool, clock: &dyn Clock, name: &str, file: &File, len: u64) -> Result<Step, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query(WRITE_LOCK_POSTGRES).bind(WRITE_LOCK_KEY).execute(&mut *tx).await?;
    let imported: Option<i64> = sqlx::query_scalar("SELECT imported_bytes FROM audit_spool WHERE file = $1").bind(name).fetch_optional(&mut *tx).await?;
    // Returning before the commit rolls the transaction back.
    let Lines { buf, end, from } = match lines_to_import(file, name, imported, len)? {
        Ok(lines) => lines,
        Err(nothing) => return Ok(nothing),
    };
    let batch = Batch::parse(&buf[..end], clock, name, from);
    let head: Option<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *tx).await?;
    let (last, last_hash) = head.unwrap_or_else(|| (0, GENESIS.to_string()));
    let count = batch.rows.len() + usize::from(batch.note.is_some());
    if count > 0 {
        let mut data = Vec::with_capacity(batch.rows.iter().map(|(_, l)| l.len() + 160).sum::<usize>() + 512);
        let mut prev: Option<[u8; 64]> = None;
        let raw = batch.rows.iter().map(|(_, line)| Some(*line)).chain(batch.note.as_ref().map(|_| None));
        for (((seq, e), raw), hash) in (last + 1..).zip(batch.entries()).zip(raw).zip(chain_hashes(&batch, last, &last_hash)) {
            let prev_hash = prev.as_ref().map_or(last_hash.as_bytes(), |p| p.as_slice());
            copy_row(&mut data, seq, &e, raw, prev_hash, &hash);
            prev = Some(hash);
        }
        let mut copy = tx.copy_in_raw(COPY).await?;
        copy.send(data).await?;
        let copied = copy.finish().await?;
        if copied != count as u64 {
            return Err(StoreError::Corrupt(format!("an audit batch of {count} rows inserted {copied}")));
        }
        let (blocks, actors) = crate::audit::block_summary((last + 1..).zip(batch.entries()).map(|(seq, e)| (seq, e.at, e.actor_name)));
        for (block, lo, hi) in blocks {
            sqlx::query(crate::audit::BLOCK_UPSERT_POSTGRES).bind(block).bind(lo).bind(hi).execute(&mut *tx).await?;
        }
        let (names, blocks): (Vec<&str>, Vec<i64>) = actors.into_iter().unzip();
        sqlx::query("INSERT INTO audit_block_actor (actor_name, block) SELECT * FROM UNNEST($1::text[], $2::bigint[]) ON CONFLICT DO NOTHING")
            .bind(names)
            .bind(blocks)
            .execute(&mut *tx)
            .await?;
    }
    let next = (from + end as u64) as i64;
    sqlx::query(PROGRESS_UPSERT).bind(name).bind(next).bind(batch.lines as i64).bind(clock.now_ms()).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Step { rows: batch.lines, done: from + end as u64 >= len, torn_bytes: 0 })
}

/// One row in COPY's text format: a spool line in the tab-separated form goes in as it was
/// written (its escapes are COPY's); an older JSON line, or the importer's own note, is
/// written in that form first.
fn copy_row(out: &mut Vec<u8>, seq: i64, e: &AuditEntryRef<'_>, raw: Option<&[u8]>, prev_hash: &[u8], hash: &[u8]) {
    let mut num = [0u8; 20];
    out.extend_from_slice(domain::audit::decimal(seq, &mut num));
    out.push(b'\t');
    match raw {
        Some(line) if line::is_tabbed(line) => out.extend_from_slice(line),
        _ => {
            line::write(out, e);
            out.pop(); // its newline
        }
    }
    // The previous hash may be the trail's stored head, so it is escaped like any text;
    // the row's own hash is hex digits this importer computed.
    out.push(b'\t');
    line::escape(out, prev_hash);
    out.push(b'\t');
    out.extend_from_slice(hash);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_carry_tabbed_lines_as_written_and_write_the_others() {
        let e = AuditEntryRef {
            at: 1_700_000_000_000,
            actor_kind: "user",
            actor_id: None,
            actor_name: "张三\tx",
            action: "a\\b",
            object_type: "line\nbreak\r",
            object_id: "7",
            outcome: "ok",
            detail: "理由：核实",
            operation_id: "",
            client_addr: "127.0.0.1",
        };
        let expected = "42\t1700000000000\tuser\t\\N\t张三\\tx\ta\\\\b\tline\\nbreak\\r\t7\tok\t理由：核实\t\t127.0.0.1\tp\th\n";
        let mut written = Vec::new();
        copy_row(&mut written, 42, &e, None, b"p", b"h");
        assert_eq!(String::from_utf8(written).expect("utf-8"), expected);
        let mut spool = Vec::new();
        line::write(&mut spool, &e);
        spool.pop();
        let mut carried = Vec::new();
        copy_row(&mut carried, 42, &e, Some(&spool), b"p", b"h");
        assert_eq!(String::from_utf8(carried).expect("utf-8"), expected);
    }
}
