-- 督办 sent by the command centre (services/dispatch/supervision.py): one row per supervision of
-- a case, numbered per case; the unit, handler and dispatch attempt it was sent to; who sent it
-- (from their token); the request's Idempotency-Key, so that a retry is the same supervision.
CREATE TABLE supervisions (
    case_id     text NOT NULL REFERENCES cases (case_id),
    n           int NOT NULL,
    attempt     int NOT NULL,
    tier        text NOT NULL,
    unit        text NOT NULL,
    handler_id  text,
    note        text NOT NULL,
    report_by   timestamptz,
    by_role     text NOT NULL,
    by_unit     text,
    by_subject  text,
    at          timestamptz NOT NULL,
    request_key text UNIQUE,
    PRIMARY KEY (case_id, n)
);
