"""The pCPU shell: the vCPU run loop of arm.c, with the kernel layer's steps as hooks.

kernel-vgic.md 8.1 (arm.c: kvm_arch_vcpu_ioctl_run), reduced to what the model needs,
with the contexts each step runs in (context.py):

    loop:
      check_vcpu_requests            (hook; False leaves the loop)        task
      preempt_disable; local_irq_disable                                  irqs-off
      flush_hwstate                  (hook: kvm_vgic_flush_hwstate)
      smp_store_mb(mode, IN_GUEST_MODE)
      if kvm_request_pending: mode = OUTSIDE_GUEST_MODE; sync_hwstate;
                                  local_irq_enable; preempt_enable; continue
      guest slice                    (guest_step hook, one instruction per point: guest)
      mode = OUTSIDE_GUEST_MODE
      sync_hwstate                   (hook: kvm_vgic_sync_hwstate)        irqs-off
      local_irq_enable               (pending IPIs handled here); preempt_enable
      handle_exit                    (hook; False leaves the loop)        task

A guest slice ends on a delivered IPI, a raised maintenance interrupt, a trap, WFI
with nothing pending (all reported by the hooks) or at its timeslice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from vgic_actors.events import EntryAborted, GuestEntered, GuestExited
from vgic_actors.runtime.cells import IN_GUEST_MODE, OUTSIDE_GUEST_MODE
from vgic_actors.runtime.context import (
    local_irq_disable,
    local_irq_enable,
    preempt_disable,
    preempt_enable,
)
from vgic_actors.runtime.kick import VcpuCore
from vgic_actors.runtime.scheduler import Actor, current_actor
from vgic_actors.runtime.strategies import WINDOW_GUEST, WINDOW_MODE, WINDOW_REQUESTS


class ExitReason(enum.Enum):
    """Why a guest slice ended."""

    IPI = "ipi"
    MAINTENANCE = "maintenance"
    TRAP = "trap"
    WFI = "wfi"
    TIMESLICE = "timeslice"
    HALT = "halt"  # the guest program finished
    USERSPACE = "userspace"  # KVM_RUN returns to the VMM (a guest's GUEST_SYNC request)


@dataclass(frozen=True, slots=True)
class GuestExit:
    """A guest exit: its reason and what the kernel needs to handle it (e.g. the trap)."""

    reason: ExitReason
    detail: object = None
    instructions: int = 0


class RunLoopHooks(Protocol):
    """What the kernel layer plugs into the shell (all run on the vCPU's pCPU actor)."""

    async def check_vcpu_requests(self) -> bool:
        """arm.c: check_vcpu_requests; False stops the run loop."""
        ...

    async def flush_hwstate(self) -> None:
        """vgic.c: kvm_vgic_flush_hwstate (LRs, ICH_HCR_EL2 incl. TDIR)."""
        ...

    async def sync_hwstate(self) -> None:
        """vgic.c: kvm_vgic_sync_hwstate (fold and prune)."""
        ...

    def maintenance_irq_level(self) -> bool:
        """The maintenance interrupt line as the hardware drives it now (no point)."""
        ...

    async def guest_step(self) -> GuestExit | None:
        """Run one guest instruction (at least one point); an exit, or None to go on."""
        ...

    async def handle_exit(self, exit: GuestExit) -> bool:
        """handle_exit.c: handle_exit (traps, WFI -> kvm_vcpu_block); False stops."""
        ...


@dataclass(frozen=True, slots=True)
class RunLoopConfig:
    """Shell parameters. `recheck_requests=False` is a mutant (the missed-kick race)."""

    timeslice: int = 64
    recheck_requests: bool = True


def _emit_exit(actor: Actor, vcpu: VcpuCore, exit: GuestExit) -> None:
    sched = actor.sched
    sched.em.emit(
        GuestExited(step=sched.step, vt=sched.vt, actor=actor.name, vcpu=vcpu.vcpu_id,
                    reason=exit.reason.value, instructions=exit.instructions)
    )


_RUN = "kvm_arch_vcpu_ioctl_run"


def _leave_atomic() -> None:
    """arm.c: local_irq_enable after sync (pending IPIs are handled: IRQs stay enabled
    through handle_exit, check_vcpu_requests and any sleep), then preempt_enable."""
    local_irq_enable(_RUN)
    preempt_enable(_RUN)


async def run_guest_slice(vcpu: VcpuCore, hooks: RunLoopHooks, timeslice: int) -> GuestExit:
    """Step the guest until an interrupt is delivered, it exits, or time is up.

    Interrupts are taken between instructions: a delivered IPI ends the slice before
    the next instruction. The maintenance interrupt is a level the hardware raises;
    when it goes high, its delivery to the pCPU is a message in flight like an IPI
    (bounded by the same latency), so the guest may run further instructions before
    the exit: "an MI may arrive late" (gic-arch.md 3; what bug K1 needs).
    """
    pcpu = vcpu.pcpu
    ipi = pcpu.ipi if pcpu is not None else None
    mi_sent = False
    for n in range(timeslice):
        if ipi is not None and ipi.pending():
            reason = (ExitReason.IPI if ipi.holds("ipi") or ipi.holds("phys_irq")
                      else ExitReason.MAINTENANCE)  # a host IRQ (IPI, physical) or the MI
            return GuestExit(reason, instructions=n)
        if not mi_sent and hooks.maintenance_irq_level():
            if pcpu is None:
                return GuestExit(ExitReason.MAINTENANCE, instructions=n)
            mi_sent = True
            pcpu.ipi.post(None, kind="maintenance", src=f"cpu{pcpu.cpu}.gic",
                          latency=pcpu.ipi_latency)
        exit = await hooks.guest_step()
        if exit is not None:
            return GuestExit(exit.reason, exit.detail, n + 1)
    return GuestExit(ExitReason.TIMESLICE, instructions=timeslice)


async def kvm_arch_vcpu_ioctl_run(
    vcpu: VcpuCore, hooks: RunLoopHooks, config: RunLoopConfig | None = None
) -> None:
    """arm.c: kvm_arch_vcpu_ioctl_run: the run loop on the current (pCPU) actor."""
    cfg = config or RunLoopConfig()
    actor = current_actor()
    sched = actor.sched
    em = sched.em
    ctx = actor.ctx
    if vcpu.pcpu is not None:
        vcpu.pcpu.bind(actor)  # vcpu_load: this thread runs on that CPU, IRQs enabled
    while True:
        actor.window = WINDOW_REQUESTS  # the entry window's marks (strategies.EntryWindow)
        if not await hooks.check_vcpu_requests():
            actor.window = 0
            return
        actor.window = WINDOW_MODE
        preempt_disable(_RUN)
        local_irq_disable(_RUN)
        await hooks.flush_hwstate()
        await vcpu.mode.smp_store_mb(IN_GUEST_MODE)
        if cfg.recheck_requests and await vcpu.requests.kvm_request_pending():
            await vcpu.mode.store(OUTSIDE_GUEST_MODE)
            if em.on:
                em.emit(EntryAborted(step=sched.step, vt=sched.vt, actor=actor.name,
                                     vcpu=vcpu.vcpu_id))
            actor.window = 0
            await hooks.sync_hwstate()
            _leave_atomic()
            continue
        if em.on:
            em.emit(GuestEntered(step=sched.step, vt=sched.vt, actor=actor.name,
                                 vcpu=vcpu.vcpu_id))
        ctx.enter_guest()
        sched.world_switch(actor)  # __kvm_vcpu_run: the entry takes time
        actor.entries += 1
        actor.window = WINDOW_GUEST
        exit = await run_guest_slice(vcpu, hooks, cfg.timeslice)
        actor.window = 0
        ctx.exit_guest()
        await vcpu.mode.store(OUTSIDE_GUEST_MODE)
        if em.kernel_on:  # the liveness monitors count MI exits (checks/liveness.py)
            _emit_exit(actor, vcpu, exit)
        await hooks.sync_hwstate()
        _leave_atomic()
        if not await hooks.handle_exit(exit):
            return
