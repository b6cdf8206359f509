-- 插花地: a building or grid served by a community other than its administrative parent
-- (registry.units' served_by, a community code; null: served by its own chain).
ALTER TABLE units ADD COLUMN served_by text;
