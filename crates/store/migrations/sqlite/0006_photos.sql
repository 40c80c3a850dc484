-- Photos of incidents, stored once per content (SHA-256), metadata already removed (issue 4).
CREATE TABLE photos (
    hash       TEXT PRIMARY KEY,
    mime       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    bytes      BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE incident_photos (
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    hash        TEXT NOT NULL REFERENCES photos (hash),
    added_by    TEXT NOT NULL,
    added_at    INTEGER NOT NULL,
    PRIMARY KEY (incident_id, hash)
);
CREATE INDEX incident_photos_hash ON incident_photos (hash);
