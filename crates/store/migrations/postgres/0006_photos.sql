-- Photos of incidents, stored once per content (SHA-256), metadata already removed (issue 4).
CREATE TABLE photos (
    hash       TEXT PRIMARY KEY,
    mime       TEXT NOT NULL,
    size       BIGINT NOT NULL,
    bytes      BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE incident_photos (
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    hash        TEXT NOT NULL REFERENCES photos (hash),
    added_by    TEXT NOT NULL,
    added_at    BIGINT NOT NULL,
    PRIMARY KEY (incident_id, hash)
);
CREATE INDEX incident_photos_hash ON incident_photos (hash);
