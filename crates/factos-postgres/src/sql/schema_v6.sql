-- factos-postgres schema version 6: snapshots of long contexts
-- (factos::snapshot).

-- How many publishes added tags to history: a snapshot read under an older
-- generation folds the wrong events, so it is never returned or saved.
CREATE TABLE factos_tag_generation (
    generation bigint NOT NULL
);
INSERT INTO factos_tag_generation (generation) VALUES (0);

-- The newest state of one decider version on one scope; found only under
-- the exact decider, version and scope text, at the current generation.
CREATE TABLE factos_snapshots (
    decider      text   NOT NULL,
    version      bigint NOT NULL,
    -- SnapshotKey::digest: the index; `scope` is compared as well.
    scope_digest bigint NOT NULL,
    scope        text   NOT NULL,
    -- The last event folded into the state, and its revision.
    position     bigint NOT NULL,
    revision     bigint NOT NULL,
    generation   bigint NOT NULL,
    state        bytea  NOT NULL,
    PRIMARY KEY (decider, version, scope_digest)
);
