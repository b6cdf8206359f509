-- Redaction (services/intake/redaction.py): what a report's free text said before names, ID card,
-- bank card and phone numbers and house numbers were masked for the topics, kept only here,
-- sealed with the personal-data key like names and phones (`wangge pii rotate` re-encrypts every
-- *_enc column). NULL for reports handled before this, and for rejected ones.
ALTER TABLE reports ADD COLUMN title_enc bytea, ADD COLUMN description_enc bytea;
