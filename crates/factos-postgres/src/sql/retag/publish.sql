-- Staged tags the event carries neither as its own nor as added go into
-- `factos_added_tags` and the tag index; the staging is emptied. Run while
-- holding the key every reader and decider shares.
WITH staged AS (
    DELETE FROM factos_staged_tags WHERE retag = $1 RETURNING position, tag, retag
), added AS (
    INSERT INTO factos_added_tags (position, tag, retag)
    SELECT s.position, s.tag, s.retag
    FROM staged AS s JOIN events AS e ON e.position = s.position
    WHERE NOT (s.tag = ANY (e.tags))
    ON CONFLICT DO NOTHING
    RETURNING position, tag
), indexed AS (
    INSERT INTO event_tags (tag, position, event_type)
    SELECT a.tag, a.position, e.event_type FROM added AS a JOIN events AS e ON e.position = a.position
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM added
