-- Version 2: the read side. Checkpoints of projections and effect runners
-- (a cursor per name), and effects that kept failing, set aside.
CREATE TABLE factos_checkpoints (
    name       TEXT PRIMARY KEY,
    cursor     TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE factos_parked_effects (
    runner       TEXT NOT NULL,
    event_id     BLOB NOT NULL,
    effect_index INTEGER NOT NULL,
    position     INTEGER NOT NULL,
    attempts     INTEGER NOT NULL,
    error        TEXT NOT NULL,
    parked_at    INTEGER NOT NULL,
    PRIMARY KEY (runner, event_id, effect_index)
);
