//! Opening a store: the URL decides the backend, the PRAGMAs and pool are set, and the
//! backend's migrations run before anything else touches it.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use domain::clock::{Clock, SystemClock};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use crate::StoreError;
use crate::migrations;

/// The few places where SQLite and PostgreSQL differ (STYLE habit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}

/// The default store: one SQLite file under `./data/`.
pub const DEFAULT_URL: &str = "sqlite://data/civicgrid.db";

/// Which backend a URL names, or a clear refusal.
pub fn dialect_of(url: &str) -> Result<Dialect, StoreError> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    match scheme {
        "sqlite" => Ok(Dialect::Sqlite),
        "postgres" | "postgresql" => Ok(Dialect::Postgres),
        _ => Err(StoreError::UnknownScheme(redact_url(url))),
    }
}

/// A URL with its password replaced by `***`, for logs and `civicgrid config`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((a, h)) => (a, h),
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// The shared database handle: a pool, its dialect and the clock. Cheap to clone (one
/// `Arc`), as handlers do for each request.
#[derive(Clone)]
pub struct Db(Arc<DbInner>);

impl std::ops::Deref for Db {
    type Target = DbInner;
    fn deref(&self) -> &DbInner {
        &self.0
    }
}

/// What a [`Db`] holds.
#[doc(hidden)]
pub struct DbInner {
    pub(crate) pool: AnyPool,
    pub(crate) dialect: Dialect,
    pub(crate) clock: Arc<dyn Clock>,
    url: String,
    /// Whether successful reads of personal records leave an audit row (always, in
    /// production; off only to measure what the audit costs).
    audit_reads: Arc<std::sync::atomic::AtomicBool>,
    /// Audit rows written outside a change's own transaction (see `audit_spool.rs`).
    pub(crate) audit_spool: Arc<crate::audit_spool::AuditSpool>,
    /// Recently read tokens and accounts (see `auth.rs`).
    pub(crate) auth_cache: Arc<crate::auth::AuthCache>,
    /// The calendar and step limits (see `timing.rs`).
    pub(crate) timing_cache: Arc<crate::timing::TimingCache>,
    /// Group commit of new reports (see `intake.rs`).
    pub(crate) intake: crate::intake::IntakeSink,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("dialect", &self.dialect).field("url", &redact_url(&self.url)).finish()
    }
}

impl Db {
    /// Open (creating an SQLite file and its folder when needed) and migrate.
    pub async fn open(url: &str) -> Result<Db, StoreError> {
        Db::open_with_clock(url, Arc::new(SystemClock)).await
    }

    pub async fn open_with_clock(url: &str, clock: Arc<dyn Clock>) -> Result<Db, StoreError> {
        Db::open_with(url, clock, None).await
    }

    /// Open with the folder for the audit spool named (None: beside an SQLite file, or a
    /// folder under the system's temporary folder named after a PostgreSQL URL).
    pub async fn open_with(url: &str, clock: Arc<dyn Clock>, audit_spool: Option<std::path::PathBuf>) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = dialect_of(url)?;
        let mut url_owned = url.to_string();
        if dialect == Dialect::Sqlite {
            url_owned = prepare_sqlite_url(url)?;
        }
        let opts = AnyConnectOptions::from_str(&url_owned)
            .map_err(|e| StoreError::BadUrl(format!("{}: {e}", redact_url(url))))?;
        let connect = |max: u32| {
            let opts = opts.clone();
            async move {
                let pool_opts = AnyPoolOptions::new().max_connections(max).acquire_timeout(Duration::from_secs(10)).after_connect(
                    move |conn, _meta| {
                        Box::pin(async move {
                            if dialect == Dialect::Sqlite {
                                // WAL lets readers run beside the one writer; a busy writer is waited for.
                                conn.execute("PRAGMA journal_mode = WAL").await?;
                                conn.execute("PRAGMA foreign_keys = ON").await?;
                                conn.execute("PRAGMA busy_timeout = 10000").await?;
                                conn.execute("PRAGMA synchronous = FULL").await?;
                                // Statement journals (a multi-row INSERT inside a transaction) in memory.
                                conn.execute("PRAGMA temp_store = MEMORY").await?;
                                // A larger page cache per connection (32 MB; the default is
                                // 2 MB): the board's counts walk the open queue's pages. A
                                // memory map did as well for reads but cost intake an munmap
                                // and mmap each time the growing file was remapped.
                                conn.execute("PRAGMA cache_size = -32768").await?;
                                // Checkpoints run in the background (below), not inside
                                // whichever commit happens to cross the WAL's threshold.
                                conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                            }
                            Ok(())
                        })
                    },
                );
                tokio::time::timeout(Duration::from_secs(15), pool_opts.connect_with(opts))
                    .await
                    .map_err(|_| StoreError::Unreachable(format!("{}: timed out after 15 s", redact_url(url))))?
                    .map_err(|e| StoreError::Unreachable(format!("{}: {e}", redact_url(url))))
            }
        };
        // A commit is durable when it returns: acknowledged reports and every change (with
        // its audit row) survive a power cut, not only a crash. Intake group-commits to keep
        // this cheap.
        let pool = connect(if dialect == Dialect::Sqlite { 8 } else { 16 }).await?;
        migrations::run(&migrations::MigrationTarget { pool: &pool, dialect, clock: clock.as_ref() }).await?;
        let spool_dir = match audit_spool {
            Some(dir) => dir,
            None => default_spool_dir(dialect, &url_owned),
        };
        let sink = match dialect {
            Dialect::Sqlite => crate::audit_spool::Sink::sqlite(&sqlite_path(&url_owned))?,
            Dialect::Postgres => crate::audit_spool::Sink::postgres(&url_owned).await?,
        };
        let audit_spool = crate::audit_spool::AuditSpool::start(spool_dir, sink, clock.clone()).await?;
        if dialect == Dialect::Sqlite {
            spawn_checkpoints(pool.clone());
        }
        let db = Db(Arc::new(DbInner {
            pool,
            dialect,
            clock,
            url: url.to_string(),
            audit_reads: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            audit_spool,
            auth_cache: Arc::new(crate::auth::AuthCache::default()),
            timing_cache: Arc::new(crate::timing::TimingCache::default()),
            intake: crate::intake::IntakeSink::start(),
        }));
        Ok(db)
    }

    /// The URL this store was opened with (it may hold a password: see [`redact_url`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn audit_reads(&self) -> bool {
        self.audit_reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Turn the audit rows of successful personal-record reads off (benchmarks only) or on.
    pub fn set_audit_reads(&self, on: bool) {
        self.audit_reads.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Wait for in-flight work and close the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A cheap liveness probe of the backend.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Copy the write-ahead log back into the database file every second (a passive
/// checkpoint: it never blocks a writer), so commits do not pay for it. Ends when the pool
/// is closed.
fn spawn_checkpoints(pool: AnyPool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                break;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                if pool.is_closed() {
                    break;
                }
                tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
            }
        }
    });
}

/// Make sure the SQLite file's folder exists and the file will be created.
fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::BadUrl(format!(
            "{url}: civicgrid keeps its SQLite store in a file (sqlite://data/civicgrid.db)"
        )));
    }
    if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::BadUrl(format!("{url}: cannot create folder {}: {e}", dir.display())))?;
    }
    let mut q: Vec<&str> = query.split('&').filter(|s| !s.is_empty() && !s.starts_with("mode=")).collect();
    q.push("mode=rwc");
    Ok(format!("sqlite://{path}?{}", q.join("&")))
}

/// The file of an SQLite URL as `prepare_sqlite_url` left it.
fn sqlite_path(url: &str) -> std::path::PathBuf {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    std::path::PathBuf::from(rest.split_once('?').map_or(rest, |(p, _)| p))
}

/// Where audit rows wait for import when no folder is configured: beside an SQLite file
/// (`civicgrid.db.audit-spool/`); for PostgreSQL, a folder of the system's temporary folder
/// named after the database (`civicgrid serve` names `data/audit-spool` instead).
fn default_spool_dir(dialect: Dialect, url: &str) -> std::path::PathBuf {
    match dialect {
        Dialect::Sqlite => {
            let mut dir = sqlite_path(url).into_os_string();
            dir.push(".audit-spool");
            dir.into()
        }
        Dialect::Postgres => {
            let digest = domain::audit::secret_digest(&redact_url(url));
            std::env::temp_dir().join("civicgrid-audit-spool").join(&digest[..16])
        }
    }
}

/// The store's write lock on PostgreSQL: a transaction-scoped advisory lock (the audit
/// importer's own connection takes it too).
pub(crate) const WRITE_LOCK_POSTGRES: &str = "SELECT pg_advisory_xact_lock($1)";
pub(crate) const WRITE_LOCK_KEY: i64 = migrations::MIGRATION_LOCK + 1;

/// Begin a transaction that holds the store's write lock (see `Db::write_tx`).
pub(crate) async fn begin_write(pool: &AnyPool, dialect: Dialect) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
    match dialect {
        Dialect::Sqlite => Ok(pool.begin_with("BEGIN IMMEDIATE").await?),
        Dialect::Postgres => {
            let mut tx = pool.begin().await?;
            sqlx::query(WRITE_LOCK_POSTGRES).bind(WRITE_LOCK_KEY).execute(&mut *tx).await?;
            Ok(tx)
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_checked_and_secrets_redacted() {
        assert!(matches!(dialect_of("sqlite://data/x.db"), Ok(Dialect::Sqlite)));
        assert!(matches!(dialect_of("postgres://u@h/db"), Ok(Dialect::Postgres)));
        assert!(matches!(dialect_of("mysql://u:pw@h/db"), Err(StoreError::UnknownScheme(u)) if u == "mysql://u:***@h/db"));
        assert_eq!(redact_url("postgres://civic:s3cret@db:5432/x"), "postgres://civic:***@db:5432/x");
        assert_eq!(redact_url("postgres://civic@db/x"), "postgres://civic@db/x");
    }
}


