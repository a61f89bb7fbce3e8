-- Takes transaction-scoped advisory locks in array order, each exclusive or
-- shared as its flag says.
SELECT CASE WHEN exclusive THEN pg_advisory_xact_lock(key) ELSE pg_advisory_xact_lock_shared(key) END
FROM unnest($1::int8[], $2::bool[]) WITH ORDINALITY AS l(key, exclusive, n)
ORDER BY n
