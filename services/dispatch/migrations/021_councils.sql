-- Councils (议事会/联席会, services/dispatch/councils.py): each decision recorded on a case at
-- deliberation, numbered per case: the body, the meeting date, the decision, the votes, the
-- measures (each became a work order: work_orders.council_id), who recorded it and when.
CREATE TABLE councils (
    council_id    text PRIMARY KEY,
    case_id       text NOT NULL REFERENCES cases (case_id),
    n             int NOT NULL,
    body          text NOT NULL,
    meeting_date  date NOT NULL,
    decision      text NOT NULL,
    votes_for     int NOT NULL CHECK (votes_for >= 0),
    votes_against int NOT NULL CHECK (votes_against >= 0),
    votes_abstain int NOT NULL CHECK (votes_abstain >= 0),
    measures      jsonb NOT NULL,
    tier          text NOT NULL,
    unit          text NOT NULL,
    decided_by    text NOT NULL,
    decided_at    timestamptz NOT NULL,
    request_key   text UNIQUE,
    UNIQUE (case_id, n)
);
