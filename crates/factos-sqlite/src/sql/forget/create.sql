INSERT INTO factos_subject_keys (subject, key) VALUES (?1, ?2) ON CONFLICT (subject) DO NOTHING
