"""Execution contexts: where kernel code runs (task, preemption off, IRQs off, hard IRQ).

Every actor carries an `ExecContext`, our `preempt_count` plus the PSTATE.I mask of the
CPU it runs on. Kernel-model code enters and leaves contexts where the kernel does, under
the kernel's names (`get_cpu`/`put_cpu`, `preempt_disable`, `local_irq_save`/
`local_irq_restore`, `local_irq_disable`/`local_irq_enable`, `irq_enter`/`irq_exit`,
and the spinlocks in `locks.py`). Entries nest and must be left in the reverse order;
an actor that finishes inside one is a model error (`ContextError`).

What the contexts mean for a run (the timing model, `TimingModel`):

- **Stall budget.** Code that runs with preemption or IRQs disabled, or in hard-IRQ
  context, cannot be descheduled: its CPU keeps executing it. While an actor is inside
  such a region and ready at a point, the other actors together may take at most
  `stall_budget` steps before it must take its next one (a bound on how much faster
  the other CPUs can be, step for step), and at most `region_budget` steps over the
  whole region (a model step is a lock operation, an atomic or one guest instruction,
  not a fixed time, so the per-step bound alone would let a region of many short
  steps, such as the broadcast loop, last as long as a guest entry and hand-off).
  Waiting on a lock or an IPI acknowledgement is not a stall: the actor is blocked,
  not ready. Guest execution between entry and exit
  is not kernel code and is not bounded. Preemptible task context is never bounded:
  the kernel must survive a preemption of any length there, so a bug that needs one is
  an *ordering* bug.
- **IPIs pend while IRQs are off.** An IPI delivered to a CPU whose actor has IRQs
  disabled stays pending until the region ends; `local_irq_restore`/`local_irq_enable`
  handles it there (and gives a WAIT request its acknowledgement).
- **Stall events** (`mode="adversarial"` only): where the kernel allows a long delay,
  the strategy may choose one like any other event, so it is recorded and replays: a
  host interrupt or softirq on the CPU of a preemption-off region (IRQs enabled there),
  offered when the region has waited its budget, keeps it off the CPU for
  `stall_duration` steps; an IPI or maintenance interrupt, as it is sent, may be held
  in flight `ipi_delay` ticks before its bound applies again. An IRQs-off or hard-IRQ
  region is never stretched.

`Timing` (in each `RunResult`) records what a run needed: the largest stall inside an
atomic region, the largest IPI latency, every stall event. `timing_class` turns it into
the finding's class: `ordering` (within the realistic bounds, no stall event) or
`timing-window` (with what had to be stretched, and by how much).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Literal

import msgspec

from vgic_actors.errors import RuntimeModelError

if TYPE_CHECKING:
    from vgic_actors.runtime.kick import Pcpu
    from vgic_actors.runtime.scheduler import Actor

DEFAULT_STALL_BUDGET = 8
"""Steps the other actors may take while an atomic region is stalled: a few hundred
instructions' worth (a model step is a lock operation, an atomic or a guest instruction)."""
DEFAULT_REGION_BUDGET = 16
"""Steps the other actors may take in all while one atomic region runs (its waits summed):
a per-step bound alone would let a loop of many short steps (the broadcast) last as long
as a guest entry, acknowledge and hand-off; a guest entry waits for a running broadcast
(DEFAULT_WORLD_SWITCH)."""
DEFAULT_IPI_LATENCY = 8
"""Virtual ticks within which an IPI or maintenance interrupt lands (realistic timing)."""
DEFAULT_WORLD_SWITCH = DEFAULT_REGION_BUDGET + DEFAULT_IPI_LATENCY
"""At most how many steps of the others' time a guest entry (the hyp's world switch) waits
for a broadcast still running elsewhere, and for the IPIs in flight, to land before the
guest's first instruction (`Scheduler.world_switch`): a whole broadcast loop (its region
budget) and one IPI's flight. On hardware the entry takes about as long as both; a run
that needs the guest to act first needs a stall event, so finding A is a timing window."""

TimingMode = Literal["realistic", "adversarial", "unbounded"]
TIMING_MODES: tuple[TimingMode, ...] = ("realistic", "adversarial", "unbounded")


class ContextError(RuntimeModelError):
    """Contexts left out of order, or an actor finished inside one (a model bug)."""


class Ctx(enum.IntEnum):
    """The kernel's execution contexts, weakest first."""

    TASK = 0
    PREEMPT_OFF = 1
    IRQS_OFF = 2
    HARDIRQ = 3

    @property
    def label(self) -> str:
        """The name used in findings and logs: task, preempt-off, irqs-off, hardirq."""
        return self.name.lower().replace("_", "-")


_IRQ_ENTRIES = frozenset({"local_irq_save", "local_irq_disable", "raw_spin_lock_irqsave"})
_PREEMPT_ENTRIES = frozenset({"preempt_disable", "get_cpu", "spin_lock"})
_LOCK_ENTRIES = frozenset({"raw_spin_lock_irqsave", "spin_lock"})
LOCK_FLAVOURS: tuple[str, ...] = ("raw_spin_lock_irqsave", "spin_lock")
"""How a model lock is taken: with IRQs saved and disabled, or with preemption off."""


class ExecContext:
    """One actor's context: the stack of regions it is in, and its stall so far.

    `stack` holds (entry, where) pairs, innermost last: the kernel primitive that opened
    the region and the kernel function it was opened for. `stall` counts the other
    actors' steps since this actor, ready inside a bounded region, last ran, and `total`
    the same over the whole region; `extra` is what stall events added to its budgets.
    """

    __slots__ = (
        "actor", "extra", "guest", "hardirq", "held_until", "irqs", "pcpu", "preempt", "stack",
        "stall", "stretches", "total", "where",
    )

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self.stack: list[tuple[str, str]] = []
        self.preempt = self.irqs = self.hardirq = 0
        self.guest = False  # between guest entry and exit: guest code, not kernel code
        self.stall = self.extra = 0
        self.total = 0  # the other actors' steps while it was ready, over the whole region
        self.stretches = 0  # stall events granted to the current region
        self.held_until = 0  # a stall event keeps the actor off its CPU until this step
        self.where = ""  # the outermost bounded region's kernel function
        self.pcpu: Pcpu | None = None  # the CPU whose IRQ mask `irqs` drives

    @property
    def ctx(self) -> Ctx:
        """The strongest context the actor is in."""
        if self.hardirq:
            return Ctx.HARDIRQ
        if self.irqs:
            return Ctx.IRQS_OFF
        if self.preempt:
            return Ctx.PREEMPT_OFF
        return Ctx.TASK

    @property
    def bounded(self) -> bool:
        """Inside kernel code that cannot be descheduled (the stall budget applies)."""
        return bool(self.preempt or self.irqs or self.hardirq) and not self.guest

    @property
    def stretchable(self) -> bool:
        """A host interrupt may stretch this region: preemption off, IRQs on."""
        return self.preempt > 0 and not self.irqs and not self.hardirq

    def describe(self) -> str:
        """``irqs-off in vgic_v3_deactivate`` (for findings)."""
        return f"{self.ctx.label} in {self.where}" if self.where else self.ctx.label

    # --- entering and leaving ---------------------------------------------------------

    def enter(self, entry: str, where: str) -> None:
        """Open a region with kernel primitive `entry` on behalf of function `where`."""
        was_bounded = self.bounded
        self.stack.append((entry, where))
        if entry in _IRQ_ENTRIES:
            self.irqs += 1
            if self.irqs == 1 and self.pcpu is not None:
                self.pcpu.irqs_disabled = True
        elif entry in _PREEMPT_ENTRIES:
            self.preempt += 1
        elif entry == "irq_enter":
            self.hardirq += 1
        else:
            raise ContextError(f"{self.actor.name}: unknown context entry {entry!r}")
        if not was_bounded and self.bounded:
            self._start_region(where)

    def leave(self, entry: str, where: str = "") -> None:
        """Close the innermost region, which must have been opened by `entry`.

        A spinlock's region may be closed out of order (locks are released in any order,
        each restoring its own flags): it is found by its lock's name in `where`.
        """
        stack = self.stack
        at = len(stack) - 1
        if entry in _LOCK_ENTRIES:
            while at >= 0 and stack[at] != (entry, where):
                at -= 1
        if at < 0 or stack[at][0] != entry:
            top = stack[-1][0] if stack else "nothing"
            raise ContextError(
                f"{self.actor.name}: {_closer(entry)} in {where or '?'} while the innermost "
                f"region is {top}"
            )
        was_bounded = self.bounded
        del stack[at]
        if entry in _IRQ_ENTRIES:
            self.irqs -= 1
        elif entry in _PREEMPT_ENTRIES:
            self.preempt -= 1
        else:
            self.hardirq -= 1
        if was_bounded and not self.bounded:
            self._end_region()
        if entry in _IRQ_ENTRIES and self.irqs == 0 and self.pcpu is not None:
            self.pcpu.irqs_disabled = False
            self.pcpu.take_pending_ipis(self.actor)

    def enter_guest(self) -> None:
        """Guest entry: the run loop's IRQ-off region pauses its bound (guest code runs)."""
        if self.bounded:
            self._end_region()
        self.guest = True

    def exit_guest(self) -> None:
        """Guest exit: back in the run loop's IRQ-off region, with a fresh stall budget."""
        self.guest = False
        if self.bounded:
            self._start_region(self.where or "kvm_arch_vcpu_ioctl_run")

    def _start_region(self, where: str) -> None:
        self.stall = self.extra = self.total = 0
        self.stretches = 0
        self.where = where
        self.actor.sched._region_started(self.actor)

    def _end_region(self) -> None:
        self.actor.sched._region_ended(self.actor)
        self.stall = self.extra = 0
        self.where = ""

    def check_balanced(self) -> None:
        """Every region the actor opened was closed (at its end)."""
        if self.stack:
            open_ = ", ".join(f"{e} ({w})" for e, w in self.stack)
            raise ContextError(f"{self.actor.name} finished inside {open_}")


def _closer(entry: str) -> str:
    return {
        "local_irq_save": "local_irq_restore", "local_irq_disable": "local_irq_enable",
        "raw_spin_lock_irqsave": "raw_spin_unlock_irqrestore", "preempt_disable":
        "preempt_enable", "get_cpu": "put_cpu", "spin_lock": "spin_unlock",
        "irq_enter": "irq_exit",
    }.get(entry, entry)


def _ctx() -> ExecContext:
    from vgic_actors.runtime.scheduler import current_actor

    return current_actor().ctx


# --- the kernel's primitives (no interleaving point: they only change the context) ----


def preempt_disable(where: str) -> None:
    """include/linux/preempt.h: preempt_disable."""
    _ctx().enter("preempt_disable", where)


def preempt_enable(where: str) -> None:
    """include/linux/preempt.h: preempt_enable."""
    _ctx().leave("preempt_disable", where)


def get_cpu(where: str) -> int | None:
    """include/linux/smp.h: get_cpu: preemption off, the current CPU's number."""
    ctx = _ctx()
    ctx.enter("get_cpu", where)
    return ctx.actor.cpu


def put_cpu(where: str) -> None:
    """include/linux/smp.h: put_cpu."""
    _ctx().leave("get_cpu", where)


def local_irq_disable(where: str) -> None:
    """include/linux/irqflags.h: local_irq_disable (IPIs to this CPU pend from here)."""
    _ctx().enter("local_irq_disable", where)


def local_irq_enable(where: str) -> None:
    """include/linux/irqflags.h: local_irq_enable: pending IPIs are handled here."""
    _ctx().leave("local_irq_disable", where)


@contextmanager
def local_irq_save(where: str) -> Iterator[None]:
    """include/linux/irqflags.h: local_irq_save ... local_irq_restore around a block."""
    ctx = _ctx()
    ctx.enter("local_irq_save", where)
    yield  # no finally: a run torn down inside the region must not raise ContextError
    ctx.leave("local_irq_save", where)


@contextmanager
def hardirq(where: str) -> Iterator[None]:
    """kernel/softirq.c: irq_enter ... irq_exit around a device's interrupt handler."""
    ctx = _ctx()
    ctx.enter("irq_enter", where)
    yield
    ctx.leave("irq_enter", where)


def irqs_disabled() -> bool:
    """include/linux/irqflags.h: irqs_disabled (for the kernel's own assertions)."""
    ctx = _ctx()
    return bool(ctx.irqs or ctx.hardirq)


def in_task() -> bool:
    """include/linux/preempt.h: in_task: not in hard IRQ context."""
    return not _ctx().hardirq


# --- the kernel's own context assertions (our lockdep) ---------------------------------


class ContextViolation(msgspec.Struct, frozen=True, kw_only=True):
    """Kernel code ran where the kernel forbids it, as lockdep or a WARN would say.

    `invariant` is the catalogue's name (checks/catalogue.py); `chain` the kernel
    functions on the stack, outermost first; `context` the regions open at the time.
    """

    invariant: str
    message: str
    chain: list[str]
    context: str
    actor: str
    step: int


def _chain() -> list[str]:
    """The model functions on the current coroutine stack that carry kernel names."""
    import sys

    names: list[str] = []
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        name = frame.f_code.co_name
        if module.startswith(("vgic_actors.kvm", "vgic_actors.runtime.kick")) and (
                not name.startswith("_") and name not in ("handle", "run", "call", "run_host")
                and (not names or names[-1] != name)):
            names.append(name)
        frame = frame.f_back
    names.reverse()
    return names


def report_context(invariant: str, message: str) -> None:
    from vgic_actors.runtime.scheduler import current_actor

    actor = current_actor()
    ctx = actor.ctx
    opened = " > ".join(f"{entry}({where})" for entry, where in ctx.stack) or "task"
    actor.sched.report_context(ContextViolation(
        invariant=invariant, message=message, chain=_chain(),
        context=f"{ctx.ctx.label}: {opened}", actor=actor.name, step=actor.sched.step))


def might_sleep(where: str) -> None:
    """include/linux/kernel.h: might_sleep: sleeping in atomic context is a bug
    ("BUG: sleeping function called from invalid context")."""
    ctx = _ctx()
    if ctx.preempt or ctx.irqs or ctx.hardirq:
        report_context("sleep-in-atomic",
                f"{where} may sleep, called with {ctx.ctx.label} (might_sleep)")


def smp_call_function_many_checks(where: str) -> None:
    """kernel/smp.c: smp_call_function_many_cond's assertions: lockdep_assert_irqs_enabled()
    ("Can deadlock when called with interrupts disabled") and WARN_ON_ONCE(!in_task())
    (the csd storage is shared with interrupt context)."""
    ctx = _ctx()
    if ctx.hardirq:
        report_context("smp-call-in-atomic",
                f"smp_call_function_many from {where} in hard-IRQ context "
                "(WARN_ON_ONCE(!in_task()), and IRQs are disabled)")
    elif ctx.irqs:
        report_context("smp-call-in-atomic",
                f"smp_call_function_many from {where} with IRQs disabled "
                "(lockdep_assert_irqs_enabled: can deadlock)")


# --- the timing model and what a run needed -------------------------------------------


@dataclass(frozen=True, slots=True)
class TimingModel:
    """How long an actor may be stalled, and which stall events the strategy may choose.

    ``realistic`` (default): atomic regions bounded by `stall_budget`, IPIs by the VM's
    latency, no stall event. ``adversarial``: the same bounds plus stall events.
    ``unbounded``: no stall budget (any actor may stall for ever at any point), the
    model before execution contexts existed; its findings are classed from what they
    needed.
    """

    mode: TimingMode = "realistic"
    stall_budget: int = DEFAULT_STALL_BUDGET
    region_budget: int = DEFAULT_REGION_BUDGET
    world_switch: int = DEFAULT_WORLD_SWITCH
    stall_duration: int = 64
    ipi_delay: int = 64
    max_stretches: int = 4
    ipi_bound: int = DEFAULT_IPI_LATENCY

    @property
    def enforced(self) -> bool:
        """Whether the stall budget is enforced (not ``unbounded``)."""
        return self.mode != "unbounded"

    @property
    def events(self) -> bool:
        """Whether stall events are offered (``adversarial``)."""
        return self.mode == "adversarial"

    def describe(self) -> str:
        """``realistic(budget=8)`` and the like, for headers."""
        if self.mode == "unbounded":
            return "unbounded"
        extra = (f",stall={self.stall_duration},ipi_delay={self.ipi_delay}"
                 if self.events else "")
        return f"{self.mode}(budget={self.stall_budget}/{self.region_budget}{extra})"


def timing_model(mode: str, **overrides: int) -> TimingModel:
    """A `TimingModel` by mode name (ValueError for an unknown one)."""
    if mode not in TIMING_MODES:
        raise ValueError(f"unknown timing {mode!r} (realistic, adversarial, unbounded)")
    return TimingModel(mode=mode, **overrides)


class StallEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One stall event a run used: a host interrupt on a CPU or an IPI delayed."""

    kind: str  # "host-irq" (a preemption-off region stretched) or "ipi-delay"
    actor: str  # the stalled actor, or the IPI's target
    where: str  # the region's kernel function, or the IPI's message
    duration: int
    step: int


class Timing(msgspec.Struct, frozen=True, kw_only=True):
    """What a run's interleaving needed: its largest atomic stall and IPI latency."""

    mode: str = "realistic"
    max_stall: int = 0
    max_stall_where: str = ""
    max_ipi_latency: int = 0
    # the largest latency of an interrupt sent without a delivery bound
    unbounded_ipi_latency: int = 0
    events: list[StallEvent] = msgspec.field(default_factory=list)


FindingClass = Literal["ordering", "timing-window"]


def timing_class(timing: Timing, model: TimingModel | None = None) -> tuple[FindingClass, str]:
    """``ordering`` when the run stayed within the realistic bounds of `model` with no
    stall event; else ``timing-window`` and what had to be stretched.

    Under ``realistic`` and ``adversarial`` timing the scheduler enforced the stall
    budgets and every bounded IPI's deadline, so only stall events (and interrupts sent
    without a bound, e.g. ``unbounded_ipi_latency``) can take a run outside them; the
    measured stall can exceed the budget by a step or two when two regions wait at once,
    which is not a stretch. Under ``unbounded`` timing the measured stall and latency are
    all there is."""
    bounds = model or TimingModel()
    needs = [f"{ev.kind} on {ev.actor} ({ev.where}) for {ev.duration}" for ev in timing.events]
    enforced = timing.mode != "unbounded"
    if not enforced and timing.max_stall > bounds.stall_budget:
        needs.append(
            f"stall {timing.max_stall} > {bounds.stall_budget} in {timing.max_stall_where}"
        )
    latency = timing.unbounded_ipi_latency if enforced else timing.max_ipi_latency
    if latency > bounds.ipi_bound:
        needs.append(f"IPI latency {latency} > {bounds.ipi_bound}")
    if needs:
        return "timing-window", "; ".join(needs)
    return "ordering", ""
