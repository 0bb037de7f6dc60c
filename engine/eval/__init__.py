"""Evaluation protocol: metrics, fixed bins, bootstrap CIs, Fisher ceiling.
Entry point: `engine.eval.protocol.evaluate`."""
