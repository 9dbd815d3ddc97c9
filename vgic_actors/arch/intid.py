"""INTID ranges and classes (gic-arch.md section 9).

SGI 0-15 and PPI 16-31 are private to a PE; SPI 32-1019 have one shared state;
1020-1023 are special (1023 = spurious, "no interrupt"); LPI from 8192 are
message based, edge and have no physical active state.
"""

from __future__ import annotations

from enum import Enum

SGI_MIN, SGI_MAX = 0, 15
PPI_MIN, PPI_MAX = 16, 31
SPI_MIN, SPI_MAX = 32, 1019
SPECIAL_MIN, SPECIAL_MAX = 1020, 1023
LPI_MIN = 8192
SPURIOUS = 1023


class IntidClass(Enum):
    """The class of an INTID, as the architecture divides the ID space."""

    SGI = "sgi"
    PPI = "ppi"
    SPI = "spi"
    SPECIAL = "special"
    RESERVED = "reserved"  # 1024..8191: not an interrupt on GICv3
    LPI = "lpi"


def classify(intid: int) -> IntidClass:
    """Return the class of ``intid`` (GICv3 INTID map)."""
    if intid < 0:
        raise ValueError(f"INTID must be >= 0, got {intid}")
    if intid <= SGI_MAX:
        return IntidClass.SGI
    if intid <= PPI_MAX:
        return IntidClass.PPI
    if intid <= SPI_MAX:
        return IntidClass.SPI
    if intid <= SPECIAL_MAX:
        return IntidClass.SPECIAL
    if intid < LPI_MIN:
        return IntidClass.RESERVED
    return IntidClass.LPI


def is_special(intid: int) -> bool:
    """1020..1023: never a real interrupt (VirtualIdentifierValid is false)."""
    return SPECIAL_MIN <= intid <= SPECIAL_MAX


def is_lpi(intid: int) -> bool:
    """LPIs start at 8192."""
    return intid >= LPI_MIN


def is_sgi(intid: int) -> bool:
    """SGIs are 0..15."""
    return 0 <= intid <= SGI_MAX
