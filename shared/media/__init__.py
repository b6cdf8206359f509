"""Photos (照片): attachments on reports, handler actions and verification.

``images`` (pure) checks a photo by its content and rewrites it without metadata; ``links``
(pure) signs and checks the short-lived links by which one service lets a caller fetch a photo
another service stores; ``blobs`` keeps the bytes, in PostgreSQL or an S3-compatible object
store (``blobs_from_settings``). docs/integration.md, "Photos", tells the whole story.
"""
