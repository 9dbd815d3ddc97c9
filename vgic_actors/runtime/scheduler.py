"""The controlled scheduler: one actor runs model code at a time; a strategy picks the next.

Each actor is a coroutine. It runs until its next interleaving point (`point`), a
blocking wait (`Scheduler.block`) or its end; there the actor itself asks the
strategy for the next event among the enabled set, in canonical order:

    [the current actor, if ready] + [other ready actors by id]
    + [messages in flight, oldest first] + [due timers, earliest first]

A message or timer event runs inline (delivery, timer callback) and the loop asks
again; an actor event hands the CPU over directly: the asking actor's coroutine yields
to the scheduler's driver loop (`Scheduler.run`), which resumes the chosen actor's
coroutine with ``send``. Every actor runs inside the one Trio task that called `run`,
so no Trio run-loop pass (epoll poll, run-queue shuffle) is paid per switch and Trio's
own scheduler decides nothing; a model coroutine that awaits a Trio primitive the
scheduler does not control is a model error. A decision with one enabled event is
not a choice and is not recorded. Virtual time `vt` advances by one per step and
jumps to the next timer when nothing else is enabled.

A run ends quiescent when nothing is enabled and no work is pending; with work
pending (an actor blocked on something other than new work, a one-shot timer armed,
or the `work_pending` hook true) it is a deadlock; at the step budget it is a
livelock if work is pending. Either way the run returns; nothing hangs.
"""

from __future__ import annotations

import bisect
import contextvars
import enum
import inspect
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, Protocol

import trio

from vgic_actors.errors import LockOrderError, OutsideActorError, RuntimeModelError
from vgic_actors.events import (
    ActorBlocked,
    ActorFinished,
    ActorStepped,
    FindingReported,
    MessageDelivered,
    MessageSent,
    RunEnded,
    TimerFired,
)
from vgic_actors.runtime.choices import ChoiceLog
from vgic_actors.runtime.context import (
    ContextViolation,
    ExecContext,
    StallEvent,
    Timing,
    TimingModel,
)
from vgic_actors.runtime.eventlog import Emitter
from vgic_actors.runtime.findings import ActorSnapshot, Finding, Outcome, RunStatistics
from vgic_actors.runtime.strategies import Schedulable, Strategy


class ActorState(enum.Enum):
    """Where an actor is: parked at a point (READY), running, blocked, or finished."""

    READY = "ready"
    RUNNING = "running"
    BLOCKED = "blocked"
    DONE = "done"


_READY = ActorState.READY
_RUNNING = ActorState.RUNNING
_BLOCKED = ActorState.BLOCKED


class Actor(Schedulable):
    """One Trio task under the scheduler: a pCPU, the distributor, a device, the VMM."""

    __slots__ = (
        "blocked_on",
        "cpu",
        "ctx",
        "entries",
        "fn",
        "held",
        "history",
        "id",
        "idle",
        "label",
        "name",
        "sched",
        "state",
        "steps",
        "task",
        "window",
    )
    # task: the actor's coroutine once it has started (Scheduler.run drives it)
    # window, entries: where a run-loop shell stands in its entry (strategies.WINDOW_*,
    # set by pcpu.py) and how many guest entries it made; read by strategies.EntryWindow

    def __init__(
        self,
        sched: Scheduler,
        aid: int,
        name: str,
        fn: Callable[[], Awaitable[None]],
        cpu: int | None,
        history: int,
    ) -> None:
        super().__init__()
        self.sched, self.id, self.name, self.fn, self.cpu = sched, aid, name, fn, cpu
        self.state = _READY
        self.blocked_on = ""
        self.idle = False
        self.label = "start"
        self.task: Coroutine[Any, Any, None] | None = None
        self.held: list[Any] = []  # model locks held, innermost last (see locks.SpinLock)
        self.history: deque[str] = deque(maxlen=history)
        self.steps = 0
        self.window = 0
        self.entries = 0
        self.ctx = ExecContext(self)

    def __repr__(self) -> str:
        return f"<Actor {self.id} {self.name} {self.state.value}>"


class StallOption(Schedulable):
    """A stall event the strategy may choose (adversarial timing): a host interrupt on the
    CPU of `actor` stretching its preemption-off region, or, with `actor` None, an IPI
    delivered later than its bound."""

    __slots__ = ("actor",)

    def __init__(self, actor: Actor | None) -> None:
        super().__init__()
        self.actor = actor


class Target(Protocol):
    """Where a message can be delivered: a mailbox or a reply slot."""

    name: str

    def _arrive(self, msg: Message) -> None: ...


class Message(Schedulable):
    """A message in flight: it reaches `target` only when the scheduler delivers it."""

    __slots__ = (
        "deadline", "delays", "kind", "not_before", "on_delivered", "payload", "reply_to",
        "sent_vt", "seq", "src", "target",
    )

    def __init__(
        self,
        seq: int,
        kind: str,
        src: str,
        target: Target,
        payload: object,
        reply_to: Target | None,
        on_delivered: Callable[[Message], None] | None,
    ) -> None:
        super().__init__()
        self.seq, self.kind, self.src, self.target = seq, kind, src, target
        self.payload, self.reply_to, self.on_delivered = payload, reply_to, on_delivered
        self.deadline: int | None = None  # virtual time by which it must be delivered
        self.sent_vt = 0
        self.delays = 0  # stall events that delayed it beyond its deadline
        self.not_before = 0  # a delayed IPI cannot land before this virtual time

    def _fire(self, sched: Scheduler) -> None:
        sched.in_flight.remove(self)
        sched.delivered += 1
        if self.deadline is not None:
            sched._bounded -= 1
        if self.kind in _INTERRUPT_KINDS:
            latency = sched.vt - 1 - self.sent_vt  # ticks it spent in flight
            if latency > sched.max_ipi_latency:
                sched.max_ipi_latency = latency
            if self.deadline is None and latency > sched.unbounded_ipi_latency:
                sched.unbounded_ipi_latency = latency
        em = sched.em
        if em.on:
            em.emit(
                MessageDelivered(
                    step=sched.step, vt=sched.vt, actor=self.target.name,
                    msg=self.seq, kind=self.kind, src=self.src, dst=self.target.name,
                )
            )
        self.target._arrive(self)
        if self.on_delivered is not None:
            self.on_delivered(self)

    def describe(self) -> str:
        """``#seq kind src->dst`` for findings."""
        return f"#{self.seq} {self.kind} {self.src}->{self.target.name}"


class Timer(Schedulable):
    """A one-shot or periodic virtual timer; firing it is a schedulable event."""

    __slots__ = ("armed", "callback", "deadline", "name", "period", "sched", "seq")

    def __init__(
        self, sched: Scheduler, seq: int, name: str, deadline: int, period: int | None,
        callback: Callable[[], None],
    ) -> None:
        super().__init__()
        self.sched, self.seq, self.name = sched, seq, name
        self.deadline, self.period, self.callback = deadline, period, callback
        self.armed = True

    def cancel(self) -> None:
        """Disarm the timer (del_timer); a no-op when it already fired or was cancelled."""
        if self.armed:
            self.armed = False
            self.sched.timers.remove(self)

    def _fire(self, sched: Scheduler) -> None:
        sched.timers.remove(self)
        sched.timers_fired += 1
        if self.period is not None:
            self.deadline += self.period
            bisect.insort(sched.timers, self, key=_timer_key)
        else:
            self.armed = False
        if sched.em.on:
            sched.em.emit(TimerFired(step=sched.step, vt=sched.vt, actor="timer", timer=self.name))
        self.callback()


_INTERRUPT_KINDS = frozenset({"ipi", "maintenance"})
_BROADCAST = ("get_cpu", "kvm_make_all_cpus_request")  # the region world_switch waits for
"""Messages that are interrupts to a CPU: their latency is part of a run's `Timing`."""


def _timer_key(t: Timer) -> tuple[int, int]:
    return (t.deadline, t.seq)


_CURRENT: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("vgic_actors_actor")

_PARKED = object()
"""What a parking actor's coroutine yields to the driver loop (anything else it yields
comes from a Trio primitive the scheduler does not control)."""


class _Teardown(BaseException):
    """Thrown into every unfinished actor coroutine when the run has ended (as Trio's
    Cancelled was): finally blocks run, and a point or block inside one raises it again."""


@types.coroutine
def _park() -> Generator[object, None, None]:
    """Hand the CPU back to the driver loop, which resumes the actor left in
    `Scheduler._next`."""
    yield _PARKED


def current_actor() -> Actor:
    """The actor whose task is running (raises OutsideActorError outside any actor)."""
    actor = _CURRENT.get(None)
    if actor is None:
        raise OutsideActorError("no current actor: call this from a task the Scheduler runs")
    return actor


def current_scheduler() -> Scheduler:
    """The scheduler of the current actor."""
    return current_actor().sched


def spin_yield() -> None:
    """The current actor is spin-waiting without progress (a sched_yield / cpu_relax loop).

    Not a point. A strategy may use it (PCT drops the actor's priority); the
    others ignore it.
    """
    actor = current_actor()
    hook = actor.sched.on_yield
    if hook is not None:
        hook(actor)


async def point(label: str) -> Actor:
    """An interleaving point: the strategy may run any other enabled event here.

    Returns the current actor (handy for its scheduler and name). Call it at every
    access to unlocked shared state, lock acquire, message send and guest instruction.
    """
    actor = _CURRENT.get(None)
    if actor is None:
        raise OutsideActorError(f"point({label!r}) outside an actor")
    sched = actor.sched
    if sched.ended:
        raise _Teardown  # the run is being torn down (a point in a finally block)
    actor.history.append(label)
    actor.label = label
    actor.state = _READY
    nxt = sched._next_actor()
    if nxt is actor:
        return actor
    sched._next = nxt
    await _park()
    return actor


class Scheduler:
    """Owns the enabled set, the virtual clock and the choice log of one run."""

    def __init__(
        self,
        strategy: Strategy,
        *,
        max_steps: int = 100_000,
        emitter: Emitter | None = None,
        history: int = 8,
        timing: TimingModel | None = None,
    ) -> None:
        self.strategy = strategy
        self.timing = timing if timing is not None else TimingModel()
        self._enforced = self.timing.enforced  # read at every decision
        self.max_steps = max_steps
        self.em = emitter if emitter is not None else Emitter()
        self._history = history
        self.actors: list[Actor] = []
        self.in_flight: list[Message] = []
        self.timers: list[Timer] = []
        self.current: Actor | None = None
        self.step = 0
        self.vt = 0
        self.choice_values: list[int] = []
        self.choice_bounds: list[int] = []
        self.sent = self.delivered = self.timers_fired = 0
        self.ended = False
        self.outcome: Outcome | None = None
        self.finding: Finding | None = None
        self.work_pending: Callable[[], bool] | None = None
        self.on_yield: Callable[[Schedulable], None] | None = getattr(strategy, "yielded", None)
        self._cands: list[Any] = []
        self._bounded = 0  # messages in flight that carry a delivery deadline
        # actors inside a bounded (atomic) region, in the order they entered one
        self._regions: list[Actor] = []
        self.max_stall = 0
        self.max_stall_where = ""
        self.max_ipi_latency = 0
        self.unbounded_ipi_latency = 0
        self.stall_events: list[StallEvent] = []
        self.context_violations: list[ContextViolation] = []
        # per-CPU data in use, by name, on which CPUs (kick.py: cpu_kick_mask)
        self.percpu_in_use: dict[str, set[int]] = {}
        self._context_seen: set[tuple[str, str, tuple[str, ...]]] = set()
        self._ipi_delay = StallOption(None)
        self._stall_options: dict[Actor, StallOption] = {}
        self._holding = False  # some actor or message is held by a stall event
        self._entry_holds: list[Actor] = []  # vCPUs in a world switch (world_switch)
        if self.timing.events:
            strategy.register(self._ipi_delay)
        self._seq = 0
        self._next: Actor | None = None  # the actor the driver loop resumes next

    # --- building a run ---------------------------------------------------------------

    def spawn(
        self, name: str, fn: Callable[[], Awaitable[None]], *, cpu: int | None = None
    ) -> Actor:
        """Add an actor running `fn`; before `run` or from inside the run."""
        actor = Actor(self, len(self.actors), name, fn, cpu, self._history)
        self.actors.append(actor)
        self.strategy.register(actor)
        if self.timing.events:
            self._stall_options[actor] = option = StallOption(actor)
            self.strategy.register(option)
        return actor

    def call_at(
        self, deadline: int, callback: Callable[[], None], *, name: str, period: int | None = None
    ) -> Timer:
        """Arm a timer for virtual time `deadline` (mod_timer); periodic if `period`."""
        if period is not None and period < 1:
            raise ValueError("a periodic timer needs period >= 1")
        self._seq += 1
        timer = Timer(self, self._seq, name, deadline, period, callback)
        self.strategy.register(timer)
        bisect.insort(self.timers, timer, key=_timer_key)
        return timer

    def call_later(self, delay: int, callback: Callable[[], None], *, name: str) -> Timer:
        """A one-shot timer `delay` virtual ticks from now."""
        return self.call_at(self.vt + delay, callback, name=name)

    def call_every(self, period: int, callback: Callable[[], None], *, name: str) -> Timer:
        """A periodic timer, first due one `period` from now."""
        return self.call_at(self.vt + period, callback, name=name, period=period)

    def post(
        self,
        target: Target,
        payload: object,
        *,
        kind: str,
        src: str,
        reply_to: Target | None = None,
        on_delivered: Callable[[Message], None] | None = None,
        latency: int | None = None,
    ) -> Message:
        """Put a message in flight to `target` (no interleaving point: callers add one).

        With `latency`, the message must be delivered within that many ticks of
        virtual time: once overdue it is the only choice (bounded delivery, e.g. an
        IPI latency much shorter than any guest handshake). None: unbounded.
        """
        self._seq += 1
        msg = Message(self._seq, kind, src, target, payload, reply_to, on_delivered)
        msg.sent_vt = self.vt
        if latency is not None:
            msg.deadline = self.vt + max(latency, 0)
            self._bounded += 1
            if self.timing.events and kind in _INTERRUPT_KINDS:
                self._maybe_delay(msg)
        self.strategy.register(msg)
        self.in_flight.append(msg)
        self.sent += 1
        if self.em.on:
            self.em.emit(
                MessageSent(
                    step=self.step, vt=self.vt, actor=src, msg=msg.seq, kind=kind,
                    dst=target.name,
                )
            )
        return msg

    # --- blocking and waking ----------------------------------------------------------

    async def block(self, actor: Actor, on: str, *, idle: bool = False) -> None:
        """Park `actor` (the caller) until `wake`; idle: it only waits for new work."""
        if self.ended:
            raise _Teardown  # the run is being torn down (a block in a finally block)
        actor.state = _BLOCKED
        actor.blocked_on = on
        actor.idle = idle
        if self.em.on:
            self.em.emit(
                ActorBlocked(step=self.step, vt=self.vt, actor=actor.name, on=on, idle=idle)
            )
        self._next = self._next_actor()
        await _park()

    def wake(self, actor: Actor) -> bool:
        """Make a blocked actor enabled again; False if it was not blocked."""
        if actor.state is not _BLOCKED:
            return False
        actor.state = _READY
        actor.blocked_on = ""
        actor.idle = False
        return True

    # --- the decision loop ------------------------------------------------------------

    def _has_work(self) -> bool:
        for a in self.actors:
            if a.state is _READY or (a.state is _BLOCKED and not a.idle):
                return True
        if self.in_flight:
            return True
        for t in self.timers:
            if t.period is None:
                return True
        hook = self.work_pending
        return hook is not None and hook()

    def _next_actor(self) -> Actor | None:
        """Run deliveries and timers the strategy picks until it picks an actor (or the end)."""
        cands = self._cands
        em = self.em
        strategy = self.strategy
        actors = self.actors
        regions = self._regions
        while True:
            if self.step >= self.max_steps:
                self._end(Outcome.LIVELOCK if self._has_work() else Outcome.BUDGET)
                return None
            cands.clear()
            if self._bounded and self._deliver_overdue():
                continue
            if self._entry_holds:
                self._settle_entry_holds()
            if regions and self._enforced and self._forced(cands):
                n = len(cands)
            else:
                step, vt = self.step, self.vt
                cur = self.current
                if not self._holding:  # no actor is held off (_release_holds cleared all)
                    if cur is not None and cur.state is _READY:
                        cands.append(cur)
                    for a in actors:
                        if a.state is _READY and a is not cur:
                            cands.append(a)
                else:
                    if cur is not None and cur.state is _READY and cur.ctx.held_until <= step:
                        cands.append(cur)
                    for a in actors:
                        if a.state is _READY and a is not cur and a.ctx.held_until <= step:
                            cands.append(a)
                in_flight = self.in_flight
                if in_flight:
                    if self._holding:
                        cands.extend(m for m in in_flight if m.not_before <= vt)
                    else:
                        cands.extend(in_flight)
                timers = self.timers
                if timers:
                    if not cands and not self._has_work():
                        self._end(Outcome.QUIESCENT)  # only periodic timers left ticking
                        return None
                    vt = self.vt
                    for t in timers:
                        if t.deadline > vt:
                            break
                        cands.append(t)
                n = len(cands)
                if n == 0 and self._holding:  # only stalled work left: the stalls end
                    self._release_holds()
                    continue
                if n == 0:
                    if timers:  # work is pending (checked above): jump to the next timer
                        self.vt = timers[0].deadline
                        continue
                    self._end(Outcome.DEADLOCK if self._has_work() else Outcome.QUIESCENT)
                    return None
            if n == 1:
                i = 0
            else:
                i = strategy.choose(cands)
                self.choice_values.append(i)
                self.choice_bounds.append(n)
            ev = cands[i]
            if type(ev) is StallOption:
                self._stretch(ev)
                continue
            self.step += 1
            self.vt += 1
            if type(ev) is Actor:
                if regions:
                    self._count_stalls(ev)
                    ev.ctx.stall = ev.ctx.extra = 0  # it runs: its wait is over
                self.current = ev
                ev.state = _RUNNING
                ev.steps += 1
                if em.on:
                    em.emit(
                        ActorStepped(
                            step=self.step, vt=self.vt, actor=ev.name, label=ev.label,
                            choice=i, of=n,
                        )
                    )
                return ev
            ev._fire(self)

    # --- the timing model (context.py): stall budgets and stall events ----------------

    def _region_started(self, actor: Actor) -> None:
        self._regions.append(actor)

    def _region_ended(self, actor: Actor) -> None:
        self._regions.remove(actor)

    def world_switch(self, actor: Actor) -> None:
        """The guest entry (the hyp's world switch, about 1-2 us) outlasts a preemption-off
        broadcast loop and an IPI's flight (a few hundred ns and about 1 us): a broadcast
        running on another CPU when this vCPU starts its entry, and every IPI already in
        flight, have landed before the guest's first instruction. The actor is held off
        while one is, for at most `TimingModel.world_switch` steps of the others' time
        (a stall event, which stretches a broadcast or an IPI past its bound, outlasts
        the hold). Holds nothing when nothing is in flight, so entries stay cheap."""
        cost = self.timing.world_switch
        if cost and self.timing.enforced and self._entry_blocked():
            actor.ctx.held_until = self.step + cost
            self._entry_holds.append(actor)
            self._holding = True

    def _entry_blocked(self) -> bool:
        """A broadcast is running (an actor is inside kvm_make_all_cpus_request's get_cpu
        region) or an IPI is in flight."""
        if any(_BROADCAST in a.ctx.stack for a in self._regions):
            return True
        return any(m.kind == "ipi" for m in self.in_flight)

    def _settle_entry_holds(self) -> None:
        """End the world-switch holds whose broadcasts and IPIs have all landed."""
        if self._entry_blocked():
            return
        for a in self._entry_holds:
            a.ctx.held_until = 0
        self._entry_holds.clear()

    def _release_holds(self) -> None:
        self._holding = False
        self._entry_holds.clear()
        for a in self.actors:
            a.ctx.held_until = 0
        for m in self.in_flight:
            m.not_before = 0

    def _maybe_delay(self, msg: Message) -> None:
        """Adversarial timing: the strategy decides whether this interrupt is late (held
        `ipi_delay` ticks in flight, then bounded again)."""
        i = self.strategy.choose([msg, self._ipi_delay])
        self.choice_values.append(i)
        self.choice_bounds.append(2)
        if i:
            delay = self.timing.ipi_delay
            msg.not_before = self.vt + delay
            assert msg.deadline is not None
            msg.deadline += delay
            msg.delays += 1
            self._holding = True
            self.stall_events.append(StallEvent(kind="ipi-delay", actor=msg.target.name,
                                                where=msg.describe(), duration=delay,
                                                step=self.step))

    def _forced(self, cands: list[Any]) -> bool:
        """Fill `cands` with the ready actors in a region that waited their stall budget
        (and, in adversarial timing, the host interrupts that may stretch them); False
        if none."""
        budget, region = self.timing.stall_budget, self.timing.region_budget
        for a in self._regions:
            ctx = a.ctx
            if a.state is _READY and ctx.held_until <= self.step and (
                    ctx.stall >= budget + ctx.extra or ctx.total >= region + ctx.extra):
                cands.append(a)
        if not cands:
            return False
        if self.timing.events:
            limit = self.timing.max_stretches
            for a in list(cands):
                if a.ctx.stretchable and a.ctx.stretches < limit:
                    cands.append(self._stall_options[a])
        return True

    def _count_stalls(self, running: Actor) -> None:
        """`running` takes a step: every other ready actor inside a region waits one more."""
        for a in self._regions:
            if a is not running and a.state is _READY:
                ctx = a.ctx
                ctx.stall += 1
                ctx.total += 1
                if ctx.stall > self.max_stall:
                    self.max_stall = ctx.stall
                    self.max_stall_where = f"{a.name} {ctx.describe()}"

    def _stretch(self, option: StallOption) -> None:
        """A chosen stall event: a host interrupt (or softirq) runs on the CPU of a
        preemption-off region for `stall_duration` steps, during which it cannot run."""
        actor = option.actor
        assert actor is not None
        ctx = actor.ctx
        duration = self.timing.stall_duration
        ctx.stretches += 1
        ctx.extra += duration
        ctx.held_until = self.step + duration
        self._holding = True
        self.stall_events.append(StallEvent(kind="host-irq", actor=actor.name,
                                            where=ctx.describe(), duration=duration,
                                            step=self.step))

    def _deliver_overdue(self) -> bool:
        """Deliver the oldest message past its deadline, if any (not a choice)."""
        vt = self.vt
        for msg in self.in_flight:
            if msg.deadline is not None and msg.deadline <= vt:
                self.step += 1
                self.vt += 1
                msg._fire(self)
                return True
        return False

    def report_context(self, violation: ContextViolation) -> None:
        """Record a context violation (the first of each kind, message and call chain)."""
        key = (violation.invariant, violation.message, tuple(violation.chain))
        if key not in self._context_seen:
            self._context_seen.add(key)
            self.context_violations.append(violation)

    def timing_record(self) -> Timing:
        """What this run's interleaving needed (see context.timing_class)."""
        return Timing(
            mode=self.timing.mode, max_stall=self.max_stall,
            max_stall_where=self.max_stall_where, max_ipi_latency=self.max_ipi_latency,
            unbounded_ipi_latency=self.unbounded_ipi_latency, events=list(self.stall_events),
        )

    def _end(self, outcome: Outcome) -> None:
        self.ended = True
        self.outcome = outcome
        em = self.em
        if outcome in (Outcome.DEADLOCK, Outcome.LIVELOCK):
            message = (
                "nothing enabled while work is pending"
                if outcome is Outcome.DEADLOCK
                else f"step budget {self.max_steps} spent while work is pending"
            )
            if em.on:
                em.emit(
                    FindingReported(
                        step=self.step, vt=self.vt, actor="scheduler", kind=outcome.value,
                        message=message,
                    )
                )
            self.finding = Finding(
                kind=outcome.value,
                message=message,
                step=self.step,
                vt=self.vt,
                actors=self.snapshot(),
                in_flight=[m.describe() for m in self.in_flight],
                last_events=list(em.recent),
            )
        if em.on:
            em.emit(
                RunEnded(
                    step=self.step, vt=self.vt, actor="scheduler", outcome=outcome.value,
                    choices=len(self.choice_values),
                )
            )
            em.on = False  # teardown (cancellation) must not add events after the end

    # --- actor tasks and the run ------------------------------------------------------

    async def _actor_main(self, actor: Actor) -> None:
        await actor.fn()
        if actor.held:
            raise LockOrderError(
                f"{actor.name} finished holding {', '.join(lk.name for lk in actor.held)}"
            )
        actor.ctx.check_balanced()
        actor.state = ActorState.DONE
        if self.em.on:
            self.em.emit(ActorFinished(step=self.step, vt=self.vt, actor=actor.name))
        self._next = self._next_actor()

    async def run(self) -> Outcome:
        """Run every spawned actor under control until quiescence, a finding or the budget.

        The driver loop: resume the chosen actor's coroutine until it parks (having set
        the next actor) or finishes, until no actor is chosen (the run ended). Then the
        unfinished coroutines are torn down. An exception raised by model code (a model
        bug) propagates as it is.
        """
        await trio.lowlevel.checkpoint()
        token = _CURRENT.set(None)
        try:
            nxt = self._next_actor()
            while nxt is not None:
                coro = nxt.task
                if coro is None:
                    coro = nxt.task = self._actor_main(nxt)
                self._next = None
                _CURRENT.set(nxt)
                try:
                    parked = coro.send(None)
                except StopIteration:
                    parked = _PARKED
                if parked is not _PARKED:
                    raise RuntimeModelError(
                        f"{nxt.name} blocked on a Trio primitive the scheduler does not "
                        "control (use point, block, Mailbox or sleep from the runtime)"
                    )
                nxt = self._next
        finally:
            self._teardown()
            _CURRENT.reset(token)
        assert self.outcome is not None
        return self.outcome

    def _teardown(self) -> None:
        """End every started, unfinished actor coroutine (its finally blocks run)."""
        self.ended = True
        for actor in self.actors:
            coro = actor.task
            if coro is None or inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED:
                continue
            _CURRENT.set(actor)
            try:
                coro.throw(_Teardown())
            except (_Teardown, StopIteration):
                pass
            finally:
                coro.close()  # drops one that awaited again; a no-op on a finished one

    # --- reporting --------------------------------------------------------------------

    def choice_log(self) -> ChoiceLog:
        """The decisions taken so far."""
        return ChoiceLog(values=list(self.choice_values), bounds=list(self.choice_bounds))

    def snapshot(self) -> list[ActorSnapshot]:
        """Every actor's state, what it waits for, its locks and last points."""
        return [
            ActorSnapshot(
                id=a.id, name=a.name, state=a.state.value, blocked_on=a.blocked_on,
                idle=a.idle, steps=a.steps, holds=[lk.name for lk in a.held],
                last_points=list(a.history),
            )
            for a in self.actors
        ]

    def statistics(self) -> RunStatistics:
        """Coverage figures: steps, decisions, deviations, messages, timers."""
        return RunStatistics(
            steps=self.step,
            decisions=len(self.choice_values),
            deviations=sum(1 for v in self.choice_values if v),
            messages_sent=self.sent,
            messages_delivered=self.delivered,
            timers_fired=self.timers_fired,
            in_flight_at_end=len(self.in_flight),
        )
