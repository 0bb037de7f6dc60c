"""What the analyses read from a dataset: the labels/meta of a split, its frozen noisy
test realisation, its streamed noisy training rows, and row-subset chunk sources.

Why a separate module: every analysis needs the same handful of reads, and all of them
must agree with the runs (training noise = `Split.noisy_chunks(noise_level, seed)`,
val/test noise = the frozen `Split.noisy(noise_level)` every model is scored on)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from engine.errors import DataError

CHUNK = 2048
META_COLUMNS = ("log_g", "T_eff", "M_H", "snr", "mag", "snr_l2", "crlb_log_g", "crlb_schur")


def split_meta(split, noise_level: float) -> pd.DataFrame:
    """log_g, T_eff, M_H, snr, mag, crlb_* of a split, plus `snr_l2` recomputed as
    ‖flux‖/(‖error‖·noise_level) from the clean flux and nominal error (the research's
    definition; the same for train, val and test, whatever the stored column says)."""
    p = split.params
    if "log_g" not in p.columns:
        raise DataError("params table has no log_g column", key="log_g",
                        path=split.dataset.root, hint="rebuild the dataset")
    out = pd.DataFrame({c: pd.to_numeric(p[c], errors="coerce").to_numpy(np.float64)
                        if c in p.columns else np.full(len(p), np.nan)
                        for c in META_COLUMNS if c != "snr_l2"})
    out["snr_l2"] = l2_snr(split, noise_level)
    return out


def l2_snr(split, noise_level: float) -> np.ndarray:
    """Per-row L2 SNR ‖flux‖/(‖error‖·noise_level). The two per-row norms depend on the
    clean flux and the nominal error only, so they are computed once per shard and kept in
    the dataset's `.cache` (keyed by its fingerprint): at 1M rows that read is the whole
    training set (~33 GB), which every MoE analysis of a study would otherwise repeat."""
    out = np.empty(split.n_rows, dtype=np.float64)
    pos = 0
    for seg in split.segments:
        norms = shard_norms(split.dataset, seg.shard)
        n = seg.stop - seg.start
        with np.errstate(divide="ignore"):
            out[pos:pos + n] = (norms[0, seg.start:seg.stop]
                                / (norms[1, seg.start:seg.stop] * noise_level))
        pos += n
    return out


def shard_norms(ds, shard: str) -> np.ndarray:
    """(2, rows) float64: ‖flux‖₂ and ‖error‖₂ of every row of a shard, from the dataset's
    cache when a previous call computed them (a damaged or mismatched file is recomputed;
    a dataset folder that cannot be written to is simply not cached)."""
    from engine.atomic import save_npy

    path = ds.root / ".cache" / f"l2norms_{shard}_{ds.fingerprint()[:8]}.npy"
    rows = ds.rows(shard)
    if path.is_file():
        try:
            arr = np.load(path)
            if arr.shape == (2, rows) and arr.dtype == np.float64:
                return arr
        except (OSError, ValueError):
            pass
    arr = np.empty((2, rows), dtype=np.float64)
    for s, e, b in ds.split(shard).iter_chunks(("flux", "error"), CHUNK):
        arr[0, s:e] = np.linalg.norm(np.asarray(b["flux"], np.float64), axis=1)
        arr[1, s:e] = np.linalg.norm(np.asarray(b["error"], np.float64), axis=1)
    try:
        save_npy(path, arr)
    except OSError:
        pass
    return arr


class RowSubset:
    """A ChunkSource (engine.models.base) over the rows `rows` (sorted indices) of a
    split's noisy training realisation: one expert's training set, streamed."""

    def __init__(self, split, rows: np.ndarray, noise_level: float, seed: int,
                 label: str = "log_g") -> None:
        self.split = split
        self.rows = np.sort(np.asarray(rows, dtype=np.int64))
        self.noise_level = float(noise_level)
        self.seed = int(seed)
        self.n_rows = int(self.rows.size)
        self.n_features = int(split.n_pixels)
        self._y = split.params[label].to_numpy(np.float64)[self.rows]

    def labels(self) -> np.ndarray:
        return self._y

    def chunks(self, chunk_rows: int) -> Iterator[np.ndarray]:
        buf, have = [], 0
        for s, e, x, _y in self.split.noisy_chunks(self.noise_level, self.seed, CHUNK):
            lo, hi = np.searchsorted(self.rows, [s, e])
            if hi > lo:
                buf.append(x[self.rows[lo:hi] - s])
                have += hi - lo
            while have >= chunk_rows:
                block = np.concatenate(buf)
                yield block[:chunk_rows]
                rest = block[chunk_rows:]
                buf, have = ([rest] if len(rest) else []), len(rest)
        if have:
            yield np.concatenate(buf)


def stream_rows(split, noise_level: float, seed: int, names=("error",)
                ) -> Iterator[tuple[int, int, np.ndarray, dict[str, np.ndarray]]]:
    """(start, stop, noisy flux, {name: array}) over a split's training realisation."""
    for s, e, x, _y in split.noisy_chunks(noise_level, seed, CHUNK):
        yield s, e, x, {n: split.read(n, s, e) for n in names}
