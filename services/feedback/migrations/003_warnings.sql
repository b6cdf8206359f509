-- Stage warnings, counted per unit and period (formulas.warned): the yellow cards (黄牌,
-- cases.warned) and the red cards (红牌, cases.overdue), one row per event (the inbox applies
-- each event once).
CREATE TABLE warnings (
    id            bigserial PRIMARY KEY,
    case_id       text NOT NULL REFERENCES cases (case_id),
    stage         text NOT NULL,
    tier          text NOT NULL,
    unit          text NOT NULL,
    attempt       int  NOT NULL,
    due_at        timestamptz NOT NULL,
    elapsed_share double precision NOT NULL,
    warned_at     timestamptz NOT NULL
);
CREATE INDEX warnings_case ON warnings (case_id);
CREATE INDEX warnings_at ON warnings (warned_at);

CREATE TABLE overdues (
    id        bigserial PRIMARY KEY,
    case_id   text NOT NULL REFERENCES cases (case_id),
    deadline  text NOT NULL,
    tier      text,           -- absent from events published before the field existed
    unit      text NOT NULL,
    due_at    timestamptz,
    at        timestamptz NOT NULL  -- cases.overdue: overdue_at, else ce_time
);
CREATE INDEX overdues_case ON overdues (case_id);
CREATE INDEX overdues_at ON overdues (at);
