-- 退单: dispatch's cases.returned (a unit returned a case as not theirs; the command centre
-- dispatches it again), for the return rate (退单率) of the dispatches in a period.
CREATE TABLE returns (
    id          bigserial PRIMARY KEY,
    case_id     text NOT NULL REFERENCES cases (case_id),
    tier        text NOT NULL,
    unit        text NOT NULL,    -- the unit that returned it
    attempt     int  NOT NULL,    -- the dispatch attempt returned
    returned_at timestamptz NOT NULL
);
CREATE INDEX returns_case ON returns (case_id);
CREATE INDEX returns_at ON returns (returned_at);
