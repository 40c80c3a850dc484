-- The register (实有人口、房屋、单位), issue 5 point 1. Every row carries the area code
-- of the grid it lies in: scope is a code range on it, like the incidents' grid column.
-- A change to any of these tables writes its rows in register_history in the same
-- transaction (who, when, the field, old and new).

-- 实有房屋. The point is optional (an address-only house is placed later).
CREATE TABLE houses (
    id          BIGSERIAL PRIMARY KEY,
    address     TEXT NOT NULL,
    area_code   TEXT NOT NULL REFERENCES areas (code),
    lat         DOUBLE PRECISION,
    lon         DOUBLE PRECISION,
    area_m2     DOUBLE PRECISION,
    -- residential, shop, mixed, office, factory, other
    house_use   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL
);
CREATE INDEX houses_area ON houses (area_code, id);

-- 实有人口. The citizen ID number is stored in full (an exact lookup needs it) and only
-- ever leaves the store masked, unless a reason is given and audited.
CREATE TABLE persons (
    id          BIGSERIAL PRIMARY KEY,
    citizen_id  TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    -- From the number: 'male' or 'female', and the birth date as days since 1970-01-01.
    gender      TEXT NOT NULL,
    birth_day   BIGINT NOT NULL,
    phone       TEXT,
    ethnicity   TEXT,
    house_id    BIGINT REFERENCES houses (id),
    -- The grid of the current house (or the grid the person was recorded in).
    area_code   TEXT NOT NULL REFERENCES areas (code),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL
);
CREATE INDEX persons_area ON persons (area_code, id);
CREATE INDEX persons_house ON persons (house_id) WHERE house_id IS NOT NULL;

-- 户: one head, members with their relation (与户主关系). A person is in one household.
CREATE TABLE households (
    id          BIGSERIAL PRIMARY KEY,
    house_id    BIGINT REFERENCES houses (id),
    address     TEXT,
    area_code   TEXT NOT NULL REFERENCES areas (code),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL
);
CREATE INDEX households_area ON households (area_code, id);
CREATE TABLE household_members (
    household_id BIGINT NOT NULL REFERENCES households (id),
    person_id    BIGINT NOT NULL UNIQUE REFERENCES persons (id),
    relation     TEXT NOT NULL,
    PRIMARY KEY (household_id, person_id)
);
CREATE UNIQUE INDEX household_one_head ON household_members (household_id) WHERE relation = 'head';

-- 实有单位.
CREATE TABLE organisations (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT NOT NULL,
    credit_code  TEXT NOT NULL UNIQUE,
    address      TEXT,
    house_id     BIGINT REFERENCES houses (id),
    area_code    TEXT NOT NULL REFERENCES areas (code),
    legal_rep    TEXT,
    phone        TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    version      BIGINT NOT NULL
);
CREATE INDEX organisations_area ON organisations (area_code, id);

-- Person ↔ house: lives, owns, rents.
CREATE TABLE person_houses (
    person_id   BIGINT NOT NULL REFERENCES persons (id),
    house_id    BIGINT NOT NULL REFERENCES houses (id),
    kind        TEXT NOT NULL,
    since       BIGINT NOT NULL,
    PRIMARY KEY (person_id, house_id, kind)
);
CREATE INDEX person_houses_house ON person_houses (house_id);

-- Organisation ↔ house (the premises it uses).
CREATE TABLE organisation_houses (
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    house_id        BIGINT NOT NULL REFERENCES houses (id),
    since           BIGINT NOT NULL,
    PRIMARY KEY (organisation_id, house_id)
);
CREATE INDEX organisation_houses_house ON organisation_houses (house_id);

-- Every change to the register, field by field. A sensitive value (the citizen ID
-- number, a phone) is stored here masked: the history shows that it changed, never what
-- it was in full.
CREATE TABLE register_history (
    id           BIGSERIAL PRIMARY KEY,
    at           BIGINT NOT NULL,
    actor_kind   TEXT NOT NULL,
    actor_id     BIGINT,
    actor_name   TEXT NOT NULL,
    operation_id TEXT NOT NULL,
    action       TEXT NOT NULL,
    entity       TEXT NOT NULL,
    entity_id    BIGINT NOT NULL,
    field        TEXT NOT NULL,
    old_value    TEXT,
    new_value    TEXT
);
CREATE INDEX register_history_entity ON register_history (entity, entity_id, id);
-- The history is a record: rows are added, never changed or removed.
CREATE FUNCTION register_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'register_history is append-only';
END;
$$;
CREATE TRIGGER register_history_no_change BEFORE UPDATE OR DELETE ON register_history
    FOR EACH ROW EXECUTE FUNCTION register_history_append_only();
CREATE TRIGGER register_history_no_truncate BEFORE TRUNCATE ON register_history
    FOR EACH STATEMENT EXECUTE FUNCTION register_history_append_only();
