-- 退单 to the command centre (services/dispatch/returns.py): a case its unit returns as not theirs
-- goes to the triage queue (人工分拨), whose entry says who returned it and why; the command
-- centre reads the case's text there, so dispatch keeps every case's text as intake published it
-- (personal data masked) and its classifier's suggestions, from its opening.
CREATE TABLE case_texts (
    case_id      text PRIMARY KEY REFERENCES cases (case_id),
    source       text NOT NULL,
    title        text,
    description  text NOT NULL,
    confidence   double precision NOT NULL,
    suggestions  jsonb NOT NULL DEFAULT '[]',
    moderation   text[] NOT NULL DEFAULT '{}'
);
ALTER TABLE triage ADD COLUMN returned_by text, ADD COLUMN return_note text;
