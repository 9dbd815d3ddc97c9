"""The GICv3 / GICv2 virtual CPU interface as the Arm architecture defines it.

Pure and synchronous: no Trio, no logging, no I/O. Everything above (the
kernel model, the checks) reads and drives the hardware through these names.
See gic-arch.md sections 1-8 for the rules and section 11 (ArchSwitches) for
the places where sources disagree.
"""

from vgic_actors.arch.cpuif import PhysicalDeactivate, VirtualCpuInterface
from vgic_actors.arch.derived import Misr
from vgic_actors.arch.intid import SPURIOUS, IntidClass, classify, is_lpi, is_sgi, is_special
from vgic_actors.arch.priority import IDLE_PRIORITY, gprio_mask, running_priority
from vgic_actors.arch.registers import (
    EMPTY_LR,
    CpuIfConfig,
    GicVersion,
    IchHcr,
    IchVmcr,
    ListRegister,
    LRState,
    decode_hcr,
    decode_lr_v2,
    decode_lr_v3,
    decode_vmcr,
    encode_hcr,
    encode_lr_v2,
    encode_lr_v3,
    encode_vmcr,
    v2_config,
)
from vgic_actors.arch.state import CpuIfState
from vgic_actors.arch.switches import PRESETS, ArchSwitches
from vgic_actors.arch.traps import IcvReg, Trap, TrapCause, trap_cause

__all__ = [
    "EMPTY_LR",
    "IDLE_PRIORITY",
    "PRESETS",
    "SPURIOUS",
    "ArchSwitches",
    "CpuIfConfig",
    "CpuIfState",
    "GicVersion",
    "IchHcr",
    "IchVmcr",
    "IcvReg",
    "IntidClass",
    "LRState",
    "ListRegister",
    "Misr",
    "PhysicalDeactivate",
    "Trap",
    "TrapCause",
    "VirtualCpuInterface",
    "classify",
    "decode_hcr",
    "decode_lr_v2",
    "decode_lr_v3",
    "decode_vmcr",
    "encode_hcr",
    "encode_lr_v2",
    "encode_lr_v3",
    "encode_vmcr",
    "gprio_mask",
    "is_lpi",
    "is_sgi",
    "is_special",
    "running_priority",
    "trap_cause",
    "v2_config",
]
