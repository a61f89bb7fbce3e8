-- factos-postgres schema version 8: the parked effects' cursors (where a
-- runner finds the event again) and operators' retry requests. Effects
-- parked before this version get their event's (tx, position) cursor; in
-- row-lock mode cursors compare by position alone, so it serves there too.
ALTER TABLE factos_parked_effects
    ADD COLUMN cursor text,
    ADD COLUMN retry_requested_at timestamptz;
UPDATE factos_parked_effects AS p
SET cursor = COALESCE((SELECT e.tx::text FROM events AS e WHERE e.position = p.position), '0') || ':' || p.position;
ALTER TABLE factos_parked_effects ALTER COLUMN cursor SET NOT NULL;
