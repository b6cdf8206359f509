-- A dead letter's original key and headers, byte for byte (base64 in JSON: PostgreSQL text and
-- jsonb cannot hold NUL or invalid UTF-8); NULL for every other event (shared.record_bytes).
ALTER TABLE outbox ADD COLUMN raw jsonb;
