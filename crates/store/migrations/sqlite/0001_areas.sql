-- Areas and grids (区划与网格), their teams, and the change log that derived indexes follow.
CREATE TABLE areas (
    code       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    level      TEXT NOT NULL CHECK (level IN ('district', 'street', 'community', 'grid', 'dedicated')),
    parent     TEXT REFERENCES areas (code),
    kind       TEXT,
    -- GeoJSON Polygon or MultiPolygon, WGS-84 (EPSG:4326), longitude first.
    geometry   TEXT NOT NULL,
    min_lon    REAL NOT NULL,
    min_lat    REAL NOT NULL,
    max_lon    REAL NOT NULL,
    max_lat    REAL NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX areas_parent ON areas (parent);
CREATE INDEX areas_level ON areas (level, code);

CREATE TABLE team_members (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    area_code TEXT NOT NULL REFERENCES areas (code) ON DELETE CASCADE,
    role      TEXT NOT NULL,
    name      TEXT NOT NULL,
    position  INTEGER NOT NULL
);
CREATE INDEX team_members_area ON team_members (area_code, position);

-- Every change to data that a derived index holds. AUTOINCREMENT: a sequence number is
-- never reused, and SQLite's single writer commits them in order.
CREATE TABLE change_log (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    entity TEXT NOT NULL,
    key    TEXT NOT NULL,
    op     TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
    at     INTEGER NOT NULL
);
