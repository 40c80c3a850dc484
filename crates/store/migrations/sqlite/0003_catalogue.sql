-- The incident catalogue and the work calendar (issue 4).

-- Professional departments (专业部门) that incidents are dispatched to.
CREATE TABLE departments (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

-- Two-level categories: C.. 部件 (components), E.. 事件 (events). Limits are working time,
-- written "4h" (hours) or "3d" (days); second-level categories only.
CREATE TABLE categories (
    code           TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('component', 'event')),
    parent         TEXT REFERENCES categories (code),
    department     TEXT REFERENCES departments (code),
    file_limit     TEXT,
    dispatch_limit TEXT,
    handle_limit   TEXT,
    verify_limit   TEXT,
    on_spot        INTEGER NOT NULL DEFAULT 0
);

-- Days that differ from the weekly pattern: public holidays and make-up workdays (调休).
-- day: days since 1970-01-01.
CREATE TABLE calendar_days (
    day  INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('holiday', 'workday')),
    name TEXT NOT NULL
);
