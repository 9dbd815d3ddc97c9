"""A scripted guest: a list of operations run in order by one vCPU.

Each operation is one guest instruction (one interleaving point). An operation
is a small frozen dataclass deriving from ``GuestOp``: ``execute`` runs it and
says whether the program moves on (None), spins on the same instruction
(``RETRY``) or exits to the host (a ``GuestExit``); ``complete`` receives the
host's result for an exiting instruction. Operations live in modules of their
own (this one holds the CPU-interface and memory basics), so adding one never
touches the interpreter. Failed expectations are recorded in ``failures``
(the run goes on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from vgic_actors.arch.cpuif import VirtualCpuInterface
from vgic_actors.arch.registers import GicVersion
from vgic_actors.arch.traps import Trap
from vgic_actors.kvm.guest_api import GuestEnv, MmioAccess, MmioReg
from vgic_actors.runtime import ExitReason, GuestExit, point, spin_yield

_V3_CTLR_EOIMODE = 1 << 1  # ICC_CTLR_EL1.EOImode
_V2_CTLR_EOIMODE = 1 << 9  # GICC_CTLR.EOImodeNS


class Retry:
    """The instruction did not finish (a spin loop): run it again at the next step."""

    def __repr__(self) -> str:
        return "RETRY"


RETRY: Final = Retry()
StepResult = GuestExit | Retry | None


class GuestOp:
    """One guest instruction. Subclasses are frozen dataclasses."""

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        """Run the instruction: None (done), RETRY (same pc next step) or a GuestExit."""
        raise NotImplementedError

    def complete(self, prog: GuestProgram, value: int | None) -> bool:
        """The host finished the exiting instruction with ``value``; True moves pc on."""
        return True


def guest_group(cpuif: VirtualCpuInterface) -> int:
    """The interrupt group a KVM guest uses: 1 on GICv3, 0 on GICv2 (Group 0 only)."""
    return 0 if cpuif.config.version is GicVersion.V2 else 1


def trapped(out: object) -> GuestExit | None:
    """A trapping CPU-interface access becomes a TRAP exit (None when it executed)."""
    return GuestExit(ExitReason.TRAP, out) if isinstance(out, Trap) else None


def _write_ctlr_bit(cpuif: VirtualCpuInterface, bit: int, on: bool) -> Trap | None:
    """Read-modify-write one bit of ICC_CTLR_EL1 / GICC_CTLR."""
    ctlr = cpuif.read_ctlr(trap_check=False)
    assert isinstance(ctlr, int)
    return cpuif.write_ctlr(ctlr | bit if on else ctlr & ~bit)


@dataclass(frozen=True, slots=True)
class SetGroupEnable(GuestOp):
    """ICC_IGRPEN<group>_EL1 = enable (GICv2: GICC_CTLR.EnableGrp<group>).

    ``group`` None: the guest's interrupt group (1 on GICv3, 0 on GICv2 as KVM configures).
    """

    group: int | None = None
    enable: bool = True

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        cpuif = env.cpuif
        g = guest_group(cpuif) if self.group is None else self.group
        if cpuif.config.version is GicVersion.V2:
            return trapped(_write_ctlr_bit(cpuif, 1 << g, self.enable))
        return trapped(cpuif.write_igrpen(g, int(self.enable)))


@dataclass(frozen=True, slots=True)
class SetEoiMode(GuestOp):
    """ICC_CTLR_EL1.EOImode = eoimode (1: priority drop and deactivation split)."""

    eoimode: bool

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        v2 = env.cpuif.config.version is GicVersion.V2
        return trapped(_write_ctlr_bit(env.cpuif, _V2_CTLR_EOIMODE if v2 else _V3_CTLR_EOIMODE,
                                       self.eoimode))


@dataclass(frozen=True, slots=True)
class SetPmr(GuestOp):
    """ICC_PMR_EL1 = value."""

    value: int

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        return trapped(env.cpuif.write_pmr(self.value))


@dataclass(frozen=True, slots=True)
class Ack(GuestOp):
    """Wait for an interrupt (WFI while vIRQ is low), then ICC_IAR1_EL1; check ``expect``."""

    expect: int | None = None

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        cpuif = env.cpuif
        if not cpuif.virq_vfiq()[0]:
            return GuestExit(ExitReason.WFI)
        out = cpuif.read_iar(guest_group(cpuif))
        if isinstance(out, Trap):
            return trapped(out)
        prog.acked_intid(out, self.expect)
        return None

    def complete(self, prog: GuestProgram, value: int | None) -> bool:
        if value is None:
            return False  # WFI woke: retry the acknowledge
        prog.acked_intid(value, self.expect)
        return True


@dataclass(frozen=True, slots=True)
class Eoir(GuestOp):
    """ICC_EOIR1_EL1 for ``intid`` (None: the most recent acknowledge not yet EOIed)."""

    intid: int | None = None

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        intid = self.intid if self.intid is not None else prog.last_unfinished()
        out = env.cpuif.write_eoir(guest_group(env.cpuif), intid)
        if isinstance(out, Trap):
            return trapped(out)
        prog.eoied(intid)
        return None

    def complete(self, prog: GuestProgram, value: int | None) -> bool:
        prog.eoied(self.intid if self.intid is not None else prog.last_unfinished())
        return True


@dataclass(frozen=True, slots=True)
class Dir(GuestOp):
    """ICC_DIR_EL1 for ``intid`` (None: the most recent acknowledge)."""

    intid: int | None = None

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        intid = self.intid if self.intid is not None else (prog.acked[-1] if prog.acked else 1023)
        return trapped(env.cpuif.write_dir(intid))


@dataclass(frozen=True, slots=True)
class Store(GuestOp):
    """Guest memory write (for hand-offs between vCPUs)."""

    var: str
    value: int

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        env.memory[self.var] = self.value
        return None


@dataclass(frozen=True, slots=True)
class WaitFor(GuestOp):
    """Spin (one load per instruction) until guest memory ``var`` == ``value``."""

    var: str
    value: int

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        if env.memory.get(self.var) != self.value:
            spin_yield()
            return RETRY
        return None


@dataclass(frozen=True, slots=True)
class Mmio(GuestOp):
    """A GICD_* access to ``intid``'s field; a read compares against ``expect`` if given.

    ``value`` is what a write stores in the interrupt's field (bit registers need none).
    """

    reg: MmioReg
    intid: int
    write: bool = True
    expect: int | None = None
    value: int = 0

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        access = MmioAccess(env.vcpu_id, self.reg, self.intid, self.write, self.value)
        return GuestExit(ExitReason.TRAP, access)

    def complete(self, prog: GuestProgram, value: int | None) -> bool:
        if not self.write and self.expect is not None and value != self.expect:
            prog.fail(f"{self.reg} read of INTID {self.intid}: expected {self.expect}, "
                      f"got {value}")
        return True


class GuestProgram:
    """GuestCpu for a list of ``GuestOp``: runs them in order, records acks and failures."""

    def __init__(self, name: str, ops: list[GuestOp]) -> None:
        self.name = name
        self.ops = ops
        self.pc = 0
        self.acked: list[int] = []
        self.eoi_stack: list[int] = []
        self.failures: list[str] = []
        self._pending: GuestOp | None = None  # the instruction that exited

    @property
    def done(self) -> bool:
        """Every operation ran."""
        return self.pc >= len(self.ops)

    async def step(self, env: GuestEnv) -> GuestExit | None:
        """One instruction: a point, then the operation at pc (or an exit)."""
        await point(f"{self.name}.pc{self.pc}")
        if self.done:
            return GuestExit(ExitReason.HALT)
        op = self.ops[self.pc]
        out = op.execute(self, env)
        if isinstance(out, GuestExit):
            self._pending = op
            return out
        if out is None:
            self.pc += 1
        return None

    def complete(self, value: int | None) -> None:
        """The host finished the instruction that exited."""
        op, self._pending = self._pending, None
        if op is not None and op.complete(self, value):
            self.pc += 1

    # --- bookkeeping the operations share -------------------------------------------

    def fail(self, what: str) -> None:
        """Record a failed guest expectation at the current instruction."""
        self.failures.append(f"{self.name} pc{self.pc}: {what}")

    def acked_intid(self, intid: int, expect: int | None) -> None:
        """An IAR returned ``intid``; compare with ``expect``."""
        if intid < 1020:
            self.acked.append(intid)
            self.eoi_stack.append(intid)
        if expect is not None and intid != expect:
            self.fail(f"IAR returned {intid}, expected {expect}")

    def eoied(self, intid: int) -> None:
        """An EOIR of ``intid`` executed (drops it from the not-yet-EOIed stack)."""
        if intid in self.eoi_stack:
            self.eoi_stack.remove(intid)

    def last_unfinished(self) -> int:
        """The most recent acknowledge not yet EOIed (1023 if none)."""
        return self.eoi_stack[-1] if self.eoi_stack else 1023
