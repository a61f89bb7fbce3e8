-- factos-postgres schema version 4: an append alone, in autocommit, and
-- cached plans for the append function.
--
-- The store sends an append whose checks the server can run as this one
-- statement, without BEGIN, SET LOCAL or COMMIT around it: one statement
-- parsed once per connection, one transaction, one round trip. What the
-- transaction used to set, the function carries:
-- * the schema: `search_path` as it was when the schema was migrated (the
--   store's schema), whatever the connection's own;
-- * the isolation level: factos_append's checks rely on READ COMMITTED
--   (each of its statements sees every writer that held a lock before it
--   got it); a connection whose default is stricter is refused with
--   SQLSTATE FX001 before anything runs, and the client falls back to a
--   transaction that sets READ COMMITTED itself.
-- The statement time limit is kept by the client, which cancels the
-- statement when it runs past it.
CREATE FUNCTION factos_append_alone(
    lock_keys int8[], lock_exclusive bool[], lock_mode int2, event_ids uuid[], target text,
    expect_kind int2, expect_head int8, condition jsonb, condition_after int8, checked_conflict int8,
    event_types text[], versions int8[], tag_lists text[], metadata text[], payloads bytea[],
    at timestamptz, batch int8,
    OUT appended bool, OUT ids_taken bool, OUT head int8, OUT conflict int8, OUT positions int8[]
)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $fn$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'factos_append_alone needs READ COMMITTED; this transaction runs at %',
            current_setting('transaction_isolation')
            USING ERRCODE = 'FX001';
    END IF;
    SELECT f.appended, f.ids_taken, f.head, f.conflict, f.positions
    INTO appended, ids_taken, head, conflict, positions
    FROM factos_append(lock_keys, lock_exclusive, lock_mode, event_ids, target, expect_kind, expect_head,
        condition, condition_after, checked_conflict, event_types, versions, tag_lists, metadata, payloads,
        at, batch) AS f;
END
$fn$;

-- factos_append's statements get cached generic plans again, made safe by
-- turning sequential scans off for them: version 3 planned every statement
-- anew on every call (plan_cache_mode = force_custom_plan) because a
-- generic plan made while the tables were small went sequential and made
-- appends slow down linearly with the log (measured here: 2,300 appends/s
-- over the first 5,000 events, 620/s by 20,000). Without sequential scans
-- the generic plans use the indexes whatever the table's size: 4,000
-- appends/s from the first event to the 40,000th, against 2,500/s when
-- every statement is planned on every call (durability off, 1-event
-- appends, one writer).
ALTER FUNCTION factos_append(int8[], bool[], int2, uuid[], text, int2, int8, jsonb, int8, int8, text[], int8[],
    text[], text[], bytea[], timestamptz, int8) RESET plan_cache_mode;
ALTER FUNCTION factos_append(int8[], bool[], int2, uuid[], text, int2, int8, jsonb, int8, int8, text[], int8[],
    text[], text[], bytea[], timestamptz, int8) SET enable_seqscan = off;
