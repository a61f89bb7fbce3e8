-- The age of the oldest running transaction that holds a transaction id:
-- the one that holds followers' horizon back.
SELECT extract(epoch FROM clock_timestamp() - xact_start)::float8
FROM pg_stat_activity
WHERE backend_xid IS NOT NULL AND xact_start IS NOT NULL
ORDER BY age(backend_xid) DESC
LIMIT 1
