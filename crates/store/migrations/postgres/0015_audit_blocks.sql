-- The trail's search index, kept per block of 1024 rows (block = seq / 1024, the constant
-- BLOCK_ROWS in audit.rs) instead of per row. Two B-tree indexes on every audit row were
-- about 60 % of SQLite's own work per imported row; a block row and an actor pair are
-- written once per import batch. A search reads the blocks that can hold a match and scans
-- only those seq ranges (see `Db::search_audit`). `audit verify` checks that these tables
-- cover every row of the trail, so a search cannot silently miss one.

-- For each block: the earliest and latest `at` of its rows (rows are in import order, and a
-- spool left by an ended process is imported late, so `at` is not monotonic in `seq`).
CREATE TABLE audit_block (
    block  BIGINT PRIMARY KEY,
    min_at BIGINT NOT NULL,
    max_at BIGINT NOT NULL
);
-- Which actors have rows in which blocks.
CREATE TABLE audit_block_actor (
    actor_name TEXT NOT NULL,
    block      BIGINT NOT NULL,
    PRIMARY KEY (actor_name, block)
);
-- `audit verify` walks the trail block by block.
CREATE INDEX audit_block_actor_block ON audit_block_actor (block);

INSERT INTO audit_block (block, min_at, max_at)
    SELECT seq / 1024, min(at), max(at) FROM audit_log GROUP BY seq / 1024;
INSERT INTO audit_block_actor (actor_name, block)
    SELECT DISTINCT actor_name, seq / 1024 FROM audit_log;

DROP INDEX audit_log_at;
DROP INDEX audit_log_actor;
