-- factos-postgres schema version 7: subjects' data keys for
-- crypto-shredding (factos::forget). A forgotten subject keeps its row
-- without a key, so none is created again.
CREATE TABLE factos_subject_keys (
    subject      text PRIMARY KEY,
    key          bytea,
    forgotten_at timestamptz
);
