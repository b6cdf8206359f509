-- Dispatch's view of every case: where it is, who has it, and its deadlines.
-- Deadlines live here (durable timers): the sweepers find rows past respond_by / resolve_by /
-- paused_until through the partial indexes below, and move them past the deadline in the same
-- transaction as the events they publish.
CREATE TABLE cases (
    case_id            text PRIMARY KEY,
    category           text NOT NULL,
    district           text,
    street             text,
    community          text,
    grid               text,
    building           text,
    urgent             boolean NOT NULL DEFAULT false,
    households         int,
    supporters         int NOT NULL DEFAULT 1,
    start_tier         text NOT NULL,
    tier               text NOT NULL,
    tier_reasons       text[] NOT NULL DEFAULT '{}',
    respond_within_s   double precision,          -- a rule's shorter response time (unscaled)
    unit               text NOT NULL,
    handler_id         text,
    state              text NOT NULL,
    attempt            int NOT NULL DEFAULT 1,
    reopen_count       int NOT NULL DEFAULT 0,
    supervised         boolean NOT NULL DEFAULT false,   -- 督办
    supervisor_unit    text,
    excluded_units     text[] NOT NULL DEFAULT '{}',      -- returned (退单) by these units
    dispatched_at      timestamptz NOT NULL,
    respond_by         timestamptz,
    resolve_by         timestamptz,
    resolve_missed_at  timestamptz,                       -- at the top tier: nothing to escalate to
    accepted_at        timestamptz,
    resolved_at        timestamptz,
    resolved_tier      text,
    resolved_unit      text,
    paused_at          timestamptz,
    paused_until       timestamptz,
    opened_at          timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cases_handler_open ON cases (handler_id) WHERE state <> 'resolved';
CREATE INDEX cases_respond_due ON cases (respond_by)
    WHERE state IN ('dispatched', 'escalated', 'returned', 'transferred');
CREATE INDEX cases_resolve_due ON cases (resolve_by)
    WHERE state IN ('dispatched', 'escalated', 'returned', 'transferred', 'accepted')
      AND resolve_missed_at IS NULL;
CREATE INDEX cases_deliberation_due ON cases (paused_until) WHERE state = 'deliberating';

-- Merged reports (附议) that arrived before the case itself: applied when cases.opened comes.
CREATE TABLE early_merges (
    case_id     text PRIMARY KEY,
    supporters  int NOT NULL,
    households  int,
    urgent      boolean NOT NULL DEFAULT false
);

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
