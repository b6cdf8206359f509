-- The command centre's category for a case (cases.reclassified, 人工分拨): the figures count the
-- case under it. When the latest decision was made, so that an older decision, or a cases.opened
-- arriving late (other topic, no order between them), does not put back the earlier category.
ALTER TABLE cases ADD COLUMN reclassified_at timestamptz;
