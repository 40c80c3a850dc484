-- Door-to-door collection (全科数据采集, issue 5 point 2): tasks per basic grid, and the
-- visits grid workers make to the grid's houses while a task is open.

-- A collection task of one grid over a period of days (Shanghai calendar days, as days
-- since 1970-01-01, both ends included).
CREATE TABLE collection_tasks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    area_code     TEXT NOT NULL REFERENCES areas (code),
    title         TEXT NOT NULL,
    period_start  INTEGER NOT NULL,
    period_end    INTEGER NOT NULL,
    created_by_id INTEGER,
    created_by    TEXT NOT NULL,
    -- open, closed
    state         TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    CHECK (period_end >= period_start)
);
CREATE INDEX collection_tasks_area ON collection_tasks (area_code, id);

-- A visit to a house for a task: who, when, and what came of it.
CREATE TABLE collection_visits (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id     INTEGER NOT NULL REFERENCES collection_tasks (id),
    house_id    INTEGER NOT NULL REFERENCES houses (id),
    visited_at  INTEGER NOT NULL,
    actor_id    INTEGER,
    actor_name  TEXT NOT NULL,
    -- recorded, nobody_home, refused, vacant
    outcome     TEXT NOT NULL,
    note        TEXT
);
CREATE INDEX collection_visits_task ON collection_visits (task_id, house_id, id);
CREATE INDEX collection_visits_house ON collection_visits (house_id, id);

-- "People recorded" of a task counts the persons of its grid changed within its period:
-- a range read of this index instead of every person of the grid (PERFORMANCE.md).
CREATE INDEX persons_area_updated ON persons (area_code, updated_at);
