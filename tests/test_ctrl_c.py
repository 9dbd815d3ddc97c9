"""Ctrl-C: every command exits 130 with one line, keeps what finished and says how to go on.

The subprocess tests send a real SIGINT once the command has visibly started working
(a result line written, a progress line printed), never after a fixed delay.
"""

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vgic_actors.cli import main
from vgic_actors.runtime import RandomWalk
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.runner import run_once

ROOT = Path(__file__).resolve().parents[1]


def interrupt(tmp_path, argv, ready):
    """Start ``vgic-actors argv``, wait until ``ready(stderr text)``, send SIGINT."""
    err = tmp_path / "stderr.txt"
    with err.open("w") as fh:
        # A shell that starts jobs in the background hands them SIGINT ignored, and Python
        # keeps an ignored SIGINT ignored: the command is given the default disposition.
        proc = subprocess.Popen([sys.executable, "-m", "vgic_actors.cli", *argv], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=fh, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)},
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        while proc.poll() is None and not ready(err.read_text()):
            time.sleep(0.05)
        assert proc.poll() is None, "the command ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(f"still running 120 s after SIGINT; stderr: {err.read_text()[-500:]!r}")
    lines = [ln for ln in err.read_text().replace("\r", "\n").splitlines() if ln.strip()]
    return proc.returncode, out, lines


def test_soak_keeps_its_runs_and_prints_the_resume_command(tmp_path):
    """results.jsonl keeps every finished run; the last line continues the campaign."""
    out = tmp_path / "c"
    code, stdout, lines = interrupt(
        tmp_path, ["soak", "--runs", "100000", "--out", str(out), "--progress"],
        lambda _: (out / "results.jsonl").exists() and (out / "results.jsonl").stat().st_size)
    assert code == 130 and "Traceback" not in "\n".join(lines)
    assert lines[-1].startswith("interrupted: ") and "finished runs kept" in lines[-1]
    assert lines[-1].endswith(f"continue: vgic-actors soak --runs 100000 --out {out} "
                              "--progress --resume")
    assert (out / "results.jsonl").read_text().count("\n") >= 1 and "runs" in stdout


def test_explore_exits_130_with_one_line_and_no_trio_traceback(tmp_path):
    """The run in progress finishes first, so Trio never sees the interrupt."""
    code, _, lines = interrupt(
        tmp_path, ["explore", str(ROOT / "scenarios/asym_dir.yaml"), "--bound", "3",
                   "--progress"], lambda text: "explore:" in text)
    assert code == 130 and "Traceback" not in "\n".join(lines), lines
    assert lines[-1].startswith("interrupted: ") and "nothing proven" in lines[-1]
    assert all(ln.startswith("explore:") for ln in lines[:-1]), lines


class _InterruptOnce(RandomWalk):
    """Random walk that raises SIGINT at its first decision and counts the later ones."""

    def __init__(self) -> None:
        super().__init__(0)
        self.after = -1

    def choose(self, enabled):
        if self.after < 0:
            signal.raise_signal(signal.SIGINT)
        self.after += 1
        return super().choose(enabled)


def test_a_model_run_finishes_before_ctrl_c_is_raised():
    """SIGINT during a run is held until the run returns, then raised in the caller."""
    strategy = _InterruptOnce()
    with pytest.raises(KeyboardInterrupt):
        run_once(load_scenario(ROOT / "scenarios/asym_dir.yaml"), "merged", 0, strategy)
    assert strategy.after > 10  # the run went on to its end
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("argv", [["run", str(ROOT / "scenarios/asym_dir.yaml")],
                                  ["variants"]])
def test_ctrl_c_anywhere_else_is_one_line_naming_the_command_again(monkeypatch, argv):
    """A command without state to keep says so and repeats itself."""
    def stop(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr("vgic_actors.scenario.run_scenario", stop)
    monkeypatch.setattr("vgic_actors.cli._variants", stop)
    out, err = io.StringIO(), io.StringIO()
    assert main(argv, stdout=out, stderr=err) == 130
    assert err.getvalue().count("\n") == 1
    assert err.getvalue().startswith("interrupted: ")
    assert err.getvalue().rstrip().endswith("vgic-actors " + " ".join(argv))
