"""``logs check``: offline invariants agree with the run's own judgement."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.logs.conftest import SCENARIOS, cli, record
from vgic_actors.events import ENCODER, IrqQueued, RunEnded, RunStarted
from vgic_actors.logs import LogReader, check_log
from vgic_actors.logs.check import CHECKED
from vgic_actors.scenario import load_scenario, run_scenario


def test_failing_run_reports_the_lost_deactivation(failing_log: Path) -> None:
    """deactivation-lost, pointing at vcpu1's untrapped DIR, with context; exit 1."""
    status, out, _ = cli("logs", "check", str(failing_log))
    assert status == 1
    assert "first violation: deactivation-lost (liveness)" in out
    assert "SPI 32 is still Active (on vcpu0's ap_list)" in out
    marked = [line for line in out.splitlines() if line.startswith(">")]
    assert len(marked) == 1 and "vcpu1 DIR INTID 32 (not trapped)" in marked[0]


def test_passing_run_is_clean(passing_log: Path) -> None:
    """merged: no violation, exit 0."""
    status, out, _ = cli("logs", "check", str(passing_log))
    assert status == 0 and "ok: no violation" in out


@pytest.mark.parametrize(("scenario", "variant"), [
    ("dec_on_fold.yaml", "mutant-dec-on-every-fold"),
    ("dec_on_fold.yaml", "merged"),
    ("irqfd_resample.yaml", "merged"),
    ("lpi_overflow.yaml", "merged"),
    ("nested_overflow_eoi.yaml", "v4-applied"),
    ("gicv2_asym_dir.yaml", "no-spi-tracking"),
])
def test_offline_verdict_matches_the_runs_own(scenario: str, variant: str,
                                              tmp_path: Path) -> None:
    """For the invariants a log can show, offline and online judgements name the same set."""
    sc = load_scenario(SCENARIOS / scenario)
    if variant not in sc.variants():
        pytest.skip(f"{scenario} does not list {variant}")
    run = run_scenario(sc, variants=[variant], seed=0, runs=1).variants[0].runs[0]
    log = record(scenario, variant, 0, tmp_path / "run.jsonl")
    online = {v.invariant for v in run.violations} & set(CHECKED)
    offline = {v.invariant for v in check_log(LogReader(log)).violations}
    assert offline == online


def _write(path: Path, events: list[object]) -> Path:
    path.write_bytes(b"".join(ENCODER.encode(e) + b"\n" for e in events))
    return path


def test_ap_list_violation_from_events(tmp_path: Path) -> None:
    """An INTID queued on a second ap_list with no prune in between is ap-list-consistency."""
    log = _write(tmp_path / "ap.jsonl", [
        RunStarted(step=0, vt=0, actor="runner", tool_version="t", seed=0, strategy="s"),
        IrqQueued(step=3, vt=3, actor="distributor", intid=40, vcpu=0),
        IrqQueued(step=9, vt=9, actor="distributor", intid=40, vcpu=1),
        RunEnded(step=10, vt=10, actor="scheduler", outcome="quiescent"),
    ])
    result = check_log(LogReader(log))
    assert [v.invariant for v in result.violations] == ["ap-list-consistency"]
    assert result.violations[0].line == 3 and result.violations[0].step == 9


def test_livelock_and_deadlock_outcomes(tmp_path: Path) -> None:
    """A budget-exhausted run is a livelock; a cut-off log says so in its outcome."""
    head = RunStarted(step=0, vt=0, actor="runner", tool_version="t", seed=0, strategy="s")
    log = _write(tmp_path / "b.jsonl", [head, RunEnded(step=5, vt=5, actor="scheduler",
                                                       outcome="budget")])
    assert [v.invariant for v in check_log(LogReader(log)).violations] == ["livelock"]
    cut = _write(tmp_path / "c.jsonl", [head])
    assert "cut short" in check_log(LogReader(cut)).outcome
