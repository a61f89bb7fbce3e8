-- Keeps a snapshot if it was read under the current tag generation and no
-- later one is kept under its key (a row of an older generation, or of
-- another scope with the same digest, is replaced).
INSERT INTO factos_snapshots AS kept (decider, version, scope_digest, scope, position, revision, generation, state)
SELECT $1, $2, $3, $4, $5, $6, $7, $8
WHERE $7 = (SELECT generation FROM factos_tag_generation)
ON CONFLICT (decider, version, scope_digest) DO UPDATE SET
    scope = excluded.scope,
    position = excluded.position,
    revision = excluded.revision,
    generation = excluded.generation,
    state = excluded.state
WHERE excluded.position >= kept.position
    OR excluded.generation <> kept.generation
    OR excluded.scope <> kept.scope
