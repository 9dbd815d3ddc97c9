"""Logs of real scenario runs, written once per session by the same path as ``run --log``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from vgic_actors.cli import main
from vgic_actors.scenario import load_scenario, run_scenario
from vgic_actors.scenario.runner import record_run

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def record(scenario: str, variant: str, seed: int, dest: Path) -> Path:
    """Run one scenario/variant/seed and write its log to ``dest`` (``run --log``'s path)."""
    sc = load_scenario(SCENARIOS / scenario)
    report = run_scenario(sc, variants=[variant], seed=seed, runs=1)
    record_run(sc, report.variants[0].runs[0], dest)
    return dest


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def failing_log(logs_dir: Path) -> Path:
    """asym_dir on no-spi-tracking, seed 0: the lost deactivation."""
    return record("asym_dir.yaml", "no-spi-tracking", 0, logs_dir / "fail.jsonl")


@pytest.fixture(scope="session")
def passing_log(logs_dir: Path) -> Path:
    """asym_dir on merged, seed 0: the trapped DIR and the broadcast kick."""
    return record("asym_dir.yaml", "merged", 0, logs_dir / "pass.jsonl")


def cli(*argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()
