//! Migrations, one list per backend, embedded in the binary and run at start-up.
//! Append-only: a released migration is never edited; a change is a new file.

use sqlx::Row;

use crate::db::Dialect;
use crate::StoreError;

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "areas",
        sqlite: include_str!("../migrations/sqlite/0001_areas.sql"),
        postgres: include_str!("../migrations/postgres/0001_areas.sql"),
    },
    Migration {
        version: 2,
        name: "accounts_audit",
        sqlite: include_str!("../migrations/sqlite/0002_accounts_audit.sql"),
        postgres: include_str!("../migrations/postgres/0002_accounts_audit.sql"),
    },
    Migration {
        version: 3,
        name: "catalogue",
        sqlite: include_str!("../migrations/sqlite/0003_catalogue.sql"),
        postgres: include_str!("../migrations/postgres/0003_catalogue.sql"),
    },
    Migration {
        version: 4,
        name: "incidents",
        sqlite: include_str!("../migrations/sqlite/0004_incidents.sql"),
        postgres: include_str!("../migrations/postgres/0004_incidents.sql"),
    },
    Migration {
        version: 5,
        name: "notifications",
        sqlite: include_str!("../migrations/sqlite/0005_notifications.sql"),
        postgres: include_str!("../migrations/postgres/0005_notifications.sql"),
    },
    Migration {
        version: 6,
        name: "photos",
        sqlite: include_str!("../migrations/sqlite/0006_photos.sql"),
        postgres: include_str!("../migrations/postgres/0006_photos.sql"),
    },
    Migration {
        version: 7,
        name: "step_clock",
        sqlite: include_str!("../migrations/sqlite/0007_step_clock.sql"),
        postgres: include_str!("../migrations/postgres/0007_step_clock.sql"),
    },
    Migration {
        version: 8,
        name: "kpis",
        sqlite: include_str!("../migrations/sqlite/0008_kpis.sql"),
        postgres: include_str!("../migrations/postgres/0008_kpis.sql"),
    },
    Migration {
        version: 9,
        name: "board_indexes",
        sqlite: include_str!("../migrations/sqlite/0009_board_indexes.sql"),
        postgres: include_str!("../migrations/postgres/0009_board_indexes.sql"),
    },
    Migration {
        version: 11,
        name: "register",
        sqlite: include_str!("../migrations/sqlite/0011_register.sql"),
        postgres: include_str!("../migrations/postgres/0011_register.sql"),
    },
    Migration {
        version: 12,
        name: "collection",
        sqlite: include_str!("../migrations/sqlite/0012_collection.sql"),
        postgres: include_str!("../migrations/postgres/0012_collection.sql"),
    },
    Migration {
        version: 13,
        name: "person_kind",
        sqlite: include_str!("../migrations/sqlite/0013_person_kind.sql"),
        postgres: include_str!("../migrations/postgres/0013_person_kind.sql"),
    },
    Migration {
        version: 14,
        name: "audit_spool",
        sqlite: include_str!("../migrations/sqlite/0014_audit_spool.sql"),
        postgres: include_str!("../migrations/postgres/0014_audit_spool.sql"),
    },
    Migration {
        version: 15,
        name: "audit_blocks",
        sqlite: include_str!("../migrations/sqlite/0015_audit_blocks.sql"),
        postgres: include_str!("../migrations/postgres/0015_audit_blocks.sql"),
    },
];

/// What migrations need of a store that is still being opened.
pub(crate) struct MigrationTarget<'a> {
    pub pool: &'a sqlx::AnyPool,
    pub dialect: Dialect,
    pub clock: &'a dyn domain::clock::Clock,
}

impl MigrationTarget<'_> {
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// Lock key for migrations and change-log appends on PostgreSQL.
pub(crate) const MIGRATION_LOCK: i64 = 0x6369_7669_636d;

pub(crate) async fn run(db: &MigrationTarget<'_>) -> Result<(), StoreError> {
    let mut tx = db.pool.begin().await?;
    if db.dialect == Dialect::Postgres {
        // Two servers starting at once: the second waits, then finds nothing to do.
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(MIGRATION_LOCK).execute(&mut *tx).await?;
    }
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()?;
    if let Some(&newest) = applied.last() {
        let known = MIGRATIONS.last().map_or(0, |m| m.version);
        if newest > known {
            return Err(StoreError::SchemaTooNew { found: newest, known });
        }
    }
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let sql = match db.dialect {
            Dialect::Sqlite => m.sqlite,
            Dialect::Postgres => m.postgres,
        };
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(|e| StoreError::Migration {
            version: m.version,
            name: m.name,
            message: e.to_string(),
        })?;
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(db.now_ms())
            .execute(&mut *tx)
            .await?;
        tracing::info!(version = m.version, name = m.name, backend = db.dialect.name(), "migration applied");
    }
    tx.commit().await?;
    Ok(())
}
