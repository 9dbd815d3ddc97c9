"""A soak survives its machine (issue 17 item 4, issue 16 item 2): locks, dead workers, a dead
parent, lost finding folders, conflicting flags, unwritable folders, batched fsyncs.

Each test asserts that nothing finished is lost and that the exit status and the one-line
message are right.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from vgic_actors.cli import main
from vgic_actors.soak import campaign as campaign_mod
from vgic_actors.soak import pool as pool_mod
from vgic_actors.soak.campaign import OutLock
from vgic_actors.soak.worker import RunRecord, run_index, scenario_seed


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def records(out: Path) -> list[RunRecord]:
    lines = (out / "results.jsonl").read_bytes().splitlines()
    return [msgspec.json.decode(line, type=RunRecord) for line in lines]


def key(rec: RunRecord) -> tuple[object, ...]:
    return (rec.index, rec.scenario_seed, rec.strategy, rec.signature, rec.interleaving)


@pytest.mark.parametrize("resume", [False, True])
def test_a_second_soak_on_a_locked_out_is_refused_naming_the_holder(tmp_path, resume):
    """While a soak holds --out, another soak or a resume gets one line naming its pid."""
    out = tmp_path / "c"
    assert cli("soak", "--runs", "2", "--out", str(out))[0] in (0, 1)  # 1: a finding
    lock = OutLock.acquire(out)
    try:
        before = (out / "results.jsonl").read_bytes()
        code, stdout, err = cli("soak", "--runs", "4", "--out", str(out),
                                *(["--resume"] if resume else []))
        assert (code, stdout) == (2, "")
        assert err == (f"error: {out} is in use by another soak (pid {os.getpid()}): wait for "
                       "it to end, or choose another --out\n")
        assert (out / "results.jsonl").read_bytes() == before
    finally:
        lock.release()
    assert cli("soak", "--runs", "4", "--out", str(out), "--resume")[0] in (0, 1)
    assert sorted(r.index for r in records(out)) == [0, 1, 2, 3]


def test_a_killed_worker_is_a_crash_record_and_the_campaign_goes_on(tmp_path, monkeypatch):
    """kill -9 of the worker running run 3: a crash finding with its index and seed; every
    other run is recorded as a one-worker campaign records it."""
    def dies_on_3(source, variant, seed, strategy, index):
        if index == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return run_index(source, variant, seed, strategy, index)

    one = tmp_path / "one"
    cli("soak", "--variant", "no-spi-tracking", "--runs", "10", "--out", str(one))
    monkeypatch.setattr(pool_mod, "run_index", dies_on_3)
    two = tmp_path / "two"
    code, stdout, err = cli("soak", "--variant", "no-spi-tracking", "--runs", "10", "--out",
                            str(two), "--workers", "2")
    assert code == 1 and "Traceback" not in err
    recs = {r.index: r for r in records(two)}
    assert sorted(recs) == list(range(10))
    crash = recs.pop(3)
    assert (crash.outcome, crash.signature) == ("crash", "crash/worker-died")
    assert crash.scenario_seed == scenario_seed(0, 3) and "signal 9" in crash.detail
    assert sorted(map(key, recs.values())) == sorted(key(r) for r in records(one)
                                                     if r.index != 3)
    assert "crash/worker-died" in stdout
    assert json.loads((two / "summary.json").read_text())["crashes"] == 1


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # a zombie is dead, not yet reaped


def _wait_for(condition, what: str, limit: float = 120.0) -> None:
    """Poll ``condition`` (a liveness wait, not a timing assertion: the limit only stops
    a broken run from hanging the suite)."""
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_the_parents_death_takes_its_workers_and_loses_no_finished_run(tmp_path):
    """kill -9 of the soak itself: its workers die too, the lock is free, and --resume keeps
    every run the killed soak had written."""
    out = tmp_path / "c"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from vgic_actors.cli import entry; entry()", "soak",
         "--variant", "no-spi-tracking", "--workers", "2", "--time", "10m", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        results = out / "results.jsonl"
        _wait_for(lambda: results.exists() and results.read_bytes().count(b"\n") >= 4,
                  "four finished runs")
        workers = _children(proc.pid)
        assert len(workers) == 2
        proc.kill()
        proc.wait()
        for pid in workers:
            _wait_for(lambda pid=pid: _gone(pid), f"worker {pid} to die")
    finally:
        proc.kill()
        proc.wait()
    written = {key(r) for r in records(out)}
    assert len(written) >= 4
    code, _, err = cli("soak", "--runs", str(max(r.index for r in records(out)) + 3),
                       "--out", str(out), "--resume")
    assert code == 1 and "Traceback" not in err
    assert written <= {key(r) for r in records(out)}


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_ctrl_c_on_a_pool_soak_is_one_line_and_its_summary_exact(tmp_path):
    """SIGINT to the soak's process group (what Ctrl-C sends): exit 130, no traceback from
    the soak or its workers, summary.json counting exactly the runs results.jsonl holds."""
    out = tmp_path / "c"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from vgic_actors.cli import entry; entry()", "soak",
         "--workers", "2", "--time", "10m", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        results = out / "results.jsonl"
        _wait_for(lambda: results.exists() and results.read_bytes().count(b"\n") >= 4,
                  "four finished runs")
        workers = _children(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.rstrip("\n").splitlines()[-1].startswith("interrupted: ")
    assert json.loads((out / "summary.json").read_text())["runs"] == len(records(out))
    assert all(_gone(pid) for pid in workers)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_a_resume_beside_a_running_soak_is_refused_and_loses_nothing(tmp_path):
    """The issue's lost runs: --resume on the --out of a soak still running is refused with
    its pid, and the running soak's results are untouched."""
    out = tmp_path / "c"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from vgic_actors.cli import entry; entry()", "soak",
         "--runs", "100000", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        results = out / "results.jsonl"
        _wait_for(lambda: results.exists() and results.read_bytes().count(b"\n") >= 2,
                  "two finished runs")
        code, stdout, err = cli("soak", "--runs", "100000", "--out", str(out), "--resume")
        assert (code, stdout) == (2, "") and f"(pid {proc.pid})" in err
        before = results.read_bytes()
        _wait_for(lambda: len(results.read_bytes()) > len(before), "the soak to go on")
        assert results.read_bytes().startswith(before)
    finally:
        proc.kill()
        proc.wait()


def test_resume_recreates_finding_folders_the_disk_lost(tmp_path):
    """Findings results.jsonl names but whose folders are gone come back on --resume."""
    out = tmp_path / "c"
    cli("soak", "--variant", "no-spi-tracking", "--runs", "8", "--out", str(out))
    saved = {p.name: (p / "finding.json").read_bytes() for p in (out / "findings").iterdir()}
    assert saved
    lost = sorted(saved)[0]
    choices = (out / "findings" / lost / "choices.json").read_bytes()
    shutil.rmtree(out / "findings" / lost)
    code, _, _ = cli("soak", "--runs", "8", "--out", str(out), "--resume")
    assert code == 1
    again = {p.name: (p / "finding.json").read_bytes() for p in (out / "findings").iterdir()}
    assert again == saved
    (out / "findings" / lost / "choices.json").unlink()  # a folder half lost
    assert cli("soak", "--runs", "8", "--out", str(out), "--resume")[0] == 1
    assert (out / "findings" / lost / "choices.json").read_bytes() == choices


@pytest.mark.parametrize(("flag", "value", "stored"), [
    ("--variant", "merged", "no-spi-tracking"),
    ("--seed", "5", "0"),
    ("--strategy", "random", "portfolio"),
])
def test_resume_refuses_a_flag_that_contradicts_campaign_json(tmp_path, flag, value, stored):
    """A conflicting flag on --resume is one usage line; repeating the stored value is fine."""
    out = tmp_path / "c"
    cli("soak", "--variant", "no-spi-tracking", "--runs", "2", "--out", str(out))
    code, stdout, err = cli("soak", "--runs", "3", "--out", str(out), "--resume", flag, value)
    assert (code, stdout) == (2, "")
    assert err.startswith(f"error: {flag} {value}: {out} is a campaign of {flag} {stored} ")
    assert len(records(out)) == 2
    code, _, _ = cli("soak", "--runs", "3", "--out", str(out), "--resume", flag, stored)
    assert code in (0, 1) and len(records(out)) == 3


def test_resume_refuses_a_campaign_json_naming_an_unknown_variant(tmp_path):
    """campaign.json is checked, so a bad one is one line, not a crash finding per run."""
    out = tmp_path / "c"
    cli("soak", "--runs", "2", "--out", str(out))
    meta = out / "campaign.json"
    meta.write_text(meta.read_text().replace('"merged"', '"nosuch"'))
    code, _, err = cli("soak", "--runs", "4", "--out", str(out), "--resume")
    assert code == 2 and err == f"error: {meta}: $.variant: expected a variant name, " \
        "got 'nosuch'\n"


@pytest.mark.parametrize("code_", [errno.ENOSPC, errno.EROFS])
def test_an_unwritable_out_is_one_line_and_keeps_finished_runs(tmp_path, monkeypatch, code_):
    """Disk full or read-only midway: exit 2, one line, every run written before is kept."""
    out = tmp_path / "c"
    cli("soak", "--variant", "no-spi-tracking", "--runs", "3", "--out", str(out))
    before = (out / "results.jsonl").read_bytes()

    def fsync(_fd: int) -> None:
        raise OSError(code_, os.strerror(code_))

    monkeypatch.setattr(campaign_mod.os, "fsync", fsync)
    code, stdout, err = cli("soak", "--runs", "6", "--out", str(out), "--resume")
    assert (code, stdout) == (2, "") and err.count("\n") == 1
    assert err.startswith(f"error: {out}") and f"cannot write: {os.strerror(code_)}" in err
    assert (out / "results.jsonl").read_bytes().startswith(before)


def test_an_out_under_a_file_is_one_line(tmp_path):
    """--out below a regular file: exit 2, one line naming it."""
    (tmp_path / "f").write_text("x")
    code, _, err = cli("soak", "--runs", "1", "--out", str(tmp_path / "f" / "c"))
    assert code == 2 and err == f"error: {tmp_path / 'f' / 'c'}: cannot write: Not a " \
        "directory (finished runs are kept; --resume continues)\n"


def test_clean_runs_are_fsynced_in_batches_and_each_finding_at_once(tmp_path, monkeypatch):
    """No fsync per clean run: results.jsonl is synced right after each finding's line, and
    at the end (with the batch limits out of reach)."""
    monkeypatch.setattr(campaign_mod, "SYNC_RUNS", 10**9)
    monkeypatch.setattr(campaign_mod, "SYNC_SECONDS", 1e12)
    out = tmp_path / "c"
    results = out / "results.jsonl"
    synced: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        if results.exists() and os.path.samefile(f"/proc/self/fd/{fd}", results):
            synced.append(results.read_bytes().count(b"\n"))
        real(fd)

    monkeypatch.setattr(campaign_mod.os, "fsync", fsync)
    cli("soak", "--variant", "no-spi-tracking", "--runs", "16", "--out", str(out))
    recs = records(out)
    findings = [i + 1 for i, r in enumerate(recs) if r.signature]
    assert 0 < len(findings) < len(recs)
    assert synced == [*findings, len(recs)]


def test_an_absurd_worker_count_is_a_usage_line(tmp_path):
    """--workers is range-checked before any process starts."""
    code, _, err = cli("soak", "--runs", "1", "--workers", "100000", "--out", str(tmp_path))
    assert code == 2 and err == "error: --workers: expected 1..256, got 100000\n"
