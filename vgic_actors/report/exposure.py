"""Which configurations a finding exposes: its scenario in each configuration of
`report/variations.py` (the GIC pair, the EOImode, the edge-SPI injection path, one
changed at a time), swept over the same seeds and strategies on the finding's variant
and timing model."""

from __future__ import annotations

from dataclasses import dataclass

from vgic_actors.report.finding import Case
from vgic_actors.report.variations import Variation, variations
from vgic_actors.runtime import timing_model
from vgic_actors.scenario.loader import Scenario
from vgic_actors.scenario.runner import run_once, with_horizon

PCT = ("pct:2", "pct:3")
"""Strategies run on a quarter as many seeds as the random walk, each."""


@dataclass(frozen=True)
class Sweep:
    """How many runs per configuration: ``seeds`` random walks and ``seeds // 4`` runs of
    each `PCT` strategy (seeds from 0)."""

    seeds: int = 40

    def schedules(self) -> list[tuple[str, int]]:
        """(strategy, seed) pairs, in the order they run."""
        out = [("random", s) for s in range(self.seeds)]
        return out + [(p, s) for p in PCT for s in range(self.seeds // 4)]

    def describe(self) -> str:
        """``seeds 0-39 random, 0-9 pct:2 and pct:3``."""
        pct = self.seeds // 4
        text = f"seeds 0-{self.seeds - 1} random"
        return text + (f", 0-{pct - 1} pct:2 and pct:3" if pct else "")


@dataclass(frozen=True)
class Exposure:
    """One configuration's verdict: ``hits`` of ``runs`` had the finding (``other``: runs
    with another finding); ``error`` when the scenario does not fit the configuration."""

    axis: str
    label: str
    hits: int = 0
    runs: int = 0
    other: int = 0
    error: str = ""

    @property
    def as_run(self) -> bool:
        """The configuration the finding ran in."""
        return self.axis == "as run"

    def describe(self) -> str:
        """``EOImode 0: not seen (0/60 runs, 2 with another finding)``."""
        what = "as run" if self.as_run else self.label
        if self.error:
            return f"{what}: not expressible ({self.error})"
        verdict = "exposed" if self.hits else "not seen"
        extra = f", {self.other} with another finding" if self.other else ""
        return f"{what}: {verdict} ({self.hits}/{self.runs} runs{extra})"


def exposure(case: Case, sweep: Sweep = Sweep()) -> list[Exposure]:
    """The finding's scenario in every configuration of `variations`."""
    return [_run(case, v, sweep) for v in variations(case.scenario, case.scenario_file)]


def _run(case: Case, var: Variation, sweep: Sweep) -> Exposure:
    if var.scenario is None:
        return Exposure(var.axis, var.label, error=var.error)
    scenario: Scenario = var.scenario
    timing = timing_model(case.recorded.timing)
    hits = runs = other = 0
    for strategy, seed in sweep.schedules():
        got = run_once(scenario, case.variant, seed, with_horizon(strategy, scenario),
                       timing=timing).signature
        runs += 1
        hits += got.same_finding(case.wanted)
        other += bool(got) and not got.same_finding(case.wanted)
    return Exposure(var.axis, var.label, hits, runs, other)
