"""Trap checks on guest accesses to the virtual interface (gic-arch.md section 4.1).

GICv3: ICH_HCR_EL2.TALL0 traps the Group-0 registers, TALL1 the Group-1
registers, TC the common ones (CTLR, DIR, PMR, RPR); DIR is checked against
TDIR (when ICH_VTR_EL2.TDS says it exists) before TC. A trapped access has no
architectural effect: the hypervisor sees an EC 0x18 trap and emulates it.
GICv2: GICH_HCR has no trap bits; the only trap is the hypervisor's choice to
leave the GICV_DIR page unmapped (a stage-2 fault, handled as MMIO).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from vgic_actors.arch.registers import CpuIfConfig, GicVersion
from vgic_actors.arch.state import CpuIfState


class IcvReg(Enum):
    """A guest-accessible virtual interface register (ICV_*_EL1, or GICV_* on GICv2)."""

    IAR0 = "ICV_IAR0_EL1"
    IAR1 = "ICV_IAR1_EL1"
    EOIR0 = "ICV_EOIR0_EL1"
    EOIR1 = "ICV_EOIR1_EL1"
    HPPIR0 = "ICV_HPPIR0_EL1"
    HPPIR1 = "ICV_HPPIR1_EL1"
    BPR0 = "ICV_BPR0_EL1"
    BPR1 = "ICV_BPR1_EL1"
    AP0R = "ICV_AP0Rn_EL1"
    AP1R = "ICV_AP1Rn_EL1"
    IGRPEN0 = "ICV_IGRPEN0_EL1"
    IGRPEN1 = "ICV_IGRPEN1_EL1"
    CTLR = "ICV_CTLR_EL1"
    DIR = "ICV_DIR_EL1"
    PMR = "ICV_PMR_EL1"
    RPR = "ICV_RPR_EL1"


class TrapCause(Enum):
    """Which control made the access trap."""

    TALL0 = "ICH_HCR_EL2.TALL0"
    TALL1 = "ICH_HCR_EL2.TALL1"
    TDIR = "ICH_HCR_EL2.TDIR"
    TC = "ICH_HCR_EL2.TC"
    V2_DIR_PAGE = "GICV_DIR page unmapped in stage 2"


G0_REGS = frozenset({IcvReg.IAR0, IcvReg.EOIR0, IcvReg.HPPIR0, IcvReg.BPR0, IcvReg.AP0R,
                     IcvReg.IGRPEN0})
G1_REGS = frozenset({IcvReg.IAR1, IcvReg.EOIR1, IcvReg.HPPIR1, IcvReg.BPR1, IcvReg.AP1R,
                     IcvReg.IGRPEN1})
COMMON_REGS = frozenset({IcvReg.CTLR, IcvReg.DIR, IcvReg.PMR, IcvReg.RPR})


@dataclass(frozen=True, slots=True)
class Trap:
    """The outcome of an access that trapped to the hypervisor instead of acting.

    ``value`` is what the guest wrote (None for a read); ``index`` the n of
    ICV_AP0Rn/AP1Rn.
    """

    register: IcvReg
    write: bool
    cause: TrapCause
    value: int | None = None
    index: int = 0


def trap_cause(config: CpuIfConfig, st: CpuIfState, reg: IcvReg) -> TrapCause | None:
    """The control that traps an access to ``reg`` now, or None if it runs in hardware."""
    if config.version is GicVersion.V2:
        if reg is IcvReg.DIR and st.v2_dir_page_trapped:
            return TrapCause.V2_DIR_PAGE
        return None
    hcr = st.hcr
    if reg in G0_REGS:
        return TrapCause.TALL0 if hcr.tall0 else None
    if reg in G1_REGS:
        return TrapCause.TALL1 if hcr.tall1 else None
    if reg is IcvReg.DIR and hcr.tdir and config.tds:
        return TrapCause.TDIR
    return TrapCause.TC if hcr.tc else None
