-- factos-sqlite schema version 1.
--
-- `events` is append-only. `position` is the rowid: assigned by the writer
-- that holds the database's write lock, so positions are strictly increasing
-- in commit order and never reused.
CREATE TABLE events (
    position    INTEGER PRIMARY KEY,
    event_id    BLOB    NOT NULL UNIQUE,
    stream      TEXT    NOT NULL,
    revision    INTEGER NOT NULL,
    event_type  TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    -- The tags joined by U+001F; tags cannot contain control characters.
    tags        TEXT    NOT NULL,
    -- A JSON object of strings.
    metadata    TEXT    NOT NULL,
    data        BLOB    NOT NULL,
    -- Microseconds since the Unix epoch.
    recorded_at INTEGER NOT NULL,
    -- AppendRequest::fingerprint of the batch, to recognise re-sends.
    fingerprint INTEGER NOT NULL,
    UNIQUE (stream, revision)
);

-- Type-only query items: a range scan per type.
CREATE INDEX events_by_type ON events (event_type, position);

-- One row per (tag, event): tag query items are answered from this index,
-- never by matching text in `events`.
CREATE TABLE event_tags (
    tag        TEXT    NOT NULL,
    position   INTEGER NOT NULL REFERENCES events (position),
    event_type TEXT    NOT NULL,
    PRIMARY KEY (tag, position)
) WITHOUT ROWID;
