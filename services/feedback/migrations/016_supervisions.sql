-- 督办 (supervision): dispatch's cases.supervised, the command centre's supervisions of open
-- cases, counted per unit and period in the figures (``supervised``).
CREATE TABLE supervisions (
    id            bigserial PRIMARY KEY,
    case_id       text NOT NULL REFERENCES cases (case_id),
    supervision   integer NOT NULL,     -- the case's n-th supervision
    tier          text NOT NULL,
    unit          text NOT NULL,        -- the unit supervised (the case's then)
    attempt       integer NOT NULL,     -- the dispatch attempt supervised
    supervised_at timestamptz NOT NULL
);
CREATE INDEX supervisions_case ON supervisions (case_id);
CREATE INDEX supervisions_at ON supervisions (supervised_at);
