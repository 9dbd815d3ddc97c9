"""Model spinlocks with a lock-order check (our lockdep).

Acquire is one interleaving point. A contended acquirer blocks and is not enabled;
release hands the lock to the oldest waiter (queued spinlocks are FIFO) and is not a
point. Code inside the lock that touches only lock-protected data needs no point.

Lock order: a lock has a `rank` (lower = outer, taken first, e.g. ap_list_lock before
irq_lock) and a `sub` rank for locks of one class (two ap_list_locks: lower vcpu_id
first). Taking a lock whose (rank, sub) is not above every ranked lock held raises
LockOrderError, as does taking a lock twice or releasing one not held. `rank=None`
opts out of the check (for planted-deadlock tests).

Context: a lock's `flavour` says how the kernel takes it. ``raw_spin_lock_irqsave``
(irq_lock, ap_list_lock) disables IRQs on the CPU before spinning and restores them at
release; ``spin_lock`` disables preemption; None (a mutex such as config_lock, or a
bare runtime lock) leaves the context alone; ``mutex`` (config_lock, the ITS locks)
may sleep, so taking it in atomic context is a `sleep-in-atomic` violation. Holding a
spinlock is an atomic region (context.py): the stall budget applies and IPIs to the CPU
pend. A ``spin_lock`` taken both in hard-IRQ context and with IRQs enabled is lockdep's
inconsistent lock state.
"""

from __future__ import annotations

from collections import deque
from types import TracebackType

from vgic_actors.errors import LockOrderError
from vgic_actors.events import LockAcquired, LockReleased
from vgic_actors.runtime.context import LOCK_FLAVOURS, might_sleep, report_context
from vgic_actors.runtime.scheduler import Actor, current_actor, point

_IN_HARDIRQ = 1  # lockdep usage bits: taken in hard-IRQ context
_HARDIRQ_ON = 2  # taken with IRQs enabled


class SpinLock:
    """raw_spinlock_t / spinlock_t in the model (IRQ-off variants are the same here)."""

    __slots__ = ("_l", "_reported", "flavour", "name", "owner", "rank", "sub", "usage",
                 "waiters")

    def __init__(self, name: str, rank: int | None = None, sub: int = 0,
                 flavour: str | None = None) -> None:
        if flavour is not None and flavour not in (*LOCK_FLAVOURS, "mutex"):
            raise ValueError(f"unknown lock flavour {flavour!r} "
                             f"({', '.join(LOCK_FLAVOURS)}, mutex)")
        self.name = name
        self.rank = rank
        self.sub = sub
        self.flavour = flavour
        self.usage = 0  # lockdep usage bits: _IN_HARDIRQ, _HARDIRQ_ON
        self._reported = False
        self.owner: Actor | None = None
        self.waiters: deque[Actor] = deque()
        self._l = f"lock:{name}"

    def _track_usage(self, actor: Actor) -> None:
        """lockdep's irq-safety rule: a lock taken in hard-IRQ context must never be taken
        with IRQs enabled elsewhere (the interrupt could spin on its own CPU's holder). An
        irqsave lock never is; a spin_lock is when no other region disabled IRQs."""
        ctx = actor.ctx
        if ctx.hardirq:
            self.usage |= _IN_HARDIRQ
        elif self.flavour == "spin_lock" and not ctx.irqs:
            self.usage |= _HARDIRQ_ON
        if self.usage == _IN_HARDIRQ | _HARDIRQ_ON and not self._reported:
            self._reported = True
            report_context("inconsistent-lock-state",
                           f"{self.name} is taken in hard-IRQ context and with IRQs "
                           "enabled ({IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage)")

    def locked(self) -> bool:
        """spin_is_locked (no point)."""
        return self.owner is not None

    def assert_held(self) -> None:
        """lockdep_assert_held: the current actor holds this lock."""
        if self.owner is not current_actor():
            raise LockOrderError(f"{self.name} is not held by {current_actor().name}")

    def _check_order(self, actor: Actor) -> None:
        for held in actor.held:
            if held is self:
                raise LockOrderError(f"{actor.name} takes {self.name} twice")
            if self.rank is None or held.rank is None:
                continue
            if (self.rank, self.sub) <= (held.rank, held.sub):
                raise LockOrderError(
                    f"{actor.name} takes {self.name} (rank {self.rank}.{self.sub}) while "
                    f"holding {held.name} (rank {held.rank}.{held.sub})"
                )

    async def acquire(self) -> None:
        """spin_lock: one point; if taken, block until the holder hands it over."""
        actor = current_actor()
        self._check_order(actor)
        if self.flavour == "mutex":
            might_sleep(f"mutex_lock({self.name})")
        elif self.flavour is not None:
            actor.ctx.enter(self.flavour, self.name)  # IRQs/preemption off before spinning
            self._track_usage(actor)
        await point(self._l)
        contended = self.owner is not None
        if contended:
            self.waiters.append(actor)
            while self.owner is not actor:
                await actor.sched.block(actor, self._l)
        else:
            self.owner = actor
        actor.held.append(self)
        sched = actor.sched
        if sched.em.on:
            sched.em.emit(
                LockAcquired(
                    step=sched.step, vt=sched.vt, actor=actor.name, lock=self.name,
                    contended=contended,
                )
            )

    def release(self) -> None:
        """spin_unlock: hand the lock to the oldest waiter, if any (no point)."""
        actor = current_actor()
        if self.owner is not actor:
            raise LockOrderError(f"{actor.name} releases {self.name}, which it does not hold")
        actor.held.remove(self)
        nxt = self.waiters.popleft() if self.waiters else None
        self.owner = nxt
        if nxt is not None:
            actor.sched.wake(nxt)
        if self.flavour is not None and self.flavour != "mutex":
            actor.ctx.leave(self.flavour, self.name)
        sched = actor.sched
        if sched.em.on:
            sched.em.emit(
                LockReleased(
                    step=sched.step, vt=sched.vt, actor=actor.name, lock=self.name,
                    to=nxt.name if nxt is not None else "",
                )
            )

    async def __aenter__(self) -> SpinLock:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.owner is current_actor():
            self.release()
