"""The DuckDB results store: schema.sql (+ migrations), `ingest` (the only writer),
`read` (short-lived read-only access)."""
