"""Runs on a Ray cluster (docs/cluster.md). Ray is imported inside functions only.

- `executor`: each run as a Ray task (the driver ingests; the store stays single-writer).
- `task`, `worker`: what the task does on its node, and the worker process it supervises.
- `ship`: a run folder to and from bytes, for nodes without the shared workspace.

Importing Ray, joining a cluster and stopping Ray Train workers live one layer down in
`engine.models.ray_train`: the data-parallel trainers (models) need them too.
"""
