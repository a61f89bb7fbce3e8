SELECT key, forgotten_at IS NOT NULL FROM factos_subject_keys WHERE subject = ?1
