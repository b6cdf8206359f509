-- The command-centre board (services/dispatch/console/queries.py): each open case's due times
-- as due.py works them out (on the working calendar, which SQL cannot), kept per version of its
-- row so that PostgreSQL counts an area's open cases by unit, tier and due status with `now` as
-- a parameter (console.queries.DUE_SQL is due.due_at in SQL). Written by the board's keeper
-- (at start, before each board, once a minute), never by the handlers: a row whose version is
-- not its case's `xmin` and the policy's key is worked out again; rows of cases no longer open
-- are deleted once a minute.
CREATE TABLE board_due (
    case_id   text PRIMARY KEY,
    version   text NOT NULL,        -- cases.xmin || '/' || the policy's key
    missed    boolean NOT NULL,     -- missed at the top tier (or its verification): overdue
    soon_at   timestamptz,          -- due soon from (none: no running deadline)
    late_at   timestamptz,          -- overdue from
    deadline  timestamptz           -- the board's deadline: the nearest running one, or when missed
);
