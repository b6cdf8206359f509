-- Work orders (派单/协办, 吹哨报到) and councils (议事会/联席会): dispatch's cases.order_issued,
-- cases.order_updated and cases.council_decided as facts, counted per unit (the orders by the
-- unit they were issued to, ``orders``; the councils' decisions by the case's place, ``councils``);
-- and which red cards (cases.overdue) are an order's report missed, not the case's own.
ALTER TABLE overdues ADD COLUMN order_id text;  -- null: the case's own deadline

CREATE TABLE work_orders (
    id         bigserial PRIMARY KEY,
    case_id    text NOT NULL REFERENCES cases (case_id),
    order_id   text NOT NULL,
    unit       text NOT NULL,        -- the unit ordered
    required   boolean NOT NULL,
    origin     text NOT NULL,        -- whistle (吹哨报到) or council
    report_by  timestamptz NOT NULL,
    resolve_by timestamptz NOT NULL,
    issued_at  timestamptz NOT NULL
);
CREATE INDEX work_orders_unit_at ON work_orders (unit, issued_at);

CREATE TABLE order_updates (
    id       bigserial PRIMARY KEY,
    case_id  text NOT NULL REFERENCES cases (case_id),
    order_id text NOT NULL,
    unit     text NOT NULL,
    state    text NOT NULL,          -- reported, done, returned, cancelled
    on_time  boolean,                -- reported and done
    at       timestamptz NOT NULL
);
CREATE INDEX order_updates_unit_at ON order_updates (unit, at);

CREATE TABLE council_decisions (
    id            bigserial PRIMARY KEY,
    case_id       text NOT NULL REFERENCES cases (case_id),
    council_id    text NOT NULL,
    body          text NOT NULL,
    votes_for     integer NOT NULL,
    votes_against integer NOT NULL,
    votes_abstain integer NOT NULL,
    measures      jsonb NOT NULL,
    tier          text NOT NULL,
    unit          text NOT NULL,
    decided_at    timestamptz NOT NULL
);
CREATE INDEX council_decisions_case ON council_decisions (case_id);
CREATE INDEX council_decisions_at ON council_decisions (decided_at);
