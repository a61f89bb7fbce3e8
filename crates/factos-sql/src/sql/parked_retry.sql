-- The parked effects' cursors (where a runner finds the event again) and
-- operators' retry requests. Every effect parked before this version was
-- parked on a backend whose cursors are `0:position`.
ALTER TABLE factos_parked_effects ADD COLUMN cursor TEXT NOT NULL DEFAULT '';
ALTER TABLE factos_parked_effects ADD COLUMN retry_requested_at INTEGER;
UPDATE factos_parked_effects SET cursor = '0:' || position
