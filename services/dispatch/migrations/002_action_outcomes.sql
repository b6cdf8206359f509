-- What became of each handler action (handler.actions, or POST /cases/{case_id}/actions, which
-- goes the same way): applied, or refused with the kind of refusal and its reason. Written in the
-- action's own transaction; a retried HTTP action (the same Idempotency-Key, so the same
-- action_id: a duplicate in the inbox) is answered from here with what the first one got.
CREATE TABLE action_outcomes (
    action_id   text PRIMARY KEY,
    case_id     text NOT NULL,
    handler_id  text NOT NULL,
    action      text NOT NULL,
    at          timestamptz NOT NULL,
    outcome     text NOT NULL,       -- applied | unknown_case | not_permitted | conflict | invalid
    field       text,                -- for invalid: the action's field at fault
    reason      text                 -- why it was refused
);

-- A unit's open cases (the handler API: a unit's cases nobody accepted yet, the command centre's
-- cases of its area), read without scanning the resolved ones.
CREATE INDEX cases_unit_open ON cases (unit) WHERE state <> 'resolved';
