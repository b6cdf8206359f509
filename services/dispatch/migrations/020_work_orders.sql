-- Work orders (派单/协办, services/dispatch/orders.py): a case's assisting orders beside its lead
-- (the case's own dispatch, the cases row). One row per order, numbered per case: the unit
-- ordered and its handler, whether the lead's resolve waits for it, its state (issued,
-- reported, done, returned, cancelled), its deadlines (报到 report_by, resolve_by), who issued it
-- (from their token) and the request's Idempotency-Key, so that a retried whistle is the same one.
CREATE TABLE work_orders (
    order_id         text PRIMARY KEY,
    case_id          text NOT NULL REFERENCES cases (case_id),
    n                int NOT NULL,
    unit             text NOT NULL,
    tier             text,                 -- the unit's level (a department's: its parent's)
    handler_id       text,
    required         boolean NOT NULL,
    origin           text NOT NULL,        -- whistle (吹哨报到) or council (a measure)
    state            text NOT NULL,
    report_by        timestamptz NOT NULL,
    resolve_by       timestamptz NOT NULL,
    issued_by        text NOT NULL,
    issued_by_unit   text,
    note             text,
    council_id       text,
    issued_at        timestamptz NOT NULL,
    reported_at      timestamptz,
    done_at          timestamptz,
    closed_at        timestamptz,          -- returned or cancelled
    report_missed_at timestamptz,          -- the report deadline found missed (a red card, once)
    last_note        text,
    request_key      text,                 -- the whistle's Idempotency-Key (several orders share it)
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (case_id, n)
);
CREATE INDEX work_orders_case ON work_orders (case_id);
CREATE INDEX work_orders_request ON work_orders (request_key) WHERE request_key IS NOT NULL;
-- the ordered unit's open orders (GET /me/orders)
CREATE INDEX work_orders_unit_open ON work_orders (unit) WHERE state IN ('issued', 'reported');
-- the order-report sweep: unreported orders past report_by, not yet found missed
CREATE INDEX work_orders_report_due ON work_orders (report_by)
    WHERE state = 'issued' AND report_missed_at IS NULL;
