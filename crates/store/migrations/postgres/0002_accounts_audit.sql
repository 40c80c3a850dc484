-- Accounts, sessions, API tokens, login throttling and the audit trail (issue 3).

-- A grid team member's work phone: sensitive, masked by default, read in full only with a reason.
ALTER TABLE team_members ADD COLUMN phone TEXT;

CREATE TABLE accounts (
    id                   BIGSERIAL PRIMARY KEY,
    username             TEXT NOT NULL UNIQUE,
    display_name         TEXT NOT NULL,
    role                 TEXT NOT NULL,
    area_code            TEXT NOT NULL REFERENCES areas (code),
    department           TEXT,
    active               BIGINT NOT NULL DEFAULT 1,
    password_hash        TEXT NOT NULL,
    must_change_password BIGINT NOT NULL DEFAULT 0,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX accounts_area ON accounts (area_code text_pattern_ops);

-- Web sessions. The cookie holds the id; only its SHA-256 is stored.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    account_id   BIGINT NOT NULL REFERENCES accounts (id),
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ended_at     BIGINT,
    client_addr  TEXT NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);

-- Bearer tokens for API clients. Shown once; only the SHA-256 is stored.
CREATE TABLE api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    account_id   BIGINT NOT NULL REFERENCES accounts (id),
    token_hash   TEXT NOT NULL UNIQUE,
    label        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
CREATE INDEX api_tokens_account ON api_tokens (account_id);

-- Failed logins by the name tried (whether or not an account has it), for throttling.
CREATE TABLE login_failures (
    id       BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL,
    at       BIGINT NOT NULL
);
CREATE INDEX login_failures_user ON login_failures (username, at);

-- The audit trail: append-only, hash-chained. `seq` is assigned by the writer, which holds
-- the write lock, so that the chain can cover it.
CREATE TABLE audit_log (
    seq          BIGINT PRIMARY KEY,
    at           BIGINT NOT NULL,
    actor_kind   TEXT NOT NULL,
    actor_id     BIGINT,
    actor_name   TEXT NOT NULL,
    action       TEXT NOT NULL,
    object_type  TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    detail       TEXT NOT NULL,
    operation_id TEXT NOT NULL,
    client_addr  TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor_name, at);

-- Nobody changes the trail: not the application's role (it loses the privileges), and not
-- a superuser either (the triggers fire for every role).
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
DO $$
BEGIN
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM %I', current_user);
    EXECUTE 'REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC';
END;
$$;
