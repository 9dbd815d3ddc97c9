"""Priority arithmetic: group-priority masks, APR slots, running priority (gic-arch.md s.2).

Same arithmetic as QEMU's icv_gprio_mask / icv_activate_irq /
ich_highest_active_virt_prio and KVM's __vgic_v3_pri_to_pre /
__vgic_v3_get_highest_active_priority.
"""

from __future__ import annotations

from vgic_actors.arch.registers import CpuIfConfig, IchVmcr

IDLE_PRIORITY = 0xFF
"""ICV_RPR when no priority is active."""


def gprio_mask(vmcr: IchVmcr, group: int) -> int:
    """Mask selecting the group-priority bits of a priority value (QEMU icv_gprio_mask).

    With VCBPR set, Group 1 uses Group 0's binary point and rules.
    """
    if group == 1 and not vmcr.vcbpr:
        return (0xFF << vmcr.vbpr1) & 0xFF
    return (0xFF << (vmcr.vbpr0 + 1)) & 0xFF


def apr_bit_index(config: CpuIfConfig, vmcr: IchVmcr, priority: int, group: int) -> int:
    """Index of the active-priority bit (across the APR words) for an interrupt's group priority."""
    return (priority & gprio_mask(vmcr, group)) >> (8 - config.pre_bits)


def running_priority(config: CpuIfConfig, ap0r: list[int], ap1r: list[int]) -> int:
    """ICV_RPR: the priority of the lowest set APR bit in either group, or 0xff when idle."""
    shift = 8 - config.pre_bits
    for i, (a0, a1) in enumerate(zip(ap0r, ap1r, strict=True)):
        bits = a0 | a1
        if bits:
            return ((i * 32 + lowest_set_bit(bits)) << shift) & 0xFF
    return IDLE_PRIORITY


def lowest_set_bit(value: int) -> int:
    """Index of the least significant 1 bit of a non-zero value."""
    return (value & -value).bit_length() - 1
