-- factos-postgres schema version 1.

-- Positions are taken from this sequence by writers that hold the lock keys
-- their events touch (see the crate docs), never by a column default.
CREATE SEQUENCE events_position_seq;

CREATE TABLE events (
    position    bigint      PRIMARY KEY,
    event_id    uuid        NOT NULL UNIQUE,
    stream      text        NOT NULL,
    revision    bigint      NOT NULL,
    event_type  text        NOT NULL,
    version     bigint      NOT NULL,
    tags        text[]      NOT NULL,
    metadata    jsonb       NOT NULL,
    data        bytea       NOT NULL,
    recorded_at timestamptz NOT NULL,
    -- AppendRequest::fingerprint of the batch, to recognise re-sends.
    fingerprint bigint      NOT NULL,
    UNIQUE (stream, revision)
);

-- Type-only query items: a range scan per type.
CREATE INDEX events_by_type ON events (event_type, position);

-- One row per (tag, event): tag query items are index range scans here,
-- with the type available without visiting the event.
CREATE TABLE event_tags (
    tag        text   NOT NULL,
    position   bigint NOT NULL,
    event_type text   NOT NULL,
    PRIMARY KEY (tag, position) INCLUDE (event_type)
);

-- Lock rows for LockMode::RowLocks (for transaction-mode poolers): a fixed
-- set, so taking a lock never inserts (an insert would hold its new row
-- until commit, outside the sorted lock order).
CREATE TABLE factos_locks (
    key bigint PRIMARY KEY
);
INSERT INTO factos_locks (key) SELECT generate_series(0, 4095);
