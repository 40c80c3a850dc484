-- Areas and grids (区划与网格), their teams, and the change log that derived indexes follow.
CREATE TABLE areas (
    code       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    level      TEXT NOT NULL CHECK (level IN ('district', 'street', 'community', 'grid', 'dedicated')),
    parent     TEXT REFERENCES areas (code),
    kind       TEXT,
    -- GeoJSON Polygon or MultiPolygon, WGS-84 (EPSG:4326), longitude first.
    geometry   TEXT NOT NULL,
    min_lon    DOUBLE PRECISION NOT NULL,
    min_lat    DOUBLE PRECISION NOT NULL,
    max_lon    DOUBLE PRECISION NOT NULL,
    max_lat    DOUBLE PRECISION NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX areas_parent ON areas (parent);
CREATE INDEX areas_level ON areas (level, code);
-- Scope queries are code prefixes: `code LIKE '430503001%'`.
CREATE INDEX areas_code_prefix ON areas (code text_pattern_ops);

CREATE TABLE team_members (
    id        BIGSERIAL PRIMARY KEY,
    area_code TEXT NOT NULL REFERENCES areas (code) ON DELETE CASCADE,
    role      TEXT NOT NULL,
    name      TEXT NOT NULL,
    position  BIGINT NOT NULL
);
CREATE INDEX team_members_area ON team_members (area_code, position);

-- Every change to data that a derived index holds. Writers take a transaction-level
-- advisory lock before appending, so sequence order is commit order and a follower that
-- reads `seq > last` never skips a row that commits late.
CREATE TABLE change_log (
    seq    BIGSERIAL PRIMARY KEY,
    entity TEXT NOT NULL,
    key    TEXT NOT NULL,
    op     TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
    at     BIGINT NOT NULL
);
