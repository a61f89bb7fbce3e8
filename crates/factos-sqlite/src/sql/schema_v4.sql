-- Version 4: snapshots of long contexts (factos::snapshot). A row is the
-- newest state of one decider version on one scope; it is found only under
-- the exact decider, version and scope text, and only while the tag
-- generation it was read under is current.
CREATE TABLE factos_snapshots (
    decider      TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    -- SnapshotKey::digest: the index; `scope` is compared as well.
    scope_digest INTEGER NOT NULL,
    scope        TEXT    NOT NULL,
    -- The last event folded into the state, and its revision.
    position     INTEGER NOT NULL,
    revision     INTEGER NOT NULL,
    -- The tag generation the state was read under.
    generation   INTEGER NOT NULL,
    state        BLOB    NOT NULL,
    PRIMARY KEY (decider, version, scope_digest)
);
