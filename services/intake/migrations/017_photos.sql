-- Photos intake stores (shared/media; docs/intake.md, "Photos"): uploaded with an Open311 POST
-- (field media), checked and stripped of their metadata. photos: what each is and who sent it;
-- its bytes in photo_blobs, or in the object store when one is configured. A report names its
-- photos by id (reports.submitted photo_ids) and its case's events carry them (CasePhoto), so
-- that dispatch, which knows who may see the case, sends those callers here with a signed link
-- (GET /media/{photo_id}).
CREATE TABLE photos (
    photo_id text PRIMARY KEY,
    content_type text NOT NULL,
    size int NOT NULL,
    width int,
    height int,
    system text,            -- the upstream system that sent it first (its api key's)
    stored_at timestamptz NOT NULL
);

CREATE TABLE photo_blobs (
    photo_id text PRIMARY KEY,
    content_type text NOT NULL,
    data bytea NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);
