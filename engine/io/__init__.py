"""Spectrum data I/O in the pfsspec HDF5 layout (docs/data-format.md).

- `columns`: the params-table columns (`PFSSPEC_COLUMNS`, `LOGG_COLUMNS`, `empty_params`).
- `pfsspec`: `write_spectra`, `SpectrumWriter` (streaming) and the lazy `SpectrumFile`.
- `dataset`: `Dataset` (a folder of shards), `Split`, `parse_size`, `resolve_dataset`.
- `shard_writer`, `shard_verify`, `diskspace`: the generator's resumable, checksummed,
  verified shard writer and the disk-space estimate/check (docs/generator.md).
- `seeded_noise`, `snr`, `validate`, `inspect`: seeded noise, SNR estimators, per-block checks,
  and the `data inspect` report.
"""
