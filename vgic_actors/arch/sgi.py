"""SGI generation on GICv3: ICC_SGI0R_EL1 / ICC_SGI1R_EL1 / ICC_ASGI1R_EL1 (gic-arch.md 9).

These are ICC registers, not ICV ones: the virtual CPU interface has no SGI generation
register, so a guest write always traps to EL2 (HCR_EL2.IMO/FMO, set for every KVM guest)
whatever ICH_HCR_EL2 says. The hypervisor receives the written value and generates the
SGIs itself. Hence a separate trap outcome, ``SgiTrap``, rather than an ``IcvReg``.

ICC_SGI1R_EL1 layout: TargetList [15:0] (one bit per Aff0 value RS*16 .. RS*16+15),
Aff1 [23:16], INTID [27:24], Aff2 [39:32], IRM [40] (1: every PE but the sender),
RS [47:44], Aff3 [55:48].
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from vgic_actors.arch.intid import SGI_MAX
from vgic_actors.errors import ArchUsageError


class SgiRegister(Enum):
    """An SGI generation register."""

    SGI0R = "ICC_SGI0R_EL1"  # Group 0 SGIs
    SGI1R = "ICC_SGI1R_EL1"  # Group 1 SGIs (with GICD_CTLR.DS=1: either group)
    ASGI1R = "ICC_ASGI1R_EL1"  # "alternate" Group 1: Group 0 when DS=1


@dataclass(frozen=True, slots=True)
class SgiTrap:
    """A guest write to an SGI generation register, trapped to EL2 (always)."""

    register: SgiRegister
    value: int


@dataclass(frozen=True, slots=True)
class Sgi1r:
    """The fields of an ICC_SGI1R_EL1 value (also ICC_SGI0R/ASGI1R)."""

    intid: int
    target_list: int
    aff1: int = 0
    aff2: int = 0
    aff3: int = 0
    irm: bool = False
    rs: int = 0

    def encode(self) -> int:
        """The 64-bit register value."""
        if not 0 <= self.intid <= SGI_MAX:
            raise ArchUsageError(f"ICC_SGI1R_EL1.INTID: expected 0..15, got {self.intid}")
        if not 0 <= self.target_list <= 0xFFFF:
            raise ArchUsageError(f"ICC_SGI1R_EL1.TargetList: expected 16 bits, got "
                                 f"{self.target_list:#x}")
        return (self.target_list | (self.aff1 & 0xFF) << 16 | self.intid << 24
                | (self.aff2 & 0xFF) << 32 | int(self.irm) << 40 | (self.rs & 0xF) << 44
                | (self.aff3 & 0xFF) << 48)

    @classmethod
    def decode(cls, value: int) -> Sgi1r:
        """Split a register value into its fields."""
        return cls(intid=value >> 24 & 0xF, target_list=value & 0xFFFF,
                   aff1=value >> 16 & 0xFF, aff2=value >> 32 & 0xFF, aff3=value >> 48 & 0xFF,
                   irm=bool(value >> 40 & 1), rs=value >> 44 & 0xF)
