-- Snapshots read before tags were added to history fold the wrong events.
DELETE FROM factos_snapshots
