-- A fresh key for each subject that has no row yet.
INSERT INTO factos_subject_keys (subject, key)
SELECT * FROM unnest($1::text[], $2::bytea[])
ON CONFLICT (subject) DO NOTHING
