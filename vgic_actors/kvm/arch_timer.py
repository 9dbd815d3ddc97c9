"""The guest's virtual timer (CNTV_*) as a device driving a HW-mapped per-CPU PPI.

arch_timer.c (torvalds/linux 1c3b3cadcd69): KVM maps the host's virtual-timer PPI to
the guest's vINTID 27 on every vCPU (kvm_timer_enable -> kvm_vgic_map_phys_irq, and
kvm_vgic_set_owner so that userspace cannot inject it). The guest programs
CNTV_CVAL_EL0 and CNTV_CTL_EL0 directly (no trap); the timer hardware drives the
physical PPI of the CPU it runs on while ISTATUS && ENABLE && !IMASK. The physical
interrupt is taken on that pCPU (phys_gic.py: a message to its IPI mailbox, forcing
the guest out), and kvm_arch_timer_handler (host_irq.py) injects vINTID 27 with level
1; the LR's HW bit then lets the guest's deactivation deactivate the physical PPI.

Deviations: the model keeps each vCPU loaded on its pCPU, so it has no soft timer
(kvm_timer_blocking's bg_timer): while the vCPU blocks in WFI the physical interrupt is
still taken and injected, which wakes it as the soft timer would. CNTVCT_EL0 is the
scheduler's virtual time (CNTVOFF 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vgic_actors.kvm.phys_gic import kvm_vgic_map_irq, phys_key
from vgic_actors.kvm.vm import Kvm
from vgic_actors.runtime import Scheduler
from vgic_actors.runtime.scheduler import Timer

TIMER_OWNER = "arch_timer"
VTIMER_VINTID = 27  # the guest's CNTV PPI (the selftests' and the DT's default)
HOST_VTIMER_PPI = 27  # the host's own virtual-timer PPI (host_vtimer_irq)

CNTV_CTL_ENABLE = 1 << 0
CNTV_CTL_IMASK = 1 << 1
CNTV_CTL_ISTATUS = 1 << 2


@dataclass(eq=False)
class ArchTimer:
    """One vCPU's virtual timer: CNTV_CTL_EL0 (ENABLE, IMASK), CNTV_CVAL_EL0, and the
    physical PPI its output drives (``key``: phys_gic.py's per-CPU key)."""

    kvm: Kvm
    sched: Scheduler
    vcpu_id: int
    key: int
    ctl: int = 0
    cval: int = 0
    _deadline: Timer | None = field(default=None, repr=False)

    @property
    def cntvct(self) -> int:
        """CNTVCT_EL0: the virtual count (virtual time)."""
        return self.sched.vt

    def istatus(self) -> bool:
        """CNTV_CTL_EL0.ISTATUS: enabled and the count has reached CVAL."""
        return bool(self.ctl & CNTV_CTL_ENABLE) and self.cntvct >= self.cval

    def output(self) -> bool:
        """The timer's interrupt output: ISTATUS and not IMASK (kvm_timer_should_fire)."""
        return self.istatus() and not self.ctl & CNTV_CTL_IMASK

    def read_ctl(self) -> int:
        """CNTV_CTL_EL0 as the guest reads it (ISTATUS computed)."""
        return (self.ctl & (CNTV_CTL_ENABLE | CNTV_CTL_IMASK)) | (
            CNTV_CTL_ISTATUS if self.istatus() else 0)

    def write(self, *, ctl: int | None = None, cval: int | None = None) -> None:
        """MSR CNTV_CVAL_EL0 / CNTV_CTL_EL0 (no trap: the guest owns its timer); the
        output drives the physical line now, and at CVAL when that is in the future."""
        if cval is not None:
            self.cval = cval
        if ctl is not None:
            self.ctl = ctl & (CNTV_CTL_ENABLE | CNTV_CTL_IMASK)
        self._update()

    def _update(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self.kvm.phys.drive(self.key, self.output())
        if self.ctl & CNTV_CTL_ENABLE and not self.ctl & CNTV_CTL_IMASK and \
                self.cntvct < self.cval:
            self._deadline = self.sched.call_at(self.cval, self._update,
                                                name=f"cntv{self.vcpu_id}")


def kvm_timer_enable(kvm: Kvm, sched: Scheduler, vcpu_id: int) -> ArchTimer:
    """arch_timer.c: kvm_timer_enable for the virtual timer of ``vcpu_id``: map the host's
    vtimer PPI (on this vCPU's pCPU) to vINTID 27 with the timer as owner
    (kvm_vgic_map_phys_irq + kvm_vgic_set_owner), before the vCPU first runs."""
    irq = kvm.vgic_get_irq(kvm.vcpus[vcpu_id], VTIMER_VINTID)
    assert irq is not None
    irq.owner = TIMER_OWNER
    kvm_vgic_map_irq(kvm, irq, vcpu_id, HOST_VTIMER_PPI, owner=TIMER_OWNER)
    return ArchTimer(kvm, sched, vcpu_id, phys_key(HOST_VTIMER_PPI, vcpu_id))
