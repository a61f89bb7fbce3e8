SELECT (SELECT count(*) FROM events),
       (SELECT count(DISTINCT stream) FROM events),
       (SELECT position FROM events ORDER BY position LIMIT 1),
       (SELECT recorded_at FROM events ORDER BY position LIMIT 1),
       (SELECT position FROM events ORDER BY position DESC LIMIT 1),
       (SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1),
       pg_total_relation_size('events') + pg_total_relation_size('event_tags')
