-- Reports as received (personal data encrypted) and the cases they became.
CREATE TABLE cases (
    case_id          text PRIMARY KEY,
    category         text NOT NULL,
    grid             text,
    building         text,
    community        text,
    street           text,
    district         text,
    status           text NOT NULL DEFAULT 'open',
    supporter_count  int  NOT NULL DEFAULT 1,
    opened_at        timestamptz NOT NULL,
    closed_at        timestamptz
);
CREATE INDEX cases_open_match ON cases (category, building, grid, opened_at) WHERE status = 'open';

CREATE TABLE reports (
    source           text NOT NULL,
    report_id        text NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    submitted_at     timestamptz,
    outcome          text NOT NULL,          -- opened | merged | rejected
    case_id          text REFERENCES cases (case_id),
    errors           jsonb,
    reporter_ref     text,
    reporter_name_enc bytea,                 -- AES-GCM, key WANGGE_PII_KEY
    reporter_phone_enc bytea,
    reporter_phone_masked text,
    PRIMARY KEY (source, report_id)
);
CREATE INDEX reports_case ON reports (case_id);
