-- Feedback's read model of every case, the reporters to follow up, tokens and ratings.
CREATE TABLE cases (
    case_id        text PRIMARY KEY,
    category       text NOT NULL,
    source         text NOT NULL,
    district       text,
    street         text,
    community      text,
    grid           text,
    building       text,
    state          text NOT NULL DEFAULT 'open',
    start_tier     text,
    tier           text,
    unit           text,
    opened_at      timestamptz NOT NULL,
    resolved_at    timestamptz,
    closed_at      timestamptz,
    outcome        text,
    reopen_count   int NOT NULL DEFAULT 0,
    rating_window_ends timestamptz
);

CREATE TABLE reporters (
    case_id      text NOT NULL REFERENCES cases (case_id),
    reporter_ref text NOT NULL,
    channel      text NOT NULL,
    PRIMARY KEY (case_id, reporter_ref)
);

-- Only the SHA-256 of each rating token is kept; a token is single-use.
CREATE TABLE feedback_requests (
    token_hash   text PRIMARY KEY,
    case_id      text NOT NULL REFERENCES cases (case_id),
    reporter_ref text NOT NULL,
    round        int  NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz
);
CREATE INDEX feedback_requests_case ON feedback_requests (case_id);

CREATE TABLE ratings (
    id           bigserial PRIMARY KEY,
    case_id      text NOT NULL REFERENCES cases (case_id),
    round        int  NOT NULL,
    resolved     boolean NOT NULL,
    satisfaction text NOT NULL,
    comment      text,
    at           timestamptz NOT NULL,
    decided      boolean NOT NULL
);
CREATE INDEX ratings_case ON ratings (case_id);
