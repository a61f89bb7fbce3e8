-- factos-d1 schema version 1: the SQLite backend's, with the fingerprint as
-- text (D1 carries numbers as JavaScript doubles, which cannot hold 64 bits).
CREATE TABLE IF NOT EXISTS events (
    position    INTEGER PRIMARY KEY,
    event_id    BLOB    NOT NULL UNIQUE,
    stream      TEXT    NOT NULL,
    revision    INTEGER NOT NULL,
    event_type  TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    tags        TEXT    NOT NULL,
    metadata    TEXT    NOT NULL,
    data        BLOB    NOT NULL,
    recorded_at INTEGER NOT NULL,
    fingerprint TEXT    NOT NULL,
    UNIQUE (stream, revision)
);
CREATE INDEX IF NOT EXISTS events_by_type ON events (event_type, position);
CREATE TABLE IF NOT EXISTS event_tags (
    tag        TEXT    NOT NULL,
    position   INTEGER NOT NULL REFERENCES events (position),
    event_type TEXT    NOT NULL,
    PRIMARY KEY (tag, position)
) WITHOUT ROWID;
