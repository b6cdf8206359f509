-- Open311 GeoReport v2 on intake (services/intake/open311): the upstream systems' api keys, the
-- service requests they posted, and each case's progress as dispatch and feedback report it.

-- One row per key; an upstream system may hold several (a new one before the old is revoked).
-- Only a SHA-256 of the whole key is kept: a key is 32 random bytes, so a plain hash is enough
-- (no password stretching), and the key itself cannot be read back (wangge apikey create prints
-- it once).
CREATE TABLE api_keys (
    key_id      text PRIMARY KEY,                  -- the key's public part, as `apikey list` shows
    system      text NOT NULL,                     -- the upstream system it identifies
    channel     text NOT NULL DEFAULT 'open311',   -- the report `source` its requests carry
    secret_hash bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_system ON api_keys (system);

-- Every Open311 POST that opened or seconded a case (附议), with what the GET methods answer of
-- it; written in the transaction that handled the report (rejections are not kept here: their
-- row in `reports` says why). No personal data: name, phone, email and ids go elsewhere or
-- nowhere (docs/intake.md, "Open311").
CREATE TABLE open311_requests (
    source        text NOT NULL,
    report_id     text NOT NULL,
    system        text NOT NULL,
    case_id       text NOT NULL REFERENCES cases (case_id),
    merged        boolean NOT NULL,          -- seconded a case that was already open
    requested_at  timestamptz NOT NULL,
    service_code  text NOT NULL,
    description   text NOT NULL,             -- phone numbers masked
    address       text,
    address_id    text,
    lat           double precision,
    long          double precision,
    media_url     text,
    PRIMARY KEY (source, report_id)
);
CREATE INDEX open311_requests_system ON open311_requests (system, requested_at);
CREATE INDEX open311_requests_time ON open311_requests (requested_at);
CREATE INDEX open311_requests_case ON open311_requests (case_id);

-- A case's progress from cases.dispatched / accepted / escalated / resolved / reopened / closed.
-- Those topics are not ordered with each other, so each kind of fact is kept with its time and
-- the current state is worked out when read (services/intake/open311/status.py).
CREATE TABLE case_progress (
    case_id          text PRIMARY KEY,
    attempt          int  NOT NULL DEFAULT 0,   -- the latest dispatch's attempt
    tier             text,
    unit             text,                      -- the handling unit (a unit or a department)
    dispatched_at    timestamptz,
    respond_by       timestamptz,
    resolve_by       timestamptz,
    accepted_at      timestamptz,
    escalated_at     timestamptz,
    escalated_from   text,
    resolved_at      timestamptz,
    resolution_note  text,                      -- phone numbers masked
    reopened_at      timestamptz,
    reopen_count     int  NOT NULL DEFAULT 0,
    closed_at        timestamptz,
    close_outcome    text,                      -- satisfied | unrated
    updated_at       timestamptz NOT NULL
);
