-- Dispatch's view of every case: where it is, who has it, and its deadlines.
CREATE TABLE cases (
    case_id         text PRIMARY KEY,
    category        text NOT NULL,
    district        text,
    street          text,
    community       text,
    grid            text,
    building        text,
    urgent          boolean NOT NULL DEFAULT false,
    households      int,
    supporters      int NOT NULL DEFAULT 1,
    start_tier      text NOT NULL,
    tier            text NOT NULL,
    tier_reasons    text[] NOT NULL DEFAULT '{}',
    unit            text NOT NULL,
    handler_id      text,
    state           text NOT NULL,
    attempt         int NOT NULL DEFAULT 1,
    reopen_count    int NOT NULL DEFAULT 0,
    supervised      boolean NOT NULL DEFAULT false,
    dispatched_at   timestamptz NOT NULL,
    respond_by      timestamptz,
    resolve_by      timestamptz,
    accepted_at     timestamptz,
    resolved_at     timestamptz,
    paused_until    timestamptz,
    excluded_units  text[] NOT NULL DEFAULT '{}',
    opened_at       timestamptz NOT NULL
);
CREATE INDEX cases_handler_open ON cases (handler_id) WHERE state NOT IN ('resolved', 'closed');
CREATE INDEX cases_respond_due ON cases (respond_by) WHERE state = 'dispatched';
CREATE INDEX cases_resolve_due ON cases (resolve_by) WHERE state IN ('dispatched', 'accepted');

-- Every state change, in order: what `wangge case show` prints.
CREATE TABLE timeline (
    id          bigserial PRIMARY KEY,
    case_id     text NOT NULL,
    at          timestamptz NOT NULL,
    event       text NOT NULL,
    from_state  text,
    to_state    text,
    tier        text,
    unit        text,
    handler_id  text,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX timeline_case ON timeline (case_id, id);
