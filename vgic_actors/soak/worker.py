"""One soak run, self-contained so a worker process (or a Dask task) can run it.

Run ``index`` of a campaign derives its scenario seed and strategy from the campaign
seed, generates the scenario, runs it under the variant and returns a `RunRecord`. A
run that raises is a record too (``crash``), carrying the exception, never a lost run.
"""

from __future__ import annotations

import hashlib
import traceback
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import msgspec
import yaml

from vgic_actors.scenario.loader import Scenario, parse_scenario, parse_scenario_data
from vgic_actors.scenario.runner import run_once, with_horizon
from vgic_actors.scenario.source import load_source
from vgic_actors.soak.generate import generate
from vgic_actors.soak.profile import Profile

PORTFOLIO = ("random", "pct:2", "random", "pct:3", "random", "pct:4")
"""Half random walk, half PCT: on generated scenarios random walk finds the entry-window
mutants several times faster, PCT the kick and overflow ones (docs/benchmarks.md)."""


class RunRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What one soak run leaves in results.jsonl (deterministic: no wall-clock fields)."""

    index: int
    scenario_seed: int
    strategy: str
    variant: str
    outcome: str
    steps: int
    violations: list[str]
    signature: str = ""
    detail: str = ""
    interleaving: str = ""
    choices: list[int] = msgspec.field(default_factory=list)
    bounds: list[int] = msgspec.field(default_factory=list)


def scenario_seed(campaign_seed: int, index: int) -> int:
    """A stable 63-bit seed for run ``index`` of a campaign."""
    digest = hashlib.sha256(f"{campaign_seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def strategy_for(spec: str, index: int) -> str:
    """The strategy of run ``index``: ``portfolio`` alternates random walk and PCT depths
    2, 3, 4 (`run_index` then sets PCT's horizon from the scenario: ``pct:D:K``)."""
    return PORTFOLIO[index % len(PORTFOLIO)] if spec == "portfolio" else spec


def scenario_text(data: dict[str, Any]) -> str:
    """Generated scenario data as the YAML a finding is saved as."""
    return yaml.safe_dump(data, sort_keys=False, width=100)


@dataclass(frozen=True)
class ScenarioSource:
    """Where a campaign's scenarios come from: generated from ``profile``, or the one
    scenario file ``path`` (its text is carried, so workers need no shared disk).

    Generated scenarios are validated and run as data; YAML is written only for the
    ones a campaign keeps (`text`), and loads back to an equal scenario."""

    profile: Profile | None = None
    path: str = ""
    text: str = ""

    def build(self, seed: int) -> Scenario:
        """The scenario of run ``seed``."""
        if self.profile is None:
            return _parse_fixed(self.path, self.text)
        return parse_scenario_data(generate(self.profile, seed), f"gen-{seed}.yaml")

    def yaml(self, seed: int) -> str:
        """The YAML text run ``seed``'s scenario is kept as."""
        return self.text if self.profile is None else scenario_text(generate(self.profile, seed))

    @property
    def max_steps(self) -> int | None:
        """The step budget of generated runs (a fixed scenario brings its own)."""
        return self.profile.max_steps if self.profile is not None else None


@lru_cache(maxsize=4)
def _parse_fixed(path: str, text: str) -> Scenario:
    return parse_scenario(load_source(text, path))


def core_invariants(violations: list[str]) -> set[str]:
    """The invariants that make a finding what it is (a scenario's own expectations and
    guest checks follow from them, and shrinking may drop those checks)."""
    core = set(violations) - {"expectation", "guest-assertion"}
    return core or set(violations)


def signature(invariants: list[str], details: list[str]) -> str:
    """A finding's de-duplication key: the core invariants broken and how the first lost
    deactivation was performed (EOIR, trapped or untrapped DIR, ICACTIVER)."""
    how = ""
    for detail in details:
        for key in ("EOIR", "DIR at", "GICD_ICACTIVER"):
            if key in detail:
                how = "EOIR" if key == "EOIR" else "ICACTIVER" if key != "DIR at" else (
                    "DIR-untrapped" if "not trapped" in detail else "DIR-trapped")
                break
        if how:
            break
    return "+".join(sorted(core_invariants(invariants))) + (f"/{how}" if how else "")


def run_index(source: ScenarioSource, variant: str, campaign_seed: int, strategy: str,
              index: int) -> RunRecord:
    """Run ``index`` of a campaign; exceptions become a ``crash`` record."""
    seed = scenario_seed(campaign_seed, index)
    spec = strategy_for(strategy, index)
    try:
        scenario = source.build(seed)
        spec = with_horizon(spec, scenario)
        report = run_once(scenario, variant, seed, spec, max_steps=source.max_steps)
    except Exception as exc:  # a model or generator bug: recorded with its seed, not lost
        where = traceback.extract_tb(exc.__traceback__)[-1]
        detail = f"{type(exc).__name__}: {exc} ({where.filename}:{where.lineno})"
        return RunRecord(index=index, scenario_seed=seed, strategy=spec, variant=variant,
                         outcome="crash", steps=0, violations=["crash"],
                         signature=f"crash/{type(exc).__name__}", detail=detail)
    names = [v.invariant for v in report.violations]
    sig = signature(names, [v.message for v in report.violations]) if names else ""
    if names and variant != "merged" and _also_on_merged(scenario, seed, spec, source, names):
        sig += "@merged-too"
    values = report.choices.values
    return RunRecord(
        index=index, scenario_seed=seed, strategy=spec, variant=variant,
        outcome=report.outcome, steps=report.steps, violations=sorted(set(names)),
        signature=sig, detail=report.violations[0].message if names else "",
        interleaving=hashlib.sha256(msgspec.msgpack.encode(values)).hexdigest()[:16],
        choices=list(values) if names else [], bounds=list(report.choices.bounds) if names
        else [],
    )


def _also_on_merged(scenario: Scenario, seed: int, spec: str, source: ScenarioSource,
                    names: list[str]) -> bool:
    """Differential check: does the same scenario, seed and strategy break the same core
    invariants on ``merged``? Then the finding is not the variant's own bug."""
    merged = run_once(scenario, "merged", seed, spec, max_steps=source.max_steps)
    return core_invariants(names) <= {v.invariant for v in merged.violations}


def run_batch(source: ScenarioSource, variant: str, campaign_seed: int, strategy: str,
              indices: list[int]) -> list[RunRecord]:
    """Several runs in one task (worker processes and Dask tasks take batches)."""
    return [run_index(source, variant, campaign_seed, strategy, i) for i in indices]
