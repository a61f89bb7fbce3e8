-- The current tag generation, and the snapshot under a key if it was read
-- under that generation: always one row.
SELECT g.generation, s.position, s.revision, s.state
FROM factos_tag_generation AS g
LEFT JOIN factos_snapshots AS s
    ON s.decider = $1 AND s.version = $2 AND s.scope_digest = $3 AND s.scope = $4 AND s.generation = g.generation
