-- Feedback's read model of every case event it needs, the reporters to follow up, rating tokens,
-- ratings, and the facts the governance metrics are computed from.

-- One row per case. Any case event creates it (a placeholder, with only case_id) if cases.opened
-- has not been seen yet; cases.opened fills in what and where.
CREATE TABLE cases (
    case_id        text PRIMARY KEY,
    category       text,
    category_name  text,
    source         text,
    district       text,
    street         text,
    community      text,
    grid           text,
    building       text,
    default_tier   text,
    opened_at      timestamptz,
    -- follow-up state: open -> resolved (awaiting a rating) -> closed | reopened -> resolved ...
    state          text NOT NULL DEFAULT 'open',
    round          int  NOT NULL DEFAULT 0,  -- resolutions that opened a rating round
    reopen_count   int  NOT NULL DEFAULT 0,
    rating_window_ends timestamptz,
    closed_at      timestamptz,
    outcome        text
);
CREATE INDEX cases_district ON cases (district);
CREATE INDEX cases_street ON cases (street);
CREATE INDEX cases_community ON cases (community);
CREATE INDEX cases_grid ON cases (grid);
CREATE INDEX cases_opened_at ON cases (opened_at);
-- The unrated-closing sweep looks only at cases awaiting a rating.
CREATE INDEX cases_awaiting_rating ON cases (rating_window_ends) WHERE state = 'resolved';

CREATE TABLE reporters (
    case_id      text NOT NULL REFERENCES cases (case_id),
    reporter_ref text NOT NULL,
    channel      text NOT NULL,
    PRIMARY KEY (case_id, reporter_ref)
);

-- Only the SHA-256 of each rating token is kept; a token is single-use and valid for one round.
CREATE TABLE feedback_requests (
    token_hash   text PRIMARY KEY,
    case_id      text NOT NULL REFERENCES cases (case_id),
    reporter_ref text NOT NULL,
    round        int  NOT NULL,
    requested_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    UNIQUE (case_id, reporter_ref, round)
);

CREATE TABLE ratings (
    id           bigserial PRIMARY KEY,
    case_id      text NOT NULL REFERENCES cases (case_id),
    reporter_ref text NOT NULL,
    round        int  NOT NULL,
    resolved     boolean NOT NULL,
    satisfaction text NOT NULL,
    comment      text,
    at           timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL,
    decided      boolean NOT NULL
);
CREATE INDEX ratings_case ON ratings (case_id);
CREATE INDEX ratings_at ON ratings (at);

-- Facts from dispatch's events, one row per event (the inbox applies each event once).
CREATE TABLE dispatches (
    id            bigserial PRIMARY KEY,
    case_id       text NOT NULL REFERENCES cases (case_id),
    attempt       int  NOT NULL,
    tier          text NOT NULL,
    unit          text NOT NULL,
    respond_by    timestamptz NOT NULL,
    resolve_by    timestamptz NOT NULL,
    dispatched_at timestamptz NOT NULL
);
CREATE INDEX dispatches_case ON dispatches (case_id);
CREATE INDEX dispatches_unit ON dispatches (unit);
CREATE INDEX dispatches_at ON dispatches (dispatched_at);

CREATE TABLE accepts (
    id          bigserial PRIMARY KEY,
    case_id     text NOT NULL REFERENCES cases (case_id),
    tier        text NOT NULL,
    unit        text NOT NULL,
    accepted_at timestamptz NOT NULL,
    on_time     boolean NOT NULL
);
CREATE INDEX accepts_case ON accepts (case_id);

CREATE TABLE escalations (
    id        bigserial PRIMARY KEY,
    case_id   text NOT NULL REFERENCES cases (case_id),
    from_tier text NOT NULL,
    to_tier   text NOT NULL,
    unit      text NOT NULL,
    reason    text NOT NULL,
    at        timestamptz NOT NULL  -- the event's own time (cases.escalated: escalated_at, else ce_time for events published before that field)
);
CREATE INDEX escalations_case ON escalations (case_id);

CREATE TABLE resolutions (
    id          bigserial PRIMARY KEY,
    case_id     text NOT NULL REFERENCES cases (case_id),
    tier        text NOT NULL,
    unit        text NOT NULL,
    resolved_at timestamptz NOT NULL,
    on_time     boolean NOT NULL
);
CREATE INDEX resolutions_case ON resolutions (case_id);
CREATE INDEX resolutions_at ON resolutions (resolved_at);

-- What feedback itself decided (also published as cases.reopened / cases.closed).
CREATE TABLE reopens (
    id           bigserial PRIMARY KEY,
    case_id      text NOT NULL REFERENCES cases (case_id),
    reopen_count int  NOT NULL,
    reason       text NOT NULL,
    at           timestamptz NOT NULL
);
CREATE INDEX reopens_case ON reopens (case_id);
