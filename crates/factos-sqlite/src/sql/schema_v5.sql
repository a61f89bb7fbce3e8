-- Version 5: subjects' data keys for crypto-shredding (factos::forget). A
-- forgotten subject keeps its row without a key, so none is created again.
CREATE TABLE factos_subject_keys (
    subject      TEXT PRIMARY KEY,
    key          BLOB,
    forgotten_at TEXT
);
