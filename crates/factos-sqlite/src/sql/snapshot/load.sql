-- The snapshot under a key, if its tag generation is the current one.
SELECT position, revision, state
FROM factos_snapshots
WHERE decider = ?1 AND version = ?2 AND scope_digest = ?3 AND scope = ?4 AND generation = ?5
