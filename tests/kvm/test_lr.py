"""kernel-vgic.md 4.4 and 6.2: compute_lr, populate_lr, fold_lr (lock-held part)."""

from vgic_actors.arch import LRState
from vgic_actors.kvm.irq import IrqConfig, VgicIrq
from vgic_actors.kvm.lr import compute_lr, fold_lr_locked, lr_signals_eoi_mi, populate_lr, pseudo_lr
from vgic_actors.kvm.variants import VARIANTS, KernelSwitches

MERGED = KernelSwitches()
P, A, PA, I = LRState.PENDING, LRState.ACTIVE, LRState.PENDING_ACTIVE, LRState.INVALID


def irq(intid=32, **kw):
    kw.setdefault("enabled", True)
    kw.setdefault("group", 1)
    kw.setdefault("priority", 0xA0)
    return VgicIrq(intid=intid, **kw)


class FakePhys:
    def __init__(self, level):
        self.level, self.cleared = level, []

    def line_level(self, hwintid):
        assert hwintid == 27
        return self.level

    def set_active(self, hwintid, active):
        self.cleared.append((hwintid, active))


def test_compute_edge_pending():
    """Edge pending SPI: Pending, no EOI bit."""
    lr = compute_lr(irq(pending_latch=True), False)
    assert (lr.vintid, lr.state, lr.eoi, lr.priority, lr.group) == (32, P, False, 0xA0, 1)


def test_compute_edge_pending_active():
    """Edge SW irq active and pending again: Pending+Active is allowed."""
    assert compute_lr(irq(pending_latch=True, active=True), False).state is PA


def test_compute_level_sets_eoi_and_never_pa():
    """Level SW irq: EOI bit, and active suppresses pending (resampling via the EOI MI)."""
    lr = compute_lr(irq(config=IrqConfig.LEVEL, line_level=True, active=True), False)
    assert lr.eoi and lr.state is A


def test_compute_hw_never_pa_and_no_eoi():
    """HW irq: HW bit with pINTID, no EOI bit, never Pending+Active."""
    lr = compute_lr(irq(27, hw=True, hwintid=27, config=IrqConfig.LEVEL, line_level=True,
                        active=True), False)
    assert lr.hw and lr.pintid == 27 and not lr.eoi and lr.state is A


def test_compute_hw_with_sw_resampling_is_a_sw_lr():
    """A mapped irq that needs SW resampling is presented as a SW (level) LR."""
    lr = compute_lr(irq(27, hw=True, hwintid=27, needs_resampling=True, config=IrqConfig.LEVEL,
                        line_level=True), False)
    assert not lr.hw and lr.eoi and lr.state is P


def test_compute_v2_sgi_lowest_source_and_eoi_for_more():
    """GICv2-model SGI: the lowest source CPUID; EOI bit while other sources remain."""
    lr = compute_lr(irq(1, pending_latch=True, source=0b0110), True)
    assert lr.source_cpu == 1 and lr.eoi and lr.state is P
    lr = compute_lr(irq(1, pending_latch=True, source=0b0100), True)
    assert lr.source_cpu == 2 and not lr.eoi


def test_compute_v2_sgi_active_with_more_sources():
    """GICv2-model SGI active with several sources: active_source, no pending, EOI bit."""
    lr = compute_lr(irq(1, active=True, active_source=3, pending_latch=True, source=0b0011), True)
    assert lr.state is A and lr.source_cpu == 3 and lr.eoi


def test_compute_v2_sgi_active_from_one_source_pending_from_another_is_not_pa():
    """vgic_irq_get_lr_count counts the active state: active from CPU 0 and pending from
    CPU 1 is a multi-SGI, so the LR is Active (CPUID 0) with the EOI bit, never a
    Pending+Active LR whose one CPUID field would name neither source (the guest's EOIR
    of SGI 3 from CPU 0 would then match no LR)."""
    lr = compute_lr(irq(3, active=True, active_source=0, pending_latch=True, source=0b0010),
                    True)
    assert (lr.state, lr.source_cpu, lr.eoi) == (A, 0, True)


def test_populate_consumes_edge_latch_and_sets_on_lr():
    """Writing a pending LR clears the edge latch; on_lr is set."""
    i = irq(pending_latch=True)
    populate_lr(i, compute_lr(i, False), False)
    assert not i.pending_latch and i.on_lr


def test_populate_v2_sgi_consumes_one_source():
    """GICv2-model SGI: one source consumed; the latch stays while sources remain."""
    i = irq(1, pending_latch=True, source=0b0110)
    populate_lr(i, compute_lr(i, True), True)
    assert i.source == 0b0100 and i.pending_latch


def test_fold_deactivation_of_level_spi_notifies_and_decrements():
    """A level SW SPI that KVM thought active comes back Invalid with EOI: notify + dec."""
    i = irq(config=IrqConfig.LEVEL, active=True, on_lr=True)
    lr = compute_lr(i, False).with_state(I)
    res = fold_lr_locked(i, lr, MERGED, False, nr_spis=32)
    assert res.deactivated and res.notify_and_dec and not i.active and not i.on_lr


def test_fold_ack_and_deactivate_in_one_run_does_not_count():
    """Acked and deactivated during one guest run (KVM's copy not active): no notify, no dec."""
    i = irq(config=IrqConfig.LEVEL, line_level=True, on_lr=True)
    lr = compute_lr(i, False).with_state(I)
    res = fold_lr_locked(i, lr, MERGED, False, nr_spis=32)
    assert not res.deactivated and not res.notify_and_dec


def test_fold_of_a_gicv2_guest_follows_the_host_gic():
    """The host GIC picks the fold (vgic_fold_lr_state): a GICv2 guest on a GICv3 host folds
    with vgic_v3_fold_lr (no notify for an ack + EOI in one run); on a GICv2 host,
    vgic_v2_fold_lr notifies on the EOI condition alone."""
    def fold(host_v2):
        i = irq(config=IrqConfig.LEVEL, line_level=True, on_lr=True)
        lr = compute_lr(i, True).with_state(I)
        return fold_lr_locked(i, lr, MERGED, True, 32, host_v2=host_v2).notify_and_dec
    assert not fold(host_v2=False)
    assert fold(host_v2=True)


def test_fold_pre_series_notifies_on_eoi_condition_alone():
    """Pre-series fold: the EOI-MI condition alone notifies."""
    i = irq(config=IrqConfig.LEVEL, line_level=True, on_lr=True)
    lr = compute_lr(i, False).with_state(I)
    assert fold_lr_locked(i, lr, VARIANTS["pre-series"].switches, False, 32).notify_and_dec


def test_fold_edge_spi_never_decrements():
    """Edge SPIs never carry the EOI bit, so their deactivation never decrements active_spis."""
    i = irq(active=True, on_lr=True)
    res = fold_lr_locked(i, compute_lr(i, False).with_state(I), MERGED, False, 32)
    assert res.deactivated and not res.notify_and_dec


def test_fold_mutant_decrements_on_every_fold():
    """Mutant dec-on-every-fold: an edge SPI deactivation decrements too."""
    i = irq(active=True, on_lr=True)
    sw = VARIANTS["mutant-dec-on-every-fold"].switches
    assert fold_lr_locked(i, compute_lr(i, False).with_state(I), sw, False, 32).notify_and_dec


def test_fold_edge_pending_relatches():
    """An edge LR still Pending at exit re-sets pending_latch."""
    i = irq(on_lr=True)
    fold_lr_locked(i, compute_lr(irq(pending_latch=True), False), MERGED, False, 32)
    assert i.pending_latch


def test_fold_level_invalid_clears_latch():
    """A level LR coming back Invalid clears pending_latch (ISPENDR-set state consumed)."""
    i = irq(config=IrqConfig.LEVEL, pending_latch=True, on_lr=True)
    fold_lr_locked(i, compute_lr(i, False).with_state(I), MERGED, False, 32)
    assert not i.pending_latch


def test_fold_drops_vlpi_active_state():
    """Fold drops a vLPI's active state (merged) but not before the series."""
    i = irq(8192, on_lr=True)
    lr = compute_lr(i, False).with_state(A)
    fold_lr_locked(i, lr, MERGED, False, 32)
    assert not i.active
    i = irq(8192, on_lr=True)
    fold_lr_locked(i, lr, VARIANTS["pre-series"].switches, False, 32)
    assert i.active


def test_fold_v2_sgi_records_sources():
    """GICv2-model SGI: an active LR records active_source; a pending one re-adds its source."""
    i = irq(1, on_lr=True)
    lr = compute_lr(irq(1, pending_latch=True, source=0b1000), True)
    fold_lr_locked(i, lr.with_state(PA), MERGED, True, 32)
    assert i.active and i.active_source == 3 and i.source == 0b1000


def test_fold_hw_level_resamples_physical_line():
    """Mapped level irq folded still pending: re-sample the line; clear physical active if low."""
    phys = FakePhys(level=False)
    i = irq(27, hw=True, hwintid=27, config=IrqConfig.LEVEL, on_lr=True)
    lr = compute_lr(irq(27, hw=True, hwintid=27, config=IrqConfig.LEVEL, line_level=True), False)
    fold_lr_locked(i, lr, MERGED, False, 32, phys)
    assert not i.line_level and phys.cleared == [(27, False)]


def test_pseudo_lr_clears_active_and_signals_eoi_for_level():
    """The pseudo-LR of an active level SW SPI is Invalid with EOI: it signals an EOI MI."""
    lr = pseudo_lr(irq(config=IrqConfig.LEVEL, active=True), False)
    assert lr.state is I and lr_signals_eoi_mi(lr)
    assert not lr_signals_eoi_mi(pseudo_lr(irq(active=True), False))
