-- The live boards (services/dispatch/console/live.py): each replica keeps a watched area's kept
-- rows in memory and reads only the rows kept since its last read, by the transaction that kept
-- them (`kept_xid`, compared with the previous read's snapshot: exact whatever order the
-- keepers commit in). A case no longer open keeps its row as a tombstone (`open` false) for 10
-- minutes, so that a live board sees it go; older tombstones are deleted once a minute.
ALTER TABLE board_due
    ADD COLUMN open      boolean NOT NULL DEFAULT true,
    ADD COLUMN kept_xid  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    ADD COLUMN kept_at   timestamptz NOT NULL DEFAULT now();
CREATE INDEX board_due_kept ON board_due (kept_xid);
