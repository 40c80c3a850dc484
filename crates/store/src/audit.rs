//! The audit trail: append-only and hash-chained. A change and its audit row are written
//! in one transaction; reads worth auditing (sensitive values, denied attempts, logins)
//! write their row to the audit spool before the answer leaves (see `audit_spool.rs`).

use domain::audit::{AuditEntry, GENESIS};
use domain::{Credential, Principal};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::db::Db;
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

const COLUMNS: &str = "seq, at, actor_kind, actor_id, actor_name, action, object_type, object_id, outcome, detail, operation_id, client_addr, prev_hash, hash";

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
    append_at(tx, e).await
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

async fn append_at(tx: &mut Transaction<'static, Any>, e: AuditEntry) -> Result<i64, StoreError> {
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

    /// Walk the whole trail and check its chain.
    pub async fn verify_audit(&self) -> Result<ChainCheck, StoreError> {
        self.flush_audit().await?;
        let mut prev = GENESIS.to_string();
        let mut expected_seq = 1;
        let mut after = 0i64;
        loop {
            let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT 5000");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after).fetch_all(&self.pool).await?;
            if rows.is_empty() {
                return Ok(ChainCheck::Intact { rows: expected_seq - 1 });
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
                prev = row.hash.clone();
                expected_seq += 1;
                after = row.seq;
            }
        }
    }

    /// Search the trail, newest first. Only auditors reach this (through their handle).
    pub(crate) async fn search_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        self.flush_audit().await?;
        let mut clauses: Vec<String> = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        let mut ints: Vec<i64> = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        for (col, v) in [("actor_name", &q.actor), ("action", &q.action), ("outcome", &q.outcome), ("object_id", &q.object_id)] {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                clauses.push(format!("{col} = ${}", next()));
                texts.push(v.clone());
            }
        }
        for (op, v) in [("at >=", q.from_ms), ("at <", q.to_ms), ("seq <", q.before_seq)] {
            if let Some(v) = v {
                clauses.push(format!("{op} ${}", next()));
                ints.push(v);
            }
        }
        let filter = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
        let sql = format!("SELECT {COLUMNS} FROM audit_log{filter} ORDER BY seq DESC LIMIT {}", q.limit.clamp(1, 1000));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for t in texts {
            query = query.bind(t);
        }
        for i in ints {
            query = query.bind(i);
        }
        query.fetch_all(&self.pool).await?.iter().map(audit_row).collect()
    }
}
