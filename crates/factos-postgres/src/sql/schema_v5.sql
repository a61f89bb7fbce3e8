-- factos-postgres schema version 5: tags added to history (factos::retag).
-- Events are never rewritten: an added tag has a row here and one in
-- `event_tags`, and reads report an event's tags as its own plus these.
CREATE TABLE factos_added_tags (
    position bigint NOT NULL REFERENCES events (position),
    tag      text   NOT NULL,
    -- The retag that added it.
    retag    text   NOT NULL,
    PRIMARY KEY (position, tag)
);

-- Tags a retag computed and has not published yet: invisible to queries.
CREATE TABLE factos_staged_tags (
    retag    text   NOT NULL,
    position bigint NOT NULL REFERENCES events (position),
    tag      text   NOT NULL,
    PRIMARY KEY (retag, position, tag)
);
