-- factos-postgres schema version 3: the append as one server-side function,
-- so that an append is one round trip.
--
-- The client computes the locks exactly as for its own statements (the
-- same keys, folded and sorted the same way) and passes them in the order
-- to take them; the function takes them in that order before it checks
-- anything or takes a position, then checks and inserts. It is VOLATILE, so
-- every statement in it runs with a fresh READ COMMITTED snapshot: the
-- checks see every writer that held a lock before this function got it.
--
-- A condition whose query carries SQL predicates is checked by the client,
-- which takes the same locks first and passes no locks, no condition and
-- what it found.
--
-- It never raises for a refusal: it returns what it found (taken ids, the
-- stream's head, the first event matching the condition after its
-- position) and inserts only when nothing stands in the way; the client
-- turns what it found into the contract's typed errors.
CREATE FUNCTION factos_append(
    lock_keys      int8[],       -- in the order to take them
    lock_exclusive bool[],
    lock_mode      int2,         -- 0 advisory locks, 1 lock rows, 2 table lock
    event_ids      uuid[],
    target         text,         -- the stream
    expect_kind    int2,         -- 0 any, 1 no stream, 2 stream exists, 3 exactly expect_head
    expect_head    int8,
    condition      jsonb,        -- NULL, or the query: [{"types": [...], "tags": [...]}, ...]
    condition_after int8,        -- the condition's position (0: from the start)
    checked_conflict int8,       -- what the client found, for a condition it checked itself
    event_types    text[],
    versions       int8[],
    tag_lists      text[],       -- each event's tags joined by U+001F
    metadata       text[],
    payloads       bytea[],
    at             timestamptz,
    batch          int8,         -- the request's fingerprint
    OUT appended   bool,
    OUT ids_taken  bool,
    OUT head       int8,
    OUT conflict   int8,
    OUT positions  int8[]
)
LANGUAGE plpgsql VOLATILE
-- Plan every statement for the values at hand. A cached generic plan is
-- made once per connection, typically while the tables are small, where a
-- sequential scan wins; it would stay while the log grows (an append that
-- slows down with the size of the log).
SET plan_cache_mode = force_custom_plan
AS $fn$
DECLARE
    item         jsonb;
    item_types   text[];
    item_tags    text[];
    found        int8;
    expected     bool;
BEGIN
    appended := false;
    conflict := checked_conflict;
    IF lock_mode = 0 THEN
        PERFORM CASE WHEN x THEN pg_advisory_xact_lock(k) ELSE pg_advisory_xact_lock_shared(k) END
        FROM unnest(lock_keys, lock_exclusive) WITH ORDINALITY AS l(k, x, n)
        ORDER BY n;
    ELSIF lock_mode = 1 THEN
        FOR i IN 1 .. coalesce(cardinality(lock_keys), 0) LOOP
            IF lock_exclusive[i] THEN
                PERFORM 1 FROM factos_locks WHERE key = lock_keys[i] FOR UPDATE;
            ELSE
                PERFORM 1 FROM factos_locks WHERE key = lock_keys[i] FOR SHARE;
            END IF;
        END LOOP;
    ELSE
        LOCK TABLE events IN EXCLUSIVE MODE;
    END IF;

    ids_taken := EXISTS (SELECT 1 FROM events WHERE event_id = ANY(event_ids));
    head := (SELECT max(revision) FROM events WHERE stream = target);

    IF condition IS NOT NULL THEN
        FOR item IN SELECT value FROM jsonb_array_elements(condition) LOOP
            item_types := ARRAY(SELECT jsonb_array_elements_text(item -> 'types'));
            item_tags := ARRAY(SELECT jsonb_array_elements_text(item -> 'tags'));
            IF cardinality(item_tags) = 0 AND cardinality(item_types) = 0 THEN
                found := (SELECT e.position FROM events e WHERE e.position > condition_after
                          ORDER BY e.position LIMIT 1);
            ELSIF cardinality(item_tags) = 0 THEN
                found := (SELECT min(e.position) FROM events e
                          WHERE e.event_type = ANY(item_types) AND e.position > condition_after);
            ELSE
                -- Tags are AND-combined: scan the first tag's rows, check
                -- the others on the event.
                found := (SELECT min(t.position) FROM event_tags t
                          WHERE t.tag = item_tags[1] AND t.position > condition_after
                            AND (cardinality(item_types) = 0 OR t.event_type = ANY(item_types))
                            AND (cardinality(item_tags) = 1 OR EXISTS (
                                SELECT 1 FROM events e WHERE e.position = t.position AND e.tags @> item_tags)));
            END IF;
            conflict := least(conflict, found);
        END LOOP;
    END IF;

    expected := CASE expect_kind
        WHEN 0 THEN true
        WHEN 1 THEN head IS NULL
        WHEN 2 THEN head IS NOT NULL
        ELSE head IS NOT DISTINCT FROM expect_head
    END;
    IF ids_taken OR conflict IS NOT NULL OR NOT expected THEN
        RETURN;
    END IF;

    positions := ARRAY(SELECT nextval('events_position_seq') AS p
                       FROM generate_series(1, cardinality(event_ids)) ORDER BY p);
    WITH inserted AS (
        INSERT INTO events (position, event_id, stream, revision, event_type, version, tags, metadata, data,
                            recorded_at, fingerprint)
        SELECT p, id, target, coalesce(head, -1) + n, t, v, string_to_array(g, E'\x1f'), m::jsonb, d, at, batch
        FROM unnest(positions, event_ids, event_types, versions, tag_lists, metadata, payloads)
            WITH ORDINALITY AS e(p, id, t, v, g, m, d, n)
        RETURNING position, event_type, tags
    )
    INSERT INTO event_tags (tag, position, event_type)
    SELECT tag, inserted.position, inserted.event_type FROM inserted, unnest(inserted.tags) AS tag;
    appended := true;
END
$fn$;
