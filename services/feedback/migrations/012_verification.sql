-- 核查结案 (verification before closing): dispatch's cases.verified (a resolution confirmed on
-- site, which starts the resident's follow-up) and cases.sent_back (a resolution withdrawn: the
-- case is handled again, and that resolution no longer counts as one).
CREATE TABLE verifications (
    id            bigserial PRIMARY KEY,
    case_id       text NOT NULL REFERENCES cases (case_id),
    tier          text NOT NULL,
    unit          text NOT NULL,        -- the unit that resolved it
    verifier_unit text NOT NULL,
    resolved_at   timestamptz NOT NULL,
    verified_at   timestamptz NOT NULL,
    on_time       boolean NOT NULL      -- verified by its verification deadline
);
CREATE INDEX verifications_case ON verifications (case_id);
CREATE INDEX verifications_at ON verifications (verified_at);

CREATE TABLE send_backs (
    id            bigserial PRIMARY KEY,
    case_id       text NOT NULL REFERENCES cases (case_id),
    tier          text NOT NULL,
    unit          text NOT NULL,        -- the unit whose resolution was sent back
    verifier_unit text NOT NULL,
    resolved_at   timestamptz NOT NULL, -- the resolution withdrawn (as in resolutions)
    sent_back_at  timestamptz NOT NULL
);
CREATE INDEX send_backs_case ON send_backs (case_id);
CREATE INDEX send_backs_at ON send_backs (sent_back_at);
