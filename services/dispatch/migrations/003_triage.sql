-- The command centre's triage queue (人工分拨). A case opened with needs_triage gets its row in
-- cases in state 'triage' (held by its district, no handler, no deadline running) and its row
-- here: what the command centre needs to decide its category. The row goes when it decides (in
-- the same transaction as the first dispatch and cases.reclassified; the timeline keeps the
-- decision), so dispatch keeps the masked text only while a person has to read it.
CREATE TABLE triage (
    case_id      text PRIMARY KEY REFERENCES cases (case_id),
    since        timestamptz NOT NULL,              -- entered the queue (dispatch's clock)
    reasons      text[] NOT NULL DEFAULT '{}',      -- low_confidence, moderation, ...
    confidence   double precision NOT NULL,         -- intake's for its guess (cases.category)
    suggestions  jsonb NOT NULL DEFAULT '[]',       -- [{"category", "probability"}], best first
    moderation   text[] NOT NULL DEFAULT '{}',      -- kinds of words flagged, never the words
    source       text NOT NULL,
    title        text,                              -- as intake published it (masked)
    description  text NOT NULL                      -- as intake published it (masked)
);
-- The queue, oldest first
CREATE INDEX triage_since ON triage (since, case_id);
