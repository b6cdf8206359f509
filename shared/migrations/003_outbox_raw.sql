-- A dead letter's original key and headers, byte for byte (base64 in JSON: PostgreSQL text and
-- jsonb cannot hold NUL or invalid UTF-8); NULL for every other event (shared.record_bytes).
ALTER TABLE outbox ADD COLUMN raw jsonb;

-- Events the broker refused for good (too large for their topic, a record it calls invalid):
-- kept here with the broker's answer instead of blocking every later row (shared.outbox).
CREATE TABLE outbox_parked (
    id         bigint      PRIMARY KEY,
    topic      text        NOT NULL,
    key        text,
    headers    jsonb       NOT NULL,
    payload    bytea,
    raw        jsonb,
    created_at timestamptz NOT NULL,
    error      text        NOT NULL,
    parked_at  timestamptz NOT NULL DEFAULT now()
);
