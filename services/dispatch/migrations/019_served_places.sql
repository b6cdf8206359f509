-- 插花地: a case located in a building or grid served by another community. The case's
-- district..grid are the serving chain (routing, escalation, reach to act); these are the
-- place's own administrative chain (cases.opened's location.administrative), which may read the
-- case but not act on it. All null for every other place.
ALTER TABLE cases
    ADD COLUMN admin_district text,
    ADD COLUMN admin_street text,
    ADD COLUMN admin_community text,
    ADD COLUMN admin_grid text;
