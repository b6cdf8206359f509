-- A report rejected for its content may come back corrected under the same (source, report_id):
-- the rejected version's fingerprint (services/intake/fingerprints.py) tells the same version
-- (a duplicate) from a corrected one (handled afresh; its outcome replaces the rejection).
ALTER TABLE reports ADD COLUMN fingerprint bytea;
