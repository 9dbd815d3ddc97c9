"""kernel-vgic.md section 2 and 4.2: vgic_target_oracle, vgic_irq_cmp, summarize_ap_list."""

import pytest

from vgic_actors.arch import IchVmcr
from vgic_actors.kvm.ap_list import (
    ApListSummary,
    summarize_ap_list,
    vgic_irq_cmp,
    vgic_sort_ap_list,
    vgic_target_oracle,
)
from vgic_actors.kvm.irq import IrqConfig, VgicIrq
from vgic_actors.kvm.variants import VARIANTS, KernelSwitches

MERGED = KernelSwitches()
VMCR = IchVmcr(veng0=True, veng1=True)


def irq(intid=32, **kw):
    kw.setdefault("enabled", True)
    kw.setdefault("group", 1)
    return VgicIrq(intid=intid, **kw)


def test_oracle_active_stays_on_its_vcpu():
    """An active irq stays on the vCPU whose ap_list holds it, whatever its target."""
    assert vgic_target_oracle(irq(active=True, vcpu=2, target_vcpu=0), True) == 2


def test_oracle_active_on_no_list_goes_to_target():
    """An active irq on no list goes to its target."""
    assert vgic_target_oracle(irq(active=True, vcpu=None, target_vcpu=1), True) == 1


def test_oracle_enabled_pending_goes_to_target():
    """Enabled and pending: the target."""
    assert vgic_target_oracle(irq(pending_latch=True, target_vcpu=3), True) == 3


def test_oracle_distributor_disabled_holds_pending():
    """A pending irq goes nowhere while the distributor is disabled."""
    assert vgic_target_oracle(irq(pending_latch=True, target_vcpu=3), False) is None


def test_oracle_disabled_or_idle_goes_nowhere():
    """Neither active nor enabled-and-pending: None."""
    assert vgic_target_oracle(irq(pending_latch=True, enabled=False), True) is None
    assert vgic_target_oracle(irq(), True) is None


def test_oracle_level_pending_from_line():
    """A level irq is pending while its line is high."""
    level = irq(config=IrqConfig.LEVEL, line_level=True, target_vcpu=1)
    assert vgic_target_oracle(level, True) == 1


def cmp(a, b, sw=MERGED, vmcr=VMCR, vcpu=0):
    return vgic_irq_cmp(vcpu, vmcr, True, sw, a, b)


def test_cmp_key1_deliverable_first():
    """Key 1: an entry whose oracle is this vCPU sorts before one that is not."""
    mine = irq(pending_latch=True, target_vcpu=0, priority=0xF0)
    other = irq(pending_latch=True, target_vcpu=1, priority=0x00)
    assert cmp(mine, other) < 0 < cmp(other, mine)


def test_cmp_key2_group_enabled_first():
    """Key 2: an entry of an enabled group sorts before one of a disabled group."""
    vmcr = IchVmcr(veng0=False, veng1=True)
    g1 = irq(pending_latch=True, group=1, priority=0xF0)
    g0 = irq(pending_latch=True, group=0, priority=0x00)
    assert cmp(g1, g0, vmcr=vmcr) < 0


def test_cmp_key3_pending_before_active():
    """Key 3: purely pending before active and pending+active."""
    pend = irq(pending_latch=True, priority=0xF0)
    act = irq(active=True, vcpu=0, priority=0x00)
    pa = irq(active=True, pending_latch=True, vcpu=0, priority=0x00)
    assert cmp(pend, act) < 0 and cmp(pend, pa) < 0


def test_cmp_key4_lower_priority_value_first():
    """Key 4: lower priority value first."""
    assert cmp(irq(pending_latch=True, priority=0x10), irq(pending_latch=True, priority=0x20)) < 0


def test_cmp_key5_hw_first():
    """Key 5: HW before non-HW at equal priority."""
    a = irq(active=True, vcpu=0, hw=True, hwintid=27)
    b = irq(active=True, vcpu=0)
    assert cmp(a, b) < 0 and cmp(b, a) > 0 and cmp(b, b) == 0


def test_cmp_pre_series_sorts_active_first_and_ignores_deliverability():
    """Variant pre-series: active first, no deliverable/group keys."""
    sw = VARIANTS["pre-series"].switches
    pend = irq(pending_latch=True, priority=0x00)
    act = irq(active=True, vcpu=0, priority=0xF0)
    assert cmp(act, pend, sw=sw) < 0
    other = irq(pending_latch=True, target_vcpu=1, priority=0x00)
    mine = irq(pending_latch=True, target_vcpu=0, priority=0x10)
    assert cmp(other, mine, sw=sw) < 0


def test_sort_is_stable():
    """Equal keys keep insertion order, like list_sort."""
    items = [irq(40 + i, pending_latch=True, priority=0x80) for i in range(5)]
    vgic_sort_ap_list(items, 0, VMCR, True, MERGED)
    assert [i.intid for i in items] == [40, 41, 42, 43, 44]


def test_summary_counts_only_this_vcpus_deliverable_entries():
    """nr_pend/nr_act/nr_sgi over entries whose oracle is this vCPU; P+A counts as active."""
    lst = [
        irq(3, pending_latch=True), irq(40, active=True, vcpu=0),
        irq(41, active=True, pending_latch=True, vcpu=0),
        irq(42, pending_latch=True, target_vcpu=1),
        irq(43),
    ]
    assert summarize_ap_list(lst, 0, True) == ApListSummary(nr_pend=1, nr_act=2, nr_sgi=1)


@pytest.mark.parametrize(("pend", "act", "nr_lr", "outside", "pend_out", "act_out"), [
    (2, 2, 4, False, False, False),
    (3, 2, 4, True, False, True),
    (5, 0, 4, True, True, False),
    (1, 0, 1, False, False, False),
])
def test_outside_lrs_macros(pend, act, nr_lr, outside, pend_out, act_out):
    """irqs_outside_lrs, irqs_pending_outside_lrs, irqs_active_outside_lrs."""
    s = ApListSummary(pend, act, 0)
    assert (s.outside_lrs(nr_lr), s.pending_outside_lrs(nr_lr), s.active_outside_lrs(nr_lr)) == (
        outside, pend_out, act_out)
