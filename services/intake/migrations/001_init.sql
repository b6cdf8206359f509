-- Intake's schema: reports as received (personal data encrypted), the cases they opened or joined,
-- each case's notify list, and a counter telling replicas that the registry copy changed.

-- Bumped in the same transaction as every registry.units record applied; each replica rebuilds its
-- in-memory location index when the value it last saw differs.
CREATE TABLE registry_state (
    id       int    PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    version  bigint NOT NULL DEFAULT 0
);
INSERT INTO registry_state DEFAULT VALUES;

CREATE TABLE cases (
    case_id          text PRIMARY KEY,
    category         text NOT NULL,
    place            text NOT NULL,          -- the finest unit the case was located at
    building         text,
    grid             text,
    community        text,
    street           text,
    district         text,
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    supporter_count  int  NOT NULL DEFAULT 1,  -- distinct reporters (附议 adds one each)
    opened_at        timestamptz NOT NULL,
    closed_at        timestamptz
);
-- Merge look-ups (building, else grid, else place) only ever read open cases.
CREATE INDEX cases_open_building ON cases (building, category, opened_at) WHERE status = 'open';
CREATE INDEX cases_open_grid ON cases (grid, category, opened_at) WHERE status = 'open';
CREATE INDEX cases_open_place ON cases (place, category, opened_at) WHERE status = 'open';

CREATE TABLE reports (
    source                text NOT NULL,
    report_id             text NOT NULL,
    received_at           timestamptz NOT NULL DEFAULT now(),
    submitted_at          timestamptz,
    -- 'received' only exists inside the handling transaction (the row claims the report)
    outcome               text NOT NULL CHECK (outcome IN ('received', 'opened', 'merged', 'rejected')),
    case_id               text REFERENCES cases (case_id),
    reason                text,                  -- rejections: invalid | unlocatable
    errors                jsonb,
    reporter_ref          text,
    reporter_name_enc     bytea,                 -- AES-256-GCM, key WANGGE_PII_KEY
    reporter_phone_enc    bytea,
    reporter_phone_masked text,
    PRIMARY KEY (source, report_id)
);
CREATE INDEX reports_case ON reports (case_id);

-- Who is told about a case: the reporter who opened it and everyone who seconded it (附议).
CREATE TABLE case_supporters (
    case_id               text NOT NULL REFERENCES cases (case_id),
    reporter_ref          text NOT NULL,
    source                text NOT NULL,
    report_id             text NOT NULL,
    reporter_phone_masked text,
    joined_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, reporter_ref)
);
