-- factos-postgres schema version 2: the read side.

-- The id of the transaction that wrote each event, assigned by its insert
-- (the transaction's first write: lock keys are taken before it and do not
-- assign one). Followers read only events of transactions older than every
-- transaction still running, in (tx, position) order; see the crate docs.
-- Existing events all get the migrating transaction's id, which keeps them
-- in position order before every later event.
ALTER TABLE events ADD COLUMN tx xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX events_by_tx ON events (tx, position);

-- Checkpoints of projections and effect runners: a cursor per name.
CREATE TABLE factos_checkpoints (
    name       text        PRIMARY KEY,
    cursor     text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Effects that kept failing, set aside by their runner.
CREATE TABLE factos_parked_effects (
    runner       text        NOT NULL,
    event_id     uuid        NOT NULL,
    effect_index int8        NOT NULL,
    position     int8        NOT NULL,
    attempts     int8        NOT NULL,
    error        text        NOT NULL,
    parked_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (runner, event_id, effect_index)
);
