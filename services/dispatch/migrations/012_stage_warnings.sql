-- Stage warnings (黄牌, services/dispatch/stages.py): when each stage's warning is due, set by
-- every dispatch with its deadlines and cleared by the warning sweep when it warns (so a stage
-- is warned once per dispatch attempt). Each sweep's query repeats its index's predicate.
ALTER TABLE cases
    ADD COLUMN respond_warn_at timestamptz,
    ADD COLUMN resolve_warn_at timestamptz;

CREATE INDEX cases_respond_warn_due ON cases (respond_warn_at)
    WHERE state IN ('dispatched', 'escalated', 'returned', 'transferred')
      AND respond_warn_at IS NOT NULL;
CREATE INDEX cases_resolve_warn_due ON cases (resolve_warn_at)
    WHERE state IN ('dispatched', 'escalated', 'returned', 'transferred', 'accepted')
      AND resolve_missed_at IS NULL AND resolve_warn_at IS NOT NULL;

-- Open cases dispatched before this migration: warned at 80 % of the time their deadlines gave
-- (an approximation of the limit: the span from their dispatch).
UPDATE cases SET
    respond_warn_at = respond_by - (respond_by - dispatched_at) * 0.2,
    resolve_warn_at = resolve_by - (resolve_by - dispatched_at) * 0.2
WHERE state <> 'resolved' AND respond_by IS NOT NULL AND resolve_by IS NOT NULL;
