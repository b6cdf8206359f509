-- 核查结案 (verification before closing), services/dispatch/verification.py: a resolved case in
-- state 'verifying' waits for the staff of verifier_unit until verify_by; its warning (黄牌) is
-- due at verify_warn_at; verify_missed_at records the deadline found missed (the red card fires
-- once).
ALTER TABLE cases
    ADD COLUMN verifier_unit text,
    ADD COLUMN verify_by timestamptz,
    ADD COLUMN verify_warn_at timestamptz,
    ADD COLUMN verify_missed_at timestamptz;

-- The verification sweeps; each sweep's query repeats its index's predicate.
CREATE INDEX cases_verify_due ON cases (verify_by)
    WHERE state = 'verifying' AND verify_missed_at IS NULL;
CREATE INDEX cases_verify_warn_due ON cases (verify_warn_at)
    WHERE state = 'verifying' AND verify_missed_at IS NULL AND verify_warn_at IS NOT NULL;
-- The resolutions a unit verifies (its handlers' lists)
CREATE INDEX cases_verifier ON cases (verifier_unit) WHERE state = 'verifying';
