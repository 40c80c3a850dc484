-- The in-app inbox and the time-limit watcher (issue 4).

-- What needs someone's action. Addressed to a role within an area (every account of that
-- role whose area contains it), or to a department.
CREATE TABLE notifications (
    id          BIGSERIAL PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    kind        TEXT NOT NULL,
    role        TEXT NOT NULL,
    area_code   TEXT,
    department  TEXT,
    message     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX notifications_role ON notifications (role, id);

CREATE TABLE notification_reads (
    notification_id BIGINT NOT NULL REFERENCES notifications (id),
    account_id      BIGINT NOT NULL REFERENCES accounts (id),
    read_at         BIGINT NOT NULL,
    PRIMARY KEY (notification_id, account_id)
);

-- One row per step that ran past its limit: the watcher acts on each exactly once, across
-- restarts and across server processes (the key refuses a second row).
CREATE TABLE overdue_steps (
    incident_id     BIGINT NOT NULL REFERENCES incidents (id),
    step            TEXT NOT NULL,
    step_started_at BIGINT NOT NULL,
    marked_at       BIGINT NOT NULL,
    PRIMARY KEY (incident_id, step, step_started_at)
);
