"""Golden schedules: fixed seeds x scenarios x strategies keep their choice log and event
stream byte for byte, so a change meant only to make the model faster cannot change what
it explores (issue 16).

Each case is run twice: with the event log (its digest, header line excluded: that one
names the tool version) and as the soak runs it, without a log (its choice log must be the
logged run's). ``SOAK`` pins 100 consecutive soak runs of the default profile under the
portfolio (each record's choices, steps, outcome and violations).

When a change is *meant* to alter schedules or events (a new interleaving point, a new
event field, a strategy change), regenerate the goldens and say so in the commit:

    VGIC_GOLDEN_UPDATE=1 .venv/bin/python -m pytest -q tests/golden

then review ``git diff tests/golden/schedules.json``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from vgic_actors.scenario.loader import Scenario, config_dir, load_scenario
from vgic_actors.scenario.runner import run_once
from vgic_actors.soak.profile import load_profile
from vgic_actors.soak.worker import ScenarioSource, run_index

GOLDEN = Path(__file__).with_name("schedules.json")
UPDATE = os.environ.get("VGIC_GOLDEN_UPDATE") == "1"
ROOT = Path(__file__).resolve().parents[2]

SCENARIOS = {
    "default": (config_dir() / "default-scenario.yaml", ("merged",)),
    "asym_dir": (ROOT / "scenarios/asym_dir.yaml", ("merged", "mutant-kick-only-target")),
    "gicv2_asym_dir": (ROOT / "scenarios/gicv2_asym_dir.yaml", ("merged",)),
    "lpi_overflow": (ROOT / "scenarios/lpi_overflow.yaml", ("merged",)),
    "irqfd_resample": (ROOT / "scenarios/irqfd_resample.yaml", ("merged",)),
    "entry_window": (ROOT / "scenarios/entry_window.yaml", ("mutant-no-request-recheck",)),
    "gen-11": (None, ("merged", "no-spi-tracking")),
    "gen-12": (None, ("merged",)),
}
STRATEGIES = ("random", "pct:3", "pct:2:50", "trio")
SEEDS = (0, 7)
CASES = [(name, variant, strategy, seed) for name, (_, variants) in SCENARIOS.items()
         for variant in variants for strategy in STRATEGIES for seed in SEEDS]


def _scenario(name: str) -> Scenario:
    path = SCENARIOS[name][0]
    if path is None:
        profile, _ = load_profile(None)
        return ScenarioSource(profile=profile).build(int(name.partition("-")[2]))
    return load_scenario(path)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:20]


def _case(name: str, variant: str, strategy: str, seed: int) -> dict[str, object]:
    scenario = _scenario(name)
    buf = io.BytesIO()
    logged = run_once(scenario, variant, seed, strategy, log=buf)
    quiet = run_once(scenario, variant, seed, strategy)
    assert quiet.choices == logged.choices, "the event log changed the schedule"
    assert quiet.violations == logged.violations
    events = buf.getvalue().split(b"\n", 1)[1]
    return {"choices": _sha(msgspec.msgpack.encode(logged.choices)), "events": _sha(events),
            "steps": logged.steps, "outcome": logged.outcome,
            "violations": sorted(logged.broken)}


def _soak() -> str:
    profile, _ = load_profile(None)
    source = ScenarioSource(profile=profile)
    records = [run_index(source, "merged", 0, "portfolio", i) for i in range(100)]
    return _sha(b"".join(msgspec.json.encode(r) for r in records))


def _golden() -> dict[str, object]:
    if not GOLDEN.exists():
        return {}
    loaded: dict[str, object] = json.loads(GOLDEN.read_text())
    return loaded


def _key(name: str, variant: str, strategy: str, seed: int) -> str:
    return f"{name}/{variant}/{strategy}/{seed}"


@pytest.fixture(scope="module")
def golden() -> Iterator[dict[str, object]]:
    data = _golden()
    yield data
    if UPDATE:
        GOLDEN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


@pytest.mark.parametrize(("name", "variant", "strategy", "seed"), CASES)
def test_a_fixed_run_keeps_its_choices_and_events(golden, name, variant, strategy, seed):
    """Same scenario, variant, strategy and seed: the pinned choice log and event stream."""
    got = _case(name, variant, strategy, seed)
    key = _key(name, variant, strategy, seed)
    if UPDATE:
        golden[key] = got
    assert golden.get(key) == got, f"{key} changed: regenerate only if meant (see docstring)"


def test_a_hundred_soak_runs_keep_their_records(golden):
    """100 portfolio runs of the default profile: the same records, byte for byte."""
    got = _soak()
    if UPDATE:
        golden["soak/default/merged/portfolio/100"] = got
    assert golden.get("soak/default/merged/portfolio/100") == got


def test_every_golden_is_a_case():
    """No stale entries: each pinned key is still run (a renamed case is regenerated)."""
    keys = {_key(*c) for c in CASES} | {"soak/default/merged/portfolio/100"}
    assert set(_golden()) <= keys or UPDATE
