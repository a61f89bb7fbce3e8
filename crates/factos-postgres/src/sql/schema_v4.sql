-- factos-postgres schema version 4: an append alone, in autocommit.
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
