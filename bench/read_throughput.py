"""Chunked read throughput: `SpectrumFile.iter_rows` (float32 conversion, NaN-error fill,
per-chunk validation) against a bare h5py slice read of the same rows, side by side.

Writes a temporary ~20k × 4096 float32 file (flux + error, ~650 MB; pfsspec chunk rule →
one (20000, 4096) chunk per array), warms the page cache, then alternates the readers and
keeps the best of REPEATS runs each. Also times `Split.noisy_chunks` (the Ridge/LightGBM
training read: flux + error + one seeded N(0,1) draw per pixel) on the same rows. Prints
the ratios and writes bench/results/read_throughput.json."""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.io.columns import empty_params  # noqa: E402
from engine.io.dataset import Dataset  # noqa: E402
from engine.io.pfsspec import SpectrumFile, SpectrumWriter  # noqa: E402

N, W, CHUNK, REPEATS = 20_000, 4096, 4096, 5
NAMES = ("flux", "error")


def build(path: Path) -> None:
    rng = np.random.default_rng(0)
    with SpectrumWriter(path, n_rows=N, wave=np.linspace(7100.2, 8849.8, W)) as w:
        for s in range(0, N, CHUNK):
            e = min(s + CHUNK, N)
            flux = 0.5 + 0.05 * rng.standard_normal((e - s, W), dtype=np.float32)
            error = 0.02 + 0.01 * rng.random((e - s, W), dtype=np.float32)
            error[:, 0] = np.nan  # the research files' edge NaN: exercises the fill
            error[:, -1] = np.nan
            w.write_rows(s, flux=flux, error=error)
        p = empty_params(N)
        p["log_g"] = rng.uniform(1, 5, N)
        w.set_params(p)


def bare(path: Path) -> float:
    t = time.perf_counter()
    total = 0.0
    with h5py.File(path, "r") as f:
        for s in range(0, N, CHUNK):
            for name in NAMES:
                total += float(f[f"dataset/arrays/{name}/value"][s:s + CHUNK][0, 1])
    return time.perf_counter() - t


def ours(path: Path) -> float:
    t = time.perf_counter()
    total = 0.0
    with SpectrumFile(path) as sf:
        for _s, _e, blocks in sf.iter_rows(NAMES, chunk_rows=CHUNK):
            total += float(blocks["flux"][0, 1])
        assert sf.nan_filled["edge"] == 2 * N
    return time.perf_counter() - t


def noisy(root: Path) -> float:
    """Training reads: flux + error + one seeded noise draw per row (Split.noisy_chunks)."""
    t = time.perf_counter()
    with Dataset(root) as ds:
        for _s, _e, _x, _y in ds.train().noisy_chunks(1.0, seed=0, chunk_rows=CHUNK):
            pass
    return time.perf_counter() - t


def main() -> None:
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        path = Path(tmp) / "train_20k_0" / "dataset.h5"
        t0 = time.perf_counter()
        build(path)
        build_s = time.perf_counter() - t0
        size = path.stat().st_size
        bare(path)  # warm the page cache
        times = {"bare_h5py": [], "spectrumfile": [], "noisy_chunks": []}
        for _ in range(REPEATS):
            times["bare_h5py"].append(bare(path))
            times["spectrumfile"].append(ours(path))
            times["noisy_chunks"].append(noisy(path.parent.parent))
    best = {k: min(v) for k, v in times.items()}
    nbytes = N * W * 4 * len(NAMES)
    res = {
        "rows": N, "pixels": W, "arrays": list(NAMES), "chunk_rows": CHUNK,
        "file_mb": round(size / 1e6, 1), "build_s": round(build_s, 2),
        "repeats": REPEATS, "times_s": {k: [round(x, 4) for x in v] for k, v in times.items()},
        **{f"{k}_rows_per_s": round(N / t) for k, t in best.items()},
        **{f"{k}_mb_per_s": round(nbytes / 1e6 / t, 1) for k, t in best.items()},
        "ratio_spectrumfile_over_bare_time": round(best["spectrumfile"] / best["bare_h5py"], 3),
        "ratio_noisy_chunks_over_bare_time": round(best["noisy_chunks"] / best["bare_h5py"], 3),
        "host": platform.node(), "python": platform.python_version(),
        "h5py": h5py.__version__, "numpy": np.__version__,
    }
    out = Path(__file__).resolve().parent / "results" / "read_throughput.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"file {res['file_mb']} MB ({N} rows × {W} px × {len(NAMES)} arrays, float32)")
    for k in times:
        print(f"  {k:13s} {res[f'{k}_rows_per_s']:>9,} rows/s  "
              f"{res[f'{k}_mb_per_s']:>8,.1f} MB/s  (best of {REPEATS})")
    print(f"  SpectrumFile / bare h5py time ratio: {res['ratio_spectrumfile_over_bare_time']}")
    print(f"  noisy_chunks (read + seeded noise) / bare h5py time ratio: "
          f"{res['ratio_noisy_chunks_over_bare_time']}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
