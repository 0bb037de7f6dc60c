"""A build that cannot finish leaves nothing that looks finished (issue 11 item 7).

Real file systems, real HDF5, real subprocesses: a small tmpfs (mounted here; skipped with
the reason where `mount` is not permitted, e.g. unprivileged CI), the --keep-free quota on
the ordinary temp disk (no mount needed), damaged shards made by writing into the files,
and a build killed with SIGKILL in the middle of a shard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import h5py
import numpy as np
import pytest

from engine.errors import DataError
from engine.generator.build import build_dataset
from engine.generator.presets import Preset, ShardSpec
from engine.io.dataset import BUILDING, Dataset
from engine.io.diskspace import free_bytes, shard_bytes
from engine.io.shard_verify import verify_shard

MICRO = Preset("micro", (ShardSpec("train_16_0", 16), ShardSpec("test_4_0", 4, crlb=True, noisy=True)))
REPO = Path(__file__).resolve().parents[1]


def _logs(store):
    return lambda event, **f: store.append(f["message"]) if event == "log" else None


def _leftovers(root: Path) -> list[str]:
    """Temporary or half-written files under a dataset folder."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and (p.name.endswith((".partial", ".tmp", ".progress.json", ".npz"))))


@pytest.fixture
def small_fs(request):
    """A real tmpfs of `request.param` bytes (default 6 MB), unmounted afterwards."""
    size = getattr(request, "param", 6 * 2**20)
    mnt = Path(f"/tmp/logg-tmpfs-{uuid.uuid4().hex[:8]}")
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        mnt.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'not permitted'}); "
                    "the --keep-free tests cover the same checks without mount")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)
    mnt.rmdir()


# ------------------------------------------------------------------ estimate and preflight

def test_estimate_matches_real_shard_sizes(tiny_dataset):
    """The estimate is within 2 % of every real shard of the tiny preset, never below it
    by more than that (chunk padding and the params table included)."""
    for shard, arrays in (("train_1k_0", 2), ("val_100", 2), ("test_200_0", 3)):
        real = (tiny_dataset / shard / "dataset.h5").stat().st_size
        with Dataset(tiny_dataset) as ds:
            est = shard_bytes(ds.rows(shard), 4096, arrays)
        assert abs(est - real) / real < 0.02, (shard, est, real)


def test_keep_free_quota_refuses_before_writing(tmp_path):
    """No mount needed: a --keep-free that leaves less than the build needs is refused with
    the path, bytes needed and free, and nothing is written (not even the folder)."""
    out = tmp_path / "ds"
    need = shard_bytes(16, 4096, 2) + shard_bytes(4, 4096, 3)
    keep = free_bytes(tmp_path) - need // 2
    with pytest.raises(DataError) as e:
        build_dataset(MICRO, out=out, seed=1, compile="off", keep_free=keep)
    text = e.value.render()
    assert "not enough disk space" in text and str(out) in text and "fix:" in text
    assert not out.exists()
    # the same build with room passes the check
    msgs = []
    build_dataset(MICRO, out=out, seed=1, compile="off", crlb=False,
                  keep_free=free_bytes(tmp_path) - 4 * need, callbacks=[_logs(msgs)])
    assert any(m.startswith("will write 20 spectra") for m in msgs)


def test_cli_refuses_on_a_6mb_tmpfs(small_fs):
    """Issue 11's reproduction: `data generate --preset tiny` on 6 MB: one clear error,
    exit 3, no traceback, nothing left behind."""
    out = small_fs / "ds"
    exe = str(Path(sys.executable).with_name("logg-engine"))
    r = subprocess.run([exe, "data", "generate", "--preset", "tiny", "--out", str(out),
                        "--compile", "off"], cwd=REPO, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert "not enough disk space" in r.stderr and str(out) in r.stderr
    assert "will write 1300 spectra" in r.stdout
    assert not out.exists() and not any(small_fs.iterdir())


@pytest.mark.parametrize("small_fs", [3 * 2**20], indirect=True)
def test_disk_fills_mid_build_then_resume(small_fs):
    """The disk fills up (another writer) after the first shard: one DataError naming the
    shard, its temporary files removed, no manifest, the folder marked unfinished (readers
    refuse it); with space back the same build verifies the first shard and finishes."""
    out = small_fs / "ds"
    filler = small_fs / "filler"

    def fill(event, **f):
        if event == "log" and f["message"].startswith("train_16_0 written"):
            with open(filler, "wb") as fh:
                try:
                    while True:
                        fh.write(b"\0" * 65536)
                        fh.flush()
                except OSError:
                    pass

    with pytest.raises(DataError) as e:
        build_dataset(MICRO, out=out, seed=1, compile="off", callbacks=[fill])
    assert "no space left on device while writing shard test_4_0" in e.value.render()
    assert e.value.path == str(out / "test_4_0")
    assert _leftovers(out) == [] and not (out / "test_4_0" / "dataset.h5").exists()
    assert not (out / "dataset.json").exists() and (out / BUILDING).exists()
    with pytest.raises(DataError, match="has not finished"):
        Dataset(out)
    filler.unlink()
    msgs = []
    build_dataset(MICRO, out=out, seed=1, compile="off", callbacks=[_logs(msgs)])
    assert "skip train_16_0 (already built, verified)" in msgs
    assert json.loads((out / "dataset.json").read_text())["complete"] is True
    assert not (out / BUILDING).exists() and _leftovers(out) == []
    with Dataset(out) as ds:
        assert ds.rows("test_4_0") == 4 and np.isfinite(ds.split("test").params["crlb_log_g"]).all()


# ------------------------------------------------------------------ verification on resume

def test_zeroed_and_truncated_shards_are_rebuilt(tmp_path):
    out = build_dataset(MICRO, out=tmp_path / "ds", seed=2, compile="off")
    train = out / "train_16_0" / "dataset.h5"
    test = out / "test_4_0" / "dataset.h5"
    with Dataset(out) as ds:
        flux0 = ds.split("train").read("flux").copy()
        noisy0 = ds.split("test").read("noisy").copy()
    with h5py.File(train, "r+") as h5:  # rows zeroed in place (what a full disk left)
        h5["dataset/arrays/flux/value"][3:5] = 0
    with pytest.raises(DataError, match="2 of 16 flux rows are all zero"):
        verify_shard(train)
    with h5py.File(test, "r+") as h5:   # one value changed: only the checksum sees it
        h5["dataset/arrays/noisy/value"][1, 7] += 1
    with pytest.raises(DataError, match="does not match its checksum"):
        verify_shard(test)
    msgs = []
    build_dataset(MICRO, out=out, seed=2, compile="off", callbacks=[_logs(msgs)])
    assert sum(m.startswith("rebuild ") and "failed verification" in m for m in msgs) == 2
    with Dataset(out) as ds:
        np.testing.assert_array_equal(ds.split("train").read("flux"), flux0)
        np.testing.assert_array_equal(ds.split("test").read("noisy"), noisy0)
    # a truncated file (torn copy) is rebuilt too
    size = test.stat().st_size
    with open(test, "r+b") as fh:
        fh.truncate(size // 2)
    msgs = []
    build_dataset(MICRO, out=out, seed=2, compile="off", callbacks=[_logs(msgs)])
    assert any(m.startswith("rebuild test_4_0") for m in msgs)
    assert "skip train_16_0 (already built, verified)" in msgs
    verify_shard(test, rows=4, arrays=("flux", "error", "noisy"))


_KILL_SCRIPT = """
import sys
from engine.generator.build import build_dataset
from engine.generator.presets import Preset, ShardSpec
P = Preset("k", (ShardSpec("train_96_0", 96), ShardSpec("test_4_0", 4, noisy=True)))
build_dataset(P, out=sys.argv[1], seed=3, compile="off", crlb=False, batch=8,
              checkpoint_rows=16)
"""


@pytest.mark.slow
def test_kill9_mid_shard_resumes_from_checkpoint(tmp_path):
    """SIGKILL inside a shard leaves a partial file (no final name, folder marked
    unfinished); the rerun continues at the last checkpoint, not row 0, and the shard is
    identical to an uninterrupted build."""
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(out)], env=env, cwd=REPO)
    progress = out / "train_96_0" / "dataset.h5.progress.json"
    deadline = time.time() + 300
    rows = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            rows = json.loads(progress.read_text())["rows"]
        except (OSError, ValueError):
            rows = 0
        if rows >= 32:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    proc.wait()
    assert rows >= 32 and proc.returncode == -signal.SIGKILL
    assert not (out / "train_96_0" / "dataset.h5").exists()
    assert (out / "train_96_0" / "dataset.h5.partial").exists() and (out / BUILDING).exists()
    msgs = []
    from engine.generator.presets import Preset as P_, ShardSpec as S_
    preset = P_("k", (S_("train_96_0", 96), S_("test_4_0", 4, noisy=True)))
    build_dataset(preset, out=out, seed=3, compile="off", crlb=False, batch=8,
                  checkpoint_rows=16, callbacks=[_logs(msgs)])
    resumed = [m for m in msgs if m.startswith("resume train_96_0 at row ")]
    assert resumed and int(resumed[0].split()[4]) >= 32
    fresh = build_dataset(preset, out=tmp_path / "fresh", seed=3, compile="off", crlb=False,
                          batch=8, checkpoint_rows=16)
    with Dataset(out) as a, Dataset(fresh) as b:
        for split in ("train", "test"):
            np.testing.assert_array_equal(a.split(split).read("flux"), b.split(split).read("flux"))
            np.testing.assert_array_equal(a.split(split).read("error"),
                                          b.split(split).read("error"))
            np.testing.assert_array_equal(a.split(split).params["snr"],
                                          b.split(split).params["snr"])
        assert a.fingerprint() == b.fingerprint()
    assert _leftovers(out) == []


_CRLB_SCRIPT = """
import sys
import engine.generator.build as B
from engine.generator.presets import Preset, ShardSpec
B.CRLB_CHECKPOINT_ROWS = 16
P = Preset("c", (ShardSpec("test_48_0", 48, crlb=True),))
log = lambda ev, **f: print(f["message"], flush=True) if ev == "log" else None
B.build_dataset(P, out=sys.argv[1], seed=7, compile="off", batch=16, callbacks=[log])
"""


@pytest.mark.slow
def test_kill9_in_crlb_pass_resumes_the_pass(tmp_path):
    """The CRLB pass (an hour for test_10k at 2.7/s) is checkpointed too: a SIGKILL in it
    keeps the rows and the CRLBs done so far, and the rerun's columns equal a fresh build's."""
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _CRLB_SCRIPT, str(out)], env=env, cwd=REPO)
    side = out / "test_48_0" / "dataset.h5.side.npz"
    deadline = time.time() + 400
    done = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            with np.load(side) as z:
                done = int(z["done"])
        except (OSError, ValueError, KeyError):
            done = 0
        if done >= 16:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    proc.wait()
    assert done >= 16 and proc.returncode == -signal.SIGKILL
    assert not (out / "test_48_0" / "dataset.h5").exists()
    again = subprocess.run([sys.executable, "-c", _CRLB_SCRIPT, str(out)], env=env, cwd=REPO,
                           check=True, capture_output=True, text=True).stdout
    assert "resume test_48_0 at row 48 of 48" in again          # no row is synthesised again
    line = next(ln for ln in again.splitlines() if ln.startswith("resume test_48_0 crlb"))
    assert int(line.split()[5]) >= 16                           # nor a checkpointed CRLB
    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-c", _CRLB_SCRIPT, str(fresh)], env=env, cwd=REPO,
                   check=True)
    with Dataset(out) as a, Dataset(fresh) as b:
        pa, pb = a.split("test").params, b.split("test").params
        np.testing.assert_array_equal(pa["crlb_log_g"], pb["crlb_log_g"])
        np.testing.assert_array_equal(pa["crlb_schur"], pb["crlb_schur"])
        np.testing.assert_array_equal(a.split("test").read("flux"), b.split("test").read("flux"))
    assert _leftovers(out) == []
