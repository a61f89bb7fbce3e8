-- The keys of the subjects in $1, in its order; NULLs for subjects without
-- a row.
SELECT k.key, k.forgotten_at IS NOT NULL, k.subject IS NOT NULL
FROM unnest($1::text[]) WITH ORDINALITY AS wanted (subject, n)
LEFT JOIN factos_subject_keys AS k ON k.subject = wanted.subject
ORDER BY wanted.n
