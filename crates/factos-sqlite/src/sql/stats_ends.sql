SELECT (SELECT position FROM events ORDER BY position LIMIT 1),
       (SELECT recorded_at FROM events ORDER BY position LIMIT 1),
       (SELECT position FROM events ORDER BY position DESC LIMIT 1),
       (SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1)
