//! civicgrid's storage. One query code path serves SQLite (the default, one file) and
//! PostgreSQL (for scale), through sqlx's runtime-checked queries on the `Any` driver; the
//! few differences sit behind [`Dialect`]. Migrations per backend run at start-up.
//!
//! The database is the source of truth. Derived in-memory indexes (the point → grid
//! R-tree, [`index::GridFollower`]) are rebuilt from it and kept current from the change
//! log ([`changes`]), so several server processes can share one PostgreSQL.

pub mod areas;
pub mod audit;
mod audit_spool;
pub mod auth;
pub mod catalogue;
pub mod collection;
pub mod changes;
pub mod db;
pub mod history;
pub mod incidents;
pub mod kpis;
pub mod population;
pub mod register;
pub mod search;
pub mod register_import;
pub mod sheet;
pub mod index;
mod intake;
pub mod scoped;
pub mod timing;
mod migrations;
pub mod notifications;
pub mod photos;
#[cfg(feature = "testing")]
pub mod testing;

pub use areas::{AreaFilter, AreaRow, ImportReport};
pub use db::{DEFAULT_URL, Db, Dialect, dialect_of, redact_url};

use domain::geometry::ImportProblem;

/// What can go wrong in the store. `code()` is stable, for problem+json and the CLI.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unknown database URL scheme in {0:?}: use sqlite://PATH or postgres://…")]
    UnknownScheme(String),
    #[error("bad database URL {0}")]
    BadUrl(String),
    #[error("cannot reach the database at {0}")]
    Unreachable(String),
    #[error("the database schema is at version {found}, newer than this civicgrid knows ({known}); upgrade civicgrid")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("migration {version} ({name}) failed: {message}")]
    Migration { version: i64, name: &'static str, message: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("the import has {} problem(s); nothing was imported", .0.len())]
    Import(Vec<ImportProblem>),
    #[error("the store already holds {0} areas; the demo needs an empty store (use another --db)")]
    NotEmpty(i64),
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the audit importer's own SQLite connection (`audit_spool/sqlite.rs`).
    #[error("database error: {0}")]
    Sqlite(String),
}

impl StoreError {
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::UnknownScheme(_) => "unknown_db_scheme",
            StoreError::BadUrl(_) => "bad_db_url",
            StoreError::Unreachable(_) => "db_unreachable",
            StoreError::SchemaTooNew { .. } => "schema_too_new",
            StoreError::Migration { .. } => "migration_failed",
            StoreError::NotFound(_) => "not_found",
            StoreError::Import(_) => "import_rejected",
            StoreError::NotEmpty(_) => "store_not_empty",
            StoreError::Invalid { code, .. } | StoreError::Conflict { code, .. } => code,
            StoreError::Corrupt(_) => "corrupt_data",
            StoreError::Database(_) | StoreError::Sqlite(_) => "database_error",
        }
    }
}
