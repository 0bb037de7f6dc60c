"""The Ray executor (engine.runs.ray.executor) on a real local Ray cluster: a tiny scaling
grid lands the same numbers in the store as the local executor, both storage modes
(shared path, folder shipped back as bytes), ray.cancel ends a run `cancelled`, and a
worker killed with SIGKILL ends only its own run `failed`.

Marked `ray` (deselect with -m 'not ray'); skipped when Ray is not installed. One Ray
cluster (2 CPUs, no dashboard) is shared by every test of the session."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.errors import SpecError
from engine.runs.scaling import plan_grid, run_grid
from engine.store.reader import query_df
from fakes import make_fake_dataset

SIZES = ["300", "600"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """One tiny real pfsspec dataset outside any workspace, shared by the module."""
    root = tmp_path_factory.mktemp("ray-data") / "fake"
    return make_fake_dataset(root, train_shards=(300, 300), n_val=100, n_test=120,
                             n_pixels=32)


@pytest.fixture(scope="module")
def local_r2(dataset, tmp_path_factory):
    """The oracle: the same grid through the local executor, R² read from its store."""
    ws = tmp_path_factory.mktemp("local-ws")
    points = plan_grid(["ridge"], SIZES, workspace=ws, dataset=str(dataset))
    done = run_grid(points, workspace=ws)
    assert [st for _, _, st in done] == ["finished", "finished"]
    return _store_r2(ws)


def _store_r2(ws: Path) -> dict[tuple[str, int], float]:
    df = query_df(ws, """SELECT r.model, r.train_size, o.r2 FROM runs r
                         JOIN run_overall o ON o.run_id = r.run_id AND o.subset = 'all'
                         WHERE r.status = 'finished'""")
    return {(m, int(n)): float(r2) for m, n, r2 in zip(df.model, df.train_size, df.r2)}


def _store_status(ws: Path, run_id: str) -> str:
    return query_df(ws, "SELECT status FROM runs WHERE run_id = ?", [run_id]).status.iloc[0]


def _end(run_dir: Path) -> dict:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    ends = [json.loads(x) for x in lines if '"end"' in x]
    assert len(ends) == 1, lines[-3:]
    return ends[0]


@pytest.mark.ray
@pytest.mark.parametrize("storage", ["ship", "auto"])
def test_grid_on_ray_lands_the_local_numbers_in_the_store(ray_cluster, dataset, local_r2,
                                                          _isolated_workspace, storage):
    from engine.runs.ray.executor import RayOptions, run_grid_ray

    ws = _isolated_workspace
    points = plan_grid(["ridge"], SIZES, workspace=ws, dataset=str(dataset))
    seen, events = [], []
    done = run_grid_ray(points, workspace=ws, options=RayOptions(storage=storage),
                        on_point=lambda k, p, state: seen.append((k, state)),
                        on_event=lambda ev, **f: events.append((ev, f["k"], f.get("name"))))
    assert [st for _, _, st in done] == ["finished", "finished"]
    assert sorted(s for _, s in seen) == ["finished", "finished", "submitted", "submitted"]
    assert {(k, "test_r2") for k in (0, 1)} <= {(k, n) for ev, k, n in events if ev == "metric"}
    ray_r2 = _store_r2(ws)  # ingested by the driver
    assert ray_r2.keys() == local_r2.keys() == {("ridge", 300), ("ridge", 600)}
    for key, r2 in local_r2.items():
        assert abs(ray_r2[key] - r2) < 1e-9, (key, ray_r2[key], r2)
    for _, run_id, _ in done:
        run_dir = ws / "runs" / run_id
        assert _end(run_dir)["status"] == "finished"
        assert (run_dir / "predictions.parquet").is_file()
        assert (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir())
        assert json.loads((run_dir / "run.json").read_text())["pid"]  # the worker wrote it
    # a second pass skips everything: the Ray runs are the same grid points as local ones
    again = plan_grid(["ridge"], SIZES, workspace=ws, dataset=str(dataset))
    assert all(p.existing_run for p in again)
    assert not list((ws / "runs").glob(".*"))  # no half-unpacked folder left behind


def _long_lgbm(ws: Path, dataset: Path):
    """An LGBM run that takes minutes unless stopped (tiny steps, no early stopping)."""
    from engine.runs.spec import build_spec

    return build_spec("lgbm", workspace=ws, size="300", dataset=str(dataset),
                      preset="lgbm-fast", overrides=("n_estimators=200000",
                                                     "learning_rate=0.0001",
                                                     "early_stopping_rounds=0"))


def _wait_training(run_dir: Path, timeout: float = 60.0) -> int:
    """Block until the worker is in its training loop; returns the worker's pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = (run_dir / "events.jsonl").read_text()
        if '"progress"' in text or '"metric"' in text:
            return int(json.loads((run_dir / "run.json").read_text())["pid"])
        time.sleep(0.1)
    raise AssertionError(f"no training progress in {run_dir}: {text[-500:]}")


@pytest.mark.ray
def test_cancel_ends_the_run_cancelled(ray_cluster, dataset, _isolated_workspace):
    from engine.runs.ray.executor import RayExecutor, RayOptions, cancel_run, launch_spec

    ws = _isolated_workspace
    handle = launch_spec(_long_lgbm(ws, dataset), ws, RayExecutor(RayOptions(storage="shared")))
    pid = _wait_training(handle.run_dir)
    assert cancel_run(handle.run_id, grace_s=10)
    assert handle.returncode == 3 and handle.status == "cancelled"
    # Two outcomes, by Ray's timing (both seen: this test alone, and late in the full
    # suite): the task answers after its supervisor SIGTERMed the worker, which then wrote
    # its own `end`; or ray.get reports TaskCancelledError first and the driver closes the
    # folder. Either way the run is cancelled, its worker is gone and the store agrees.
    end = _end(handle.run_dir)
    assert end["status"] == "cancelled"
    if handle.storage is not None:
        assert handle.storage == "shared"
        assert "SIGTERM" in (end["error"] or "") and "closed_by" not in end
    else:
        assert end.get("closed_by") == "ray-executor" and "cancelled" in end["error"]
    assert _store_status(ws, handle.run_id) == "cancelled"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not cancel_run(handle.run_id)  # nothing live any more


@pytest.mark.ray
def test_worker_killed_mid_run_fails_only_its_run(ray_cluster, dataset, local_r2,
                                                  _isolated_workspace):
    from engine.runs.executor import follow
    from engine.runs.ray.executor import RayExecutor, RayOptions, launch_spec
    from engine.runs.spec import build_spec

    ws = _isolated_workspace
    executor = RayExecutor(RayOptions(storage="ship"))
    victim = launch_spec(_long_lgbm(ws, dataset), ws, executor)
    other = launch_spec(build_spec("ridge", workspace=ws, size="600", dataset=str(dataset)),
                        ws, executor)
    # in ship mode the driver cannot read the node's folder: find the worker by its argv
    pid = _worker_pid(victim.run_id)
    os.kill(pid, signal.SIGKILL)
    assert victim.wait(timeout=60) == 1 and victim.status == "failed"
    seen = []  # the local executor's follow() drives a Ray handle as it drives a Popen
    end_other = follow(other.run_dir, other, [lambda ev, **f: seen.append((ev, f))])
    assert end_other.status == "finished" and other.returncode == 0
    assert other.storage == victim.storage == "ship"
    assert ("metric", "test_r2") in [(ev, f.get("name")) for ev, f in seen]
    end = _end(victim.run_dir)
    assert end["status"] == "failed" and "signal 9" in end["error"]
    assert end["closed_by"] == "ray-executor"
    assert '"progress"' in (victim.run_dir / "events.jsonl").read_text()  # shipped back
    assert _store_status(ws, victim.run_id) == "failed"
    assert _store_status(ws, other.run_id) == "finished"
    assert abs(_store_r2(ws)[("ridge", 600)] - local_r2[("ridge", 600)]) < 1e-9


def _worker_pid(run_id: str, timeout: float = 60.0) -> int:
    """The pid of `python -m engine.runs.ray.worker .../<run_id>` once it is training."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"engine.runs.ray.worker" in argv and argv[-2].endswith(run_id.encode()):
                events = Path(argv[-2].decode()) / "events.jsonl"
                if events.is_file() and b'"progress"' in events.read_bytes():
                    return int(proc.name)
        time.sleep(0.1)
    raise AssertionError(f"no training worker for {run_id}")


def test_without_ray_the_executor_says_how_to_install_it():
    """Ray hidden from imports: a SpecError (exit 2) naming the extra; and importing the
    executor modules never imports Ray (it is lazy)."""
    code = ("import sys; sys.modules['ray'] = None\n"
            "import engine.runs.ray.executor as rx, engine.runs.ray.task, engine.runs.ray.ship\n"
            "try:\n    rx.RayExecutor()\nexcept Exception as e:\n"
            "    print(type(e).__name__, e.exit_code); print(e.render())\n"
            "try:\n    rx.run_grid_ray([object()], workspace='/nonexistent')\n"
            "except Exception as e:\n    print('grid', type(e).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("SpecError 2")
    assert "pip install -e '.[ray]'" in out.stdout
    assert "grid SpecError" in out.stdout  # refused before any run folder is made
    lazy = subprocess.run([sys.executable, "-c", "import sys, engine.runs.ray.executor, "
                           "engine.runs.ray.task, engine.runs.ray.ship; "
                           "print('ray' in sys.modules)"], capture_output=True, text=True,
                          timeout=60)
    assert lazy.stdout.strip() == "False", lazy.stderr
    with pytest.raises(SpecError):
        from engine.runs.ray.executor import RayOptions

        RayOptions(storage="nfs")


def test_shipped_folder_round_trips_exactly(tmp_path):
    """pack → unpack replaces the destination with byte-identical files, no leftovers."""
    from engine.runs.ray.ship import pack_folder, unpack_folder

    src = tmp_path / "src"
    (src / "checkpoints").mkdir(parents=True)
    blobs = {"run.json": b'{"a": 1}', "events.jsonl": b"x\n" * 1000,
             "checkpoints/model.bin": np.random.default_rng(0).bytes(100_000)}
    for name, data in blobs.items():
        (src / name).write_bytes(data)
    dest = tmp_path / "runs" / "r1"
    dest.mkdir(parents=True)
    (dest / "stale.txt").write_text("old")
    unpack_folder(pack_folder(src), dest)
    assert {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()} == set(blobs)
    for name, data in blobs.items():
        assert (dest / name).read_bytes() == data
    assert [p.name for p in dest.parent.iterdir()] == ["r1"]


@pytest.mark.ray
def test_ray_worker_death_and_queued_cancel_close_their_folders(ray_cluster, dataset,
                                                                 _isolated_workspace):
    """The Ray worker process itself killed: its run's worker dies with it (no orphan)
    and the driver closes the folder `failed`. A task cancelled while still queued for
    CPUs never starts and is closed `cancelled`."""
    from engine.runs.ray.executor import RayExecutor, RayOptions, launch_spec

    ws = _isolated_workspace
    executor = RayExecutor(RayOptions(storage="shared", num_cpus=2))  # one run at a time
    running = launch_spec(_long_lgbm(ws, dataset), ws, executor)
    queued = launch_spec(_long_lgbm(ws, dataset), ws, executor)
    pid = _wait_training(running.run_dir)
    ray_worker = int(Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].split()[1])
    assert b"engine.runs.ray.worker" not in Path(f"/proc/{ray_worker}/cmdline").read_bytes()
    assert queued.cancel(grace_s=5) == 3 and queued.status == "cancelled"
    assert "queued" in (queued.run_dir / "events.jsonl").read_text()
    assert '"start"' not in (queued.run_dir / "events.jsonl").read_text()
    os.kill(ray_worker, signal.SIGKILL)
    assert running.wait(timeout=60) == 1 and running.status == "failed"
    end = _end(running.run_dir)
    assert end["closed_by"] == "ray-executor" and "Ray task failed" in end["error"]
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # parent-death signal: the run's worker is gone too
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert _store_status(ws, running.run_id) == "failed"
    assert _store_status(ws, queued.run_id) == "cancelled"
