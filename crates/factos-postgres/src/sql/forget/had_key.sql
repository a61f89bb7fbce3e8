-- Whether a subject has a key, locking its row until the forget commits.
SELECT key IS NOT NULL FROM factos_subject_keys WHERE subject = $1 FOR UPDATE
