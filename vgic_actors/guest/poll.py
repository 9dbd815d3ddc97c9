"""Poll a GICD/GICR register until it holds a value, as the selftests' loops do.

``gic_irq_get_active`` and ``gic_irq_get_pending`` in a loop, or the RWP wait of
``gic_irq_enable`` (tools/testing/selftests/kvm/lib/arm64/gic_v3.c): each read is an
MMIO exit to the distributor. The loop is bounded: after ``max_reads`` reads without the
value the guest records a failure (a ``guest-assertion``) and goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

from vgic_actors.guest.program import GuestOp, GuestProgram, StepResult
from vgic_actors.kvm.guest_api import GuestEnv, MmioAccess, MmioReg
from vgic_actors.runtime import ExitReason, GuestExit


@dataclass(frozen=True, slots=True)
class Poll(GuestOp):
    """Read ``reg`` for ``intid`` until it reads ``until`` (at most ``max_reads`` reads)."""

    reg: MmioReg
    intid: int
    until: int
    max_reads: int = 100

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        return GuestExit(ExitReason.TRAP, MmioAccess(env.vcpu_id, self.reg, self.intid,
                                                     False, 0))

    def complete(self, prog: GuestProgram, value: int | None) -> bool:
        key = (id(prog.ops), prog.pc)
        reads = prog.polls.get(key, 0) + 1
        if value == self.until:
            prog.polls.pop(key, None)
            return True
        if reads >= self.max_reads:
            prog.polls.pop(key, None)
            prog.fail(f"{self.reg} of INTID {self.intid} read {value} {reads} times, "
                      f"never {self.until}")
            return True
        prog.polls[key] = reads
        return False  # read again
