-- 缓办/延期 (extensions) and 挂起 (suspension), services/dispatch/pauses.py: an extension request
-- awaiting the unit one tier up (the deadline asked for, when, who decides, why) and the number of
-- extensions approved. A suspension, and an extension request while its tier pauses the clock,
-- set paused_at (the clock stopped) and paused_until (when the pause ends by itself).
ALTER TABLE cases
    ADD COLUMN extension_to timestamptz,
    ADD COLUMN extension_requested_at timestamptz,
    ADD COLUMN extension_approver text,
    ADD COLUMN extension_reason text,
    ADD COLUMN extensions int NOT NULL DEFAULT 0;

-- The resolution sweeps skip a paused clock; each sweep's query repeats its index's predicate.
DROP INDEX cases_resolve_due;
CREATE INDEX cases_resolve_due ON cases (resolve_by)
    WHERE state IN ('dispatched', 'escalated', 'returned', 'transferred', 'accepted',
                    'extension_requested')
      AND resolve_missed_at IS NULL AND paused_at IS NULL;
DROP INDEX cases_resolve_warn_due;
CREATE INDEX cases_resolve_warn_due ON cases (resolve_warn_at)
    WHERE state IN ('dispatched', 'escalated', 'returned', 'transferred', 'accepted',
                    'extension_requested')
      AND resolve_missed_at IS NULL AND paused_at IS NULL AND resolve_warn_at IS NOT NULL;
-- Every pause that ends by itself: a council's decide_by, a suspension's resume_by, an
-- extension request's decision limit
DROP INDEX cases_deliberation_due;
CREATE INDEX cases_pause_due ON cases (paused_until)
    WHERE state IN ('deliberating', 'suspended', 'extension_requested');
-- The extension requests a unit decides (its handler list)
CREATE INDEX cases_extension_approver ON cases (extension_approver)
    WHERE state = 'extension_requested';
