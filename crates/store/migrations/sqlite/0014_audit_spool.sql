-- How far each audit spool file has been imported into audit_log (see audit_spool.rs).
-- A read's audit row is appended to its process's spool file before the answer leaves;
-- the importer moves the rows into the trail in large batches and advances this row in the
-- same transaction, so a restart neither loses nor repeats a row.
CREATE TABLE audit_spool (
    file           TEXT PRIMARY KEY,
    imported_bytes BIGINT NOT NULL,
    imported_rows  BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
