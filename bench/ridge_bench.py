"""Ridge benchmarks, each ratio measured side by side in this run.

(a) StreamingRidge.fit vs sklearn `make_pipeline(StandardScaler(), Ridge(alpha))` on the
    same in-memory 50k × 4096 float32 matrix: time ratio and max |Δcoef|.
(b) Streaming throughput (rows/s) of the full training path on ≥200k rows of an HDF5
    dataset (read flux + error, seeded noise, float64 SYRK accumulation, solve) vs the GEMM
    floor: the time of X.T @ X in float64 on the same rows (matmuls alone, no I/O).
    The dataset is written with engine.io's SpectrumWriter into a temp dir and deleted, or,
    with --dataset NAME, is that workspace dataset's training split (e.g. the study's
    bosz-1m at --rows 1000000: real spectra, nothing written).

Writes bench/results/ridge.json (ridge_<rows>.json with --dataset; --skip-sklearn leaves
out (a)).  Usage: python bench/ridge_bench.py [--rows 200000] [--dataset bosz-1m-lte]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.models.base import ArrayChunks, NoisySplitSource
from engine.models.ridge import StreamingRidge

OUT = Path(__file__).resolve().parent / "results" / "ridge.json"
P = 4096


def bench_vs_sklearn(n: int, alpha: float = 1e5) -> dict:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = (1.0 + 0.1 * rng.standard_normal((n, P), dtype=np.float32))
    w = rng.standard_normal(P).astype(np.float32)
    y = (X - 1.0) @ w + rng.standard_normal(n).astype(np.float32)
    t0 = time.perf_counter()
    ref = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(X, y)
    t_sk = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = StreamingRidge(alpha=alpha).fit(ArrayChunks(X, y.astype(np.float64)))
    t_ours = time.perf_counter() - t0
    dcoef = np.abs(ours.coef_ - ref[-1].coef_.astype(np.float64))
    return {"rows": n, "features": P, "alpha": alpha, "sklearn_s": t_sk, "ours_s": t_ours,
            "time_ratio_ours_over_sklearn": t_ours / t_sk,
            "max_abs_dcoef": float(dcoef.max()),
            "max_rel_dcoef": float(dcoef.max() / np.abs(ref[-1].coef_).max()),
            "note": "sklearn fits the float32 matrix in float32; ours accumulates in float64"}


def write_h5(root: Path, n: int, block: int = 8192) -> None:
    from engine.io.columns import empty_params
    from engine.io.pfsspec import SpectrumWriter

    rng = np.random.default_rng(1)
    wave = np.linspace(7100.0, 8850.0, P)
    params = empty_params(n)
    params["log_g"] = rng.uniform(1, 5, n)
    with SpectrumWriter(root / "train_200k_0" / "dataset.h5", n_rows=n, wave=wave) as wr:
        for s in range(0, n, block):
            m = min(block, n - s)
            flux = 1.0 + 0.1 * rng.standard_normal((m, P), dtype=np.float32)
            err = np.full((m, P), 0.05, dtype=np.float32)
            wr.write_rows(s, flux=flux, error=err)
        wr.set_params(params)


class FloorTimedSource:
    """The fit's own chunk source, with the GEMM floor measured in step with it.

    Before handing out chunk k+1 it runs, untimed by the fit, the floor's work on chunk k:
    a float64 SYRK of those very rows (`dsyrk`, the kernel the fit uses, on a private
    accumulator) and times it. The fit's time is then total − floor, and the two halves
    are measured at the same moments, so the load of a shared machine (other jobs come and
    go for minutes) falls on both alike instead of on whichever ran second."""

    def __init__(self, source: NoisySplitSource) -> None:
        self.source, self.n_rows, self.n_features = source, source.n_rows, source.n_features
        self.floor_s, self.read_s = 0.0, 0.0
        self._gram: np.ndarray | None = None

    def labels(self) -> np.ndarray:
        return self.source.labels()

    def chunks(self, chunk_rows: int):
        from scipy.linalg.blas import dsyrk

        it = iter(self.source.chunks(chunk_rows))
        while True:
            t0 = time.perf_counter()
            chunk = next(it, None)
            self.read_s += time.perf_counter() - t0
            if chunk is None:
                return
            yield chunk
            t0 = time.perf_counter()
            x = np.asarray(chunk, dtype=np.float64)
            if self._gram is None:
                self._gram = np.zeros((x.shape[1], x.shape[1]), order="F")
            self._gram = dsyrk(1.0, x.T, beta=1.0, c=self._gram, trans=0, lower=0,
                               overwrite_c=1)
            self.floor_s += time.perf_counter() - t0


def bench_streaming(n: int, chunk_rows: int = 4096, dataset: str | None = None) -> dict:
    from engine.io.dataset import Dataset, resolve_dataset

    tmp = Path(tempfile.mkdtemp(prefix="ridge_bench_"))
    try:
        t0 = time.perf_counter()
        if dataset is None:
            write_h5(tmp, n)
        t_write = time.perf_counter() - t0
        ws = os.environ.get("LOGG_WORKSPACE", "workspace")
        with (resolve_dataset(dataset, ws) if dataset else Dataset(tmp)) as ds:
            train = ds.train(n)
            source = FloorTimedSource(NoisySplitSource(train, 1.0, 0))
            load0 = os.getloadavg()[0]
            t0 = time.perf_counter()
            est = StreamingRidge(alpha=1e5, chunk_rows=chunk_rows).fit(source)
            t_total = time.perf_counter() - t0
        assert np.isfinite(est.coef_).all()
        t_fit, t_gemm = t_total - source.floor_s, source.floor_s
        return {"rows": n, "features": P, "chunk_rows": chunk_rows, "dataset": dataset,
                "write_s": t_write, "fit_s": t_fit, "fit_rows_per_s": n / t_fit,
                "gemm_floor_s": t_gemm, "gemm_floor_rows_per_s": n / t_gemm,
                "read_noise_s": source.read_s, "fit_over_gemm_floor": t_fit / t_gemm,
                "load_avg_1m_at_start": load0,
                "method": "floor = float64 dsyrk of each chunk's rows, run between the fit's "
                          "chunks (interleaved, so both see the same machine load); fit = "
                          "the whole StreamingRidge.fit (read, noise, SYRK, solve) minus it"}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--sk-rows", type=int, default=50_000)
    ap.add_argument("--dataset", default=None,
                    help="a workspace dataset whose training split to stream (real data)")
    ap.add_argument("--skip-sklearn", action="store_true")
    args = ap.parse_args()
    a = None
    if not args.skip_sklearn:
        a = bench_vs_sklearn(args.sk_rows)
        print(f"(a) {a['rows']}x{P} float32 in memory: sklearn {a['sklearn_s']:.1f} s, ours "
              f"{a['ours_s']:.1f} s, ratio ours/sklearn {a['time_ratio_ours_over_sklearn']:.2f}, "
              f"max|Δcoef| {a['max_abs_dcoef']:.2e} (rel {a['max_rel_dcoef']:.2e})", flush=True)
    b = bench_streaming(args.rows, dataset=args.dataset)
    print(f"(b) {b['rows']}x{P} from HDF5: fit {b['fit_s']:.1f} s = {b['fit_rows_per_s']:.0f} "
          f"rows/s; GEMM floor {b['gemm_floor_s']:.1f} s = {b['gemm_floor_rows_per_s']:.0f} "
          f"rows/s; ratio fit/floor {b['fit_over_gemm_floor']:.2f}", flush=True)
    out = OUT if args.dataset is None else OUT.with_name(f"ridge_{args.rows}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"vs_sklearn": a, "streaming": b, "host_cpus": os.cpu_count(),
                               "load_avg_1m_at_end": os.getloadavg()[0]}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
