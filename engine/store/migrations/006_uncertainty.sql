-- 006: predictive uncertainty (issue 13). Per prediction: the calibrated σ (dex, the
-- 68.27 % half-width), the raw scale it was calibrated from, and the 68.27 % / 95 %
-- interval bounds; NULL for runs without intervals (no validation split, older runs).
-- Per bin: coverage with its binomial range and flag, width, NLL, CRPS, σ/σ_CRLB
-- (engine.eval.uncertainty). Views `calibration` (one row per run) and `coverage_by_bin`
-- (one row per run, scheme, bin) are documented in docs/sql.md.
-- Idempotent (IF NOT EXISTS / OR REPLACE), so it also runs on a fresh store.

ALTER TABLE predictions ADD COLUMN IF NOT EXISTS sigma DOUBLE;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS sigma_raw DOUBLE;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS lo68 DOUBLE;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS hi68 DOUBLE;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS lo95 DOUBLE;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS hi95 DOUBLE;

CREATE TABLE IF NOT EXISTS uq_coverage (
    run_id      VARCHAR NOT NULL,
    scheme      VARCHAR NOT NULL,    -- all | gauss (reliability levels) | snr | snr_l2 | teff_mh
    bin         INTEGER NOT NULL,
    label       VARCHAR,
    n           BIGINT,
    nominal     DOUBLE NOT NULL,     -- 0.6827 | 0.95 (stated intervals); gauss: 0.1 … 0.99
    observed    DOUBLE,              -- fraction of stars whose true log g is inside
    lo          DOUBLE,              -- binomial 95 % range of the observed fraction at n
    hi          DOUBLE,
    flag        BOOLEAN,             -- observed outside [lo, hi]
    width       DOUBLE               -- mean interval width (dex)
);

CREATE TABLE IF NOT EXISTS uq_scores (
    run_id            VARCHAR NOT NULL,
    scheme            VARCHAR NOT NULL,  -- all | snr | snr_l2 | teff_mh
    bin               INTEGER NOT NULL,
    label             VARCHAR,
    n                 BIGINT,
    nll               DOUBLE,            -- mean −log N(y; ŷ, σ) (scoringrules logs_normal)
    crps              DOUBLE,            -- mean CRPS of N(ŷ, σ) in dex (scoringrules)
    sigma_median      DOUBLE,            -- median σ (dex)
    sigma_crlb_ratio  DOUBLE             -- median σ / √crlb_log_g (1 = the Cramér–Rao bound)
);

-- Runs ingested before this migration: re-read their folders at the next ingest.
UPDATE runs SET state_sig = NULL;

CREATE OR REPLACE VIEW coverage_by_bin AS
SELECT r.run_id, r.model, r.preset, s.scheme, s.bin, s.label, s.n,
       c68.observed AS cov68, c68.lo AS cov68_lo, c68.hi AS cov68_hi,
       c95.observed AS cov95, c95.lo AS cov95_lo, c95.hi AS cov95_hi,
       (c68.flag OR c95.flag) AS flag,
       c68.width AS width68, c95.width AS width95,
       s.nll, s.crps, s.sigma_median, s.sigma_crlb_ratio
FROM uq_scores s
JOIN runs r USING (run_id)
LEFT JOIN uq_coverage c68 ON c68.run_id = s.run_id AND c68.scheme = s.scheme
     AND c68.bin = s.bin AND abs(c68.nominal - 0.6827) < 1e-9
LEFT JOIN uq_coverage c95 ON c95.run_id = s.run_id AND c95.scheme = s.scheme
     AND c95.bin = s.bin AND abs(c95.nominal - 0.95) < 1e-9;

CREATE OR REPLACE VIEW calibration AS
SELECT r.run_id, r.model, r.preset, r.dataset_fingerprint, r.test_split, r.noise_level,
       (u.run_id IS NOT NULL) AS has_sigma,
       u.n, u.cov68, u.cov68_lo, u.cov68_hi, u.cov95, u.cov95_lo, u.cov95_hi,
       u.flag, u.width68, u.width95, u.nll, u.crps, u.sigma_median, u.sigma_crlb_ratio,
       (SELECT count(*) FROM coverage_by_bin b
         WHERE b.run_id = r.run_id AND b.scheme = 'snr' AND b.flag) AS n_snr_bins_flagged
FROM runs r
LEFT JOIN coverage_by_bin u ON u.run_id = r.run_id AND u.scheme = 'all'
WHERE r.status = 'finished';
