-- Frozen months (services/feedback/freezing.py): a unit's official figures for a month, computed
-- once when the month closed plus the grace window, never rewritten; later events show as
-- adjustments beside them (computed on read against the live figures).
CREATE TABLE frozen_figures (
    unit_code  text        NOT NULL,
    period     text        NOT NULL,  -- the month's label, 2026-10
    frozen_at  timestamptz NOT NULL,
    metrics    jsonb       NOT NULL,
    PRIMARY KEY (unit_code, period)
);
