"""The built-in generator against spectra from a real LTE code (Turbospectrum; data and how
they were made: data/benchmark_stars/README.md), by equivalent widths of the gravity-
sensitive features and by dwarf/giant contrasts (issue 11, item 3).

Tolerances (engine/generator/benchmark.py FEATURES, CONTRASTS): per feature
|EW_gen − EW_ref| ≤ max(rel·EW_ref, abs) with rel/abs = 20 %/0.15 Å for the Ca II triplet,
30 %/0.10 Å for Na I, Mg I, K I and 35 %/0.10 Å for P12/P14; a contrast Δ = EW(a) − EW(b)
(checked where |Δ_ref| ≥ 0.1 Å) must have the reference's sign and |Δ_gen − Δ_ref| ≤
0.5|Δ_ref|. The tolerances are a few times the spread that the atmosphere source alone
gives the reference (the sun / sun_marcs / sun_ksun rows, test below).

The v1 generator (one Milne–Eddington layer) misses many of these; each case it misses is
marked xfail(strict=False) from V1_MISSES, so the suite stays green now and the marks turn
into XPASS as the depth-structured physics lands (then delete them)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.generator import benchmark as bm
from engine.generator import grids

# (star, feature) EWs and (pair, feature) contrasts the v1 generator misses (measured:
# bench/results/benchmark_stars.md).
V1_MISSES: set[tuple[str, str]] = {
    ("sun", "P12 8750"), ("arcturus", "P12 8750"), ("cool_giant", "P12 8750"),
    ("mp_giant", "P12 8750"), ("dwarf_6000", "P12 8750"),          # v1 has no hydrogen lines
    ("cool_dwarf", "Ca II 8542"), ("mp_giant", "Ca II 8542"),      # wings too strong
    ("mp_giant", "Ca II 8662"),
    ("cool_giant", "Mg I 8807"),
}
V1_CONTRAST_MISSES: set[tuple[str, str]] = {
    ("cool_dwarf − cool_giant", "Ca II 8498"),   # CaT gravity contrast a third of the reference's
    ("cool_dwarf − cool_giant", "Mg I 8807"),
    ("cool_dwarf − cool_giant", "P12 8750"),
    ("dwarf_6000 − sun", "Ca II 8542"), ("dwarf_6000 − sun", "Ca II 8662"),
    ("dwarf_6000 − sun", "P12 8750"),            # Paschen growth with T_eff missing
}
V1_REASON = "v1 one-layer Milne–Eddington generator; issue 11 depth-structured physics replaces it"


@pytest.fixture(scope="module")
def bench():
    return bm.load_benchmarks()


@pytest.fixture(scope="module")
def rows(bench):
    return {(r["star"], r["feature"]): r for r in bm.compare(bench)}


@pytest.fixture(scope="module")
def contrast_rows(rows):
    return {(c["pair"], c["feature"]): c for c in bm.contrasts(list(rows.values()))}


# ------------------------------------------------------------------ the data and the EW routine

def test_benchmark_file_is_complete_and_on_the_pixels(bench):
    assert np.allclose(bench["wave"], grids.wave())
    for star in bm.STARS + ("sun_marcs", "sun_ksun", "arcturus_marcs"):
        s = bench[star]
        assert s["flux_pfs"].dtype == np.float32 and s["flux_pfs"].shape == (grids.N_PIXELS,)
        assert np.median(s["flux_pfs"]) == pytest.approx(0.5, rel=1e-6)
        # continuum-normalised: lines only absorb, the continuum windows sit at 1
        assert 0.05 < s["flux_cont"].min() and s["flux_cont"].max() < 1.0 + 1e-3
        assert np.percentile(s["flux_cont"], 99) > 0.97


def test_ew_routine_recovers_a_known_gaussian_line_on_a_sloped_continuum():
    wave = grids.wave()
    f = bm.FEATURE_BY_NAME["Ca II 8542"]
    centre = float(grids.air_to_vacuum(np.array([8542.09]))[0])
    ew_true, sigma = 1.3, 1.7 / 2.3548
    cont = 2.0 + 1e-3 * (wave - 8500.0)
    line = ew_true / (sigma * np.sqrt(2 * np.pi)) * np.exp(-0.5 * ((wave - centre) / sigma) ** 2)
    flux = cont * (1.0 - line)
    assert bm.equivalent_width(wave, flux, f) == pytest.approx(ew_true, rel=0.01)
    # scale-free: the same on the pfsspec median-0.5 form
    assert bm.equivalent_width(wave, 0.5 * flux / np.median(flux), f) == pytest.approx(ew_true, rel=0.01)


def test_pseudo_continuum_ew_matches_true_continuum_ew_on_the_reference(bench):
    """The side-band pseudo-continuum stands in for the code's own continuum: in the warm
    and metal-poor stars (little blanketing of the side bands) the two EWs agree to
    0.1 Å + 25 %. In the cool and metal-rich giants CN and atomic blends depress the side
    bands and the two measures part (e.g. Na I 1.0 vs 2.3 Å in the 4000 K giant), which is
    why generator and reference are measured by the same routine on the same pixels."""
    wave = bench["wave"]
    for star in ("sun", "dwarf_6000", "mp_giant", "sun_marcs", "sun_ksun"):
        pseudo = bm.all_ews(wave, bench[star]["flux_pfs"])
        for f in bm.FEATURES:
            lo, hi = bm._vac(f.band)
            m = (wave >= lo) & (wave <= hi)
            true = float(((1.0 - bench[star]["flux_cont"][m]) * np.gradient(wave)[m]).sum())
            assert abs(pseudo[f.name] - true) <= 0.1 + 0.25 * abs(true), (star, f.name, pseudo[f.name], true)


def test_reference_shows_the_textbook_gravity_signs(bench):
    """Sanity of the reference itself: at 4000 K the dwarf has the stronger Na I and K I,
    the giant the stronger Ca II triplet; the 6000 K dwarf has stronger Paschen lines than
    the Sun; the metal-poor giant has a weaker triplet than Arcturus. (Mg I 8807 is NOT
    stronger in the 4000 K dwarf here: its 9 Å band holds CN and Fe I blends that grow in
    the giant — 0.95 vs 1.10 Å — so the Mg contrast is checked against the reference, not
    against the textbook sign.)"""
    ew = {s: bm.all_ews(bench["wave"], bench[s]["flux_pfs"]) for s in bm.STARS}
    for line in ("Na I 8183/8195", "K I 7699"):
        assert ew["cool_dwarf"][line] > 2.0 * ew["cool_giant"][line]
    for line in ("Ca II 8542", "Ca II 8662"):
        assert ew["cool_giant"][line] > ew["cool_dwarf"][line]
        assert ew["arcturus"][line] > ew["mp_giant"][line]
    assert ew["dwarf_6000"]["P12 8750"] > ew["sun"]["P12 8750"]


def test_tolerances_exceed_the_atmosphere_source_spread(bench):
    """The Sun with three atmospheres (atmosnet C3K, shipped MARCS, shipped ATLAS9): each
    feature's spread must sit inside its tolerance, or the tolerance would test the
    atmosphere source rather than the generator."""
    ews = [bm.all_ews(bench["wave"], bench[s]["flux_pfs"]) for s in ("sun", "sun_marcs", "sun_ksun")]
    for f in bm.FEATURES:
        vals = [e[f.name] for e in ews]
        assert max(vals) - min(vals) <= max(f.rel_tol * abs(vals[0]), f.abs_tol), (f.name, vals)


# ------------------------------------------------------------------ the generator against it

def _ew_cases():
    for star in bm.STARS:
        for f in bm.FEATURES:
            marks = [pytest.mark.xfail(strict=False, reason=V1_REASON)] if (star, f.name) in V1_MISSES else []
            yield pytest.param(star, f.name, marks=marks, id=f"{star}-{f.name.replace(' ', '_')}")


@pytest.mark.parametrize("star,feature", list(_ew_cases()))
def test_generator_ew_within_tolerance(rows, star, feature):
    r = rows[(star, feature)]
    f = bm.FEATURE_BY_NAME[feature]
    assert r["ok"], (f"{star} {feature}: EW gen {r['gen']:.3f} Å vs ref {r['ref']:.3f} Å "
                     f"(tolerance max({f.rel_tol:.0%}, {f.abs_tol} Å))")


def _contrast_cases():
    for a, b in bm.CONTRASTS:
        for f in bm.FEATURES:
            pair = f"{a} − {b}"
            marks = ([pytest.mark.xfail(strict=False, reason=V1_REASON)]
                     if (pair, f.name) in V1_CONTRAST_MISSES else [])
            yield pytest.param(pair, f.name, marks=marks, id=f"{a}-vs-{b}-{f.name.replace(' ', '_')}")


@pytest.mark.parametrize("pair,feature", list(_contrast_cases()))
def test_generator_contrast_sign_and_size(contrast_rows, pair, feature):
    c = contrast_rows[(pair, feature)]
    if not c["checked"]:
        pytest.skip(f"|Δ_ref| = {abs(c['d_ref']):.3f} Å < {bm.CONTRAST_MIN} Å: no contrast to keep")
    assert c["ok"], (f"{pair} {feature}: Δ gen {c['d_gen']:+.3f} Å vs ref {c['d_ref']:+.3f} Å "
                     f"(same sign, within {bm.CONTRAST_REL_TOL:.0%})")


def test_markdown_table_lists_every_star_and_feature(rows, contrast_rows, bench):
    text = bm.markdown(list(rows.values()), list(contrast_rows.values()), bench["meta"])
    for star in bm.STARS:
        for f in bm.FEATURES:
            assert f"| {star} |" in text and f"| {f.name} |" in text
    assert text.count("\n| ") == 2 + len(rows) + len(contrast_rows)   # 2 header rows


def test_reference_degradation_matches_the_generators_lsf_and_rebin():
    """make_benchmarks.degrade (numpy, run in the scratch venv) and the generator's
    LsfRebin must turn the same high-resolution spectrum into the same 4096 pixels, or the
    comparison would test the two degradations instead of the physics."""
    import importlib.util

    import torch

    from engine.generator.lsf import LsfRebin

    spec = importlib.util.spec_from_file_location("make_benchmarks", bm.BENCHMARK_FILE.parent / "make_benchmarks.py")
    mb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mb)
    fine = grids.fine_wave()
    rng = np.random.default_rng(0)
    centres, depths = rng.uniform(7090, 8860, 300), rng.uniform(0.05, 0.9, 300)
    flux = np.ones_like(fine) * (1.0 + 1e-4 * (fine - 8000.0))
    for c, d in zip(centres, depths):
        flux *= 1.0 - d * np.exp(-0.5 * ((fine - c) / 0.08) ** 2)
    ours = LsfRebin().double()(torch.as_tensor(flux)[None]).numpy()[0]
    theirs = mb.degrade(fine, flux, grids)
    assert np.max(np.abs(theirs - ours)) < 2e-3
    assert np.median(np.abs(theirs - ours)) < 2e-4


def test_generator_v2_matches_the_reference_far_better_than_v1(bench, rows, contrast_rows):
    """Generator v2 (`--physics lte`) against Turbospectrum: 44 of 48 equivalent widths
    within tolerance and 19 of 20 checked dwarf/giant contrasts right in sign and size with
    generator 2.2 (2.1: 47/48 and 18/20; 2.0: 47/48 and 19/20 with every EW ~15 % low; v1:
    39/48 and 14/20). At most the measured misses are allowed — P12 in the Sun, the 6000 K
    dwarf, Arcturus and the cool giant (0.52–0.65×): Turbospectrum's Paschen profiles
    (Kurucz/Peterson HLINOP, compiled from its source and integrated over ±200 Å) hold
    1.74–1.95× the line's oscillator strength at dwarf densities (N_e ≥ 2e12; 1.03–1.21 at
    5e10), because they add the quasi-static electron wings to a normalised ion profile;
    2.2's profile keeps unit area, so on the hydrogen lines alone it reads 0.53–0.61× of
    Turbospectrum in dwarfs and 0.6–1.0× in giants (bench/results/paschen_hydrogen_only_v22.json;
    docs/generator-v2.md, "Paschen lines"); in the cool giant the P12 band is mostly metal
    blends (0.57× in 2.1 too). The cool dwarf − giant Ca II 8542 contrast (the dwarf's lines
    still 0.86–0.92× of Turbospectrum's, whose own EOS gives the dwarf 20 % more P_gas; the
    giant's 8542 1.14×, linemake's Ca II gf 0.1 dex above Gaia-ESO/NIST) and the 6000 K − Sun
    Ca II 8662 contrast (2.1: −0.04 vs −0.11 Å, at the 0.1 Å threshold) — so a regression
    elsewhere fails."""
    lte = bm.compare(bench, physics="lte")
    lte_c = [c for c in bm.contrasts(lte) if c["checked"]]
    misses = {(r["star"], r["feature"]) for r in lte if not r["ok"]}
    c_misses = {(c["pair"], c["feature"]) for c in lte_c if not c["ok"]}
    assert misses <= {("sun", "P12 8750"), ("dwarf_6000", "P12 8750"), ("arcturus", "P12 8750"),
                      ("cool_giant", "P12 8750")}, misses
    assert c_misses <= {("cool_dwarf − cool_giant", "Ca II 8542"),
                        ("dwarf_6000 − sun", "Ca II 8662")}, c_misses
    assert sum(r["ok"] for r in lte) > sum(r["ok"] for r in rows.values())
    assert sum(c["ok"] for c in lte_c) > sum(c["ok"] for c in contrast_rows.values()
                                             if c["checked"])
