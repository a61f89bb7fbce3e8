INSERT INTO factos_subject_keys (subject, key, forgotten_at)
VALUES (?1, NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
