"""gic-arch.md section 2: group-priority masks, APR slots and the running priority."""

import pytest

from vgic_actors.arch import IDLE_PRIORITY, CpuIfConfig, IchVmcr, gprio_mask, running_priority
from vgic_actors.arch.priority import apr_bit_index


@pytest.mark.parametrize(("bpr0", "mask"), [(2, 0xF8), (3, 0xF0), (7, 0x00)])
def test_s2_group0_mask_is_ff_shl_bpr0_plus_1(bpr0, mask):
    """Group 0: group priority = priority & (0xff << (BPR0 + 1))."""
    assert gprio_mask(IchVmcr(vbpr0=bpr0), 0) == mask


@pytest.mark.parametrize(("bpr1", "mask"), [(3, 0xF8), (4, 0xF0), (1, 0xFE)])
def test_s2_group1_mask_is_ff_shl_bpr1(bpr1, mask):
    """Group 1: group priority = priority & (0xff << BPR1)."""
    assert gprio_mask(IchVmcr(vbpr1=bpr1), 1) == mask


def test_s2_vcbpr_makes_group1_use_group0_rules():
    """With VCBPR set, Group 1 uses BPR0 and the Group-0 mask formula."""
    assert gprio_mask(IchVmcr(vcbpr=True, vbpr0=3, vbpr1=7), 1) == 0xF0


def test_s2_apr_slot_for_5_preemption_bits():
    """With 5 preemption bits, APR bit k stands for priority k << 3."""
    cfg = CpuIfConfig(pre_bits=5)
    vmcr = IchVmcr(vbpr0=2, vbpr1=3)
    assert apr_bit_index(cfg, vmcr, 0xA0, 1) == 0xA0 >> 3
    assert apr_bit_index(cfg, vmcr, 0xA7, 1) == 0xA0 >> 3


def test_s2_apr_slot_crosses_registers_with_7_preemption_bits():
    """With 7 preemption bits the index spans four 32-bit APR words."""
    cfg = CpuIfConfig(pre_bits=7, pri_bits=8)
    vmcr = IchVmcr(vbpr0=0, vbpr1=1)
    assert apr_bit_index(cfg, vmcr, 0xFE, 1) == 127
    assert running_priority(cfg, [0, 0, 0, 0], [0, 0, 0, 1 << 31]) == 0xFE


def test_s2_running_priority_is_lowest_set_bit_of_either_group():
    """ICV_RPR: the lowest set bit over AP0R|AP1R, shifted back to a priority."""
    cfg = CpuIfConfig(pre_bits=5)
    assert running_priority(cfg, [0], [0]) == IDLE_PRIORITY
    assert running_priority(cfg, [1 << 20], [1 << 10]) == 10 << 3
    assert running_priority(cfg, [1 << 4], [1 << 10]) == 4 << 3
