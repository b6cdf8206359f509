-- Photos (shared/media; docs/dispatch.md, "Photos"). case_photos: every photo of a case and
-- where it comes from: 'upload', sent to dispatch by a handler (POST /cases/{id}/photos; its bytes
-- in photo_blobs, or in the object store when one is configured), or 'report', a report's photo
-- intake stores (from cases.opened / cases.merged; dispatch serves it by a signed link to
-- intake). A photo is named by the hash of its bytes, so one photo may belong to two cases; who
-- may see a photo is who may see its case.
CREATE TABLE case_photos (
    case_id text NOT NULL,
    photo_id text NOT NULL,
    origin text NOT NULL CHECK (origin IN ('upload', 'report')),
    content_type text NOT NULL,
    size int NOT NULL,
    width int,
    height int,
    uploaded_by text,       -- 'upload': the handler who sent it
    report_id text,         -- 'report': the report it came with
    added_at timestamptz NOT NULL,
    PRIMARY KEY (case_id, photo_id)
);

CREATE TABLE photo_blobs (
    photo_id text PRIMARY KEY,
    content_type text NOT NULL,
    data bytea NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);
