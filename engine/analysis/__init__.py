"""The research's analyses as engine functions: MoE oracle and gates, the error-vector
de-leakage study, and the physical (Fisher/CRLB) ceiling. Each analysis writes an
analysis folder (record.py) that engine.store.ingest_analysis copies into the store."""
