-- 005: the generator version is part of a dataset's identity (issue 11 item 6).
-- Two datasets may share a name (e.g. `default` rebuilt by a newer generator); they have
-- different fingerprints, and the views below now key on the fingerprint, never on the
-- name alone, so runs on old and new data are never ranked or curved together.
-- datasets.generator_version comes from run.json's dataset block (the manifest's
-- generator_version; NULL for datasets without a manifest or runs from before this).
-- Idempotent (IF NOT EXISTS / OR REPLACE), so it also runs on a fresh store.

ALTER TABLE datasets ADD COLUMN IF NOT EXISTS generator_version VARCHAR;
ALTER TABLE datasets ADD COLUMN IF NOT EXISTS preset VARCHAR;
ALTER TABLE datasets ADD COLUMN IF NOT EXISTS seed BIGINT;

-- Runs ingested before this migration carry no generator version yet: forgetting their
-- change-check signature makes the next `logg-engine ingest` re-read their run.json.
UPDATE runs SET state_sig = NULL;

-- ranks within one dataset build (fingerprint), test split and noise level; the new
-- columns come last so positional readers of the old columns are unaffected
CREATE OR REPLACE VIEW leaderboard AS
SELECT r.model, r.preset, r.dataset_name AS dataset, r.train_size, r.noise_level,
       r.seed, r.test_split, o.r2, o.r2_lo, o.r2_hi, o.mae, o.rmse, o.bias, o.n,
       r.duration_s, r.run_id, r.config_hash, r.ended,
       rank() OVER (PARTITION BY r.dataset_fingerprint, r.test_split, r.noise_level
                    ORDER BY o.r2 DESC NULLS LAST) AS rank,
       r.dataset_fingerprint, d.generator_version
FROM runs r JOIN run_overall o ON o.run_id = r.run_id AND o.subset = 'all'
LEFT JOIN datasets d ON d.fingerprint = r.dataset_fingerprint
WHERE r.status = 'finished'
ORDER BY dataset, r.dataset_fingerprint, r.noise_level, rank;

-- one point per model × dataset build × noise level × train size: two builds of a
-- dataset with the same name (another generator version) are two curves
CREATE OR REPLACE VIEW scaling_curve AS
SELECT model, dataset, noise_level, train_size, r2, mae, r2_lo, r2_hi, run_id,
       dataset_fingerprint, generator_version
FROM (
    SELECT r.model, r.dataset_name AS dataset, r.noise_level, r.train_size,
           o.r2, o.mae, o.r2_lo, o.r2_hi, r.run_id, r.dataset_fingerprint,
           d.generator_version,
           row_number() OVER (PARTITION BY r.model, r.dataset_fingerprint, r.noise_level,
                                           r.train_size
                              ORDER BY r.ended DESC NULLS LAST, r.run_id DESC) AS k
    FROM runs r JOIN run_overall o ON o.run_id = r.run_id AND o.subset = 'all'
    LEFT JOIN datasets d ON d.fingerprint = r.dataset_fingerprint
    WHERE r.status = 'finished'
)
WHERE k = 1
ORDER BY model, dataset, dataset_fingerprint, noise_level, train_size;
