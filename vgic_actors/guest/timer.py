"""Guest accesses to its virtual timer, as the selftests program it.

guest_code_timer_spi (tools/testing/selftests/kvm/arm64/vgic_irq.c, de8842327728):
``val = read_sysreg(cntvct_el0); write_sysreg(val, cntv_cval_el0);
write_sysreg(1, cntv_ctl_el0); isb();``. The guest owns CNTV_* (no trap); the timer
hardware (kvm/arch_timer.py) drives the HW-mapped PPI. The runner gives each program
its vCPU's ``ArchTimer`` (``GuestProgram.timer``) when a scenario uses the timer.
"""

from __future__ import annotations

from dataclasses import dataclass

from vgic_actors.guest.program import RETRY, GuestOp, GuestProgram, StepResult
from vgic_actors.kvm.guest_api import GuestEnv
from vgic_actors.runtime import spin_yield

CNTV_CTL_ISTATUS = 1 << 2


@dataclass(frozen=True, slots=True)
class TimerWrite(GuestOp):
    """MSR CNTV_CVAL_EL0 (``cval``, or CNTVCT_EL0 + ``delay`` when ``cval`` is None and
    ``delay`` given), then MSR CNTV_CTL_EL0 (``ctl``: bit 0 ENABLE, bit 1 IMASK), then
    ISB; None leaves a register alone."""

    ctl: int | None = None
    cval: int | None = None
    delay: int | None = None

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        timer = prog.timer
        if timer is None:
            prog.fail("CNTV_* access without an arch timer (ModelInternalError upstream)")
            return None
        cval = self.cval if self.cval is not None else (
            timer.cntvct + self.delay if self.delay is not None else None)
        timer.write(ctl=self.ctl, cval=cval)
        return None


@dataclass(frozen=True, slots=True)
class TimerRead(GuestOp):
    """MRS CNTV_CTL_EL0, compared with ``expect`` (ISTATUS is bit 2). ``wait_istatus``:
    ``while (!(read_ctl() & ISTATUS));`` first, one read per instruction and no exit
    (kvm-unit-tests arm/timer.c test_cval_10msec's busy loop)."""

    expect: int | None = None
    wait_istatus: bool = False

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        timer = prog.timer
        value = timer.read_ctl() if timer is not None else 0
        if self.wait_istatus and timer is not None and not value & CNTV_CTL_ISTATUS:
            spin_yield()
            return RETRY
        if self.expect is not None and value != self.expect:
            prog.fail(f"CNTV_CTL_EL0 read {value:#x}, expected {self.expect:#x}")
        return None
