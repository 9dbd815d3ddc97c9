"""Scheduling strategies: where the value of each decision comes from.

A strategy sees the enabled set in canonical order (see `choices`) and returns an
index into it. Random walk, PCT, replay and the Hypothesis-fed source differ only as
value sources; the scheduler records every value in the choice log. Each strategy
owns an explicit ``random.Random(seed)``; nothing here touches the global generator.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Protocol

from vgic_actors.runtime.choices import ChoiceLog, ReplayReport


class Schedulable:
    """Anything the scheduler can pick: an actor, a message in flight, a due timer.

    `prio` is PCT's priority (higher runs first); other strategies ignore it.
    """

    __slots__ = ("prio",)

    def __init__(self) -> None:
        self.prio = 0.0


class Strategy(Protocol):
    """Picks one event from an enabled set of at least two."""

    def register(self, item: Schedulable) -> None:
        """A new actor, message or timer appeared (PCT gives it a priority)."""

    def choose(self, enabled: Sequence[Schedulable]) -> int:
        """Index of the event to run next, 0 <= index < len(enabled)."""
        ...

    def describe(self) -> str:
        """A short name with the parameters, for the run's header line."""
        ...


class RandomWalk:
    """Uniform choice among the enabled events at every decision."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)

    def register(self, item: Schedulable) -> None:
        """Random walk needs no per-item state."""

    def choose(self, enabled: Sequence[Schedulable]) -> int:
        """A uniformly random index."""
        return self._rng.randrange(len(enabled))

    def describe(self) -> str:
        """``random(seed=...)``."""
        return f"random(seed={self.seed})"


class PCT:
    """Probabilistic Concurrency Testing with bug depth `depth` (Burckhardt et al. 2010).

    Every schedulable item gets a distinct random initial priority in [d, d+1); d-1
    change points are drawn uniformly from 1..k; at the i-th change point the
    highest-priority enabled item (the one about to run) drops to priority i < d.
    The highest-priority enabled item always runs. Decisions with a single enabled
    event are not counted (the scheduler does not ask). Messages in flight and timers
    are items like actors, each with its own priority slot (PCTCP-like). Finds a bug
    of depth d with probability >= 1/(n * k^(d-1)) per run.
    """

    def __init__(self, seed: int, depth: int, k: int) -> None:
        if depth < 1 or k < 1:
            raise ValueError("PCT needs depth >= 1 and k >= 1")
        self.seed, self.depth, self.k = seed, depth, k
        self._rng = random.Random(seed)
        points = self._rng.sample(range(1, k + 1), min(depth - 1, k))
        # change point k_i carries priority i (1..d-1), all below every initial priority
        self.change_points: dict[int, int] = {kp: i + 1 for i, kp in enumerate(points)}
        self.decisions = 0
        self.drops = 0
        self._floor = 0.0  # below every change-point priority: where yielding items go

    def register(self, item: Schedulable) -> None:
        """Give `item` a random initial priority above every change-point priority."""
        item.prio = self.depth + self._rng.random()

    def yielded(self, item: Schedulable) -> None:
        """`item` is spinning without progress: it drops below every other priority.

        PCT is unfair; without this a spin-wait at the top priority starves the
        actor it waits for until the budget runs out (Shuttle and Coyote treat a
        yield the same way).
        """
        self._floor -= 1.0
        item.prio = self._floor

    def choose(self, enabled: Sequence[Schedulable]) -> int:
        """The highest-priority enabled item, after applying a change point if due."""
        self.decisions += 1
        best = _argmax_prio(enabled)
        low = self.change_points.get(self.decisions)
        if low is not None:
            enabled[best].prio = float(low)
            self.drops += 1
            best = _argmax_prio(enabled)
        return best

    def describe(self) -> str:
        """``pct(seed=..,d=..,k=..)``."""
        return f"pct(seed={self.seed},d={self.depth},k={self.k})"


class TrioLike:
    """The baseline for "uncontrolled" scheduling: what Trio's own run queue does with the
    same tasks. The least recently run enabled item goes next (a FIFO run queue), ties
    broken at random as Trio shuffles each batch; no priorities, no change points."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self._clock = 0

    def register(self, item: Schedulable) -> None:
        """A new item joins the back of the queue."""
        self._clock += 1
        item.prio = float(self._clock)

    def choose(self, enabled: Sequence[Schedulable]) -> int:
        """The item that has waited longest (random among equals)."""
        oldest = min(item.prio for item in enabled)
        ties = [i for i, item in enumerate(enabled) if item.prio == oldest]
        pick = ties[self._rng.randrange(len(ties))] if len(ties) > 1 else ties[0]
        self._clock += 1
        enabled[pick].prio = float(self._clock)
        return pick

    def describe(self) -> str:
        """``trio(seed=...)``."""
        return f"trio(seed={self.seed})"


def _argmax_prio(enabled: Sequence[Schedulable]) -> int:
    best, best_prio = 0, enabled[0].prio
    for i in range(1, len(enabled)):
        p = enabled[i].prio
        if p > best_prio:
            best, best_prio = i, p
    return best


class Replay:
    """Replays a recorded choice log; misalignment and overrun are recorded, not raised."""

    def __init__(self, log: ChoiceLog | Sequence[int]) -> None:
        self._values = list(log.values if isinstance(log, ChoiceLog) else log)
        self._bounds = list(log.bounds) if isinstance(log, ChoiceLog) else []
        self._diverged_at = -1
        self._pos = 0
        self._misaligned_at = -1
        self._mis_bound = self._mis_value = 0
        self._misaligned = 0
        self._overrun = 0

    def register(self, item: Schedulable) -> None:
        """Replay needs no per-item state."""

    def choose(self, enabled: Sequence[Schedulable]) -> int:
        """The next recorded value; 0 when it is out of range or the log ran out."""
        if self._pos >= len(self._values):
            self._overrun += 1
            return 0
        value = self._values[self._pos]
        if (self._diverged_at < 0 and self._pos < len(self._bounds)
                and self._bounds[self._pos] != len(enabled)):
            self._diverged_at = self._pos  # the enabled set differs from the recording
        self._pos += 1
        if 0 <= value < len(enabled):
            return value
        if self._misaligned_at < 0:
            self._misaligned_at = self._pos - 1
            self._mis_bound, self._mis_value = len(enabled), value
        self._misaligned += 1
        return 0

    def report(self) -> ReplayReport:
        """How well the log fitted the run so far."""
        return ReplayReport(
            diverged_at=self._diverged_at,
            misaligned_at=self._misaligned_at,
            misaligned_bound=self._mis_bound,
            misaligned_value=self._mis_value,
            misaligned=self._misaligned,
            overrun=self._overrun,
            unused=len(self._values) - self._pos,
        )

    def describe(self) -> str:
        """``replay(n=...)``."""
        return f"replay(n={len(self._values)})"


class HypothesisSource:
    """Draws every decision from Hypothesis data, so Hypothesis can shrink schedules.

    Pass the object from ``st.data()``; values shrink toward 0, the canonical order.
    """

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self._data = data
        self._ints = st.integers
        self._cache: dict[int, Any] = {}

    def register(self, item: Schedulable) -> None:
        """Hypothesis needs no per-item state."""

    def choose(self, enabled: Sequence[Schedulable]) -> int:
        """One drawn integer in range(len(enabled))."""
        n = len(enabled)
        strat = self._cache.get(n)
        if strat is None:
            strat = self._cache[n] = self._ints(0, n - 1)
        value: int = self._data.draw(strat)
        return value

    def describe(self) -> str:
        """``hypothesis``."""
        return "hypothesis"


def make_strategy(name: str, seed: int, *, depth: int = 2, k: int = 100) -> Strategy:
    """A seeded strategy by name: ``random``, ``pct`` or ``trio``."""
    if name == "random":
        return RandomWalk(seed)
    if name == "trio":
        return TrioLike(seed)
    if name == "pct":
        return PCT(seed, depth, k)
    raise ValueError(f"unknown strategy {name!r} (random, pct, trio)")
