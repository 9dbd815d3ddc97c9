"""A scripted guest: a list of operations run in order by one vCPU.

Each operation is one guest instruction (one interleaving point). Operations
on the virtual CPU interface may trap; distributor accesses always exit to
the host; waiting for an interrupt is WFI until vIRQ is asserted, then IAR.
Expectations that fail are recorded in ``failures`` (the run goes on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vgic_actors.arch.cpuif import VirtualCpuInterface
from vgic_actors.arch.registers import GicVersion
from vgic_actors.arch.traps import Trap
from vgic_actors.kvm.guest_api import GuestEnv, MmioAccess, MmioReg
from vgic_actors.runtime import ExitReason, GuestExit, point, spin_yield

_V3_CTLR_EOIMODE = 1 << 1  # ICC_CTLR_EL1.EOImode
_V2_CTLR_EOIMODE = 1 << 9  # GICC_CTLR.EOImodeNS


@dataclass(frozen=True, slots=True)
class SetGroupEnable:
    """ICC_IGRPEN<group>_EL1 = enable (GICv2: GICC_CTLR.EnableGrp<group>).

    ``group`` None: the guest's interrupt group (1 on GICv3, 0 on GICv2 as KVM configures).
    """

    group: int | None = None
    enable: bool = True


@dataclass(frozen=True, slots=True)
class SetEoiMode:
    """ICC_CTLR_EL1.EOImode = eoimode (1: priority drop and deactivation split)."""

    eoimode: bool


@dataclass(frozen=True, slots=True)
class SetPmr:
    """ICC_PMR_EL1 = value."""

    value: int


@dataclass(frozen=True, slots=True)
class Ack:
    """Wait for an interrupt (WFI while vIRQ is low), then ICC_IAR1_EL1; check ``expect``."""

    expect: int | None = None


@dataclass(frozen=True, slots=True)
class Eoir:
    """ICC_EOIR1_EL1 for ``intid`` (None: the most recent acknowledge not yet EOIed)."""

    intid: int | None = None


@dataclass(frozen=True, slots=True)
class Dir:
    """ICC_DIR_EL1 for ``intid`` (None: the most recent acknowledge)."""

    intid: int | None = None


@dataclass(frozen=True, slots=True)
class Store:
    """Guest memory write (for hand-offs between vCPUs)."""

    var: str
    value: int


@dataclass(frozen=True, slots=True)
class WaitFor:
    """Spin (one load per instruction) until guest memory ``var`` == ``value``."""

    var: str
    value: int


@dataclass(frozen=True, slots=True)
class Mmio:
    """A GICD_* access to ``intid``'s field; a read compares against ``expect`` if given.

    ``value`` is what an IPRIORITYR write stores (bit registers need none).
    """

    reg: MmioReg
    intid: int
    write: bool = True
    expect: int | None = None
    value: int = 0


Op = SetGroupEnable | SetEoiMode | SetPmr | Ack | Eoir | Dir | Store | WaitFor | Mmio
Phase = Literal["issue", "wait"]


def _write_ctlr_bit(cpuif: VirtualCpuInterface, bit: int, on: bool) -> Trap | None:
    """Read-modify-write one bit of ICC_CTLR_EL1 / GICC_CTLR."""
    ctlr = cpuif.read_ctlr(trap_check=False)
    assert isinstance(ctlr, int)
    return cpuif.write_ctlr(ctlr | bit if on else ctlr & ~bit)


class GuestProgram:
    """GuestCpu for a list of ``Op``: runs them in order, records acks and failures."""

    def __init__(self, name: str, ops: list[Op]) -> None:
        self.name = name
        self.ops = ops
        self.pc = 0
        self.acked: list[int] = []
        self.eoi_stack: list[int] = []
        self.failures: list[str] = []
        self._pending: Op | None = None  # the instruction that exited, awaiting completion

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
        cpuif = env.cpuif
        out: object = None
        v2 = cpuif.config.version is GicVersion.V2
        group = 0 if v2 else 1
        if isinstance(op, SetGroupEnable):
            g = group if op.group is None else op.group
            if v2:
                out = _write_ctlr_bit(cpuif, 1 << g, op.enable)
            else:
                out = cpuif.write_igrpen(g, int(op.enable))
        elif isinstance(op, SetEoiMode):
            out = _write_ctlr_bit(cpuif, _V2_CTLR_EOIMODE if v2 else _V3_CTLR_EOIMODE,
                                  op.eoimode)
        elif isinstance(op, SetPmr):
            out = cpuif.write_pmr(op.value)
        elif isinstance(op, Ack):
            if not cpuif.virq_vfiq()[0]:
                self._pending = op
                return GuestExit(ExitReason.WFI)
            out = cpuif.read_iar(group)
            if not isinstance(out, Trap):
                self._acked(op, out)
        elif isinstance(op, Eoir):
            intid = op.intid if op.intid is not None else self._last_unfinished()
            out = cpuif.write_eoir(group, intid)
            if not isinstance(out, Trap) and intid in self.eoi_stack:
                self.eoi_stack.remove(intid)
        elif isinstance(op, Dir):
            intid = op.intid if op.intid is not None else (self.acked[-1] if self.acked else 1023)
            out = cpuif.write_dir(intid)
        elif isinstance(op, Store):
            env.memory[op.var] = op.value
        elif isinstance(op, WaitFor):
            if env.memory.get(op.var) != op.value:
                spin_yield()
                return None  # spin: the same instruction again next step
        else:
            self._pending = op
            access = MmioAccess(env.vcpu_id, op.reg, op.intid, op.write, op.value)
            return GuestExit(ExitReason.TRAP, access)
        if isinstance(out, Trap):
            self._pending = op
            return GuestExit(ExitReason.TRAP, out)
        self.pc += 1
        return None

    def complete(self, value: int | None) -> None:
        """The host finished the instruction that exited."""
        op, self._pending = self._pending, None
        if op is None:
            return
        if isinstance(op, Ack):
            if value is None:
                return  # WFI woke: retry the acknowledge (pc unchanged)
            self._acked(op, value)
        elif isinstance(op, Mmio) and not op.write and op.expect is not None:
            if value != op.expect:
                self.failures.append(
                    f"{self.name} pc{self.pc}: {op.reg} read of INTID {op.intid}: "
                    f"expected {op.expect}, got {value}"
                )
        elif isinstance(op, Eoir):
            intid = op.intid if op.intid is not None else self._last_unfinished()
            if intid in self.eoi_stack:
                self.eoi_stack.remove(intid)
        self.pc += 1

    def _acked(self, op: Ack, intid: int) -> None:
        if intid < 1020:
            self.acked.append(intid)
            self.eoi_stack.append(intid)
        if op.expect is not None and intid != op.expect:
            self.failures.append(f"{self.name} pc{self.pc}: IAR1 returned {intid}, "
                                 f"expected {op.expect}")

    def _last_unfinished(self) -> int:
        """The most recent acknowledge not yet EOIed (1023 if none)."""
        return self.eoi_stack[-1] if self.eoi_stack else 1023
