-- Intake's classifier (services/intake/classify.py): the models `wangge classifier retrain`
-- installed. Intake classifies with the latest at start; with none, with the model it trains
-- from the labelled reports shipped with it. The labelled examples of corrections are the
-- reclassifications (migration 007).
CREATE TABLE classifier_models (
    version          text PRIMARY KEY,           -- char-lr-v3-<digest of recipe and examples>
    installed_at     timestamptz NOT NULL DEFAULT now(),
    method           text NOT NULL,
    recipe           jsonb NOT NULL,             -- how it was trained (C, n-grams, folds, seed)
    -- the corrections it learnt from, [[case_id, decided_at], ...] (a case's latest decision)
    corrections      jsonb NOT NULL DEFAULT '[]',
    metrics          jsonb NOT NULL,             -- its and the replaced model's scores, same folds
    parameters       bytea NOT NULL              -- numpy .npz (arrays only; read without pickle)
);
CREATE INDEX classifier_models_latest ON classifier_models (installed_at DESC);
