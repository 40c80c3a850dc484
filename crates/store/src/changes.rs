//! The change log: one row per change to data that a derived index holds, with a
//! monotonic sequence number. A follower remembers the last number it applied and asks
//! for what came after; several server processes can follow one PostgreSQL.

use sqlx::{Any, Row, Transaction};

use crate::db::Db;
use crate::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Upsert,
    Delete,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Upsert => "upsert",
            Op::Delete => "delete",
        }
    }
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    pub entity: String,
    pub key: String,
    pub op: Op,
    pub at: i64,
}

impl Db {
    /// A write transaction whose change-log appends commit in sequence order: SQLite takes
    /// its write lock at BEGIN (IMMEDIATE, so a read-then-write never fails to upgrade),
    /// PostgreSQL a transaction-level advisory lock.
    ///
    /// Audit rows this store has spooled are imported first, so that the trail lists what
    /// happened in the order it happened (a refused import before the accepted retry).
    pub(crate) async fn write_tx(&self) -> Result<Transaction<'static, Any>, StoreError> {
        self.audit_spool.flush().await?;
        crate::db::begin_write(&self.pool, self.dialect).await
    }

    /// Changes after `after`, oldest first, at most `limit`.
    pub async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query("SELECT seq, entity, key, op, at FROM change_log WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let op: String = r.try_get("op")?;
                Ok(Change {
                    seq: r.try_get("seq")?,
                    entity: r.try_get("entity")?,
                    key: r.try_get("key")?,
                    op: if op == "delete" { Op::Delete } else { Op::Upsert },
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    /// The newest sequence number, 0 for an empty log.
    pub async fn last_change_seq(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM change_log").fetch_one(&self.pool).await?;
        Ok(row.try_get(0)?)
    }
}

/// Append a change inside the writer's transaction (see [`Db::write_tx`]).
pub(crate) async fn append(
    db: &Db,
    tx: &mut Transaction<'static, Any>,
    entity: &str,
    key: &str,
    op: Op,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO change_log (entity, key, op, at) VALUES ($1, $2, $3, $4)")
        .bind(entity)
        .bind(key)
        .bind(op.as_str())
        .bind(db.now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
