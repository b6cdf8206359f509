-- The command-centre board's read model (services/dispatch/console/queries.py, BoardDue):
-- board_due keeps, besides each open case's due times, what the board counts and lists of it,
-- so that a board reads this one table (not cases joined with it); the rows kept before are
-- worked out again (at start). Every statement that writes cases marks the cases it wrote in
-- board_stale, in the writer's transaction; the keeper takes the marks (before each board and
-- every 2 s) and works out those cases only, instead of comparing every open case's row
-- version with the kept one before each board (it still does once a minute, and at start).
ALTER TABLE board_due
    ADD COLUMN unit        text,
    ADD COLUMN street      text,
    ADD COLUMN community   text,
    ADD COLUMN grid        text,
    ADD COLUMN building    text,
    ADD COLUMN tier        text,
    ADD COLUMN category    text,
    ADD COLUMN state       text,
    ADD COLUMN urgent      boolean,
    ADD COLUMN supervised  boolean,
    ADD COLUMN changed_at  timestamptz;  -- its last dispatch or update
DELETE FROM board_due;

CREATE TABLE board_stale (
    case_id  text PRIMARY KEY
);

CREATE FUNCTION board_mark_stale() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO board_stale (case_id)
        SELECT DISTINCT case_id FROM changed ORDER BY case_id
        ON CONFLICT (case_id) DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER cases_board_stale_insert AFTER INSERT ON cases
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION board_mark_stale();
CREATE TRIGGER cases_board_stale_update AFTER UPDATE ON cases
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION board_mark_stale();
