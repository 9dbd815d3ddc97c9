"""Between vgic_irq and List Register: compute, populate, fold (vgic-v3.c, vgic-v2.c).

The GICv3 and GICv2 functions make the same decisions on different
encodings; the model's ListRegister is encoding-neutral, so one function per
step serves both, with ``v2_model`` (a GICv2 guest model) selecting the
GICv2-only SGI source handling, and ``host_v2`` (a GICv2 host) the vgic-v2.c fold
where the two differ. Everything here runs with the irq_lock held.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from vgic_actors.arch.intid import is_sgi
from vgic_actors.arch.registers import ListRegister, LRState
from vgic_actors.kvm.irq import IrqConfig, VgicIrq, irq_is_pending, is_v2_sgi, vgic_irq_is_multi_sgi
from vgic_actors.kvm.phys_gic import phys_intid
from vgic_actors.kvm.variants import KernelSwitches


class PhysicalIrqChip(Protocol):
    """The host GIC as seen for HW-mapped interrupts (irq_get/set_irqchip_state)."""

    def line_level(self, hwintid: int) -> bool:
        """vgic_get_phys_line_level: is the physical line still asserted?"""
        ...

    def set_active(self, hwintid: int, active: bool) -> None:
        """vgic_irq_set_phys_active: set or clear the physical active state."""
        ...


def compute_lr(irq: VgicIrq, v2_model: bool) -> ListRegister:
    """The LR value for ``irq``. vgic-v3.c: vgic_v3_compute_lr (vgic-v2.c: vgic_v2_compute_lr).

    Active -> Active bit (GICv2-model SGI: active_source as CPUID; more sources
    pending: no pending bit, EOI bit). HW without SW resampling -> HW bit and
    pINTID, never P+A. Level SW -> EOI bit, never P+A. Then Pending if still
    allowed (GICv2-model SGI: the lowest source, EOI bit if more remain).
    """
    allow_pending = True
    active = irq.active
    eoi = False
    cpuid = 0
    v2_sgi = is_v2_sgi(irq, v2_model)
    if active:
        if v2_sgi:
            cpuid = irq.active_source
        if vgic_irq_is_multi_sgi(irq, v2_model):
            allow_pending = False
            eoi = True
    hw = irq.hw and not irq.needs_resampling
    if hw:
        if active:
            allow_pending = False
    elif irq.config is IrqConfig.LEVEL:
        eoi = True
        if active:
            allow_pending = False
    pending = allow_pending and irq_is_pending(irq)
    if pending and v2_sgi and irq.source:
        cpuid = (irq.source & -irq.source).bit_length() - 1
        if irq.source & ~(1 << cpuid):
            eoi = True
    state = LRState(int(pending) | int(active) << 1)
    return ListRegister(
        vintid=irq.intid, state=state, priority=irq.priority, group=irq.group, hw=hw,
        pintid=phys_intid(irq.hwintid) if hw else 0, eoi=eoi and not hw,
        source_cpu=cpuid if v2_sgi else 0,
    )


def populate_lr(irq: VgicIrq, lr: ListRegister, v2_model: bool) -> None:
    """Side effects of writing ``lr`` for ``irq``. vgic-v3.c: vgic_v3_populate_lr.

    A pending LR consumes the edge latch (a GICv2-model SGI consumes one
    source and re-latches if others remain); a pending HW level LR clears
    line_level. Sets on_lr: the irq's state now lives in hardware.
    """
    if lr.state.pending:
        if irq.config is IrqConfig.EDGE:
            irq.pending_latch = False
        if is_v2_sgi(irq, v2_model):
            irq.source &= ~(1 << lr.source_cpu)
            if irq.source:
                irq.pending_latch = True
        if lr.hw and irq.config is IrqConfig.LEVEL:
            irq.line_level = False
    irq.on_lr = True


def lr_signals_eoi_mi(lr: ListRegister) -> bool:
    """vgic-v3.c: lr_signals_eoi_mi. Invalid, EOI set, HW clear: a level SW irq was deactivated."""
    return lr.state is LRState.INVALID and lr.eoi and not lr.hw


@dataclass(frozen=True, slots=True)
class FoldResult:
    """What the lock-held part of fold_lr tells the part that runs after unlocking."""

    deactivated: bool
    notify_and_dec: bool
    notify_only: bool = False  # fix F3: an EOI KVM did not see as a deactivation


def fold_lr_locked(
    irq: VgicIrq,
    lr: ListRegister,
    sw: KernelSwitches,
    v2_model: bool,
    nr_spis: int,
    phys: PhysicalIrqChip | None = None,
    *,
    host_v2: bool = False,
) -> FoldResult:
    """Fold one LR value (real or pseudo) back into ``irq``; irq_lock held.

    vgic-v3.c: vgic_v3_fold_lr (vgic-v2.c: vgic_v2_fold_lr). ``deactivated``
    compares KVM's *old* copy of the active state with the LR. The caller, after
    dropping the lock, calls kvm_notify_acked_irq and atomic_dec_if_positive
    (active_spis) when ``notify_and_dec`` is set: a deactivated level SW SPI
    whose LR carried the EOI bit (pre-series / GICv2 fold: EOI condition alone).

    The host GIC picks the fold, not the guest model (vgic.c: vgic_fold_lr_state on
    kvm_vgic_global_state.type, commit 1c3b3cadcd69): a GICv2 guest on a GICv3 host
    goes through vgic_v3_fold_lr and its ``deactivated &&`` notify condition;
    only a GICv2 host (``host_v2``) notifies on the EOI condition alone.
    """
    state = lr.state
    if irq.is_lpi and sw.lpi_active_drop:
        state = LRState(state & ~LRState.ACTIVE)
    lr_active = state.active
    deactivated = irq.active and not lr_active
    irq.active = lr_active
    if irq.config is IrqConfig.EDGE and state.pending:
        irq.pending_latch = True
    if irq.config is IrqConfig.LEVEL and state is LRState.INVALID:
        irq.pending_latch = False
    if is_v2_sgi(irq, v2_model):
        if lr_active:
            irq.active_source = lr.source_cpu
        if state.pending:
            irq.source |= 1 << lr.source_cpu
    if irq.hw and irq.config is IrqConfig.LEVEL and phys is not None:
        _handle_resampling(irq, deactivated, state.pending, phys)
    irq.on_lr = False
    eoi_mi = lr_signals_eoi_mi(lr) and 32 <= irq.intid < 32 + nr_spis
    if sw.mutant_dec_on_every_fold:  # every fold of an SPI that is or was active
        notify = irq.is_spi and (deactivated or lr_active)
    elif sw.notify_requires_deactivated and not host_v2:
        notify = deactivated and eoi_mi
    else:
        notify = eoi_mi
    # Fix F3 (fix_notify_on_eoi): the resampler hears every EOI of a level SPI, also one
    # acknowledged and EOIed within one guest run (KVM's copy never active).
    notify_only = (sw.fix_notify_on_eoi and eoi_mi and not notify
                   and not sw.mutant_dec_on_every_fold)
    return FoldResult(deactivated, notify, notify_only)


def _handle_resampling(
    irq: VgicIrq, deactivated: bool, lr_pending: bool, phys: PhysicalIrqChip
) -> None:
    """vgic.h: vgic_irq_handle_resampling for a mapped level interrupt.

    With SW resampling, clear the physical active state once the guest is
    done; otherwise re-sample the physical line when the LR was still pending
    or was deactivated with the line high, and clear physical active if it dropped.
    """
    if irq.needs_resampling:
        resample = not (irq.active or irq.pending_latch)
    elif lr_pending or (deactivated and irq.line_level):
        irq.line_level = phys.line_level(irq.hwintid)
        resample = not irq.line_level
    else:
        resample = False
    if resample:
        phys.set_active(irq.hwintid, False)


def pseudo_lr(irq: VgicIrq, v2_model: bool) -> ListRegister:
    """The LR KVM builds to deactivate an irq outside the LRs: compute_lr with ACTIVE cleared.

    vgic-v3.c: the EOIcount walk in vgic_v3_fold_lr_state and vgic_v3_deactivate.
    """
    lr = compute_lr(irq, v2_model)
    return lr.with_state(LRState(lr.state & ~LRState.ACTIVE))


def sgi_source_matches(irq: VgicIrq, cpuid: int, v2_model: bool) -> bool:
    """vgic_v3_deactivate's GICv2-model SGI check: the DIR names the active source."""
    return not (v2_model and is_sgi(irq.intid)) or irq.active_source == cpuid
