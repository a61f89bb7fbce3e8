-- The last position of the next window of at most ?2 events after ?1, and
-- how many events it holds.
SELECT max(position) AS end, count(*) AS examined FROM (SELECT position FROM events WHERE position > ?1 ORDER BY position LIMIT ?2)
