"""The generator version is part of a dataset's identity (issue 11 item 6): the
fingerprint changes with it, and a store holding runs on two builds of the same dataset
name (generator 1.0 and 2.0) keeps them apart in scaling_curve, leaderboard and the report."""

from __future__ import annotations

import json

import duckdb
import pytest

from _runfolders import make_run_folder
from engine.errors import StoreError
from engine.generator.build import GENERATOR_VERSION, build_dataset
from engine.generator.presets import Preset, ShardSpec
from engine.io.dataset import Dataset
from engine.paths import store_path
from engine.runs.scaling import dataset_info
from engine.store.ingest import ingest_all
from engine.report.document import build_report

MICRO = Preset("micro", (ShardSpec("train_8_0", 8), ShardSpec("test_4_0", 4)))


def test_fingerprint_carries_generator_version(tmp_path):
    root = build_dataset(MICRO, out=tmp_path / "ds", seed=4, compile="off", crlb=False)
    man_path = root / "dataset.json"
    man = json.loads(man_path.read_text())
    assert man["generator_version"] == GENERATOR_VERSION
    with Dataset(root) as ds:
        fp = ds.fingerprint()
        info = dataset_info(root)
    assert info["fingerprint"] == fp
    assert (info["generator_version"], info["preset"], info["seed"]) == \
        (GENERATOR_VERSION, "micro", 4)
    fps = {}
    for version in ("1.0", "2.0", "2.1", "2.2"):
        man_path.write_text(json.dumps({**man, "generator_version": version}))
        with Dataset(root) as ds:
            fps[version] = ds.fingerprint()
    assert len(set(fps.values())) == 4          # same files, other generator → other identity
    man_path.write_text(json.dumps({**man, "generator_version": "2.0", "seed": 5}))
    with Dataset(root) as ds:
        assert ds.fingerprint() != fps["2.0"]   # and the seed recorded with it
    man_path.unlink()                           # no manifest (research files): the data only
    with Dataset(root) as ds:
        assert ds.fingerprint() == fps["1.0"]   # 1.0 hashes as before the rule


@pytest.fixture
def two_builds(tmp_path):
    """Runs on `default` built by generator 1.0 (3 sizes) and by 2.0 (2 sizes, better
    scores), same name, same sizes where they overlap."""
    ws = tmp_path / "ws"
    for n, scatter in ((10_000, 0.70), (50_000, 0.60), (100_000, 0.55)):
        make_run_folder(ws, f"old-{n}", train_size=n, noise=scatter, fingerprint="fp-gen1",
                        generator_version="1.0", ended=1_000_000 + n)
    for n, scatter in ((10_000, 0.30), (50_000, 0.25)):
        make_run_folder(ws, f"new-{n}", train_size=n, noise=scatter, fingerprint="fp-gen2",
                        generator_version="2.0", ended=2_000_000 + n)
    ingest_all(ws)
    return ws


def test_scaling_curve_and_leaderboard_keep_builds_apart(two_builds):
    con = duckdb.connect(str(store_path(two_builds)), read_only=True)
    try:
        curve = con.execute("SELECT run_id, train_size, dataset, dataset_fingerprint, "
                            "generator_version FROM scaling_curve ORDER BY run_id").fetchall()
        ranks = con.execute("SELECT run_id, rank, generator_version FROM leaderboard "
                            "ORDER BY run_id").fetchall()
        ds = con.execute("SELECT fingerprint, name, generator_version, preset, seed "
                         "FROM datasets ORDER BY fingerprint").fetchall()
    finally:
        con.close()
    # every run is its own point: the newer 2.0 runs at 10k/50k do not replace the 1.0 ones
    assert sorted((r, n, fp, gv) for r, n, _d, fp, gv in curve) == sorted([
        ("new-10000", 10_000, "fp-gen2", "2.0"), ("new-50000", 50_000, "fp-gen2", "2.0"),
        ("old-100000", 100_000, "fp-gen1", "1.0"), ("old-10000", 10_000, "fp-gen1", "1.0"),
        ("old-50000", 50_000, "fp-gen1", "1.0")])
    assert {d for _r, _n, d, _fp, _gv in curve} == {"default"}
    # ranks are within a build: each build has its own rank 1
    assert dict((r, k) for r, k, _ in ranks) == {"new-50000": 1, "new-10000": 2,
                                                 "old-100000": 1, "old-50000": 2, "old-10000": 3}
    assert ds == [("fp-gen1", "default", "1.0", "default", 0),
                  ("fp-gen2", "default", "2.0", "default", 0)]


def _scaling_rows(md: str) -> list[str]:
    sec = md.split("### 1.1 Best Results per Model", 1)[1].split("###", 1)[0]
    return [line for line in sec.splitlines() if line.startswith("|")]


def test_report_selects_one_build_and_says_which(two_builds):
    md = build_report(two_builds, "default")     # default: the build with the most runs
    assert "fingerprint fp-gen1, generator version 1.0" in md
    assert "`default@fp-gen2` (generator 2.0, 2 runs)" in md
    assert "runs: 3 (model × size × noise points)" in md
    new = build_report(two_builds, "default@fp-gen2")
    assert "fingerprint fp-gen2, generator version 2.0" in new
    assert "`default@fp-gen1` (generator 1.0, 3 runs)" in new
    assert "runs: 2 (model × size × noise points)" in new
    # the scaling tables hold only their own build's sizes
    assert [r.split("|")[2].strip() for r in _scaling_rows(md)[2:]] == ["100k", "50k", "10k"]
    assert [r.split("|")[2].strip() for r in _scaling_rows(new)[2:]] == ["50k", "10k"]
    assert "`new-50000`" in new and "`old-" not in new
    with pytest.raises(StoreError, match="0 builds matching"):
        build_report(two_builds, "default@nope")


def test_results_page_header_names_the_build_its_report_shows(two_builds, tmp_path):
    """`export results`: the page's header (fingerprint, generator version) and its report
    are about the same build, also when a build is picked with NAME@FINGERPRINT (the header
    once listed every build of the name and the version of whatever dataset.json was on
    disk, and the report under it re-chose the build from the bare name)."""
    from engine.report.results_page import write_results_page

    for want, fp, gen, other in (("default", "fp-gen1", "1.0", "fp-gen2"),
                                 ("default@fp-gen2", "fp-gen2", "2.0", "fp-gen1")):
        out = tmp_path / f"{fp}.md"
        write_results_page(two_builds, out, want)
        md = out.read_text()
        header = next(line for line in md.splitlines() if line.startswith("> Dataset `"))
        assert header == f"> Dataset `default`: fingerprint `{fp}`; generator version `{gen}`."
        assert f"fingerprint {fp}, generator version {gen}" in md
        assert f"`default@{other}`" in md            # named as left out, never mixed in


def test_runs_show_and_compare_name_the_datas_generator_version(two_builds):
    """`runs show` (and the TUI's Run detail, the same reader) says which generator made a
    run's data; `runs compare` lists it among the keys that differ."""
    from engine.store.runinfo import compare_runs, show_run

    assert show_run(two_builds, "old-10000")["spec"]["generator_version"] == "1.0"
    assert show_run(two_builds, "new-10000")["spec"]["generator_version"] == "2.0"
    cmp = compare_runs(two_builds, "old-10000", "new-10000")
    assert cmp["config_diff"]["generator_version"] == {"a": "1.0", "b": "2.0"}
    assert not cmp["comparable"]                    # other data: other fingerprint
