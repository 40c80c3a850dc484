-- Incidents and their closed loop (issue 4).

CREATE TABLE incidents (
    id                BIGSERIAL PRIMARY KEY,
    -- The resident's receipt code, for the public status page.
    receipt           TEXT NOT NULL UNIQUE,
    category          TEXT NOT NULL REFERENCES categories (code),
    description       TEXT NOT NULL,
    lat               DOUBLE PRECISION,
    lon               DOUBLE PRECISION,
    address           TEXT,
    -- The basic grid the point fell in; NULL until an operator places an address-only report.
    grid              TEXT REFERENCES areas (code),
    -- The area that owns it (the grid, or the level it was escalated to): scope follows it.
    area_code         TEXT NOT NULL REFERENCES areas (code),
    level             TEXT NOT NULL,
    source            TEXT NOT NULL,
    state             TEXT NOT NULL,
    -- Where it was dispatched: a department, or a grid (area).
    department        TEXT REFERENCES departments (code),
    assignee_area     TEXT REFERENCES areas (code),
    supervised        BIGINT NOT NULL DEFAULT 0,
    reopened          BIGINT NOT NULL DEFAULT 0,
    extension_pending BIGINT NOT NULL DEFAULT 0,
    on_spot_allowed   BIGINT NOT NULL DEFAULT 0,
    returns           BIGINT NOT NULL DEFAULT 0,
    reworks           BIGINT NOT NULL DEFAULT 0,
    rating            BIGINT,
    -- A duplicate points at the incident it was merged into; the survivor's duplicates
    -- are the incidents that point at it.
    merged_into       BIGINT REFERENCES incidents (id),
    reporter_account  BIGINT REFERENCES accounts (id),
    -- Sensitive: shown masked, never on the public page.
    reporter_phone    TEXT,
    version           BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    -- When the current step's time limit started to run.
    step_started_at   BIGINT NOT NULL
);
CREATE INDEX incidents_area ON incidents (area_code, id);
CREATE INDEX incidents_department ON incidents (department, id);
CREATE INDEX incidents_state ON incidents (state, id);
CREATE INDEX incidents_category ON incidents (category, created_at);
CREATE INDEX incidents_merged ON incidents (merged_into);

-- Every transition: who, when, from which state to which, and why.
CREATE TABLE incident_transitions (
    id          BIGSERIAL PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    action      TEXT NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor_id    BIGINT,
    actor_name  TEXT NOT NULL,
    note        TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX incident_transitions_incident ON incident_transitions (incident_id, id);

-- A retried create with the same Idempotency-Key returns the first incident.
CREATE TABLE idempotency_keys (
    account_id  BIGINT NOT NULL,
    key         TEXT NOT NULL,
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, key)
);
