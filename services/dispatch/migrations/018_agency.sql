-- 三代 agency (services/dispatch/agency.py): a case's agent (代理人/代办员) beside its handler, for
-- a category whose taxonomy asks for one; the resident's commission (委托) once recorded; the
-- Idempotency-Key of the commission's request (a retry is the same commission).
CREATE TABLE case_agents (
    case_id                text PRIMARY KEY REFERENCES cases (case_id),
    agency_mode            text NOT NULL,  -- proxy_petition | voice_advocacy | errand_service
    agent_id               text NOT NULL,
    agent_role             text NOT NULL,  -- community_staff | party_volunteer
    community              text NOT NULL,
    assigned_at            timestamptz NOT NULL,
    commissioned_at        timestamptz,    -- when the resident commissioned (the agent's word)
    commission_note        text,
    commission_recorded_at timestamptz,
    commission_key         text UNIQUE
);
CREATE INDEX case_agents_agent ON case_agents (agent_id);

-- Progress the agent relayed to the resident, numbered per case; the request's Idempotency-Key.
CREATE TABLE agency_relays (
    case_id     text NOT NULL REFERENCES case_agents (case_id),
    n           int NOT NULL,
    agent_id    text NOT NULL,
    note        text NOT NULL,
    at          timestamptz NOT NULL,
    request_key text UNIQUE,
    PRIMARY KEY (case_id, n)
);
