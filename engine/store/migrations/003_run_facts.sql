-- 003: run_facts (what a run measured about itself) and the run_summary view.
-- metrics.json `extra` (train/predict seconds, n_train/n_test, peak RSS, the adapter's
-- describe() dict under `model`: n_params, best_epoch, best_iteration, ...) was only in the
-- run folder, so the report had to read files; it now lands here at ingest, flattened to
-- dotted keys (`train_seconds`, `model.n_params`) in the same long shape as run_params.
-- `extra.subsets` is not repeated here: it is run_metrics (subset <> 'all').
-- Idempotent (IF NOT EXISTS / OR REPLACE), so it also runs on a fresh store.

CREATE TABLE IF NOT EXISTS run_facts (
    run_id      VARCHAR NOT NULL,
    key         VARCHAR NOT NULL,    -- dotted path, e.g. 'train_seconds' or 'model.n_params'
    value_type  VARCHAR NOT NULL,    -- int | float | bool | str | null | json
    num_value   DOUBLE,              -- int/float/bool (1/0) values; NULL for non-finite
    text_value  VARCHAR              -- the value as text; lists as JSON
);

-- Runs ingested before this migration have no facts yet: forgetting their change-check
-- signature makes the next `logg-engine ingest` re-read every run folder that still
-- exists (so old stores fill run_facts without --force).
UPDATE runs SET state_sig = NULL;

CREATE OR REPLACE VIEW run_summary AS
WITH f AS (
    SELECT run_id,
           max(num_value)  FILTER (WHERE key = 'train_seconds')        AS train_seconds,
           max(num_value)  FILTER (WHERE key = 'predict_seconds')      AS predict_seconds,
           max(num_value)  FILTER (WHERE key = 'n_train')              AS n_train,
           max(num_value)  FILTER (WHERE key = 'n_test')               AS n_test,
           max(num_value)  FILTER (WHERE key = 'peak_rss_mb')          AS peak_rss_mb,
           max(num_value)  FILTER (WHERE key = 'model.n_params')       AS n_params,
           max(num_value)  FILTER (WHERE key = 'model.best_epoch')     AS best_epoch,
           max(num_value)  FILTER (WHERE key = 'model.epochs_trained') AS epochs_trained,
           max(num_value)  FILTER (WHERE key = 'model.best_iteration') AS best_iteration,
           max(text_value) FILTER (WHERE key = 'model.device')         AS device
    FROM run_facts
    GROUP BY run_id
)
SELECT r.run_id, r.model, r.preset, r.dataset_name AS dataset, r.train_size,
       r.noise_level, r.seed, r.status, o.r2, o.r2_lo, o.r2_hi, o.mae,
       r.duration_s, f.train_seconds, f.predict_seconds,
       CAST(f.n_train AS BIGINT) AS n_train, CAST(f.n_test AS BIGINT) AS n_test,
       CAST(f.n_params AS BIGINT) AS n_params, CAST(f.best_epoch AS BIGINT) AS best_epoch,
       CAST(f.epochs_trained AS BIGINT) AS epochs_trained,
       CAST(f.best_iteration AS BIGINT) AS best_iteration,
       coalesce(r.peak_rss_mb, f.peak_rss_mb) AS peak_rss_mb,
       coalesce(r.device, f.device) AS device, r.ended
FROM runs r
LEFT JOIN run_overall o ON o.run_id = r.run_id AND o.subset = 'all'
LEFT JOIN f ON f.run_id = r.run_id
ORDER BY r.model, r.train_size, r.run_id;
