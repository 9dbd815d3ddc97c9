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

from vgic_actors.checks.signature import Signature
from vgic_actors.runtime import timing_model
from vgic_actors.scenario import emit
from vgic_actors.scenario.loader import Scenario, parse_scenario, parse_scenario_data
from vgic_actors.scenario.runner import run_once, with_horizon
from vgic_actors.scenario.source import load_source
from vgic_actors.soak.generate import generate
from vgic_actors.soak.profile import Profile

PORTFOLIO = ("random", "pct:2", "random", "pct:3", "window", "pct:4")
"""Random walk, PCT at depths 2-4, and one run in six of the entry-window search
(`runtime.strategies.EntryWindow`): random walk and PCT find the kick and overflow bugs,
``window`` the races between a vCPU's request check and its guest entry, which neither
finds with their own signature (docs/benchmarks.md). A generated scenario that names its
strategy (the ``entry_race`` shape: ``window``) is run under that one instead."""


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
    needs: str = ""  # what a timing-window finding had to stretch (context.timing_class)
    coverage: dict[str, int] = msgspec.field(default_factory=dict)  # checks/coverage.py
    interleaving: str = ""
    choices: list[int] = msgspec.field(default_factory=list)
    bounds: list[int] = msgspec.field(default_factory=list)


def scenario_seed(campaign_seed: int, index: int) -> int:
    """A stable 63-bit seed for run ``index`` of a campaign."""
    digest = hashlib.sha256(f"{campaign_seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def strategy_for(spec: str, index: int, named: str = "") -> str:
    """The strategy of run ``index``: ``portfolio`` cycles through `PORTFOLIO` (random
    walk, PCT depths 2, 3, 4, the entry-window search; `run_index` then sets PCT's
    horizon from the scenario: ``pct:D:K``), unless the generated scenario ``named`` one
    (a shape built for one search: soak/shapes.py ``entry_race``)."""
    if spec != "portfolio":
        return spec
    return named or PORTFOLIO[index % len(PORTFOLIO)]


def scenario_text(data: dict[str, Any]) -> str:
    """Generated scenario data as the YAML a finding is saved as."""
    return emit.dump(data, sort_keys=False, width=100)


@dataclass(frozen=True)
class ScenarioSource:
    """Where a campaign's scenarios come from: generated from ``profile``, or the one
    scenario file ``path`` (its text is carried, so workers need no shared disk).

    Generated scenarios are validated and run as data; YAML is written only for the
    ones a campaign keeps (`text`), and loads back to an equal scenario."""

    profile: Profile | None = None
    path: str = ""
    text: str = ""
    timing: str = "realistic"  # the timing model every run uses (runtime/context.py)

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


def run_index(source: ScenarioSource, variant: str, campaign_seed: int, strategy: str,
              index: int) -> RunRecord:
    """Run ``index`` of a campaign; exceptions become a ``crash`` record."""
    seed = scenario_seed(campaign_seed, index)
    spec = strategy_for(strategy, index)
    try:
        scenario = source.build(seed)
        if source.profile is not None:
            spec = strategy_for(strategy, index, scenario.run.strategy or "")
        spec = with_horizon(spec, scenario)
        report = run_once(scenario, variant, seed, spec, max_steps=source.max_steps,
                          timing=timing_model(source.timing))
    except Exception as exc:  # a model or generator bug: recorded with its seed, not lost
        where = traceback.extract_tb(exc.__traceback__)[-1]
        detail = f"{type(exc).__name__}: {exc} ({where.filename}:{where.lineno})"
        return RunRecord(index=index, scenario_seed=seed, strategy=spec, variant=variant,
                         outcome="crash", steps=0, violations=["crash"],
                         signature=Signature.crash(exc).key, detail=detail)
    names = [v.invariant for v in report.violations]
    sig = report.signature
    if sig and variant != "merged" and _also_on_merged(scenario, seed, spec, source, sig):
        sig = msgspec.structs.replace(sig, merged_too=True)
    values = report.choices.values
    return RunRecord(
        index=index, scenario_seed=seed, strategy=spec, variant=variant,
        outcome=report.outcome, steps=report.steps, violations=sorted(set(names)),
        signature=sig.key, detail=report.violations[0].message if names else "",
        needs=report.finding_class[1] if names else "",
        coverage=report.coverage,
        interleaving=hashlib.sha256(msgspec.msgpack.encode(values)).hexdigest()[:16],
        choices=list(values) if names else [], bounds=list(report.choices.bounds) if names
        else [],
    )


def _also_on_merged(scenario: Scenario, seed: int, spec: str, source: ScenarioSource,
                    sig: Signature) -> bool:
    """Differential check: does the same scenario, seed and strategy find the same
    finding (the full signature, class included) on ``merged``? Then it is not the
    variant's own bug."""
    merged = run_once(scenario, "merged", seed, spec, max_steps=source.max_steps,
                      timing=timing_model(source.timing))
    return merged.signature.same_finding(sig)


def run_batch(source: ScenarioSource, variant: str, campaign_seed: int, strategy: str,
              indices: list[int]) -> list[RunRecord]:
    """Several runs in one task (worker processes and Dask tasks take batches)."""
    return [run_index(source, variant, campaign_seed, strategy, i) for i in indices]
