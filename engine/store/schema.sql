-- logg results store: the base schema (version 1; the one place the base tables live).
-- schema-version: 1
-- Every store, fresh or old, is then brought to the latest version by applying
-- migrations/NNN_*.sql with N > its schema_meta version, in order (engine.store.connect).
-- So a change to the schema is a new migration file, never an edit of a released one.
-- Keys: every metric carries its full evaluation key (run, dataset fingerprint, split,
-- noise level, noise realisation, subset) so only like is compared with like.

CREATE TABLE IF NOT EXISTS schema_meta (
    version     INTEGER NOT NULL,
    applied     TIMESTAMP DEFAULT current_timestamp,
    note        VARCHAR
);

CREATE TABLE IF NOT EXISTS datasets (
    fingerprint VARCHAR PRIMARY KEY,
    name        VARCHAR,
    path        VARCHAR,
    n_train     BIGINT,
    n_val       BIGINT,
    n_test      BIGINT,
    splits      JSON,            -- {split name: n rows} as recorded by the run
    first_seen  TIMESTAMP
);

CREATE TABLE IF NOT EXISTS runs (
    run_id              VARCHAR PRIMARY KEY,
    model               VARCHAR,
    preset              VARCHAR,
    config_hash         VARCHAR,
    dataset_fingerprint VARCHAR,
    dataset_name        VARCHAR,
    dataset_path        VARCHAR,
    train_size          BIGINT,
    noise_level         DOUBLE,
    seed                BIGINT,
    test_split          VARCHAR,
    val_split           VARCHAR,
    status              VARCHAR,     -- queued | running | finished | failed | cancelled | lost
    error               VARCHAR,
    created             TIMESTAMP,
    started             TIMESTAMP,
    ended               TIMESTAMP,
    duration_s          DOUBLE,
    last_event          TIMESTAMP,
    host                VARCHAR,
    pid                 BIGINT,
    git_sha             VARCHAR,
    git_dirty           BOOLEAN,
    command             VARCHAR,
    peak_rss_mb         DOUBLE,
    device              VARCHAR,
    versions            JSON,
    spec                JSON,        -- the resolved spec as written to run.json
    run_dir             VARCHAR,
    ingested            TIMESTAMP,
    state_sig           VARCHAR      -- (mtime, size) of the run files at ingest: change check
);

CREATE TABLE IF NOT EXISTS run_params (
    run_id      VARCHAR NOT NULL,
    key         VARCHAR NOT NULL,    -- dotted path, e.g. 'alpha' or 'model.hidden_size'
    value_type  VARCHAR NOT NULL,    -- int | float | bool | str | null | json
    num_value   DOUBLE,
    text_value  VARCHAR
);

CREATE TABLE IF NOT EXISTS metric_history (
    run_id  VARCHAR NOT NULL,
    step    BIGINT,
    split   VARCHAR,
    name    VARCHAR NOT NULL,
    value   DOUBLE,
    t       DOUBLE                   -- unix seconds of the event
);

CREATE TABLE IF NOT EXISTS run_metrics (
    run_id              VARCHAR NOT NULL,
    dataset_fingerprint VARCHAR,
    split               VARCHAR,
    noise_level         DOUBLE,
    realisation         VARCHAR,     -- noise realisation id (e.g. 'stored' or 'seed:0')
    subset              VARCHAR NOT NULL,  -- 'all' | 'covered' (inside the 9 Teff×[M/H] bins)
    metric              VARCHAR NOT NULL,  -- n, r2, mae, rmse, bias, p90, slope, r2_max, ...
    value               DOUBLE,
    lo                  DOUBLE,      -- 2.5 % bootstrap percentile (r2, mae) else NULL
    hi                  DOUBLE
);

CREATE TABLE IF NOT EXISTS bin_metrics (
    run_id      VARCHAR NOT NULL,
    scheme      VARCHAR NOT NULL,    -- snr | snr_l2 | mag | logg | teff_mh
    bin         INTEGER NOT NULL,
    label       VARCHAR,
    lo          DOUBLE,              -- NULL for teff_mh (two axes; see label) and open ends
    hi          DOUBLE,
    n           BIGINT,
    r2          DOUBLE,
    r2_lo       DOUBLE,
    r2_hi       DOUBLE,
    mae         DOUBLE,
    rmse        DOUBLE,
    bias        DOUBLE,
    r2_max      DOUBLE,              -- 1 − mean(min(CRLB, Var_bin))/Var_bin
    r2_max_pop  DOUBLE,              -- same with Var of the whole test split
    eta         DOUBLE               -- mean(CRLB)/MSE
);

CREATE TABLE IF NOT EXISTS predictions (
    run_id      VARCHAR NOT NULL,
    idx         BIGINT NOT NULL,     -- row in the test split
    y_true      DOUBLE,
    y_pred      DOUBLE,
    snr         DOUBLE,
    snr_l2      DOUBLE,
    mag         DOUBLE,
    T_eff       DOUBLE,
    M_H         DOUBLE,
    crlb_log_g  DOUBLE
);

-- Reserved for MoE runs' per-expert rows, never written; dropped by migration 004 (MoE
-- results are analyses: analysis_rows and the moe_* views).
CREATE TABLE IF NOT EXISTS moe_experts (
    run_id      VARCHAR NOT NULL,
    expert      INTEGER NOT NULL,
    scheme      VARCHAR,
    label       VARCHAR,
    n_train     BIGINT,
    n_test      BIGINT,
    r2          DOUBLE,
    r2_global   DOUBLE,              -- the global model on the same rows
    mae         DOUBLE,
    params      JSON
);

CREATE TABLE IF NOT EXISTS analyses (
    analysis_id VARCHAR PRIMARY KEY,
    kind        VARCHAR NOT NULL,    -- e.g. deleakage | ceiling | moe
    run_id      VARCHAR,
    params      JSON,
    created     TIMESTAMP
);

CREATE TABLE IF NOT EXISTS analysis_rows (
    analysis_id VARCHAR NOT NULL,
    row_idx     INTEGER NOT NULL,
    key         VARCHAR,             -- what the row is about (strategy, bin, magnitude, ...)
    metric      VARCHAR,
    value       DOUBLE,
    lo          DOUBLE,
    hi          DOUBLE,
    extra       JSON
);

-- ---------------------------------------------------------------- views (docs/sql.md)

CREATE OR REPLACE VIEW run_overall AS
SELECT run_id, dataset_fingerprint, split, noise_level, realisation, subset,
       max(value) FILTER (WHERE metric = 'n')          AS n,
       max(value) FILTER (WHERE metric = 'r2')         AS r2,
       max(lo)    FILTER (WHERE metric = 'r2')         AS r2_lo,
       max(hi)    FILTER (WHERE metric = 'r2')         AS r2_hi,
       max(value) FILTER (WHERE metric = 'mae')        AS mae,
       max(lo)    FILTER (WHERE metric = 'mae')        AS mae_lo,
       max(hi)    FILTER (WHERE metric = 'mae')        AS mae_hi,
       max(value) FILTER (WHERE metric = 'rmse')       AS rmse,
       max(value) FILTER (WHERE metric = 'bias')       AS bias,
       max(value) FILTER (WHERE metric = 'p90')        AS p90,
       max(value) FILTER (WHERE metric = 'slope')      AS slope,
       max(value) FILTER (WHERE metric = 'r2_max_pop') AS r2_max_pop,
       max(value) FILTER (WHERE metric = 'eta')        AS eta
FROM run_metrics
GROUP BY ALL;

CREATE OR REPLACE VIEW leaderboard AS
SELECT r.model, r.preset, r.dataset_name AS dataset, r.train_size, r.noise_level,
       r.seed, r.test_split, o.r2, o.r2_lo, o.r2_hi, o.mae, o.rmse, o.bias, o.n,
       r.duration_s, r.run_id, r.config_hash, r.ended,
       rank() OVER (PARTITION BY r.dataset_fingerprint, r.test_split, r.noise_level
                    ORDER BY o.r2 DESC NULLS LAST) AS rank
FROM runs r JOIN run_overall o ON o.run_id = r.run_id AND o.subset = 'all'
WHERE r.status = 'finished'
ORDER BY dataset, r.noise_level, rank;

CREATE OR REPLACE VIEW scaling_curve AS
SELECT model, dataset, noise_level, train_size, r2, mae, r2_lo, r2_hi, run_id
FROM (
    SELECT r.model, r.dataset_name AS dataset, r.noise_level, r.train_size,
           o.r2, o.mae, o.r2_lo, o.r2_hi, r.run_id,
           row_number() OVER (PARTITION BY r.model, r.dataset_name, r.noise_level, r.train_size
                              ORDER BY r.ended DESC NULLS LAST, r.run_id DESC) AS k
    FROM runs r JOIN run_overall o ON o.run_id = r.run_id AND o.subset = 'all'
    WHERE r.status = 'finished'
)
WHERE k = 1
ORDER BY model, dataset, noise_level, train_size;

CREATE OR REPLACE VIEW bin_table AS
SELECT r.model, r.dataset_name AS dataset, r.train_size, r.noise_level, b.*
FROM bin_metrics b JOIN runs r USING (run_id)
ORDER BY b.run_id, b.scheme, b.bin;

CREATE OR REPLACE VIEW r2_vs_snr AS
SELECT run_id, model, dataset, train_size, noise_level, bin, label, lo, hi,
       (lo + hi) / 2 AS snr_mid, n, r2, r2_lo, r2_hi, mae, rmse, bias, r2_max, r2_max_pop, eta,
       r2_max - r2 AS gap
FROM bin_table
WHERE scheme = 'snr';
