"""Bounded exhaustive exploration: every schedule of a small scenario with at most B
deviations from the canonical order.

The base schedule is deterministic (`BoundedSchedule`: the oldest enabled item runs,
spinning actors go last); a deviation is any other choice at a decision. The search is
a depth-first enumeration of prefixes: run a prefix (the rest by the base), then
branch at every later decision point that had alternatives, while the prefix's
deviations stay within the bound. Each schedule with <= B deviations runs exactly once. It stops
at the first violation (the counterexample) or when the space is exhausted, which
proves the scenario clean within the bound.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from vgic_actors.runtime import Schedulable
from vgic_actors.scenario.loader import Scenario
from vgic_actors.scenario.runner import RunReport, run_once


class BoundedSchedule:
    """A strategy: follow ``prefix``, then the deterministic base scheduler.

    The base runs the highest-priority enabled item; priorities follow arrival (the
    oldest actor, message or timer first), and an actor spinning without progress drops
    to the bottom, so the base schedule is non-preemptive but never starves a waiter. A
    prefix value other than the base choice is a deviation. ``base`` and ``bounds``
    record, per decision, what the base would have chosen and how many were enabled.
    """

    def __init__(self, prefix: Sequence[int]) -> None:
        self.prefix = list(prefix)
        self.base: list[int] = []
        self.bounds: list[int] = []
        self._arrivals = 0
        self._floor = 0.0

    def register(self, item: Schedulable) -> None:
        """Older items first."""
        self._arrivals += 1
        item.prio = 1e9 - self._arrivals

    def yielded(self, item: Schedulable) -> None:
        """A spinning item goes below everything else."""
        self._floor -= 1.0
        item.prio = self._floor

    def choose(self, enabled: Sequence[Schedulable]) -> int:
        """The prefix's value while it lasts (when in range), then the base choice."""
        base = max(range(len(enabled)), key=lambda i: (enabled[i].prio, -i))
        pos = len(self.base)
        self.base.append(base)
        self.bounds.append(len(enabled))
        if pos < len(self.prefix) and 0 <= self.prefix[pos] < len(enabled):
            return self.prefix[pos]
        return base

    def describe(self) -> str:
        """``bounded(prefix=N)``."""
        return f"bounded(prefix={len(self.prefix)})"


@dataclass
class Exploration:
    """What an exploration covered and found."""

    bound: int
    schedules: int = 0
    decision_points: int = 0
    exhausted: bool = False
    counterexample: RunReport | None = None
    outcomes: dict[str, int] = field(default_factory=dict)


def explore(scenario: Scenario, variant: str, bound: int, *, max_runs: int = 100_000,
            seed: int = 0, on_run: Callable[[Exploration], None] | None = None) -> Exploration:
    """Run every schedule of ``scenario`` with at most ``bound`` deviations."""
    result = Exploration(bound=bound)
    stack: list[tuple[list[int], int]] = [([], 0)]
    while stack:
        if result.schedules >= max_runs:
            return result
        prefix, used = stack.pop()
        strategy = BoundedSchedule(prefix)
        report = run_once(scenario, variant, seed, strategy)
        result.schedules += 1
        result.outcomes[report.outcome] = result.outcomes.get(report.outcome, 0) + 1
        values = list(report.choices.values)
        result.decision_points = max(result.decision_points, len(values))
        if on_run is not None:
            on_run(result)
        if report.violations:
            result.counterexample = report
            return result
        if used >= bound:
            continue
        for i in range(len(values) - 1, len(prefix) - 1, -1):
            for alt in range(strategy.bounds[i] - 1, -1, -1):
                if alt != strategy.base[i]:
                    stack.append(([*values[:i], alt], used + 1))
    result.exhausted = True
    return result
