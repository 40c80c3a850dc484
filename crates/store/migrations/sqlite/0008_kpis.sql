-- Key figures (issue 4, point 10): daily sums of each incident's counters
-- (domain::kpi::Counters), kept in the transaction of every change to an incident and
-- rebuilt from the incidents when empty (store::kpis). Derived data: `civicgrid kpi
-- rebuild` recomputes it from the base tables at any time.
--
-- One row per (depth, department, area, report day): `area` is the first `depth` digits
-- (6 district, 9 street, 12 community, 15 grid) of where the incident happened (its grid,
-- or its owning area while it has none); `department` is where it is dispatched ('' none)
-- or '*' for all departments together. `day` is the Shanghai report day, in days since
-- 1970-01-01.
CREATE TABLE kpi_daily (
    depth          INTEGER NOT NULL,
    department     TEXT NOT NULL,
    area           TEXT NOT NULL,
    day            INTEGER NOT NULL,
    reported       INTEGER NOT NULL DEFAULT 0,
    filed          INTEGER NOT NULL DEFAULT 0,
    closed         INTEGER NOT NULL DEFAULT 0,
    closed_on_time INTEGER NOT NULL DEFAULT 0,
    late           INTEGER NOT NULL DEFAULT 0,
    returns        INTEGER NOT NULL DEFAULT 0,
    returned       INTEGER NOT NULL DEFAULT 0,
    reworks        INTEGER NOT NULL DEFAULT 0,
    reworked       INTEGER NOT NULL DEFAULT 0,
    handle_ms      INTEGER NOT NULL DEFAULT 0,
    rated          INTEGER NOT NULL DEFAULT 0,
    rating_sum     INTEGER NOT NULL DEFAULT 0,
    satisfied      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (depth, department, area, day)
);

-- The deadline of the timed step a transition ended (NULL: no timed step ended, or the
-- transition predates this column), so that "verified on time" is what the clock said
-- then, whatever the calendar says later.
ALTER TABLE incident_transitions ADD COLUMN step_due_at INTEGER;
-- Per-person figures read verifications by action.
CREATE INDEX incident_transitions_action ON incident_transitions (action, incident_id);
-- Per-person figures and open-overdue counts read incidents by report time.
CREATE INDEX incidents_created ON incidents (created_at);
-- Open steps past their deadline that the watcher has not marked late yet.
CREATE INDEX incidents_due_unmarked ON incidents (due_at) WHERE late = 0 AND due_at IS NOT NULL;
