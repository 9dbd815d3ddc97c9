"""The inspector benchmark's log and figures (no timing assertions), and the CLI's help."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from tests.logs.conftest import cli
from vgic_actors.logs import LogReader, check_log, collect
from vgic_actors.logs.bench import synthesise


def test_synthesised_log_is_a_valid_log(tmp_path: Path) -> None:
    """The benchmark's log reads back with no problem, its steps never go back."""
    path = tmp_path / "b.jsonl"
    n = synthesise(path, 3000)
    problems: list[object] = []
    st = collect(LogReader(path, on_problem=problems.append))
    assert n >= 3000 and st.events == n and not problems
    steps = [msgspec.json.decode(line)["step"] for line in path.read_bytes().splitlines()]
    assert steps == sorted(steps)
    assert check_log(LogReader(path)).events == n


def test_bench_inspector_prints_figures() -> None:
    """bench --inspector prints events/s for filter and stats as JSON."""
    status, out, _ = cli("bench", "--inspector", "--events", "2000")
    result = msgspec.json.decode(out)
    assert status == 0 and result["events"] >= 2000
    for key in ("filter_kind_events_per_s", "filter_vcpu_events_per_s", "stats_events_per_s"):
        assert result[key] > 0


def test_logs_help_and_missing_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    """Every subcommand has help; `logs` alone is a usage error."""
    for sub in ("filter", "timeline", "irq", "stats", "check", "diff", "perfetto", "html"):
        status, _out, _ = cli("logs", sub, "--help")
        assert status == 0 and "--strict" in capsys.readouterr().out, sub
    status, _out, err = cli("logs")
    assert status == 2 and "needs a subcommand" in err


def test_bench_inspector_works_from_the_wheel_layout(tmp_path: Path) -> None:
    """Installed from a wheel, the package carries config and scenarios as _config and
    _scenarios (pyproject.toml force-include) and has no checkout beside it."""
    import os
    import shutil
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    site = tmp_path / "site"
    shutil.copytree(root / "vgic_actors", site / "vgic_actors",
                    ignore=shutil.ignore_patterns("__pycache__", "_config", "_scenarios"))
    shutil.copytree(root / "config", site / "vgic_actors" / "_config")
    shutil.copytree(root / "scenarios", site / "vgic_actors" / "_scenarios")
    proc = subprocess.run([sys.executable, "-m", "vgic_actors.cli", "bench", "--inspector",
                           "--events", "2000"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(site)}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert msgspec.json.decode(proc.stdout)["events"] >= 2000
