//! The audit trail: append-only and hash-chained. A change and its audit row are written
//! in one transaction; reads worth auditing (sensitive values, denied attempts, logins)
//! write their row to the audit spool before the answer leaves (see `audit_spool.rs`).

use domain::audit::{AuditEntry, GENESIS};
use domain::{Credential, Principal};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::db::{Db, Dialect};
use crate::StoreError;

/// Who is acting and from where, for the rows their actions leave.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub kind: String,
    pub id: Option<i64>,
    pub name: String,
    pub operation_id: String,
    pub client_addr: String,
}

impl Actor {
    /// A signed-in account.
    pub fn of(p: &Principal, operation_id: &str, client_addr: &str) -> Actor {
        Actor {
            kind: match p.credential {
                Credential::Session(_) => "user",
                Credential::Token(_) => "token",
            }
            .into(),
            id: Some(p.account_id),
            name: p.username.clone(),
            operation_id: operation_id.into(),
            client_addr: client_addr.into(),
        }
    }

    /// The command line (an operator on the server).
    pub fn cli(command: &str) -> Actor {
        let who = ["USER", "LOGNAME"].iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty())).unwrap_or_else(|| "local".into());
        Actor { kind: "system".into(), id: None, name: format!("cli:{who}"), operation_id: command.into(), client_addr: "local".into() }
    }

    /// Someone not signed in (a login attempt names who they claim to be).
    pub fn anonymous(claimed: &str, operation_id: &str, client_addr: &str) -> Actor {
        Actor {
            kind: "anonymous".into(),
            id: None,
            name: claimed.into(),
            operation_id: operation_id.into(),
            client_addr: client_addr.into(),
        }
    }

    /// An entry by this actor.
    pub fn entry(&self, action: &str, object_type: &str, object_id: &str, outcome: &str, detail: &str) -> AuditEntry {
        AuditEntry {
            at: 0,
            actor_kind: self.kind.clone(),
            actor_id: self.id,
            actor_name: self.name.clone(),
            action: action.into(),
            object_type: object_type.into(),
            object_id: object_id.into(),
            outcome: outcome.into(),
            detail: detail.into(),
            operation_id: self.operation_id.clone(),
            client_addr: self.client_addr.clone(),
        }
    }
}

/// One row of the trail as stored: the entry, its place in the chain and its hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

/// The trail's columns, as read from `audit_log a`.
const COLUMNS: &str = "a.seq, a.at, a.actor_kind, a.actor_id, a.actor_name, a.action, a.object_type, a.object_id, a.outcome, a.detail, a.operation_id, a.client_addr, a.prev_hash, a.hash";

/// Rows per block of the trail's search index (migration 0015 uses the same number).
pub(crate) const BLOCK_ROWS: i64 = 1024;

fn audit_row(r: &AnyRow) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        seq: r.try_get("seq")?,
        entry: AuditEntry {
            at: r.try_get("at")?,
            actor_kind: r.try_get("actor_kind")?,
            actor_id: r.try_get("actor_id")?,
            actor_name: r.try_get("actor_name")?,
            action: r.try_get("action")?,
            object_type: r.try_get("object_type")?,
            object_id: r.try_get("object_id")?,
            outcome: r.try_get("outcome")?,
            detail: r.try_get("detail")?,
            operation_id: r.try_get("operation_id")?,
            client_addr: r.try_get("client_addr")?,
        },
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

/// Append a row inside a write transaction (see `Db::write_tx`, which serialises writers
/// so that each row chains to the one before it).
pub(crate) async fn append(db: &Db, tx: &mut Transaction<'static, Any>, mut e: AuditEntry) -> Result<i64, StoreError> {
    e.at = db.now_ms();
    if let Some(storable) = e.as_ref().to_storable() {
        e = storable;
    }
    let seq = append_at(tx, &e).await?;
    index_blocks(tx, db.dialect, [(seq, e.at, e.actor_name.as_str())]).await?;
    Ok(seq)
}

/// Blocks with their earliest and latest time, and (actor, block) pairs.
pub(crate) type BlockSummary<'a> = (Vec<(i64, i64, i64)>, std::collections::HashSet<(&'a str, i64)>);

/// What a batch of rows (`seq`, `at`, actor) adds to the search index: each block's
/// earliest and latest time, and the (actor, block) pairs, each once.
pub(crate) fn block_summary<'a>(rows: impl IntoIterator<Item = (i64, i64, &'a str)>) -> BlockSummary<'a> {
    let mut blocks: Vec<(i64, i64, i64)> = Vec::new();
    let mut actors = std::collections::HashSet::new();
    for (seq, at, actor) in rows {
        let block = seq / BLOCK_ROWS;
        match blocks.last_mut() {
            Some((b, lo, hi)) if *b == block => {
                *lo = (*lo).min(at);
                *hi = (*hi).max(at);
            }
            _ => blocks.push((block, at, at)),
        }
        actors.insert((actor, block));
    }
    (blocks, actors)
}

/// Widen one block's time range (SQLite; the audit importer's own connections use these too).
pub(crate) const BLOCK_UPSERT_SQLITE: &str = "INSERT INTO audit_block (block, min_at, max_at) VALUES ($1, $2, $3) ON CONFLICT (block) DO UPDATE \
     SET min_at = min(audit_block.min_at, excluded.min_at), max_at = max(audit_block.max_at, excluded.max_at)";

/// The same on PostgreSQL.
pub(crate) const BLOCK_UPSERT_POSTGRES: &str = "INSERT INTO audit_block (block, min_at, max_at) VALUES ($1, $2, $3) ON CONFLICT (block) DO UPDATE \
     SET min_at = least(audit_block.min_at, excluded.min_at), max_at = greatest(audit_block.max_at, excluded.max_at)";

/// Keep the trail's search index covering rows just inserted in `tx` (each given as its
/// `seq`, `at` and actor name, in `seq` order): for every block they fall in, widen its
/// time range and list their actors. A batch of any size costs a statement per block and
/// one for the actors, not an index entry per row.
pub(crate) async fn index_blocks<'a>(tx: &mut Transaction<'static, Any>, dialect: Dialect, rows: impl IntoIterator<Item = (i64, i64, &'a str)>) -> Result<(), StoreError> {
    let (blocks, actors) = block_summary(rows);
    let upsert = match dialect {
        Dialect::Sqlite => BLOCK_UPSERT_SQLITE,
        Dialect::Postgres => BLOCK_UPSERT_POSTGRES,
    };
    for (block, lo, hi) in blocks {
        sqlx::query(upsert).bind(block).bind(lo).bind(hi).execute(&mut **tx).await?;
    }
    if actors.is_empty() {
        return Ok(());
    }
    let pairs = serde_json::to_string(&actors).map_err(|e| StoreError::Corrupt(format!("audit index: {e}")))?;
    let insert = match dialect {
        Dialect::Sqlite => {
            "INSERT INTO audit_block_actor (actor_name, block) SELECT j.value ->> 0, j.value ->> 1 FROM json_each($1) AS j WHERE true \
             ON CONFLICT DO NOTHING"
        }
        Dialect::Postgres => {
            "INSERT INTO audit_block_actor (actor_name, block) SELECT j ->> 0, (j ->> 1)::bigint FROM jsonb_array_elements($1::jsonb) AS j \
             ON CONFLICT DO NOTHING"
        }
    };
    sqlx::query(insert).bind(pairs).execute(&mut **tx).await?;
    Ok(())
}

/// The trail's last row (its `seq` and `hash`), or 0 and the genesis hash when it is empty;
/// read inside a write transaction, so nobody appends in between.
pub(crate) async fn chain_head(tx: &mut Transaction<'static, Any>) -> Result<(i64, String), StoreError> {
    let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetch_optional(&mut **tx).await?;
    Ok(match last {
        Some(r) => (r.try_get::<i64, _>("seq")?, r.try_get::<String, _>("hash")?),
        None => (0, GENESIS.to_string()),
    })
}

async fn append_at(tx: &mut Transaction<'static, Any>, e: &AuditEntry) -> Result<i64, StoreError> {
    let (last, prev) = chain_head(tx).await?;
    let seq = last + 1;
    let hash = e.chain_hash(seq, &prev);
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor_kind, actor_id, actor_name, action, object_type, object_id, outcome, detail, operation_id, client_addr, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(seq)
    .bind(e.at)
    .bind(&e.actor_kind)
    .bind(e.actor_id)
    .bind(&e.actor_name)
    .bind(&e.action)
    .bind(&e.object_type)
    .bind(&e.object_id)
    .bind(&e.outcome)
    .bind(&e.detail)
    .bind(&e.operation_id)
    .bind(&e.client_addr)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut **tx)
    .await?;
    Ok(seq)
}

/// A value a search binds.
enum Value<'a> {
    Text(&'a str),
    Int(i64),
}

/// A search's text filter, unless it is absent or empty.
fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|v| !v.is_empty())
}

/// Add `sql $n` to a search's clauses, `$n` being `v`'s place in `values` (the order they
/// are bound in).
fn clause<'a>(clauses: &mut Vec<String>, values: &mut Vec<Value<'a>>, sql: &str, v: Value<'a>) {
    values.push(v);
    clauses.push(format!("{sql} ${}", values.len()));
}

/// ` WHERE` and the clauses, or nothing when there are none.
fn where_all(clauses: &[String]) -> String {
    if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) }
}

/// Run a search with its values bound in order.
async fn fetch_rows(pool: &sqlx::AnyPool, sql: String, values: Vec<Value<'_>>) -> Result<Vec<AuditRow>, StoreError> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for v in values {
        query = match v {
            Value::Text(t) => query.bind(t.to_string()),
            Value::Int(i) => query.bind(i),
        };
    }
    query.fetch_all(pool).await?.iter().map(audit_row).collect()
}

/// What `civicgrid audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainCheck {
    /// Every row chains to the one before it.
    Intact { rows: i64 },
    /// The first row whose stored hashes do not match its contents or its predecessor.
    Broken { seq: i64, reason: String },
}

/// A search of the trail.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub object_id: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Only rows before this sequence number (a page's cursor, newest first).
    pub before_seq: Option<i64>,
    pub limit: i64,
}

impl Db {
    /// Write one audit row that is not part of a change's own transaction (a read, a
    /// denied attempt, a login). When this returns the row survives a crash of civicgrid;
    /// it reaches `audit_log` within milliseconds (see `audit_spool.rs`).
    pub async fn audit(&self, e: AuditEntry) -> Result<(), StoreError> {
        self.audit_spool.append(e.as_ref()).await
    }

    /// The same, for a row of `actor`'s, without building an [`AuditEntry`] first (reads
    /// are audited on every request, so this path counts).
    pub async fn audit_as(&self, actor: &Actor, action: &str, object_type: &str, object_id: &str, outcome: &str, detail: &str) -> Result<(), StoreError> {
        self.audit_spool.append(domain::audit::AuditEntryRef {
            at: 0,
            actor_kind: &actor.kind,
            actor_id: actor.id,
            actor_name: &actor.name,
            action,
            object_type,
            object_id,
            outcome,
            detail,
            operation_id: &actor.operation_id,
            client_addr: &actor.client_addr,
        })
        .await
    }

    /// The folder where this store's audit rows wait for import (see `audit_spool.rs`).
    pub fn audit_spool_dir(&self) -> &std::path::Path {
        self.audit_spool.dir()
    }

    /// Wait until every audit row this store has written is in `audit_log`.
    pub async fn flush_audit(&self) -> Result<(), StoreError> {
        self.audit_spool.flush().await
    }

    /// Import what is left of this store's audit spool and remove its files (before a
    /// command or the server ends; what is not imported is found again at the next start).
    pub async fn close_audit(&self) -> Result<(), StoreError> {
        self.audit_spool.close().await
    }

    /// Walk the whole trail and check its chain, and that the search index lists every row.
    pub async fn verify_audit(&self) -> Result<ChainCheck, StoreError> {
        self.flush_audit().await?;
        let mut prev = GENESIS.to_string();
        let mut expected_seq = 1;
        let mut after = 0i64;
        loop {
            let sql = format!("SELECT {COLUMNS} FROM audit_log a WHERE a.seq > $1 ORDER BY a.seq LIMIT 5000");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after).fetch_all(&self.pool).await?;
            if rows.is_empty() {
                return Ok(ChainCheck::Intact { rows: expected_seq - 1 });
            }
            // The search index of the blocks this page spans.
            let (first, last) = (rows[0].try_get::<i64, _>("seq")?, rows[rows.len() - 1].try_get::<i64, _>("seq")?);
            let blocks: std::collections::HashMap<i64, (i64, i64)> = sqlx::query("SELECT block, min_at, max_at FROM audit_block WHERE block >= $1 AND block <= $2")
                .bind(first / BLOCK_ROWS)
                .bind(last / BLOCK_ROWS)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get::<i64, _>(0)?, (r.try_get::<i64, _>(1)?, r.try_get::<i64, _>(2)?))))
                .collect::<Result<_, StoreError>>()?;
            let mut actors: std::collections::HashMap<i64, std::collections::HashSet<String>> = std::collections::HashMap::new();
            for r in sqlx::query("SELECT actor_name, block FROM audit_block_actor WHERE block >= $1 AND block <= $2")
                .bind(first / BLOCK_ROWS)
                .bind(last / BLOCK_ROWS)
                .fetch_all(&self.pool)
                .await?
            {
                actors.entry(r.try_get::<i64, _>(1)?).or_default().insert(r.try_get::<String, _>(0)?);
            }
            for r in &rows {
                let row = audit_row(r)?;
                if row.seq != expected_seq {
                    return Ok(ChainCheck::Broken {
                        seq: row.seq,
                        reason: format!("row {expected_seq} is missing (the next row is {})", row.seq),
                    });
                }
                if row.prev_hash != prev {
                    return Ok(ChainCheck::Broken { seq: row.seq, reason: "its prev_hash is not the hash of the row before".into() });
                }
                if row.entry.chain_hash(row.seq, &prev) != row.hash {
                    return Ok(ChainCheck::Broken { seq: row.seq, reason: "its contents do not match its hash".into() });
                }
                let block = row.seq / BLOCK_ROWS;
                let timed = blocks.get(&block).is_some_and(|(lo, hi)| (*lo..=*hi).contains(&row.entry.at));
                if !timed || !actors.get(&block).is_some_and(|names| names.contains(&row.entry.actor_name)) {
                    return Ok(ChainCheck::Broken { seq: row.seq, reason: "the search index does not cover it (a search by actor or time would miss it)".into() });
                }
                prev = row.hash.clone();
                expected_seq += 1;
                after = row.seq;
            }
        }
    }

    /// Search the trail, newest first. Only auditors reach this (through their handle).
    ///
    /// A search by actor or time reads the block index (migration 0015) for the blocks that
    /// can hold a match, newest first, and scans only those blocks' rows, so it stops as soon
    /// as a page is full. Other filters are checked row by row.
    pub(crate) async fn search_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        self.flush_audit().await?;
        let limit = q.limit.clamp(1, 1000);
        let mut values: Vec<Value<'_>> = Vec::new();
        // What a row must match.
        let mut rows: Vec<String> = Vec::new();
        let actor = nonempty(&q.actor);
        for (col, v) in [("a.actor_name =", actor), ("a.action =", nonempty(&q.action)), ("a.outcome =", nonempty(&q.outcome)), ("a.object_id =", nonempty(&q.object_id))] {
            if let Some(v) = v {
                clause(&mut rows, &mut values, col, Value::Text(v));
            }
        }
        for (op, v) in [("a.at >=", q.from_ms), ("a.at <", q.to_ms), ("a.seq <", q.before_seq)] {
            if let Some(v) = v {
                clause(&mut rows, &mut values, op, Value::Int(v));
            }
        }
        let timed = q.from_ms.is_some() || q.to_ms.is_some();
        if actor.is_none() && !timed {
            let sql = format!("SELECT {COLUMNS} FROM audit_log a{} ORDER BY a.seq DESC LIMIT {limit}", where_all(&rows));
            return fetch_rows(&self.pool, sql, values).await;
        }
        // The blocks that can hold a match: those listing the actor, those whose time range
        // meets the asked one, none after the page's cursor. They are read newest first, and
        // each block's rows newest first, which is the order asked for.
        let mut blocks: Vec<String> = Vec::new();
        let (by, mut from) = match actor {
            Some(v) => {
                clause(&mut blocks, &mut values, "b.actor_name =", Value::Text(v));
                ("b", format!("audit_block_actor b{}", if timed { " JOIN audit_block t ON t.block = b.block" } else { "" }))
            }
            None => ("t", "audit_block t".to_string()),
        };
        for (op, v) in [("t.max_at >=", q.from_ms), ("t.min_at <", q.to_ms)] {
            if let Some(v) = v {
                clause(&mut blocks, &mut values, op, Value::Int(v));
            }
        }
        if let Some(before) = q.before_seq {
            clause(&mut blocks, &mut values, &format!("{by}.block <="), Value::Int((before - 1).div_euclid(BLOCK_ROWS)));
        }
        let in_block = format!("a.seq >= {by}.block * {BLOCK_ROWS} AND a.seq < {by}.block * {BLOCK_ROWS} + {BLOCK_ROWS}");
        match self.dialect {
            // SQLite walks the blocks and, for each, the rows' primary key in range.
            Dialect::Sqlite => {
                from.push_str(&format!(" JOIN audit_log a ON {in_block}"));
                blocks.extend(rows);
            }
            // PostgreSQL cannot estimate a range that depends on the outer row and would
            // scan the whole trail instead; a lateral subquery makes it read block by block.
            Dialect::Postgres => {
                rows.insert(0, in_block);
                from.push_str(&format!(" CROSS JOIN LATERAL (SELECT {COLUMNS} FROM audit_log a{} ORDER BY a.seq DESC LIMIT {limit}) a", where_all(&rows)));
            }
        }
        let sql = format!("SELECT {COLUMNS} FROM {from}{} ORDER BY {by}.block DESC, a.seq DESC LIMIT {limit}", where_all(&blocks));
        fetch_rows(&self.pool, sql, values).await
    }
}
