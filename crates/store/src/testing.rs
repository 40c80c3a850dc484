//! Test helpers: a fresh store on each backend. Each PostgreSQL test gets a database of
//! its own, created from `CIVICGRID_TEST_POSTGRES`, so tests run in parallel.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use domain::clock::Clock;

use crate::db::{Db, Dialect};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The PostgreSQL server for tests. Unset is an error, so that a missing server never
/// passes as a green run; `CIVICGRID_TEST_POSTGRES=skip` skips PostgreSQL on purpose.
pub fn postgres_url() -> Option<String> {
    match std::env::var("CIVICGRID_TEST_POSTGRES") {
        Ok(v) if v == "skip" => None,
        Ok(v) if !v.is_empty() => Some(v),
        _ => panic!(
            "CIVICGRID_TEST_POSTGRES is not set: point it at a PostgreSQL server \
             (postgres://postgres@127.0.0.1:5432/test), or set it to `skip`"
        ),
    }
}

fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// A URL for a fresh, empty store of the given backend (None: PostgreSQL is skipped).
pub async fn fresh_url(dialect: Dialect) -> Option<String> {
    match dialect {
        Dialect::Sqlite => {
            let dir = std::env::temp_dir().join("civicgrid-tests");
            std::fs::create_dir_all(&dir).expect("temp dir");
            Some(format!("sqlite://{}", dir.join(format!("{}.db", unique("t"))).display()))
        }
        Dialect::Postgres => {
            let base = postgres_url()?;
            let name = unique("civicgrid_t");
            sqlx::any::install_default_drivers();
            let admin = sqlx::AnyPool::connect(&base).await.expect("connect to CIVICGRID_TEST_POSTGRES");
            drop_stale_databases(&admin).await;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .expect("create test database");
            admin.close().await;
            let (root, _) = base.rsplit_once('/').expect("postgres URL has a database name");
            Some(format!("{root}/{name}"))
        }
    }
}

/// A fresh, migrated store, or None when PostgreSQL is skipped.
pub async fn fresh(dialect: Dialect) -> Option<Db> {
    let url = fresh_url(dialect).await?;
    Some(Db::open(&url).await.expect("open fresh store"))
}

/// A fresh store on a clock the test controls.
pub async fn fresh_with_clock(dialect: Dialect, clock: Arc<dyn Clock>) -> Option<Db> {
    let url = fresh_url(dialect).await?;
    Some(Db::open_with_clock(&url, clock).await.expect("open fresh store"))
}

/// Run each named `async fn(Dialect)` as two tests, `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::Dialect::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$name($crate::Dialect::Postgres).await
            }
        }
    )*};
}

/// Both backends, for tests that must hold on each.
pub const BACKENDS: [Dialect; 2] = [Dialect::Sqlite, Dialect::Postgres];

/// Drop test databases left by test processes that have ended (their pid is in the name),
/// so repeated runs do not fill the disk.
async fn drop_stale_databases(admin: &sqlx::AnyPool) {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| async {
        use sqlx::Row;
        let Ok(rows) = sqlx::query("SELECT datname FROM pg_database WHERE datname LIKE 'civicgrid_t_%'")
            .fetch_all(admin)
            .await
        else {
            return;
        };
        for r in rows {
            let Ok(name) = r.try_get::<String, _>(0) else { continue };
            let pid = name.trim_start_matches("civicgrid_t_").split('_').next().unwrap_or("");
            let alive = !pid.is_empty() && std::path::Path::new(&format!("/proc/{pid}")).exists();
            if !alive && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(admin)
                    .await;
            }
        }
    })
    .await;
}

impl Db {
    /// Audit rows matching a query, read directly (tests check what was recorded).
    pub async fn audit_rows_for_tests(&self, q: &crate::audit::AuditQuery) -> Result<Vec<crate::audit::AuditRow>, crate::StoreError> {
        self.search_audit(q).await
    }
}

impl Db {
    /// Try to change every audit row, as an administrator with database access might.
    pub async fn try_update_audit_for_tests(&self) -> Result<u64, crate::StoreError> {
        self.flush_audit().await?;
        Ok(sqlx::query("UPDATE audit_log SET detail = 'rewritten'").execute(&self.pool).await?.rows_affected())
    }

    /// Try to delete every audit row.
    pub async fn try_delete_audit_for_tests(&self) -> Result<u64, crate::StoreError> {
        self.flush_audit().await?;
        Ok(sqlx::query("DELETE FROM audit_log").execute(&self.pool).await?.rows_affected())
    }

    /// Close audit spool files for writing at `bytes` instead of 64 MB.
    pub fn set_audit_spool_rotation_for_tests(&self, bytes: u64) {
        self.audit_spool.rotate_bytes.store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// The audit spool's progress rows: each file's name and the rows imported from it.
    pub async fn audit_spool_progress_for_tests(&self) -> Result<Vec<(String, i64)>, crate::StoreError> {
        let rows = sqlx::query("SELECT file, imported_rows FROM audit_spool ORDER BY file").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((sqlx::Row::try_get::<String, _>(r, 0)?, sqlx::Row::try_get::<i64, _>(r, 1)?))).collect()
    }

    /// Rename the trail away (`hide = true`) or back, so that imports fail in between.
    pub async fn hide_audit_log_for_tests(&self, hide: bool) -> Result<(), crate::StoreError> {
        let sql = if hide { "ALTER TABLE audit_log RENAME TO audit_log_hidden" } else { "ALTER TABLE audit_log_hidden RENAME TO audit_log" };
        sqlx::raw_sql(sql).execute(&self.pool).await?;
        Ok(())
    }

    /// Drop one actor's entry for one block from the trail's search index (what a bug, or
    /// someone hiding their rows from searches, would leave).
    pub async fn drop_audit_index_entry_for_tests(&self, actor: &str, block: i64) -> Result<u64, crate::StoreError> {
        self.flush_audit().await?;
        Ok(sqlx::query("DELETE FROM audit_block_actor WHERE actor_name = $1 AND block = $2").bind(actor).bind(block).execute(&self.pool).await?.rows_affected())
    }

    /// Edit one audit row the way an intruder would: around the append-only triggers.
    pub async fn tamper_audit_for_tests(&self, seq: i64, detail: &str) -> Result<(), crate::StoreError> {
        self.flush_audit().await?;
        let mut tx = self.pool.begin().await?;
        match self.dialect {
            Dialect::Sqlite => {
                sqlx::raw_sql("DROP TRIGGER audit_log_no_update").execute(&mut *tx).await?;
            }
            Dialect::Postgres => {
                sqlx::raw_sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change").execute(&mut *tx).await?;
            }
        }
        sqlx::query("UPDATE audit_log SET detail = $1 WHERE seq = $2").bind(detail).bind(seq).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Db {
    /// Put an incident in a grid (what an operator's placing of an address-only report does).
    pub async fn place_incident_for_tests(&self, id: i64, grid: &str) -> Result<(), crate::StoreError> {
        let mut tx = self.write_tx().await?;
        let before = crate::kpis::read_in(&mut tx, id).await?;
        sqlx::query("UPDATE incidents SET grid = $1, area_code = $1, level = 'grid' WHERE id = $2").bind(grid).bind(id).execute(&mut *tx).await?;
        if let Some(b) = &before {
            crate::kpis::track(&mut tx, Some(b), id).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Db {
    /// Try to rewrite and to delete the register's history, as someone with database access
    /// might; answers how many rows each changed (the triggers should refuse both).
    pub async fn try_rewrite_register_history_for_tests(&self) -> (Result<u64, crate::StoreError>, Result<u64, crate::StoreError>) {
        let update = sqlx::query("UPDATE register_history SET new_value = 'rewritten'").execute(&self.pool).await;
        let delete = sqlx::query("DELETE FROM register_history").execute(&self.pool).await;
        (update.map(|r| r.rows_affected()).map_err(Into::into), delete.map(|r| r.rows_affected()).map_err(Into::into))
    }
}
