-- The cost of COPY for rows shaped like the audited GET's trail rows, 300,000 at a time
-- (docs/PERFORMANCE.md, "Tried and not kept"). Run as a superuser (server-side files):
--   psql -h 127.0.0.1 -U postgres -d test -f scripts/copy-shape.sql
-- Three parts, as run on 2026-11-29: text against binary COPY; the primary key against a
-- BRIN index and an unlogged table; hashes as text against bytea, and parsing alone.

-- Part 1: text against binary COPY format.
\set QUIET on
DROP TABLE IF EXISTS xsrc, xt, xb;
CREATE TABLE xsrc AS SELECT g AS seq, 1795969542597 + g AS at, 'token'::text AS actor_kind, 1::bigint AS actor_id, 'admin'::text AS actor_name, 'account.read'::text AS action, 'account'::text AS object_type, '5'::text AS object_id, 'ok'::text AS outcome, ''::text AS detail, '3494cef5-' || lpad(to_hex(g), 8, '0') AS operation_id, '127.0.0.1'::text AS client_addr, md5(g::text) || md5((g+1)::text) AS prev_hash, md5((g+2)::text) || md5((g+3)::text) AS hash FROM generate_series(1, 300000) g;
COPY xsrc TO '/tmp/x.txt';
COPY xsrc TO '/tmp/x.bin' (FORMAT binary);
CREATE TABLE xt (LIKE xsrc); ALTER TABLE xt ADD PRIMARY KEY (seq);
\timing on
\echo text
COPY xt FROM '/tmp/x.txt';
TRUNCATE xt; CHECKPOINT;
\echo binary
COPY xt FROM '/tmp/x.bin' (FORMAT binary);
TRUNCATE xt; CHECKPOINT;
\echo text
COPY xt FROM '/tmp/x.txt';
TRUNCATE xt; CHECKPOINT;
\echo binary
COPY xt FROM '/tmp/x.bin' (FORMAT binary);
\timing off
DROP TABLE xsrc, xt;

-- Part 2: the primary key, a BRIN index, an unlogged table.
DROP TABLE IF EXISTS xsrc, xt, xn, xu;
CREATE TABLE xsrc AS SELECT g::bigint AS seq, 1795969542597 + g AS at, 'token'::text AS actor_kind, 1::bigint AS actor_id, 'admin'::text AS actor_name, 'account.read'::text AS action, 'account'::text AS object_type, '5'::text AS object_id, 'ok'::text AS outcome, ''::text AS detail, '3494cef5-' || lpad(to_hex(g), 8, '0') AS operation_id, '127.0.0.1'::text AS client_addr, md5(g::text) || md5((g+1)::text) AS prev_hash, md5((g+2)::text) || md5((g+3)::text) AS hash FROM generate_series(1, 300000) g;
COPY xsrc TO '/tmp/x.txt';
CREATE TABLE xt (LIKE xsrc); ALTER TABLE xt ADD PRIMARY KEY (seq);
CREATE TABLE xn (LIKE xsrc); CREATE INDEX ON xn USING brin (seq);
CREATE UNLOGGED TABLE xu (LIKE xsrc); ALTER TABLE xu ADD PRIMARY KEY (seq);
CHECKPOINT;
\timing on
\echo pk
COPY xt FROM '/tmp/x.txt';
\echo brin
COPY xn FROM '/tmp/x.txt';
\echo unlogged
COPY xu FROM '/tmp/x.txt';
\timing off
TRUNCATE xt, xn, xu; CHECKPOINT;
\timing on
\echo pk
COPY xt FROM '/tmp/x.txt';
\echo brin
COPY xn FROM '/tmp/x.txt';
\echo unlogged
COPY xu FROM '/tmp/x.txt';
\timing off
DROP TABLE xsrc, xt, xn, xu;

-- Part 3: hashes as text and as bytea; parsing alone (WHERE false).
DROP TABLE IF EXISTS xsrc, xt, xb;
CREATE TABLE xsrc AS SELECT g::bigint AS seq, 1795969542597 + g AS at, 'token'::text AS actor_kind, 1::bigint AS actor_id, 'admin'::text AS actor_name, 'account.read'::text AS action, 'account'::text AS object_type, '5'::text AS object_id, 'ok'::text AS outcome, ''::text AS detail, '3494cef5-' || lpad(to_hex(g), 8, '0') AS operation_id, '127.0.0.1'::text AS client_addr, md5(g::text) || md5((g+1)::text) AS prev_hash, md5((g+2)::text) || md5((g+3)::text) AS hash FROM generate_series(1, 300000) g;
COPY xsrc TO '/tmp/x.txt';
COPY (SELECT seq, at, actor_kind, actor_id, actor_name, action, object_type, object_id, outcome, detail, operation_id, client_addr, decode(prev_hash,'hex'), decode(hash,'hex') FROM xsrc) TO '/tmp/xb.txt';
CREATE TABLE xt (LIKE xsrc); ALTER TABLE xt ADD PRIMARY KEY (seq);
CREATE TABLE xb (seq bigint primary key, at bigint, actor_kind text, actor_id bigint, actor_name text, action text, object_type text, object_id text, outcome text, detail text, operation_id text, client_addr text, prev_hash bytea, hash bytea);
CHECKPOINT;
\timing on
\echo text
COPY xt FROM '/tmp/x.txt';
\echo bytea
COPY xb FROM '/tmp/xb.txt';
\echo text
COPY xt FROM '/tmp/x.txt' WHERE false;
\timing off
TRUNCATE xt, xb; CHECKPOINT;
\timing on
\echo bytea
COPY xb FROM '/tmp/xb.txt';
\echo text
COPY xt FROM '/tmp/x.txt';
\timing off
TRUNCATE xt, xb; CHECKPOINT;
\timing on
\echo text
COPY xt FROM '/tmp/x.txt';
\echo bytea
COPY xb FROM '/tmp/xb.txt';
\timing off
TRUNCATE xt, xb; CHECKPOINT;
\timing on
\echo bytea
COPY xb FROM '/tmp/xb.txt';
\echo text
COPY xt FROM '/tmp/x.txt';
\timing off
DROP TABLE xsrc, xt, xb;
