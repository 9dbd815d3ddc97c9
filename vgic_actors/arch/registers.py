"""Register layouts of the virtual CPU interface (gic-arch.md sections 1 and 8).

Registers are plain Python values with named fields; ``encode``/``decode``
functions give the architectural bit layouts (ICH_LR<n>_EL2, ICH_HCR_EL2,
ICH_VMCR_EL2 for GICv3; GICH_LR<n>, GICH_HCR, GICH_VMCR for GICv2) so that a
value can be compared with a register dump or a kernel trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum, IntEnum

from vgic_actors.arch.switches import ArchSwitches
from vgic_actors.errors import ArchUsageError


class GicVersion(Enum):
    """Which virtual interface the hypervisor programs."""

    V2 = 2
    V3 = 3


class LRState(IntEnum):
    """ICH_LR<n>_EL2.State: bit 0 is the pending bit, bit 1 the active bit."""

    INVALID = 0b00
    PENDING = 0b01
    ACTIVE = 0b10
    PENDING_ACTIVE = 0b11

    @property
    def pending(self) -> bool:
        """The pending bit is set (Pending or Pending+Active)."""
        return bool(self & 0b01)

    @property
    def active(self) -> bool:
        """The active bit is set (Active or Pending+Active)."""
        return bool(self & 0b10)


@dataclass(frozen=True, slots=True)
class ListRegister:
    """One List Register: a virtual interrupt presented to the guest.

    ``priority`` is the 8-bit priority value; bits below the implemented
    priority bits are RES0 and are cleared when the hypervisor writes the LR.
    ``eoi`` exists only when ``hw`` is False (it is bit 9 of the pINTID field).
    ``source_cpu`` is the GICv2 SGI source CPUID (GICH_LR.CPUID); always 0 on GICv3.
    """

    vintid: int = 0
    state: LRState = LRState.INVALID
    priority: int = 0
    group: int = 1
    hw: bool = False
    pintid: int = 0
    eoi: bool = False
    source_cpu: int = 0

    def with_state(self, state: LRState) -> ListRegister:
        """This LR with only the State field changed."""
        return replace(self, state=state)


EMPTY_LR = ListRegister()
"""An all-zero LR: State Invalid, which hardware ignores except for maintenance."""


@dataclass(slots=True)
class IchHcr:
    """ICH_HCR_EL2 (GICv3) / GICH_HCR (GICv2).

    GICv2 has only En, UIE, LRENPIE, NPIE, the four group MI enables and
    EOICount; the trap bits and vSGIEOICount do not exist there.
    """

    en: bool = False
    uie: bool = False
    lrenpie: bool = False
    npie: bool = False
    vgrp0eie: bool = False
    vgrp0die: bool = False
    vgrp1eie: bool = False
    vgrp1die: bool = False
    vsgieoicount: bool = False
    tc: bool = False
    tall0: bool = False
    tall1: bool = False
    tsei: bool = False
    tdir: bool = False
    dvim: bool = False
    eoicount: int = 0  # 5 bits, bits [31:27]


@dataclass(slots=True)
class IchVmcr:
    """ICH_VMCR_EL2 (GICv3) / GICH_VMCR (GICv2): the guest-visible interface state.

    ``vpmr`` is the 8-bit priority mask value (GICv2 keeps its top 5 bits).
    ``vfiqen`` is RES1 on GICv3 (Group 0 is always signalled as vFIQ); on GICv2
    it decides whether Group 0 is signalled as vFIQ or vIRQ.
    """

    veng0: bool = False
    veng1: bool = False
    vackctl: bool = False
    vfiqen: bool = False
    vcbpr: bool = False
    veoim: bool = False
    vbpr0: int = 0
    vbpr1: int = 0
    vpmr: int = 0


@dataclass(frozen=True, slots=True)
class CpuIfConfig:
    """The fixed facts of one virtual CPU interface: ICH_VTR_EL2 plus the model's switches.

    ``nr_lr``: ICH_VTR_EL2.ListRegs + 1 (1..16 on GICv3; GICv2 allows up to 64).
    ``pri_bits`` / ``pre_bits``: implemented priority and preemption bits
    (GICv3: 5 <= pre_bits <= pri_bits <= 8; GICv2: both 5).
    ``tds``: ICH_VTR_EL2.TDS, i.e. ICH_HCR_EL2.TDIR is implemented.
    ``id_bits``: 16 or 24 bits of vINTID.
    """

    version: GicVersion = GicVersion.V3
    nr_lr: int = 4
    pri_bits: int = 5
    pre_bits: int = 5
    tds: bool = True
    id_bits: int = 16
    switches: ArchSwitches = field(default_factory=ArchSwitches)

    def __post_init__(self) -> None:
        max_lr = 64 if self.version is GicVersion.V2 else 16
        if not 1 <= self.nr_lr <= max_lr:
            raise ArchUsageError(f"nr_lr: expected 1..{max_lr} List Registers, got {self.nr_lr}")
        if self.version is GicVersion.V2:
            if (self.pri_bits, self.pre_bits) != (5, 5):
                raise ArchUsageError(
                    f"GICv2: expected 5 priority and preemption bits, got "
                    f"{self.pri_bits}/{self.pre_bits}"
                )
            if self.tds:
                raise ArchUsageError("GICv2: expected tds=False (GICH_HCR has no TDIR)")
        if not 5 <= self.pri_bits <= 8:
            raise ArchUsageError(f"pri_bits: expected 5..8, got {self.pri_bits}")
        if not 5 <= self.pre_bits <= self.pri_bits:
            raise ArchUsageError(
                f"pre_bits: expected 5..pri_bits ({self.pri_bits}), got {self.pre_bits}"
            )
        if self.id_bits not in (16, 24):
            raise ArchUsageError(f"id_bits: expected 16 or 24, got {self.id_bits}")

    @property
    def nr_apr(self) -> int:
        """Active-priority registers per group: 2^(PREbits - 5), i.e. 1, 2 or 4."""
        return 1 << (self.pre_bits - 5)

    @property
    def priority_mask(self) -> int:
        """The implemented priority bits of an 8-bit priority value."""
        return (0xFF << (8 - self.pri_bits)) & 0xFF

    @property
    def min_bpr0(self) -> int:
        """Smallest ICV_BPR0 value: 7 - PREbits (QEMU icv_min_vbpr)."""
        return 7 - self.pre_bits

    @property
    def min_bpr1(self) -> int:
        """Smallest ICV_BPR1 value: one more than BPR0's."""
        return self.min_bpr0 + 1

    @property
    def max_vintid(self) -> int:
        """Largest vINTID an LR can hold."""
        if self.version is GicVersion.V2:
            return 1023
        return (1 << self.id_bits) - 1


def v2_config(nr_lr: int = 4, switches: ArchSwitches | None = None) -> CpuIfConfig:
    """A GICv2 interface: 5 priority bits, no TDIR."""
    return CpuIfConfig(
        version=GicVersion.V2, nr_lr=nr_lr, pri_bits=5, pre_bits=5, tds=False,
        switches=switches or ArchSwitches(),
    )


# --- GICv3 encodings -------------------------------------------------------------------------

_LR_STATE_SHIFT = 62
_LR_HW = 1 << 61
_LR_GROUP = 1 << 60
_LR_PRIO_SHIFT = 48
_LR_PINTID_SHIFT = 32
_LR_EOI = 1 << 41


def encode_lr_v3(lr: ListRegister) -> int:
    """ICH_LR<n>_EL2 as a 64-bit value."""
    val = (int(lr.state) << _LR_STATE_SHIFT) | (lr.priority & 0xFF) << _LR_PRIO_SHIFT
    val |= lr.vintid & 0xFFFFFFFF
    if lr.group:
        val |= _LR_GROUP
    if lr.hw:
        val |= _LR_HW | (lr.pintid & 0x1FFF) << _LR_PINTID_SHIFT
    elif lr.eoi:
        val |= _LR_EOI
    return val


def decode_lr_v3(val: int) -> ListRegister:
    """Fields of a 64-bit ICH_LR<n>_EL2 value."""
    hw = bool(val & _LR_HW)
    return ListRegister(
        vintid=val & 0xFFFFFFFF,
        state=LRState((val >> _LR_STATE_SHIFT) & 0b11),
        priority=(val >> _LR_PRIO_SHIFT) & 0xFF,
        group=1 if val & _LR_GROUP else 0,
        hw=hw,
        pintid=(val >> _LR_PINTID_SHIFT) & 0x1FFF if hw else 0,
        eoi=False if hw else bool(val & _LR_EOI),
    )


_HCR_V3_BITS = (
    ("en", 0), ("uie", 1), ("lrenpie", 2), ("npie", 3), ("vgrp0eie", 4), ("vgrp0die", 5),
    ("vgrp1eie", 6), ("vgrp1die", 7), ("vsgieoicount", 8), ("tc", 10), ("tall0", 11),
    ("tall1", 12), ("tsei", 13), ("tdir", 14), ("dvim", 15),
)
_HCR_V2_BITS = _HCR_V3_BITS[:8]
_EOICOUNT_SHIFT = 27


def encode_hcr(hcr: IchHcr, version: GicVersion = GicVersion.V3) -> int:
    """ICH_HCR_EL2 (or GICH_HCR for GICv2) as a 32-bit value."""
    bits = _HCR_V3_BITS if version is GicVersion.V3 else _HCR_V2_BITS
    val = (hcr.eoicount & 0x1F) << _EOICOUNT_SHIFT
    for name, bit in bits:
        if getattr(hcr, name):
            val |= 1 << bit
    return val


def decode_hcr(val: int, version: GicVersion = GicVersion.V3) -> IchHcr:
    """Fields of an ICH_HCR_EL2 / GICH_HCR value; bits the version lacks read as 0."""
    bits = _HCR_V3_BITS if version is GicVersion.V3 else _HCR_V2_BITS
    hcr = IchHcr(eoicount=(val >> _EOICOUNT_SHIFT) & 0x1F)
    for name, bit in bits:
        setattr(hcr, name, bool(val >> bit & 1))
    return hcr


def encode_vmcr(vmcr: IchVmcr, version: GicVersion = GicVersion.V3) -> int:
    """ICH_VMCR_EL2 (or GICH_VMCR) as a 32-bit value."""
    val = int(vmcr.veng0) | int(vmcr.veng1) << 1 | int(vmcr.vackctl) << 2
    val |= int(vmcr.vfiqen) << 3 | int(vmcr.vcbpr) << 4 | int(vmcr.veoim) << 9
    val |= (vmcr.vbpr1 & 7) << 18 | (vmcr.vbpr0 & 7) << 21
    if version is GicVersion.V3:
        val |= (vmcr.vpmr & 0xFF) << 24
    else:
        val |= ((vmcr.vpmr >> 3) & 0x1F) << 27  # VMPriMask [31:27]
    return val


def decode_vmcr(val: int, version: GicVersion = GicVersion.V3) -> IchVmcr:
    """Fields of an ICH_VMCR_EL2 / GICH_VMCR value."""
    vpmr = (val >> 24) & 0xFF if version is GicVersion.V3 else ((val >> 27) & 0x1F) << 3
    return IchVmcr(
        veng0=bool(val & 1), veng1=bool(val >> 1 & 1), vackctl=bool(val >> 2 & 1),
        vfiqen=bool(val >> 3 & 1), vcbpr=bool(val >> 4 & 1), veoim=bool(val >> 9 & 1),
        vbpr1=(val >> 18) & 7, vbpr0=(val >> 21) & 7, vpmr=vpmr,
    )


# --- GICv2 List Register encoding (include/linux/irqchip/arm-gic.h) --------------------------

_V2_LR_HW = 1 << 31
_V2_LR_GROUP1 = 1 << 30
_V2_LR_STATE_SHIFT = 28
_V2_LR_PRIO_SHIFT = 23
_V2_LR_PHYS_SHIFT = 10
_V2_LR_EOI = 1 << 19
_V2_LR_CPUID_SHIFT = 10


def encode_lr_v2(lr: ListRegister) -> int:
    """GICH_LR<n> as a 32-bit value (5-bit priority, 10-bit IDs, SGI source CPUID)."""
    val = (lr.vintid & 0x3FF) | int(lr.state) << _V2_LR_STATE_SHIFT
    val |= ((lr.priority >> 3) & 0x1F) << _V2_LR_PRIO_SHIFT
    if lr.group:
        val |= _V2_LR_GROUP1
    if lr.hw:
        val |= _V2_LR_HW | (lr.pintid & 0x3FF) << _V2_LR_PHYS_SHIFT
    else:
        val |= (lr.source_cpu & 7) << _V2_LR_CPUID_SHIFT
        if lr.eoi:
            val |= _V2_LR_EOI
    return val


def decode_lr_v2(val: int) -> ListRegister:
    """Fields of a 32-bit GICH_LR<n> value."""
    hw = bool(val & _V2_LR_HW)
    return ListRegister(
        vintid=val & 0x3FF,
        state=LRState((val >> _V2_LR_STATE_SHIFT) & 0b11),
        priority=((val >> _V2_LR_PRIO_SHIFT) & 0x1F) << 3,
        group=1 if val & _V2_LR_GROUP1 else 0,
        hw=hw,
        pintid=(val >> _V2_LR_PHYS_SHIFT) & 0x3FF if hw else 0,
        eoi=False if hw else bool(val & _V2_LR_EOI),
        source_cpu=0 if hw else (val >> _V2_LR_CPUID_SHIFT) & 7,
    )
