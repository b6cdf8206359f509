-- 插花地: a case whose place is served by a community other than its administrative one. The
-- case's district..grid are the serving chain (the official figures count it there); these are
-- the place's own chain (cases.opened's location.administrative), under which the figures show it
-- apart (served_elsewhere). All null for every other place.
ALTER TABLE cases
    ADD COLUMN admin_district text,
    ADD COLUMN admin_street text,
    ADD COLUMN admin_community text,
    ADD COLUMN admin_grid text;
-- Small partial indexes (only such cases): the cases administratively in a unit, and those a
-- unit serves for another.
CREATE INDEX cases_admin_district ON cases (admin_district) WHERE admin_district IS NOT NULL;
CREATE INDEX cases_admin_street ON cases (admin_street) WHERE admin_street IS NOT NULL;
CREATE INDEX cases_admin_community ON cases (admin_community) WHERE admin_community IS NOT NULL;
CREATE INDEX cases_admin_grid ON cases (admin_grid) WHERE admin_grid IS NOT NULL;
CREATE INDEX cases_served_district ON cases (district) WHERE admin_district IS NOT NULL;
CREATE INDEX cases_served_street ON cases (street) WHERE admin_street IS NOT NULL;
CREATE INDEX cases_served_community ON cases (community) WHERE admin_community IS NOT NULL;
CREATE INDEX cases_served_grid ON cases (grid) WHERE admin_grid IS NOT NULL;
