-- 002: views over analyses / analysis_rows (written by engine.store.ingest_analysis).
-- Each analysis row is long (key, metric, value, lo, hi, extra JSON); these views pivot
-- one key's metrics back into columns. Idempotent (CREATE OR REPLACE), so it also runs
-- on a fresh store built from schema.sql.

CREATE OR REPLACE VIEW moe_bins AS
SELECT a.analysis_id, a.params->>'bins' AS bins, a.params->>'expert' AS expert_kind,
       a.params->>'dataset' AS dataset, TRY_CAST(a.params->>'size' AS BIGINT) AS train_size,
       TRY_CAST(a.params->>'noise_level' AS DOUBLE) AS noise_level,
       a.params->>'out_of_range' AS out_of_range,
       TRY_CAST(r.extra->>'bin' AS INTEGER) AS bin, r.extra->>'label' AS label,
       r.extra->>'expert' AS expert,
       CAST(max(r.value) FILTER (WHERE r.metric = 'n_train') AS BIGINT)    AS n_train,
       CAST(max(r.value) FILTER (WHERE r.metric = 'n_test') AS BIGINT)     AS n_test,
       max(r.value) FILTER (WHERE r.metric = 'r2_oracle')  AS r2_oracle,
       max(r.value) FILTER (WHERE r.metric = 'r2_global')  AS r2_global,
       max(r.value) FILTER (WHERE r.metric = 'delta_r2')   AS delta_r2,
       max(r.value) FILTER (WHERE r.metric = 'mae_oracle') AS mae_oracle,
       max(r.value) FILTER (WHERE r.metric = 'mae_global') AS mae_global,
       max(r.value) FILTER (WHERE r.metric = 'alpha')      AS alpha
FROM analyses a JOIN analysis_rows r USING (analysis_id)
WHERE a.kind = 'moe_oracle' AND r.extra->>'section' = 'bin'
GROUP BY ALL
ORDER BY a.analysis_id, bin;

CREATE OR REPLACE VIEW moe_overall AS
SELECT a.analysis_id, a.params->>'bins' AS bins, a.params->>'expert' AS expert_kind,
       a.params->>'dataset' AS dataset, TRY_CAST(a.params->>'size' AS BIGINT) AS train_size,
       TRY_CAST(a.params->>'noise_level' AS DOUBLE) AS noise_level,
       a.params->>'out_of_range' AS out_of_range, r.extra->>'subset' AS subset,
       CAST(max(r.value) FILTER (WHERE r.metric = 'n') AS BIGINT) AS n,
       max(r.value) FILTER (WHERE r.metric = 'coverage')   AS coverage,
       max(r.value) FILTER (WHERE r.metric = 'r2_oracle')  AS r2_oracle,
       max(r.lo)    FILTER (WHERE r.metric = 'r2_oracle')  AS r2_oracle_lo,
       max(r.hi)    FILTER (WHERE r.metric = 'r2_oracle')  AS r2_oracle_hi,
       max(r.value) FILTER (WHERE r.metric = 'r2_global')  AS r2_global,
       max(r.lo)    FILTER (WHERE r.metric = 'r2_global')  AS r2_global_lo,
       max(r.hi)    FILTER (WHERE r.metric = 'r2_global')  AS r2_global_hi,
       max(r.value) FILTER (WHERE r.metric = 'delta_r2')   AS delta_r2,
       max(r.lo)    FILTER (WHERE r.metric = 'delta_r2')   AS delta_r2_lo,
       max(r.hi)    FILTER (WHERE r.metric = 'delta_r2')   AS delta_r2_hi,
       max(r.value) FILTER (WHERE r.metric = 'mae_oracle') AS mae_oracle,
       max(r.value) FILTER (WHERE r.metric = 'mae_global') AS mae_global
FROM analyses a JOIN analysis_rows r USING (analysis_id)
WHERE a.kind = 'moe_oracle' AND r.extra->>'section' = 'overall'
GROUP BY ALL
ORDER BY a.analysis_id, subset;

CREATE OR REPLACE VIEW moe_gates AS
SELECT a.analysis_id, a.params->>'bins' AS bins, a.params->>'gate' AS gate,
       a.params->>'routing' AS routing, TRY_CAST(a.params->>'tau' AS DOUBLE) AS tau,
       a.params->>'features' AS features, a.params->>'dataset' AS dataset,
       TRY_CAST(a.params->>'size' AS BIGINT) AS train_size,
       r.extra->>'section' AS section, r.extra->>'subset' AS subset,
       TRY_CAST(r.extra->>'bin' AS INTEGER) AS bin, r.extra->>'label' AS label,
       CAST(max(r.value) FILTER (WHERE r.metric IN ('n', 'n_test')) AS BIGINT) AS n,
       max(r.value) FILTER (WHERE r.metric = 'r2_gate')       AS r2_gate,
       max(r.lo)    FILTER (WHERE r.metric = 'r2_gate')       AS r2_gate_lo,
       max(r.hi)    FILTER (WHERE r.metric = 'r2_gate')       AS r2_gate_hi,
       max(r.value) FILTER (WHERE r.metric = 'r2_oracle')     AS r2_oracle,
       max(r.value) FILTER (WHERE r.metric = 'r2_global')     AS r2_global,
       max(r.value) FILTER (WHERE r.metric = 'rho')           AS rho,
       max(r.lo)    FILTER (WHERE r.metric = 'rho')           AS rho_lo,
       max(r.hi)    FILTER (WHERE r.metric = 'rho')           AS rho_hi,
       max(r.value) FILTER (WHERE r.metric = 'accuracy')      AS accuracy,
       max(r.value) FILTER (WHERE r.metric = 'fallback_rate') AS fallback_rate,
       max(r.value) FILTER (WHERE r.metric = 'mae_gate')      AS mae_gate
FROM analyses a JOIN analysis_rows r USING (analysis_id)
WHERE a.kind = 'moe_gate' AND r.extra->>'section' IN ('overall', 'bin')
GROUP BY ALL
ORDER BY a.analysis_id, section DESC, subset, bin;

CREATE OR REPLACE VIEW deleakage AS
SELECT a.analysis_id, a.params->>'dataset' AS dataset,
       TRY_CAST(a.params->>'size' AS BIGINT) AS train_size, r.extra->>'strategy' AS strategy,
       r.extra->>'definition' AS definition,
       CAST(max(r.value) FILTER (WHERE r.metric = 'n_features') AS BIGINT)    AS n_features,
       max(r.value) FILTER (WHERE r.metric = 'logg_r2_train') AS logg_r2_train,
       max(r.value) FILTER (WHERE r.metric = 'logg_r2_test')  AS logg_r2_test,
       max(r.value) FILTER (WHERE r.metric = 'snr_r2_train')  AS snr_r2_train,
       max(r.value) FILTER (WHERE r.metric = 'snr_r2_test')   AS snr_r2_test,
       max(r.value) FILTER (WHERE r.metric = 'passed') > 0.5  AS passed
FROM analyses a JOIN analysis_rows r USING (analysis_id)
WHERE a.kind = 'deleakage'
GROUP BY ALL
ORDER BY a.analysis_id, strategy;

CREATE OR REPLACE VIEW ceiling AS
SELECT a.analysis_id, a.params->>'dataset' AS dataset, r.extra->>'section' AS section,
       r.extra->>'run_id' AS run_id, r.extra->>'model' AS model,
       r.extra->>'scheme' AS scheme, TRY_CAST(r.extra->>'bin' AS INTEGER) AS bin,
       r.extra->>'label' AS label,
       max(r.value) FILTER (WHERE r.metric = 'lo')            AS lo,
       max(r.value) FILTER (WHERE r.metric = 'hi')            AS hi,
       CAST(max(r.value) FILTER (WHERE r.metric = 'n') AS BIGINT) AS n,
       CAST(max(r.value) FILTER (WHERE r.metric = 'n_failed') AS BIGINT)      AS n_failed,
       max(r.value) FILTER (WHERE r.metric = 'var')           AS var,
       max(r.value) FILTER (WHERE r.metric = 'r2_max_pop')    AS r2_max_pop,
       max(r.value) FILTER (WHERE r.metric = 'r2_max_bin')    AS r2_max_bin,
       max(r.value) FILTER (WHERE r.metric = 'r2_max_median') AS r2_max_median,
       max(r.value) FILTER (WHERE r.metric = 'r2_max_mean')   AS r2_max_mean,
       max(r.value) FILTER (WHERE r.metric = 'r2_max_p10')    AS r2_max_p10,
       max(r.value) FILTER (WHERE r.metric = 'r2_max_p90')    AS r2_max_p90,
       max(r.value) FILTER (WHERE r.metric = 'r2_max_bayes')  AS r2_max_bayes,
       max(r.value) FILTER (WHERE r.metric = 'sigma_p10')     AS sigma_p10,
       max(r.value) FILTER (WHERE r.metric = 'sigma_p50')     AS sigma_p50,
       max(r.value) FILTER (WHERE r.metric = 'sigma_p90')     AS sigma_p90,
       max(r.value) FILTER (WHERE r.metric = 'schur_median')  AS schur_median,
       max(r.value) FILTER (WHERE r.metric = 'crlb_orders')   AS crlb_orders,
       max(r.value) FILTER (WHERE r.metric = 'r2')            AS r2_model,
       max(r.value) FILTER (WHERE r.metric = 'gap')           AS gap,
       max(r.value) FILTER (WHERE r.metric = 'eta')           AS eta
FROM analyses a JOIN analysis_rows r USING (analysis_id)
WHERE a.kind = 'ceiling'
GROUP BY ALL
ORDER BY a.analysis_id, section, run_id, scheme, bin;
