"""struct vgic_irq and the predicates on it (include/kvm/arm_vgic.h, vgic.h).

Fields are written only with the irq's ``irq_lock`` held, as in the kernel;
the lock itself is attached by the VM builder (``lock`` below), so the
lock-held helpers here stay plain functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from vgic_actors.arch.intid import LPI_MIN, PPI_MIN, SGI_MAX, SPI_MIN, is_sgi


class IrqConfig(Enum):
    """VGIC_CONFIG_EDGE (0, the zero-initialised default) or VGIC_CONFIG_LEVEL."""

    EDGE = "edge"
    LEVEL = "level"


@dataclass(eq=False, slots=True)
class VgicIrq:
    """struct vgic_irq: one interrupt's distributor state as KVM keeps it.

    ``vcpu`` is the vcpu_id whose ap_list holds the irq (irq->vcpu), None when
    on no list; ``target_vcpu`` is where it should go (IROUTER/ITARGETSR, fixed
    for private irqs). ``active`` is KVM's software copy: while the irq sits
    in an LR (``on_lr``) the truth is in that LR. ``source``/``active_source``
    serve GICv2-model SGIs. ``lock`` is the irq_lock (a runtime spinlock).
    """

    intid: int
    target_vcpu: int | None = 0
    vcpu: int | None = None
    pending_latch: bool = False
    line_level: bool = False
    config: IrqConfig = IrqConfig.EDGE
    enabled: bool = False
    active: bool = False
    hw: bool = False
    hwintid: int = 0
    on_lr: bool = False
    source: int = 0
    active_source: int = 0
    priority: int = 0
    group: int = 0
    owner: str | None = None
    needs_resampling: bool = False  # irq->ops->get_input_level (HW line resampled in SW)
    mpidr: int = 0  # GICv3 SPIs: the affinity last written to GICD_IROUTER (Aff2.Aff1.Aff0)
    targets: int = 0  # GICv2 SPIs: the GICD_ITARGETSR byte (CPU mask)
    refcount: int = 0  # LPIs: ITTEs + ap_list references (irq->refcount; 0 = freed)
    freed: bool = False  # LPIs: the last reference was put (kfree_rcu in the kernel)
    lock: Any = field(default=None, repr=False)

    @property
    def is_spi(self) -> bool:
        """32 <= intid < 1020."""
        return SPI_MIN <= self.intid < 1020

    @property
    def is_private(self) -> bool:
        """SGI or PPI: one copy per vCPU."""
        return self.intid < SPI_MIN

    @property
    def is_lpi(self) -> bool:
        """intid >= 8192."""
        return self.intid >= LPI_MIN


def irq_is_pending(irq: VgicIrq) -> bool:
    """vgic.h: irq_is_pending. Edge: the latch; level: the latch or the line."""
    if irq.config is IrqConfig.EDGE:
        return irq.pending_latch
    return irq.pending_latch or irq.line_level


def vgic_valid_spi(intid: int, nr_spis: int) -> bool:
    """arm_vgic.h: vgic_valid_spi. An SPI this VM implements."""
    return SPI_MIN <= intid < SPI_MIN + nr_spis


def is_v2_sgi(irq: VgicIrq, v2_model: bool) -> bool:
    """A GICv2-model SGI: pending per (target, source) and presented one source at a time."""
    return v2_model and is_sgi(irq.intid)


def vgic_irq_get_lr_count(irq: VgicIrq) -> int:
    """vgic.h: vgic_irq_get_lr_count. How many LRs the irq's state would need: an SGI with
    sources pending counts one per source *plus one for its active state* ("Account for the
    active state as an interrupt"); anything else one if pending or active. Only GICv2-model
    SGIs ever have ``source`` bits (read at 146a050f2d8c; unchanged since 16ca6a607d)."""
    if is_sgi(irq.intid) and irq.source:
        return irq.source.bit_count() + int(irq.active)
    return int(irq_is_pending(irq) or irq.active)


def vgic_irq_is_multi_sgi(irq: VgicIrq, v2_model: bool) -> bool:
    """vgic.h: vgic_irq_is_multi_sgi: ``vgic_irq_get_lr_count(irq) > 1``. For a GICv2-model
    SGI active from one source and pending from another this is true, so compute_lr never
    builds a Pending+Active LR whose single CPUID field would mix the two sources."""
    return is_v2_sgi(irq, v2_model) and vgic_irq_get_lr_count(irq) > 1


def default_config(intid: int) -> IrqConfig:
    """KVM's reset trigger: SGIs edge, PPIs level (vgic-init.c), SPIs and LPIs edge."""
    if intid <= SGI_MAX:
        return IrqConfig.EDGE
    if intid < SPI_MIN and intid >= PPI_MIN:
        return IrqConfig.LEVEL
    return IrqConfig.EDGE
