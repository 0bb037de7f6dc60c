"""`logg-engine study`: the plan, and a real tiny study that resumes and never repeats."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from engine.study.plan import GPU_ONLY, get_study, plan_steps, size_arg
from engine.study.runner import time_left
from engine.study.state import StudyState


def test_plan_caps_sizes_and_builds_a_separate_dataset_for_a_quick_pass():
    full = get_study("research")
    quick = full.capped(100_000)
    assert quick.sizes == (50_000, 100_000)
    assert quick.dataset == "bosz-1m-100k" and quick.folder_name == "research-100k"
    assert quick.moe_size == 100_000 and quick.vit_gpu_sizes == ()
    steps = {s.key: s for s in plan_steps(full)}
    assert steps["vit-1M"].skip_reason == GPU_ONLY and steps["vit-50k"].skip_reason is None
    assert plan_steps(full, gpu=True)[0].argv == steps["data"].argv
    assert {s.key for s in plan_steps(full, gpu=True) if s.skip_reason} == set()
    assert steps["ridge-1M"].argv[-2:] == ("--sizes", "1M")
    # a cap at or above the preset keeps the dataset (and the study folder) as they are
    assert get_study("demo").capped(30_000).dataset == "default"


def test_a_v2_study_has_its_own_dataset_and_folder_and_builds_with_lte():
    from engine.errors import SpecError

    v2 = get_study("research").with_physics("lte")
    assert (v2.dataset, v2.folder_name) == ("bosz-1m-lte", "research-lte")
    steps = plan_steps(v2)
    assert steps[0].argv == ("data", "generate", "--preset", "bosz-1m", "--name",
                             "bosz-1m-lte", "--physics", "lte")
    assert all(s.argv[s.argv.index("--dataset") + 1] == "bosz-1m-lte"
               for s in steps if "--dataset" in s.argv)
    # a GPU study builds its data on the GPU too (the CPU plan's command is unchanged)
    gpu = plan_steps(replace(v2, device="cuda"))
    assert gpu[0].argv == steps[0].argv + ("--device", "cuda")
    quick = v2.capped(100_000)
    assert (quick.dataset, quick.folder_name) == ("bosz-1m-lte-100k", "research-lte-100k")
    assert get_study("research").with_physics("me") == get_study("research")
    with pytest.raises(SpecError):
        get_study("research").with_physics("nlte")


def test_a_study_on_data_of_an_older_generator_version_says_so(tmp_path):
    """The dataset on disk was built by an older v2: the study names both versions and how
    to move to the current one (here through --dry-run, which runs nothing)."""
    from engine.generator.physics import generator_version

    root = tmp_path / "datasets" / "bosz-1m-lte"
    root.mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps({"generator_version": "2.0"}))
    out = subprocess.run([sys.executable, "-m", "engine.cli", "study", "research",
                          "--physics", "lte", "--dry-run", "-w", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    now = generator_version("lte")
    assert (f"dataset bosz-1m-lte was built by generator 2.0; this logg's 'lte' physics is "
            f"generator {now}") in " ".join(out.stderr.split())
    assert str(tmp_path / "studies" / "research-lte") in out.stderr.replace("\n", "")
    assert "build dataset bosz-1m-lte" in out.stdout


def test_the_research_study_runs_on_generator_v2_unless_told_otherwise(tmp_path):
    """`logg-engine study research` (= make study) plans the v2 dataset and folder, the
    ones docs/results.md was made from; --physics me is the v1 study; demo stays on v1."""
    assert get_study("research").default_physics == "lte"
    assert get_study("demo").default_physics == get_study("tiny").default_physics == "me"

    def plan(*args):
        out = subprocess.run([sys.executable, "-m", "engine.cli", "study", *args,
                              "--dry-run", "-w", str(tmp_path)],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return " ".join(out.stdout.split())

    v2 = plan("research")
    assert "build dataset bosz-1m-lte" in v2 and "--physics lte" in v2
    v1 = plan("research", "--physics", "me")
    assert "build dataset bosz-1m " in v1 and "--physics" not in v1


def test_size_arg_round_trips_through_the_cli_parser():
    from engine.io.dataset import parse_size

    for n in (500, 2000, 50_000, 1_000_000, 1500):
        assert parse_size(size_arg(n)) == n


def test_time_left_rescales_the_plan_by_measured_durations(tmp_path):
    steps = plan_steps(get_study("tiny"))
    state = StudyState(tmp_path)
    first = steps[0]
    state.record(first.key, first.digest, "finished", 2 * first.cost_s, 0)
    rest = steps[1:]
    assert time_left(steps, state, rest) == pytest.approx(2 * sum(s.cost_s for s in rest))


def test_time_left_scales_each_kind_of_step_by_its_own_measured_durations(tmp_path):
    """The 1M study: the MoE steps ran 4× faster than planned, ridge as planned; the LightGBM
    steps still to do keep the scale of all finished steps, the MoE ones their own."""
    steps = plan_steps(get_study("research"))
    by = {s.key: s for s in steps}
    state = StudyState(tmp_path)
    for key, factor in (("ridge-50k", 1.0), ("ridge-100k", 1.0), ("moe-oracle-snr", 0.25)):
        state.record(key, by[key].digest, "finished", factor * by[key].cost_s, 0)
    todo = [by["lgbm-1M"], by["moe-gate-mlp"]]
    done_cost = sum(by[k].cost_s for k in ("ridge-50k", "ridge-100k", "moe-oracle-snr"))
    overall = (by["ridge-50k"].cost_s + by["ridge-100k"].cost_s
               + 0.25 * by["moe-oracle-snr"].cost_s) / done_cost
    assert time_left(steps, state, todo) == pytest.approx(
        overall * by["lgbm-1M"].cost_s + 0.25 * by["moe-gate-mlp"].cost_s)


def test_a_changed_command_reruns_its_step(tmp_path):
    step = plan_steps(get_study("tiny"))[1]
    state = StudyState(tmp_path)
    state.record(step.key, step.digest, "finished", 1.0, 0)
    assert StudyState.load(tmp_path).done(step.key, step.digest)
    assert not StudyState.load(tmp_path).done(step.key, "0" * 12)


def _study(ws: Path, *extra: str, wait: bool = True):
    cmd = [sys.executable, "-m", "engine.cli", "study", "tiny", "--no-report",
           "--workspace", str(ws), *extra]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def _counts(ws: Path) -> tuple[int, int, list]:
    con = duckdb.connect(str(ws / "results.duckdb"), read_only=True)
    try:
        runs = con.execute("SELECT model, train_size, count(*) FROM runs WHERE status = "
                           "'finished' GROUP BY ALL ORDER BY ALL").fetchall()
        n_an = con.execute("SELECT count(*) FROM analyses").fetchone()[0]
    finally:
        con.close()
    return sum(r[2] for r in runs), n_an, runs


def test_a_study_of_real_steps_resumes_and_a_second_one_adds_nothing(tmp_path):
    """Real logg-engine steps (tiny data, ridge, de-leakage) through run_study: a step
    that failed is rerun by the next study, finished ones never; runs are not repeated."""
    from engine.study.plan import Step
    from engine.study.runner import run_study

    ws = tmp_path / "ws"
    folder = ws / "studies" / "mini"
    ds = ("--dataset", "tiny")
    steps = [Step("data", "data", ("data", "generate", "--preset", "tiny", "--name", "tiny",
                                   "--no-crlb", "--compile", "off"), 30),
             Step("ridge", "ridge", ("scaling", *ds, "--models", "ridge", "--sizes", "500"), 9),
             Step("bad", "bad", ("scaling", *ds, "--models", "ridge", "--sizes", "5M"), 1)]
    out = run_study(steps, workspace=ws, folder=folder, keep_going=True)
    assert [o.status for o in out] == ["finished", "finished", "failed"]
    assert "5M" in (folder / "steps" / "bad.log").read_text()  # the command's own error
    fixed = steps[:2] + [Step("leak", "leak", ("deleakage", "--size", "500", *ds), 9)]
    again = run_study(fixed, workspace=ws, folder=folder)
    assert [o.status for o in again] == ["skipped", "skipped", "finished"]
    n_runs, n_an, runs = _counts(ws)
    assert runs == [("ridge", 500, 1)] and n_an == 1
    assert [o.status for o in run_study(fixed, workspace=ws, folder=folder)] == ["skipped"] * 3
    assert _counts(ws)[:2] == (n_runs, n_an)


@pytest.mark.slow
def test_tiny_study_runs_every_step_then_a_second_study_adds_nothing(tmp_path):
    ws = tmp_path / "ws"
    first = _study(ws)
    assert first.returncode == 0, first.stdout + first.stderr
    state = json.loads((ws / "studies" / "tiny" / "state.json").read_text())["steps"]
    keys = [s.key for s in plan_steps(get_study("tiny")) if not s.skip_reason]
    assert sorted(state) == sorted(keys)
    assert all(v["status"] == "finished" for v in state.values())
    n_runs, n_an, runs = _counts(ws)
    # ridge and lgbm at 500 and 1000, the ViT at 500: one finished run each
    assert [(m, n, c) for m, n, c in runs] == [("lgbm", 500, 1), ("lgbm", 1000, 1),
                                               ("ridge", 500, 1), ("ridge", 1000, 1),
                                               ("vit", 500, 1)]
    assert n_an == 4  # 2 oracles, 1 gate, de-leakage (tiny has no CRLBs: no ceiling)
    second = _study(ws)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "running" not in second.stdout
    assert second.stdout.count(": skipped") == len(keys)
    assert "vit (vit-cpu) at 1k: listed" in second.stdout  # the GPU size is listed
    assert _counts(ws)[:2] == (n_runs, n_an)
    events = [json.loads(line) for line in
              (ws / "studies" / "tiny" / "events.jsonl").read_text().splitlines()]
    assert [e["status"] for e in events if e["event"] == "end"] == ["finished", "finished"]
    _check_results_page(ws, tmp_path / "docs" / "results.md")


def _check_results_page(ws: Path, out: Path) -> None:
    """`export results` writes the page and its figures from the store: the R² printed
    for ridge at 1000 is the store's, and the images are real PNGs."""
    done = subprocess.run([sys.executable, "-m", "engine.cli", "export", "results", "--out",
                           str(out), "--workspace", str(ws)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    con = duckdb.connect(str(ws / "results.duckdb"), read_only=True)
    try:
        r2 = con.execute("SELECT o.r2 FROM runs r JOIN run_overall o USING (run_id) WHERE "
                         "o.subset = 'all' AND r.model = 'ridge' AND r.train_size = 1000 "
                         "AND r.status = 'finished'").fetchone()[0]
    finally:
        con.close()
    page = out.read_text()
    assert f"{r2:.3f}" in page and "generator version" in page and "\x1b[" not in page
    for name in ("scaling.png", "r2_vs_snr.png"):  # R² vs SNR without a ceiling here
        assert (out.parent / "results" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a second page beside it keeps its own figures (docs/results-demo.md → results-demo/)
    other = out.with_name("results-demo.md")
    subprocess.run([sys.executable, "-m", "engine.cli", "export", "results", "--out",
                    str(other), "--workspace", str(ws)], check=True, capture_output=True)
    assert "](results-demo/scaling.png)" in other.read_text()
    assert (out.parent / "results-demo" / "scaling.png").is_file()


@pytest.mark.slow
def test_a_study_killed_mid_step_continues_and_never_repeats_a_finished_run(tmp_path):
    ws = tmp_path / "ws"
    proc = _study(ws, wait=False)
    state_path = ws / "studies" / "tiny" / "state.json"
    deadline = time.time() + 600
    while time.time() < deadline:  # kill -9 once two steps (data, ridge 500) are done
        if state_path.exists() and len(json.loads(state_path.read_text())["steps"]) >= 2:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(3)  # the orphaned step got SIGINT (PDEATHSIG) and cancels its run
    again = _study(ws)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count(": skipped") >= 2
    _, _, runs = _counts(ws)
    assert all(c == 1 for _, _, c in runs), runs


def test_study_progress_is_the_run_fold_and_shows_in_the_tui_jobs_screen(tmp_path):
    """A real (trivial) study's events.jsonl, folded like a run's: finished, steps done,
    and the same line on logg-tui's Jobs screen."""
    import asyncio

    from textual.widgets import Static

    from engine.study.plan import Step
    from engine.study.runner import run_study
    from engine.study.state import study_line, study_states
    from logg_tui.app import LoggApp

    ws = tmp_path / "ws"
    steps = [Step("a", "first", ("query", "--help"), 1.0),
             Step("b", "second", ("query", "--help"), 1.0),
             Step("c", "on a GPU", ("query", "--help"), 1.0, skip_reason=GPU_ONLY)]
    out = run_study(steps, workspace=ws, folder=ws / "studies" / "mini")
    assert [o.status for o in out] == ["finished", "finished", "listed"]
    (name, st), = study_states(ws)
    assert (name, st.status, st.done, st.total) == ("mini", "finished", 3, 3)
    line = study_line(name, st)
    assert line.startswith("study mini: finished · 3/3 steps")

    async def look() -> str:
        app = LoggApp(ws)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("5")
            for _ in range(50):
                await pilot.pause(0.1)
                text = str(app.screen.query_one("#studies", Static).render())
                if "study mini" in text:
                    return text
        return text

    assert asyncio.run(look()).startswith("study mini: finished · 3/3 steps")


def test_without_a_terminal_the_study_writes_progress_lines_with_the_steps_own(
        tmp_path, monkeypatch, capsys):
    """`nohup make study > log`: while a step runs, the study's log gets a line every
    $LOGG_PROGRESS_EVERY_S seconds with the step's own latest line (here the dataset
    build's progress, read from steps/<key>.log) and the time left, not a silent hour."""
    import engine.study.runner as runner
    from engine.cli.study import _run_with_progress
    from engine.study.plan import Step

    monkeypatch.setattr(runner, "HEARTBEAT_S", 0.2)
    monkeypatch.setenv("LOGG_PROGRESS_EVERY_S", "0")
    ws, folder = tmp_path / "ws", tmp_path / "ws" / "studies" / "mini"
    steps = [Step("data", "data", ("data", "generate", "--preset", "tiny", "--name", "tiny",
                                   "--size", "200", "--no-crlb", "--compile", "off"), 30)]
    out = _run_with_progress(steps, ws, folder, keep_going=False)
    assert [o.status for o in out] == ["finished"]
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("study: ")]
    running = [x for x in lines if x.startswith("study: 0/1 (0 %) · generate tiny: ")]
    assert running, lines                       # the build's own progress line, relayed
    assert all(x.endswith(" left]") for x in running[1:])
    assert lines[-1].startswith("study: 1/1 (100 %) · ") and "left" not in lines[-1]


def test_a_running_study_line_ends_with_its_steps_latest_output(tmp_path):
    """logg-tui's Jobs screen: a running study's line carries the running step's latest
    line (the newest steps/*.log; a bar's carriage-return redraws count as lines)."""
    import os
    from types import SimpleNamespace

    from engine.study.state import step_tail, study_line

    steps = tmp_path / "studies" / "s" / "steps"
    steps.mkdir(parents=True)
    (steps / "ridge-1M.log").write_text("$ logg-engine scaling …\nridge done\n")
    (steps / "lgbm-50k.log").write_text("$ logg-engine scaling …\nlgbm: 10/300\rlgbm: 42/300\r")
    os.utime(steps / "ridge-1M.log", (1, 1))
    assert step_tail(tmp_path, "s") == "lgbm: 42/300"
    st = SimpleNamespace(status="running", done=6, total=25, metrics={"left_s": 600},
                         since=100.0, messages=["running: lgbm at 50k"])
    line = study_line("s", st, now=160.0, tail=step_tail(tmp_path, "s"))
    assert line == ("study s: running · 6/25 steps · running lgbm at 50k · elapsed 1m00s · "
                    "left ~10m00s · lgbm: 42/300")
    assert step_tail(tmp_path, "none") == ""


STOP_PROBE = """
import os, signal, subprocess, sys
from engine.cli.study import _stop_on_signals
from engine.study.runner import _die_with_parent
child = subprocess.run([sys.executable, "-c", "import signal; "
                        "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"],
                       preexec_fn=_die_with_parent, capture_output=True, text=True)
print("step answers SIGINT:", child.stdout.strip())
_stop_on_signals()
for sig in (signal.SIGINT, signal.SIGTERM):
    try:
        os.kill(os.getpid(), sig)
        signal.pause()
    except KeyboardInterrupt:
        print("study stops on", sig.name)
"""


def test_a_study_started_in_the_background_still_stops_on_sigint_and_sigterm():
    """`nohup make study &` starts the study with SIGINT ignored (bash does that to background
    jobs, Python keeps it): the study must still stop on SIGINT and SIGTERM, and its steps
    must answer SIGINT (their stop signal when the study dies), or a step trains on alone."""
    import signal

    out = subprocess.run([sys.executable, "-c", STOP_PROBE], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[1],
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert out.stdout.splitlines() == ["step answers SIGINT: True", "study stops on SIGINT",
                                       "study stops on SIGTERM"], out.stdout + out.stderr
