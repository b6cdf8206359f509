-- 三代 agency (诉求代理 / 意愿代言 / 事务代办): dispatch's cases.agent_assigned (an agent beside the
-- handler), cases.commissioned (the resident's commission 委托, recorded by the agent) and
-- cases.relayed (progress the agent relayed to the resident, which the reporters are told): the
-- figures count them per agency mode. No agent id is kept: feedback holds no handler.
CREATE TABLE agent_assignments (
    id          bigserial PRIMARY KEY,
    case_id     text NOT NULL REFERENCES cases (case_id),
    agency_mode text NOT NULL,
    community   text NOT NULL,
    tier        text NOT NULL,
    unit        text NOT NULL,
    assigned_at timestamptz NOT NULL
);
CREATE INDEX agent_assignments_case ON agent_assignments (case_id);
CREATE INDEX agent_assignments_at ON agent_assignments (assigned_at);

CREATE TABLE commissions (
    id              bigserial PRIMARY KEY,
    case_id         text NOT NULL REFERENCES cases (case_id),
    agency_mode     text NOT NULL,
    community       text NOT NULL,
    commissioned_at timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL
);
CREATE INDEX commissions_case ON commissions (case_id);
CREATE INDEX commissions_at ON commissions (recorded_at);

CREATE TABLE relays (
    id          bigserial PRIMARY KEY,
    case_id     text NOT NULL REFERENCES cases (case_id),
    agency_mode text NOT NULL,
    relay       int NOT NULL,
    tier        text NOT NULL,
    unit        text NOT NULL,
    relayed_at  timestamptz NOT NULL
);
CREATE INDEX relays_case ON relays (case_id);
CREATE INDEX relays_at ON relays (relayed_at);
