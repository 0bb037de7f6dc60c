-- 004: drop moe_experts. The base schema reserved it for MoE runs' per-expert rows, but no
-- writer ever filled it: MoE results are analyses (analysis_rows, the moe_bins /
-- moe_overall / moe_gates views of 002). Its three readers (report, TUI) are removed.

DROP TABLE IF EXISTS moe_experts;
