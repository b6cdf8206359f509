-- Duplicates across channels and 未诉先办 hotspots (docs/intake.md, "Merging duplicates" and
-- "Hotspots").

-- Where a case's matter is and what it says, for the nearby rule (services/intake/similarity.py):
-- its first report's point in WGS-84 (converted from GCJ-02/BD-09; else its building's point)
-- and that report's matter text (channel formulae and every run of 5+ digits taken out).
CREATE TABLE case_points (
    case_id     text PRIMARY KEY REFERENCES cases (case_id),
    category    text NOT NULL,
    lon         double precision NOT NULL,
    lat         double precision NOT NULL,
    matter_text text NOT NULL,
    building    text                         -- the building it was located at, if any
);
CREATE INDEX case_points_near ON case_points (category, lat, lon);

-- Cases opened per community and category in 15-minute buckets (services/intake/hotspots.py),
-- by the time their reports were made; buckets older than the baseline are deleted as they go.
CREATE TABLE hotspot_counts (
    community text NOT NULL,
    category  text NOT NULL,
    bucket    timestamptz NOT NULL,
    n         int NOT NULL,
    PRIMARY KEY (community, category, bucket)
);

-- One row per burst: the proactive case it opened and how long it stays active (a burst while
-- it is active extends it and opens nothing). Written under an advisory lock per (community,
-- category) in the transaction of the report that made the burst.
CREATE TABLE hotspots (
    hotspot_id     text PRIMARY KEY,
    community      text NOT NULL,
    street         text,
    district       text,
    category       text NOT NULL,
    case_id        text NOT NULL REFERENCES cases (case_id),
    started_at     timestamptz NOT NULL,
    active_until   timestamptz NOT NULL,
    reports        int NOT NULL,              -- in the window when it was found
    expected       double precision NOT NULL, -- a window's reports at the baseline's rate
    peak           int NOT NULL               -- the most reports in a window while active
);
CREATE INDEX hotspots_current ON hotspots (community, category, active_until DESC);
CREATE INDEX hotspots_district ON hotspots (district, started_at DESC);
CREATE INDEX hotspots_street ON hotspots (street, started_at DESC);
