-- The key is destroyed and the subject marked forgotten (after
-- had_key.sql locked the row).
INSERT INTO factos_subject_keys (subject, key, forgotten_at) VALUES ($1, NULL, now())
ON CONFLICT (subject) DO UPDATE SET key = NULL, forgotten_at = coalesce(factos_subject_keys.forgotten_at, now())
