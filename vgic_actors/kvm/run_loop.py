"""One vCPU's run loop: the kernel steps plugged into the runtime's pCPU shell (arm.c).

check_vcpu_requests -> kvm_vgic_flush_hwstate -> enter -> guest -> exit ->
kvm_vgic_sync_hwstate -> handle_exit (DIR traps, other ICV traps, MMIO, WFI).
"""

from __future__ import annotations

from collections.abc import Callable

from vgic_actors.arch.intid import LPI_MIN
from vgic_actors.arch.sgi import SgiTrap
from vgic_actors.arch.traps import IcvReg, Trap
from vgic_actors.events import DirEmulated
from vgic_actors.kvm.distributor import kvm_io_bus_access
from vgic_actors.kvm.guest_api import (
    GuestCpu,
    GuestEnv,
    ItsCommandWrite,
    MmioAccess,
    VmmRequest,
)
from vgic_actors.kvm.host_irq import kvm_handle_taken_irqs
from vgic_actors.kvm.sgi import access_gic_sgi_group1, vgic_v3_dispatch_sgi
from vgic_actors.kvm.vgic import (
    _log,
    _logging,
    kvm_arch_vcpu_runnable,
    kvm_vgic_flush_hwstate,
    kvm_vgic_sync_hwstate,
    vgic_prune_ap_list,
    vgic_v3_deactivate,
)
from vgic_actors.kvm.vm import (
    KVM_REQ_IRQ_PENDING,
    KVM_REQ_SLEEP,
    KVM_REQ_VGIC_PROCESS_UPDATE,
    Kvm,
    KvmVcpu,
)
from vgic_actors.runtime import ExitReason, GuestExit, Mailbox


class VcpuRunLoop:
    """RunLoopHooks for one vCPU (arm.c: kvm_arch_vcpu_ioctl_run's kernel steps)."""

    def __init__(self, kvm: Kvm, vcpu: KvmVcpu, guest: GuestCpu, env: GuestEnv,
                 distributor: Mailbox) -> None:
        self.kvm, self.vcpu, self.guest, self.env = kvm, vcpu, guest, env
        self.distributor = distributor

    async def check_vcpu_requests(self) -> bool:
        """arm.c: check_vcpu_requests: SLEEP (pause), IRQ_PENDING, VGIC_PROCESS_UPDATE."""
        kvm, vcpu = self.kvm, self.vcpu
        reqs = vcpu.core.requests
        if kvm.phys.taken:  # IRQs enabled: physical interrupts this CPU took run first
            await kvm_handle_taken_irqs(kvm, vcpu.core.pcpu)
        if kvm.sw.mutant_stale_tdir:
            vcpu.active_spis_at_check = await kvm.dist.active_spis.read()
        if await reqs.kvm_request_pending():
            if await reqs.kvm_check_request(KVM_REQ_SLEEP):
                await self._sleep_while(lambda: not vcpu.pause)
            await reqs.kvm_check_request(KVM_REQ_IRQ_PENDING)
            if await reqs.kvm_check_request(KVM_REQ_VGIC_PROCESS_UPDATE):
                await vgic_prune_ap_list(kvm, vcpu)  # kvm_vgic_process_async_update
        if self.guest.done:
            vcpu.in_userspace = True  # KVM_RUN returns for good: vcpu->mutex is free
            return False
        return True

    async def flush_hwstate(self) -> None:
        """vgic.c: kvm_vgic_flush_hwstate."""
        await kvm_vgic_flush_hwstate(self.kvm, self.vcpu)

    async def sync_hwstate(self) -> None:
        """vgic.c: kvm_vgic_sync_hwstate."""
        await kvm_vgic_sync_hwstate(self.kvm, self.vcpu)

    def maintenance_irq_level(self) -> bool:
        """The maintenance interrupt as the hardware drives it."""
        return self.vcpu.cpuif.maintenance_level()

    async def guest_step(self) -> GuestExit | None:
        """One guest instruction; a trapped DIR may be finished by the hyp fast path."""
        exit = await self.guest.step(self.env)
        if exit is not None and exit.reason is ExitReason.TRAP and self._hyp_dir_fast_path(exit):
            return None
        return exit

    def _hyp_dir_fast_path(self, exit: GuestExit) -> bool:
        """The hyp's own handling of a trapped ICV_DIR_EL1 write (True: handled, no exit).

        hyp/include/hyp/switch.h: kvm_hyp_handle_sysreg calls
        hyp/vgic-v3-sr.c: __vgic_v3_perform_cpuif_access only under the
        vgic_v3_cpuif_trap static key (VmConfig.vgic_v3_cpuif_trap: hosts without
        TDIR, or kvm-arm.vgic_v3_common_trap); with the key off every trapped DIR is a
        full exit to access_gic_dir. With the key on, for SYS_ICC_DIR_EL1:
        - shadow vgic_hcr.TDIR set: ___vgic_v3_write_dir (ca3c34da3644): EOImode 0 or
          an LPI -> done; the INTID active in one of *this* vCPU's LRs -> clear it
          (and the physical active state for HW) -> done; else return 0: full exit.
          Before ca3c34da3644 (switch ``hyp_dir_fast_path`` off): always a full exit.
        - shadow TDIR clear (the trap came from TC): __vgic_v3_write_dir, what the
          hardware would do, EOIcount bump when the INTID is in no LR.
        A handled DIR is logged as DirEmulated with outcome hyp-lr (found in an LR),
        hyp-eoicount (counted) or hyp-nop (EOImode 0, LPI).
        """
        trap = exit.detail
        kvm, vcpu, cpuif = self.kvm, self.vcpu, self.vcpu.cpuif
        if not (isinstance(trap, Trap) and trap.register is IcvReg.DIR):
            return False
        if kvm.config.v2_model or not kvm.config.vgic_v3_cpuif_trap:
            return False
        value = trap.value or 0
        intid = value & 0xFFFFFF
        found = cpuif.find_active_lr(value) is not None
        noop = not cpuif.state.vmcr.veoim or intid >= LPI_MIN
        if vcpu.vgic_hcr.tdir and (not kvm.sw.hyp_dir_fast_path or not (noop or found)):
            return False
        cpuif.write_dir(value, trap_check=False)
        outcome = "hyp-nop" if noop else "hyp-lr" if found else "hyp-eoicount"
        kvm.coverage[f"deactivate.{outcome}"] += 1
        if _logging():
            _log(DirEmulated, vcpu=vcpu.vcpu_id, intid=intid, outcome=outcome)
        self.guest.complete(None)
        return True

    async def handle_exit(self, exit: GuestExit) -> bool:
        """handle_exit.c: traps (access_gic_dir, other ICV sysregs), MMIO, WFI; False stops."""
        reason, detail = exit.reason, exit.detail
        if self.kvm.phys.taken:  # local_irq_enable after the exit took them
            await kvm_handle_taken_irqs(self.kvm, self.vcpu.core.pcpu)
        if reason is ExitReason.HALT:
            self.vcpu.in_userspace = True
            return False
        if reason is ExitReason.TRAP and isinstance(detail, Trap):
            await self._emulate_trap(detail)
        elif reason is ExitReason.TRAP and isinstance(detail, SgiTrap):
            # sys_regs.c: access_gic_sgi, in this (the sender's) thread; UNDEF on GICv2
            if not self.kvm.config.v2_model:
                await vgic_v3_dispatch_sgi(self.kvm, self.vcpu, detail.value,
                                           access_gic_sgi_group1(detail))
            self.guest.complete(None)
        elif reason is ExitReason.TRAP and isinstance(detail, MmioAccess):
            result = await kvm_io_bus_access(self.distributor, detail, kind=detail.reg)
            self.guest.complete(result if isinstance(result, int) else None)
        elif reason is ExitReason.TRAP and isinstance(detail, ItsCommandWrite):
            result = await kvm_io_bus_access(self.distributor, detail,
                                             kind=f"GITS_CWRITER.{detail.cmd}")
            self.guest.complete(result if isinstance(result, int) else None)
        elif reason is ExitReason.WFI:
            await self._sleep_while(self._runnable)  # kvm_vcpu_wfi -> kvm_vcpu_block
            self.guest.complete(None)
        elif reason is ExitReason.USERSPACE and isinstance(detail, VmmRequest):
            # KVM_RUN returned to the VMM, which works on this thread, then re-enters
            self.vcpu.in_userspace = True
            result = await detail.vmm_perform(self.kvm)
            self.vcpu.in_userspace = False
            self.guest.complete(result)
        return True

    async def _emulate_trap(self, trap: Trap) -> None:
        """access_gic_dir -> vgic_v3_deactivate; other ICV registers emulated in place."""
        if trap.register is IcvReg.DIR:
            await vgic_v3_deactivate(self.kvm, self.vcpu, trap.value or 0)
            self.guest.complete(None)
            return
        self.guest.complete(self.vcpu.cpuif.emulate(trap))

    def _runnable(self) -> bool:
        """kvm_main.c: kvm_vcpu_check_block, the condition kvm_vcpu_block waits on.

        kvm_arch_vcpu_runnable (an interrupt the vCPU could take, and not paused), a
        pending arch timer, a signal, or KVM_REQ_UNBLOCK: the model has no signals and
        no UNBLOCK, and its timers inject into the vGIC, so only the first remains. A
        pending request alone (KVM_REQ_IRQ_PENDING, KVM_REQ_VGIC_PROCESS_UPDATE) does not
        end the block: a kick wakes the rcuwait, kvm_vcpu_block re-checks and sleeps on.
        A physical interrupt this CPU took ends it too (phys_gic.py): its handler runs
        next, in the loop, and injects before the vCPU re-enters.
        """
        return kvm_arch_vcpu_runnable(self.kvm, self.vcpu) or bool(
            self.kvm.phys.taken and self.kvm.phys.taken_on(self.vcpu.core.pcpu))

    async def _sleep_while(self, ready: Callable[[], bool]) -> None:
        """kvm_vcpu_block until ``ready()`` (IRQs are on here: IPIs are handled as they land)."""
        await self.vcpu.core.wait.kvm_vcpu_block(ready)
