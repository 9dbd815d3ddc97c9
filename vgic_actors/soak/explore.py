"""Bounded exhaustive exploration: every schedule of a small scenario with at most B
deviations from a base schedule.

The base schedule is deterministic (`BoundedSchedule`): the canonical order (the oldest
enabled item runs, spinning actors go last), or, ``around`` a recorded choice log (a
finding's schedule), that log's choices for as long as each decision has the recorded
number of alternatives and no deviation was taken, then the canonical order. A
deviation is any other choice at a decision. Around a finding's own schedule, bound 0
on the variant it was found on is the finding itself; on a fix variant, the bound
covers every schedule within B deviations of it (the finding's neighbourhood), where
the canonical order alone may never come near the window. The search is
a depth-first enumeration of prefixes: run a prefix (the rest by the base), then
branch at every later decision point that had alternatives, while the prefix's
deviations stay within the bound. Each schedule with <= B deviations runs exactly once. It stops
at the first violation (the counterexample) or when the space is exhausted, which
proves the scenario clean within the bound.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from vgic_actors.runtime import Replay, Schedulable, TimingModel, timing_model
from vgic_actors.runtime.choices import ChoiceLog
from vgic_actors.scenario.loader import Scenario
from vgic_actors.scenario.runner import RecordedRun, RunReport, run_once


class BoundedSchedule:
    """A strategy: follow ``prefix``, then the deterministic base scheduler.

    The base runs the highest-priority enabled item; priorities follow arrival (the
    oldest actor, message or timer first), and an actor spinning without progress drops
    to the bottom, so the base schedule is non-preemptive but never starves a waiter. A
    prefix value other than the base choice is a deviation. ``base`` and ``bounds``
    record, per decision, what the base would have chosen and how many were enabled.
    """

    def __init__(self, prefix: Sequence[int], around: ChoiceLog | None = None) -> None:
        self.prefix = list(prefix)
        self.base: list[int] = []
        self.bounds: list[int] = []
        self._arrivals = 0
        self._floor = 0.0
        self._around = around
        self._following = around is not None
        self.followed = 0  # decisions whose base came from ``around``

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
        if self._following:
            log = self._around
            assert log is not None
            if pos < len(log.values) and log.bounds[pos] == len(enabled):
                base = log.values[pos]
                self.followed += 1
            else:
                self._following = False  # the run left the recorded schedule
        self.base.append(base)
        self.bounds.append(len(enabled))
        if pos < len(self.prefix) and 0 <= self.prefix[pos] < len(enabled):
            if self.prefix[pos] != base:
                self._following = False  # a deviation: the recording no longer applies
            return self.prefix[pos]
        return base

    def describe(self) -> str:
        """``bounded(prefix=N)``."""
        return f"bounded(prefix={len(self.prefix)})"


def schedule_as_run(scenario: Scenario, recorded: RecordedRun) -> ChoiceLog:
    """A recorded schedule as its own run takes it: the log replayed on the recorded
    variant, seed and timing, with the enabled-set size of every decision. (A shrunk
    log's bounds are the original run's, stale where shrinking reset a choice, and it
    ends early.)"""
    return run_once(scenario, recorded.variant, recorded.seed, Replay(recorded.choices),
                    timing=timing_model(recorded.timing)).choices


@dataclass
class Exploration:
    """What an exploration covered and found."""

    bound: int
    schedules: int = 0
    decision_points: int = 0
    followed: int = 0  # around a schedule: its decisions the base run kept
    exhausted: bool = False
    counterexample: RunReport | None = None
    outcomes: dict[str, int] = field(default_factory=dict)


def explore(scenario: Scenario, variant: str, bound: int, *, max_runs: int = 100_000,
            seed: int = 0, on_run: Callable[[Exploration], None] | None = None,
            around: ChoiceLog | None = None, timing: TimingModel | None = None
            ) -> Exploration:
    """Run every schedule of ``scenario`` with at most ``bound`` deviations from the
    canonical order, or from the schedule ``around`` (`schedule_as_run`; run under
    ``timing`` and ``seed``, those it was recorded with)."""
    result = Exploration(bound=bound)
    stack: list[tuple[list[int], int]] = [([], 0)]
    while stack:
        if result.schedules >= max_runs:
            return result
        prefix, used = stack.pop()
        strategy = BoundedSchedule(prefix, around)
        report = run_once(scenario, variant, seed, strategy, timing=timing)
        if not result.schedules:
            result.followed = strategy.followed
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
