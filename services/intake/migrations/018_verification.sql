-- 核查结案 in Open311's status: the verifier a resolution waits for (from cases.resolved), when a
-- resolution was verified (cases.verified) and when one was sent back (cases.sent_back).
ALTER TABLE case_progress
    ADD COLUMN verifier_unit text,
    ADD COLUMN verified_at timestamptz,
    ADD COLUMN sent_back_at timestamptz;
