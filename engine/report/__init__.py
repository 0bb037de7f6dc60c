"""The markdown results report (`logg-engine report`): a consumer of the store, so it sits
above it (cli → report → analysis → runs → models → store/io/generator → eval → base).

- `document`: `build_report` and `load_report_data` (the one store read of the report).
- `scaling_tables`, `moe_tables`, `sections`, `compare`: the report's sections.
- `markdown`: number and table formatting shared by the sections.
- `research_reference`: the research's own published numbers (the only typed-in values),
  used by `compare` and labelled as the research's.
"""
