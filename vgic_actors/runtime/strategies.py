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


def below(rng: random.Random, n: int) -> int:
    """``rng.randrange(n)`` for ``n >= 1``, the same draw from the same stream (CPython's
    ``Random._randbelow_with_getrandbits``: the lowest ``n.bit_length()`` bits, redrawn
    until below ``n``) without randrange's argument handling, which the hot path pays at
    every decision; spelt out, the schedule a seed gives no longer hangs on it."""
    k = n.bit_length()
    r = rng.getrandbits(k)
    while r >= n:
        r = rng.getrandbits(k)
    return r


class RandomWalk:
    """Uniform choice among the enabled events at every decision."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)

    def register(self, item: Schedulable) -> None:
        """Random walk needs no per-item state."""

    def choose(self, enabled: Sequence[Schedulable]) -> int:
        """A uniformly random index."""
        return below(self._rng, len(enabled))

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
        pick = ties[below(self._rng, len(ties))] if len(ties) > 1 else ties[0]
        self._clock += 1
        enabled[pick].prio = float(self._clock)
        return pick

    def describe(self) -> str:
        """``trio(seed=...)``."""
        return f"trio(seed={self.seed})"


class EntryWindow:
    """Random walk that stretches the run loop's entry window (``window``: the search for
    races between a vCPU's request check and its guest's first instructions).

    The run-loop shell (pcpu.py: kvm_arch_vcpu_ioctl_run) marks where an actor stands in
    its entry (`Actor.window`): inside check_vcpu_requests (`WINDOW_REQUESTS`), flushed
    and before ``vcpu->mode = IN_GUEST_MODE`` (`WINDOW_MODE`), and in its guest slice
    (`WINDOW_GUEST`). When an actor parks at a marked point (once per point; once per
    entry in the guest) this strategy may *hold* it: for the next H decisions it is
    chosen only when nothing else is enabled (when all are held, the hold that ends
    first gives way), while every other choice is uniform.

    - A *conflict hold*: the actor read a shared cell in its last few points (``C.read``,
      cells.py) that another enabled actor is parked to write (``C.set``,
      ``C.fetch_add``, ``C.dec_if_positive``). With probability `p_conflict` it is held
      for `span` decisions and the writer runs first meanwhile, so the write (and the
      broadcast after it) lands inside the window; its next guest entry is held for
      `GUEST_HOLD` x `span`, so it runs its guest with what it computed from the old
      value while the others go on.
    - Otherwise, in check_vcpu_requests or the guest (where time is not bounded), with
      probability `p`, a hold of H log-uniform in 1..`span`.
    - A *writer hold*: an actor newly parked to write a cell while another actor is
      entering is held for `span` with probability `p_writer`, so the entering one may read the
      cell first (then the conflict hold above releases the writer and runs it first).

    The scheduler's timing model still applies: a held actor inside an IRQs-off region
    is forced to run once it has waited its stall budget (runtime/context.py), so a hold
    there is as long as realistic timing allows; in task context or guest code a hold is
    unbounded, as the kernel allows.

    Why: a request raised by a broadcast (kvm_main.c: kvm_make_all_cpus_request) that
    lands in the entry window is caught only by the re-check after the mode store
    (arm.c: kvm_arch_vcpu_ioctl_run, kvm_vcpu_exit_request; commit 1c3b3cadcd69), and a
    TDIR computed from a value read before (vgic-v3.c: vgic_v3_configure_hcr) stays
    stale for the whole slice. Hitting that needs the entering vCPU to stop exactly
    between its read and the other CPU's write, then to stay in its guest while the
    interrupt is handed over: two waits random walk almost never makes and PCT's change
    points, spread over the whole run, rarely place there.
    """

    def __init__(self, seed: int, *, p: float = 0.25, p_conflict: float = 0.9,
                 p_writer: float = 0.5, span: int = 128) -> None:
        if not all(0.0 <= x <= 1.0 for x in (p, p_conflict, p_writer)) or span < 1:
            raise ValueError("window needs probabilities in [0, 1] and span >= 1")
        self.seed, self.p, self.p_conflict, self.p_writer = seed, p, p_conflict, p_writer
        self.span = span
        self._rng = random.Random(seed)
        self.decisions = 0
        self.holds = self.conflicts = 0
        self._until: dict[int, int] = {}  # actor id -> first decision it is free again
        self._seen: dict[int, int] = {}  # actor id -> the park (steps) or entry looked at
        self._armed: set[int] = set()  # actors whose next guest entry is held (conflict)
        self._conflict_seen: dict[int, int] = {}  # actor id -> the park a conflict held
        self._writer_seen: dict[int, int] = {}  # actor id -> the write park looked at
        self._favour, self._favour_until = -1, 0  # the writer run first, and until when
        self._free: list[int] = []

    def register(self, item: Schedulable) -> None:
        """Window needs no per-item state."""

    def choose(self, enabled: Sequence[Schedulable]) -> int:
        """The favoured writer if enabled, else uniform among the items not held (when
        every one is held, among those whose hold ends first)."""
        self.decisions += 1
        now = self.decisions
        until = self._until
        written: dict[str, int] | None = None
        entering = False
        for item in enabled:
            window = getattr(item, "window", 0)
            if window:
                if written is None:
                    written = _cells_written(enabled)
                self._consider(item, window, now, written)
                entering = entering or window != WINDOW_GUEST
        if entering and written:
            self._hold_writers(enabled, now)
        free = self._free
        free.clear()
        favour = self._favour if self._favour_until > now else -1
        for i, item in enumerate(enabled):
            aid = getattr(item, "id", -1)
            if until and until.get(aid, 0) > now:
                continue  # held (until its hold ends, wherever it has got to)
            if aid == favour:
                return i
            free.append(i)
        rng = self._rng
        if free:
            return free[below(rng, len(free))] if len(free) > 1 else free[0]
        # every one is held: the one whose hold ends first (a short random hold does not
        # undo a conflict's long guest hold), uniform among ties
        ends = [until.get(getattr(item, "id", -1), 0) for item in enabled]
        first = min(ends)
        soonest = [i for i, end in enumerate(ends) if end == first]
        return soonest[below(rng, len(soonest))] if len(soonest) > 1 else soonest[0]

    def _consider(self, actor: Any, window: int, now: int, written: dict[str, int]) -> None:
        """Maybe hold `actor`, parked at a marked point: once per point (per entry in the
        guest) at random, and once per point when a conflicting write is parked."""
        aid: int = actor.id
        guest = window == WINDOW_GUEST
        key = (actor.entries if guest else actor.steps) * 4 + window
        rng = self._rng
        if not guest and written and self._conflict_seen.get(aid) != key:
            writer = _read_one_of(actor.history, written)
            if writer is not None and writer != aid:
                self._conflict_seen[aid] = key
                if rng.random() < self.p_conflict:
                    self.conflicts += 1
                    self._armed.add(aid)
                    self._hold(aid, now + self.span)
                    self._until.pop(writer, None)  # the writer goes now, first
                    self._favour, self._favour_until = writer, now + self.span
        if self._seen.get(aid) == key:
            return
        self._seen[aid] = key
        if guest and aid in self._armed:
            self._armed.discard(aid)
            self._hold(aid, now + GUEST_HOLD * self.span)
        elif window != WINDOW_MODE and rng.random() < self.p:  # not where time is bounded
            self._hold(aid, now + int(self.span ** rng.random()))

    def _hold_writers(self, enabled: Sequence[Schedulable], now: int) -> None:
        """An actor newly parked to write a cell while another is entering is held with
        probability `p_writer` (its stall budget bounds it in an atomic region), so the entering
        one may read the cell first."""
        for item in enabled:
            label = getattr(item, "label", None)
            if label is None or getattr(item, "window", 0) != 0 or not label.endswith(_WRITES):
                continue
            aid: int = item.id  # type: ignore[attr-defined]
            key = item.steps * 4  # type: ignore[attr-defined]
            if self._writer_seen.get(aid) != key:
                self._writer_seen[aid] = key
                if self._rng.random() < self.p_writer:
                    self._hold(aid, now + self.span)

    def _hold(self, aid: int, until: int) -> None:
        self.holds += 1
        if until > self._until.get(aid, 0):
            self._until[aid] = until

    def describe(self) -> str:
        """``window(seed=..,p=..,p_conflict=..,p_writer=..,span=..)``."""
        return (f"window(seed={self.seed},p={self.p},p_conflict={self.p_conflict},"
                f"p_writer={self.p_writer},span={self.span})")


_WRITES = (".set", ".fetch_add", ".dec_if_positive")
"""The AtomicInt operations that write (cells.py), as label suffixes."""


def _cells_written(enabled: Sequence[Schedulable]) -> dict[str, int]:
    """The cells the enabled actors are parked to write (``C`` of ``C.fetch_add``), each
    with the writer's actor id."""
    out: dict[str, int] = {}
    for item in enabled:
        label = getattr(item, "label", None)
        if label is not None and label.endswith(_WRITES):
            out[label.rpartition(".")[0]] = item.id  # type: ignore[attr-defined]
    return out


def _read_one_of(history: Sequence[str], cells: dict[str, int]) -> int | None:
    """The writer of a cell one of the last points in `history` (before the current
    one) read, or None."""
    for label in list(history)[-4:-1]:
        cell, _, op = label.rpartition(".")
        if op == "read" and cell in cells:
            return cells[cell]
    return None


GUEST_HOLD = 4
"""A conflict-held actor's next guest entry is held GUEST_HOLD * span decisions: long
enough for another vCPU to take, acknowledge and hand over an interrupt."""

WINDOW_REQUESTS = 1
"""`Actor.window`: inside check_vcpu_requests (task context)."""
WINDOW_MODE = 2
"""`Actor.window`: flushed, before the IN_GUEST_MODE store (IRQs off)."""
WINDOW_GUEST = 3
"""`Actor.window`: entered, at the guest's first instruction."""


class TrioBatch:
    """Trio's own run loop, step for step (``trio-batch``): the faithful form of the
    uncontrolled baseline.

    trio/_core/_run.py (unrolled_run, trio 0.35): every pass takes the whole run queue as
    one batch, in the order the tasks became runnable, reverses it with probability 1/2
    ("each task can appear before/after any other task"), and runs each task of the batch
    one step; a task made runnable meanwhile waits for the next batch. Here the enabled
    set plays the run queue: a batch is formed from it (oldest first by the time each
    item last ran or appeared, `prio`), maybe reversed, and consumed in order, skipping
    items no longer enabled; a new batch starts when it runs out. `TrioLike` is the
    simpler least-recently-run rule without the reversal.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self._clock = 0
        self._batch: list[Schedulable] = []

    def register(self, item: Schedulable) -> None:
        """A new item joins the back of the run queue."""
        self._clock += 1
        item.prio = float(self._clock)

    def choose(self, enabled: Sequence[Schedulable]) -> int:
        """The next item of the current batch that is still enabled (a new batch when none
        is)."""
        where = {id(item): i for i, item in enumerate(enabled)}
        batch = self._batch
        while batch:
            item = batch.pop()
            i = where.get(id(item))
            if i is not None:
                self._ran(item)
                return i
        batch.extend(sorted(enabled, key=lambda it: it.prio))
        if self._rng.random() >= 0.5:  # popped from the end: unreversed runs oldest first
            batch.reverse()
        item = batch.pop()
        self._ran(item)
        return where[id(item)]

    def _ran(self, item: Schedulable) -> None:
        self._clock += 1
        item.prio = float(self._clock)

    def describe(self) -> str:
        """``trio-batch(seed=...)``."""
        return f"trio-batch(seed={self.seed})"


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
    """A seeded strategy by name: ``random``, ``pct``, ``trio``, ``trio-batch`` or
    ``window``."""
    if name == "random":
        return RandomWalk(seed)
    if name == "trio":
        return TrioLike(seed)
    if name == "pct":
        return PCT(seed, depth, k)
    if name == "window":
        return EntryWindow(seed)
    if name == "trio-batch":
        return TrioBatch(seed)
    raise ValueError(f"unknown strategy {name!r} (random, pct, trio, trio-batch, window)")
