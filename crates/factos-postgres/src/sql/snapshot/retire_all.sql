-- Tags were added to history: a new generation, and the snapshots read
-- under the old one (they fold the wrong events) are dropped.
UPDATE factos_tag_generation SET generation = generation + 1;
DELETE FROM factos_snapshots;
