-- Transactional outbox: events written in the same transaction as the state they describe,
-- relayed to Kafka in id order by shared.outbox.OutboxRelay, then deleted.
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    topic      text        NOT NULL,
    key        text,
    headers    jsonb       NOT NULL,
    payload    bytea,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Inbox: one row per input message applied (keyed by ce_id or the upstream idempotency key),
-- so redelivery after a crash or a rebalance changes nothing.
CREATE TABLE inbox (
    consumer     text        NOT NULL,
    message_key  text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_key)
);
CREATE INDEX inbox_processed_at ON inbox (processed_at);
