-- Version 3: tags added to history (factos::retag). Events are never
-- rewritten: an added tag has a row here and one in `event_tags`, and reads
-- report an event's tags as its own plus these.
CREATE TABLE factos_added_tags (
    position INTEGER NOT NULL REFERENCES events (position),
    tag      TEXT    NOT NULL,
    -- The retag that added it.
    retag    TEXT    NOT NULL,
    PRIMARY KEY (position, tag)
) WITHOUT ROWID;

-- Tags a retag computed and has not published yet: invisible to queries.
CREATE TABLE factos_staged_tags (
    retag    TEXT    NOT NULL,
    position INTEGER NOT NULL REFERENCES events (position),
    tag      TEXT    NOT NULL,
    PRIMARY KEY (retag, position, tag)
) WITHOUT ROWID;

-- How many publishes added tags. A decision reads it before its context
-- and its append fails if it changed since.
CREATE TABLE factos_tag_generation (
    generation INTEGER NOT NULL
);
INSERT INTO factos_tag_generation (generation) VALUES (0);
