"""Guest accesses to the GICv3 CPU-interface system registers by their ICC_* names.

The selftests' library (tools/testing/selftests/kvm/lib/arm64/gic_v3.c) reads and writes
ICC_PMR_EL1, ICC_BPR<n>_EL1, ICC_CTLR_EL1, ICC_IGRPEN<n>_EL1 and ICC_AP<n>R<m>_EL1
directly; at EL1 in a guest those are the ICV_* registers (gic-arch.md 4), which may
trap to KVM. `IccRead` compares what it reads with ``expect`` (under ``mask``);
`IccWrite` stores a whole register value. IAR, EOIR and DIR keep their own operations
(acknowledge bookkeeping), which scenario/ops.py picks for those names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vgic_actors.arch.cpuif import VirtualCpuInterface
from vgic_actors.arch.traps import Trap
from vgic_actors.guest.cpuif_ops import _Read
from vgic_actors.guest.program import RETRY, GuestOp, GuestProgram, StepResult, trapped
from vgic_actors.kvm.guest_api import GuestEnv

READABLE = ("ICC_PMR_EL1", "ICC_BPR0_EL1", "ICC_BPR1_EL1", "ICC_CTLR_EL1", "ICC_IGRPEN0_EL1",
            "ICC_IGRPEN1_EL1", "ICC_RPR_EL1", "ICC_HPPIR0_EL1", "ICC_HPPIR1_EL1",
            *(f"ICC_AP{g}R{n}_EL1" for g in (0, 1) for n in range(4)))
WRITABLE = ("ICC_PMR_EL1", "ICC_BPR0_EL1", "ICC_BPR1_EL1", "ICC_CTLR_EL1", "ICC_IGRPEN0_EL1",
            "ICC_IGRPEN1_EL1", *(f"ICC_AP{g}R{n}_EL1" for g in (0, 1) for n in range(4)))
_APR = re.compile(r"ICC_AP([01])R([0-3])_EL1")
_GROUPED = re.compile(r"ICC_(BPR|IGRPEN|HPPIR)([01])_EL1")


def apr_index(reg: str) -> tuple[int, int] | None:
    """(group, n) of an ICC_AP<group>R<n>_EL1 name, else None."""
    m = _APR.fullmatch(reg)
    return (int(m[1]), int(m[2])) if m else None


def _read(cpuif: VirtualCpuInterface, reg: str) -> int | Trap:
    apr = apr_index(reg)
    if apr is not None:
        return cpuif.read_apr(*apr)
    m = _GROUPED.fullmatch(reg)
    if m:
        group = int(m[2])
        return {"BPR": cpuif.read_bpr, "IGRPEN": cpuif.read_igrpen,
                "HPPIR": cpuif.read_hppir}[m[1]](group)
    return {"ICC_PMR_EL1": cpuif.read_pmr, "ICC_CTLR_EL1": cpuif.read_ctlr,
            "ICC_RPR_EL1": cpuif.read_rpr}[reg]()


def _write(cpuif: VirtualCpuInterface, reg: str, value: int) -> Trap | None:
    apr = apr_index(reg)
    if apr is not None:
        return cpuif.write_apr(*apr, value)
    m = _GROUPED.fullmatch(reg)
    if m:
        group = int(m[2])
        return (cpuif.write_bpr if m[1] == "BPR" else cpuif.write_igrpen)(group, value)
    return {"ICC_PMR_EL1": cpuif.write_pmr, "ICC_CTLR_EL1": cpuif.write_ctlr}[reg](value)


@dataclass(frozen=True, slots=True)
class IccRead(_Read):
    """MRS of ``reg`` (an ICV register at EL1), compared with ``expect`` under ``mask``."""

    reg: str
    expect: int | None = None
    mask: int = 0xFFFF_FFFF

    def what(self) -> str:
        return self.reg

    def read(self, prog: GuestProgram, env: GuestEnv) -> int | Trap:
        return _read(env.cpuif, self.reg)

    def check(self, prog: GuestProgram, value: int) -> None:
        if self.expect is not None and value & self.mask != self.expect:
            prog.fail(f"{self.reg} read {value:#x} (mask {self.mask:#x}), "
                      f"expected {self.expect:#x}")


@dataclass(frozen=True, slots=True)
class IccWrite(GuestOp):
    """MSR ``reg``, ``value`` (an ICV register at EL1; may trap to KVM)."""

    reg: str
    value: int

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        return trapped(_write(env.cpuif, self.reg, self.value))


@dataclass(frozen=True, slots=True)
class IarSpin(GuestOp):
    """``do { intid = read ICC_IAR<group>_EL1; } while (intid == IAR_SPURIOUS);`` one read
    per guest instruction, no WFI and no exit (guest_code_group_en's last loop); after
    ``max_reads`` spurious reads a failure, then on. ``expect``: the INTID it must get."""

    group: int = 1
    expect: int | None = None
    max_reads: int = 1000

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        out = env.cpuif.read_iar(self.group)
        if isinstance(out, Trap):
            return trapped(out)
        return self._got(prog, out)

    def complete(self, prog: GuestProgram, value: int | None) -> bool:
        return self._got(prog, 1023 if value is None else value) is None

    def _got(self, prog: GuestProgram, intid: int) -> StepResult:
        key = (id(prog.ops), prog.pc)
        if intid == 1023:
            reads = prog.polls.get(key, 0) + 1
            if reads < self.max_reads:
                prog.polls[key] = reads
                return RETRY
            prog.fail(f"ICC_IAR{self.group}_EL1 read 1023 {reads} times")
        prog.polls.pop(key, None)
        if intid != 1023:
            prog.acked_intid(prog.env, intid, self.expect)
        return None
