"""The long fuzz campaigns of issue 17 (`pytest -m fuzz -s`; deselected by default).

The same generators as the quick profiles in the normal suite, many more examples:
hostile scenario files through `validate` and `run` (tests/scenario/test_hostile_generated.py)
and corrupted logs through every `logs` subcommand (tests/logs/test_hostile_logs.py).
``VGIC_FUZZ_SCALE`` (default 1) scales the example counts. Each campaign prints what it
did: files, rejections, runs slower than 10 s, the slowest, and the process's peak memory.
"""

from __future__ import annotations

import os
import resource
from collections import Counter

import pytest

from tests.logs.conftest import record
from tests.logs.test_hostile_logs import LOG_PROFILES, check_corruptions
from tests.scenario.test_hostile_generated import HOSTILE_PROFILES, check_hostile

pytestmark = pytest.mark.fuzz


def scaled(count: int) -> int:
    return max(1, int(count * float(os.environ.get("VGIC_FUZZ_SCALE", "1"))))


def peak_mib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def test_long_hostile_scenario_campaign(tmp_path):
    """10,000 hostile scenario files: each one true line or a run to a verdict."""
    stats: Counter[str] = Counter()
    check_hostile(tmp_path, scaled(HOSTILE_PROFILES["fuzz"]), stats)
    print(f"\nhostile scenarios: {dict(stats)}; peak memory {peak_mib()} MiB")
    assert stats["files"] >= scaled(HOSTILE_PROFILES["fuzz"]) // 2


def test_long_corrupted_log_campaign(tmp_path):
    """2,000 corrupted logs through every `logs` subcommand, with and without --strict."""
    log = record("asym_dir.yaml", "no-spi-tracking", 0, tmp_path / "base.jsonl")
    count = check_corruptions(log, tmp_path, scaled(LOG_PROFILES["fuzz"]))
    print(f"\ncorrupted logs: {count} files, {count * 20} invocations; peak memory "
          f"{peak_mib()} MiB")
    assert count >= scaled(LOG_PROFILES["fuzz"]) // 2
