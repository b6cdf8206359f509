-- What residents hear at each milestone of their case (cases.notified, services/feedback/notices.py).
-- Each milestone of a case once (its key: assigned:<attempt>, accepted:<time>, ...), whatever
-- order and however often its event arrives; its text as told, the unit's name of that moment.
CREATE TABLE milestones (
    case_id  text NOT NULL REFERENCES cases (case_id),
    key      text NOT NULL,
    kind     text NOT NULL,  -- assigned | accepted | extended | resolved (| verified, to come)
    at       timestamptz NOT NULL,
    text     text NOT NULL,
    deadline timestamptz,
    PRIMARY KEY (case_id, key)
);

-- Each notice (a milestone told to one reporter) once: its id is derived from the case, the
-- milestone's key and the reporter, so a notice made again has the same id.
CREATE TABLE notices (
    notice_id    text PRIMARY KEY,
    case_id      text NOT NULL,
    milestone    text NOT NULL,
    reporter_ref text NOT NULL,
    notified_at  timestamptz NOT NULL,
    UNIQUE (case_id, milestone, reporter_ref),
    FOREIGN KEY (case_id, milestone) REFERENCES milestones (case_id, key)
);
