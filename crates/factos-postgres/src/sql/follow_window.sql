-- The next window of at most $3 events after the cursor ($1, $2) in
-- (tx, position) order, among transactions older than every transaction
-- still running. The horizon is computed in this statement's own snapshot,
-- the one its rows come from: every transaction below it has ended, and
-- every later insert gets a transaction id at or above it, so nothing can
-- appear below the window's end later.
SELECT tx::text::int8, position
FROM events
WHERE (tx, position) > ($1::text::xid8, $2)
  AND tx < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY tx, position
LIMIT $3
