-- The command-centre board (services/dispatch/console): every committed change to cases wakes
-- the boards of every replica. One notification per statement, on the channel
-- '<schema>.cases', naming the districts of the changed rows ('*' for a case without one, or
-- when the list would be too long for a notification); PostgreSQL delivers it at commit, to
-- each replica's one listening connection (console/hub.py).
CREATE FUNCTION console_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    districts text;
BEGIN
    SELECT string_agg(DISTINCT coalesce(district, '*'), ',') INTO districts FROM changed;
    IF districts IS NOT NULL THEN
        IF length(districts) > 7000 THEN
            districts := '*';
        END IF;
        PERFORM pg_notify(TG_TABLE_SCHEMA || '.cases', districts);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER cases_console_insert AFTER INSERT ON cases
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION console_notify();
CREATE TRIGGER cases_console_update AFTER UPDATE ON cases
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION console_notify();

-- Sign-in links used (shared/runtime/signin.py): a link's token id, once; kept until the token
-- has expired (after that the token itself is refused).
CREATE TABLE signins_used (
    jti         text PRIMARY KEY,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signins_used_expiry ON signins_used (expires_at);
