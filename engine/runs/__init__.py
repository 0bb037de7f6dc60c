"""Runs and jobs: a validated `RunSpec` in, a run folder out (docs/dev-contracts.md).

- `spec`: `RunSpec`, built at the edge (CLI, TUI) and the only thing passed inward.
- `folder`: the run folder (run.json, events.jsonl with heartbeat, atomic JSON writes).
- `provenance`: what reproduces a run (git, versions, host, command).
- `registry`: model name → adapter (engine.models.contract.ModelAdapter), imported lazily.
- `runner`: the in-process lifecycle (train → save → predict → evaluate → write).
- `worker`: `python -m engine.runs.worker RUN_DIR`, the subprocess that runs it.
- `executor`: the local executor and the one launch (`spawn`, `launch_run`), the one
  cancel (`cancel`, `cancel_run`) and the follower (`follow`, through engine.run_state).
- `scaling`: the models × sizes grid, skipping points the store already holds.
- `ray/`: the same runs on a Ray cluster (the data-parallel trainers' Ray plumbing is
  engine.models.ray_train, one layer down).
"""
