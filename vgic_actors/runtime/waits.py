"""Blocking waits: the vCPU's WFI/halt wait (rcuwait) and virtual-time sleeps.

The waiter checks its condition and goes to sleep atomically (no point in between),
as set_current_state before the check does in the kernel, so a wake-up cannot be lost.
A vCPU waiting in WFI is *idle*: a run may end quiescent with it asleep.
"""

from __future__ import annotations

from collections.abc import Callable

from vgic_actors.events import VcpuWoken
from vgic_actors.runtime.context import might_sleep
from vgic_actors.runtime.scheduler import Actor, current_actor, point


class WaitQueue:
    """One vCPU's rcuwait (vcpu->wait): at most one sleeper, woken by kvm_vcpu_wake_up."""

    __slots__ = ("_l_block", "_l_wake", "name", "vcpu_id", "waiter")

    def __init__(self, name: str, vcpu_id: int = -1) -> None:
        self.name = name
        self.vcpu_id = vcpu_id
        self.waiter: Actor | None = None
        self._l_block = f"{name}.block"
        self._l_wake = f"{name}.wake_up"

    async def kvm_vcpu_block(self, runnable: Callable[[], bool]) -> None:
        """kvm_main.c: kvm_vcpu_block: one point, then sleep until `runnable()` holds.

        `runnable` is kvm_vcpu_check_block's test (an interrupt or a request pending),
        evaluated without points; the waker makes it true before waking. It sleeps, so
        calling it in atomic context is a context violation (might_sleep).
        """
        might_sleep("kvm_vcpu_block")
        actor = await point(self._l_block)
        while not runnable():
            self.waiter = actor
            try:
                await actor.sched.block(actor, self._l_block, idle=True)
            finally:
                self.waiter = None

    def wake_nowait(self) -> bool:
        """Wake the sleeper, if any, without a point (a timer or device callback)."""
        waiter = self.waiter
        if waiter is None or not waiter.sched.wake(waiter):
            return False
        sched = waiter.sched
        if sched.em.on:
            sched.em.emit(VcpuWoken(step=sched.step, vt=sched.vt, actor=waiter.name,
                                    vcpu=self.vcpu_id))
        return True

    async def kvm_vcpu_wake_up(self) -> bool:
        """kvm_main.c: kvm_vcpu_wake_up: one point; True if it woke a blocked vCPU."""
        await point(self._l_wake)
        return self.wake_nowait()


async def sleep(ticks: int) -> None:
    """Block the current actor for `ticks` of virtual time (a one-shot timer wakes it)."""
    actor = current_actor()
    sched = actor.sched
    fired = False

    def ring() -> None:
        nonlocal fired
        fired = True
        sched.wake(actor)

    sched.call_later(ticks, ring, name=f"{actor.name}.sleep")
    while not fired:
        await sched.block(actor, "sleep")
