"""More guest instructions on the CPU interface: reads with expected values, the APRs,
BPR, WFI, and PSTATE.I masking (see ``GuestProgram.handler``)."""

from __future__ import annotations

from dataclasses import dataclass

from vgic_actors.arch.traps import Trap
from vgic_actors.guest.program import (
    RETRY,
    GuestOp,
    GuestProgram,
    StepResult,
    guest_group,
    trapped,
)
from vgic_actors.kvm.guest_api import GuestEnv
from vgic_actors.runtime import ExitReason, GuestExit


class _Read(GuestOp):
    """A register read compared against ``expect`` (None: not checked)."""

    expect: int | None

    def what(self) -> str:
        """The register's name for failure messages."""
        raise NotImplementedError

    def read(self, prog: GuestProgram, env: GuestEnv) -> int | Trap:
        """Perform the read on the virtual CPU interface."""
        raise NotImplementedError

    def check(self, prog: GuestProgram, value: int) -> None:
        """Record a failure if ``value`` is not the expected one."""
        if self.expect is not None and value != self.expect:
            prog.fail(f"{self.what()} read {value:#x}, expected {self.expect:#x}")

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        out = self.read(prog, env)
        if isinstance(out, Trap):
            return trapped(out)
        self.check(prog, out)
        return None

    def complete(self, prog: GuestProgram, value: int | None) -> bool:
        if value is not None:
            self.check(prog, value)
        return True


@dataclass(frozen=True, slots=True)
class Iar(_Read):
    """ICC_IAR<group>_EL1 without waiting (1023 when nothing can be acknowledged).

    ``eret_if_spurious``: in a handler, return at once when IAR finds nothing (the
    interrupt went away between the exception and the read).
    """

    expect: int | None = None
    group: int | None = None
    eret_if_spurious: bool = False

    def what(self) -> str:
        return "IAR"

    def read(self, prog: GuestProgram, env: GuestEnv) -> int | Trap:
        group = guest_group(env.cpuif) if self.group is None else self.group
        return env.cpuif.read_iar(group)

    def check(self, prog: GuestProgram, value: int) -> None:
        prog.acked_intid(prog.env, value, self.expect)
        if self.eret_if_spurious and 1020 <= value <= 1023:
            prog.eret()


@dataclass(frozen=True, slots=True)
class Hppir(_Read):
    """ICC_HPPIR<group>_EL1: the highest-priority pending interrupt, without acknowledging."""

    expect: int | None = None
    group: int | None = None

    def what(self) -> str:
        return "HPPIR"

    def read(self, prog: GuestProgram, env: GuestEnv) -> int | Trap:
        group = guest_group(env.cpuif) if self.group is None else self.group
        return env.cpuif.read_hppir(group)


@dataclass(frozen=True, slots=True)
class Rpr(_Read):
    """ICC_RPR_EL1: the running priority (0xff when nothing is active)."""

    expect: int | None = None

    def what(self) -> str:
        return "RPR"

    def read(self, prog: GuestProgram, env: GuestEnv) -> int | Trap:
        return env.cpuif.read_rpr()


@dataclass(frozen=True, slots=True)
class AprRead(_Read):
    """ICC_AP<group>R<n>_EL1 read (the active priorities, one bit per level)."""

    group: int = 1
    n: int = 0
    expect: int | None = None

    def what(self) -> str:
        return f"AP{self.group}R{self.n}"

    def read(self, prog: GuestProgram, env: GuestEnv) -> int | Trap:
        return env.cpuif.read_apr(self.group, self.n)


@dataclass(frozen=True, slots=True)
class AprWrite(GuestOp):
    """ICC_AP<group>R<n>_EL1 = value (a guest restoring its active priorities)."""

    group: int = 1
    n: int = 0
    value: int = 0

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        return trapped(env.cpuif.write_apr(self.group, self.n, self.value))


@dataclass(frozen=True, slots=True)
class SetBpr(GuestOp):
    """ICC_BPR<group>_EL1 = value (the binary point: how many priority bits preempt)."""

    value: int
    group: int | None = None

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        group = guest_group(env.cpuif) if self.group is None else self.group
        return trapped(env.cpuif.write_bpr(group, self.value))


@dataclass(frozen=True, slots=True)
class Wfi(GuestOp):
    """WFI: wait until an interrupt is pending for this vCPU (even while masked)."""

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        if env.cpuif.virq_vfiq()[0]:
            return None
        return GuestExit(ExitReason.WFI)


@dataclass(frozen=True, slots=True)
class Mask(GuestOp):
    """local_irq_disable: PSTATE.I = 1 (no IRQ exception is taken)."""

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        prog.masked = True
        return None


@dataclass(frozen=True, slots=True)
class Unmask(GuestOp):
    """local_irq_enable: PSTATE.I = 0 (a pending vIRQ enters the program's handler)."""

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        prog.masked = False
        return None


@dataclass(frozen=True, slots=True)
class WfiUntil(GuestOp):
    """The selftest's wait loop: WFI until this vCPU has acknowledged ``acks`` interrupts
    since the last ``ResetStats`` (or the start; its handler takes them while unmasked;
    vIRQ high means one is coming)."""

    acks: int

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        if len(prog.acked) - prog.handled_base >= self.acks:
            return None
        if env.cpuif.virq_vfiq()[0]:
            if prog.masked:
                prog.fail(f"waits for {self.acks} acks with IRQs masked (vIRQ is pending)")
                return None
            return RETRY  # the exception is taken at the next step
        return GuestExit(ExitReason.WFI)

    def complete(self, prog: GuestProgram, value: int | None) -> bool:
        return False  # woken: check again


@dataclass(frozen=True, slots=True)
class ResetStats(GuestOp):
    """vgic_irq.c: reset_stats (irq_handled = 0): later ``WfiUntil`` counts start here.
    Guest memory only: no instruction that reaches the GIC, no exit."""

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        prog.handled_base = len(prog.acked)
        return None
