"""The built-in spectrum generator (docs/generator.md): a batched, differentiable torch
forward model θ → normalised PFS-MR spectrum, the ETC-based noise model, priors, the exact
CRLB by autograd, dataset presets and the resumable builder. Nothing is imported here so
that importing a submodule stays cheap (the CLI imports torch only inside commands)."""
