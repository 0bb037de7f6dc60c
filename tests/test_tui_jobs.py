"""Jobs: the exact command the launch form shows, real subprocesses in their own process
group, progress from events.jsonl, cancel (SIGTERM, then SIGKILL) ending the job and its
children, and a finished job appearing in Runs without a restart."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest
from _tui_stores import make_dataset, settle
from textual.widgets import Input, Static

from engine.procs import pid_alive as alive
from logg_tui.app import LoggApp
from logg_tui.jobs import JobManager, LaunchRequest, default_engine_cmd, shell_quote
from logg_tui.screens.confirm import ConfirmScreen
from logg_tui.widgets.frame_table import FrameTable

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def test_launch_request_is_the_exact_command(tmp_path):
    req = LaunchRequest("ridge", "1k", preset="ridge-fixed", noise_level="0.5",
                        overrides=("alpha=10", "standardize=false"), dataset="fake")
    assert req.argv(tmp_path) == [
        "logg-engine", "run", "ridge", "--size", "1k", "--preset", "ridge-fixed",
        "--noise-level", "0.5", "--dataset", "fake", "--set", "alpha=10",
        "--set", "standardize=false", "--workspace", str(tmp_path), "--detach"]
    req.validate()
    for bad, field in [(LaunchRequest("ridge", "lots"), "size"),
                       (LaunchRequest("ridge", "1k", noise_level="-1"), "noise level"),
                       (LaunchRequest("ridge", "1k", overrides=("alpha",)), "override")]:
        with pytest.raises(ValueError, match=field):
            bad.validate()
    assert default_engine_cmd()[0].endswith("logg-engine") or "-m" in default_engine_cmd()


FAMILY = """
import json, signal, subprocess, sys, time
if sys.argv[2] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
kids = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
grandkid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open(sys.argv[1], "w").write(json.dumps([p.pid for p in kids + [grandkid]]))
time.sleep(60)
"""


@pytest.mark.parametrize("mode", ["polite", "ignore-term"])
def test_cancel_ends_the_process_group_and_its_children(tmp_path, mode):
    mgr = JobManager(tmp_path / "ws")
    pids_file = tmp_path / "pids.json"
    job = mgr.launch_argv([sys.executable, "-c", FAMILY, str(pids_file), mode],
                          model="family", size="0")
    assert os.getpgid(job.proc.pid) == job.proc.pid != os.getpgrp()  # its own group
    deadline = time.time() + 20
    while not pids_file.exists() or not pids_file.read_text():
        assert time.time() < deadline
        time.sleep(0.05)
    kids = json.loads(pids_file.read_text())
    assert all(alive(p) for p in kids + [job.proc.pid])
    t0 = time.monotonic()
    assert mgr.cancel(job, grace_s=1.0) == "cancelled"
    took = time.monotonic() - t0
    time.sleep(0.2)  # let init reap the orphans
    assert not any(alive(p) for p in kids + [job.proc.pid])
    if mode == "ignore-term":  # SIGTERM ignored: SIGKILL after the grace period
        assert took >= 1.0 and job.proc.returncode == -9
    else:
        assert took < 1.0 and job.proc.returncode == -15


async def wait_for(pilot, cond, timeout: float, step: float = 0.25):
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "timed out"
        await pilot.pause(step)


async def test_launch_form_runs_a_real_job_that_appears_in_runs(_isolated_workspace):
    ws = _isolated_workspace
    make_dataset(ws)
    app = LoggApp(ws)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        form = app.screen
        form.query_one("#size", Input).value = "500"
        form.query_one("#dataset", Input).value = "fake"
        form.query_one("#overrides", Input).value = "alpha=100"
        await pilot.pause()
        want = LaunchRequest("ridge", "500", dataset="fake", overrides=("alpha=100",))
        shown = str(form.query_one("#command", Static).render())
        assert shell_quote(want.argv(ws)) in shown.replace("\n", " ")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert type(app.screen).__name__ == "JobsScreen"
        (job,) = app.jobs.jobs
        assert job.argv == want.argv(ws)
        await wait_for(pilot, lambda: job.done, 120)
        await settle(pilot)
        assert job.status() == "finished", app.jobs.log_lines(job)
        assert job.state.fraction == 1.0 and job.state.unit == "rows"
        table = app.screen.query_one("#jobs", FrameTable)
        # the Jobs table redraws on its refresh timer: wait for it rather than race it
        await wait_for(pilot, lambda: str(table.get_row_at(0)[3]) == "finished", 10)
        row = table.get_row_at(0)
        assert [str(c) for c in row[3:5]] == ["finished", "100%"]
        assert job.run_id in str(app.screen.query_one("#jobinfo", Static).render())
        await pilot.press("1")
        await wait_for(pilot, lambda: job.run_id in app.screen.query_one(
            "#runs", FrameTable).keys, 30)
        table = app.screen.query_one("#runs", FrameTable)
        metrics = json.loads((job.run_dir / "metrics.json").read_text())
        assert table.get_cell(job.run_id, "r2").plain == f"{metrics['overall']['r2']:.3f}"


async def test_cancel_a_real_job_from_the_jobs_screen(_isolated_workspace):
    ws = _isolated_workspace
    make_dataset(ws)
    app = LoggApp(ws)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        job = app.jobs.launch(LaunchRequest(
            "lgbm", "800", preset="lgbm-fast", dataset="fake",
            overrides=("n_estimators=100000", "early_stopping_rounds=100000")))
        await pilot.press("5")
        await wait_for(pilot, lambda: job.state.done > 0, 300)  # a loaded 2-core box
        worker = job.worker_pid()
        assert worker and alive(worker) and os.getpgid(worker) == worker
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: job.done, 60)
        await settle(pilot)  # the cancel worker returns once every process is gone
        assert job.status() == "cancelled"
        assert not alive(worker) and not alive(job.proc.pid)
        last = json.loads((job.run_dir / "events.jsonl").read_text().splitlines()[-1])
        assert last["event"] == "end" and last["status"] == "cancelled"
        await pilot.press("1")
        await wait_for(pilot, lambda: job.run_id in app.screen.query_one(
            "#runs", FrameTable).keys, 30)
        table = app.screen.query_one("#runs", FrameTable)
        assert str(table.get_cell(job.run_id, "status")) == "cancelled"
