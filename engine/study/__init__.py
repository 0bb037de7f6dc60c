"""The whole study as one resumable command (`logg-engine study`, `make study`).

- `plan`: which steps a study has (dataset, scaling grid, ViT, MoE, de-leakage, ceiling,
  template fit, report), each a `logg-engine` command line, capped by `--max-size`.
- `state`: the study folder `<ws>/studies/<name>/` — state.json (what finished, how long it
  took) and events.jsonl (progress in the engine's event vocabulary, for the TUI).
- `runner`: runs the steps in order as child processes, skips finished ones, survives
  Ctrl-C, kill -9 and reboots (a killed step is redone; a finished one never is).

The study sits above the report and the analyses (cli → study → report → analysis → runs):
it only composes commands that exist on their own, so every step can be rerun by hand.
"""
