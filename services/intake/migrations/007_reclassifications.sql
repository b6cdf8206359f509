-- Learning from the command centre (人工分拨): every reclassification of a case (cases.reclassified)
-- is kept as a labelled example for `wangge classifier retrain`.

-- The text each case was classified from (its opening report's title and description, as the
-- classifier read it), sealed with the personal-data key like names and phones (free text may
-- hold personal data; `wangge pii rotate` re-encrypts it). NULL for cases opened before this.
ALTER TABLE cases ADD COLUMN text_enc bytea;

-- One row per decision (a case may be decided more than once: its latest decision is its label).
CREATE TABLE reclassifications (
    case_id        text NOT NULL REFERENCES cases (case_id),
    decided_at     timestamptz NOT NULL,        -- dispatch's clock (reclassified_at)
    from_category  text NOT NULL,
    to_category    text NOT NULL,               -- the label
    origin         text NOT NULL,               -- triage | correction | return
    decided_by     jsonb NOT NULL,              -- role, unit, handler_id, subject (from the token)
    note           text,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, decided_at)
);
