INSERT OR IGNORE INTO event_tags (tag, position, event_type)
SELECT s.tag, s.position, e.event_type
FROM factos_staged_tags AS s JOIN events AS e ON e.position = s.position
WHERE s.retag = ?1
