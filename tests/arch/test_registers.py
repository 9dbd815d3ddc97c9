"""gic-arch.md section 1: register layouts, ICH_VTR facts, RES0/RES1 rules of hypervisor writes."""

import pytest

from vgic_actors.arch import (
    CpuIfConfig,
    GicVersion,
    IchHcr,
    IchVmcr,
    ListRegister,
    LRState,
    VirtualCpuInterface,
    decode_hcr,
    decode_lr_v3,
    decode_vmcr,
    encode_hcr,
    encode_lr_v3,
    encode_vmcr,
    v2_config,
)
from vgic_actors.errors import ArchUsageError


def test_s1_lr_state_field_is_bits_63_62():
    """ICH_LR State 00 Invalid, 01 Pending, 10 Active, 11 Pending+Active at [63:62]."""
    for state in LRState:
        assert encode_lr_v3(ListRegister(state=state)) >> 62 == int(state)
    assert LRState.PENDING_ACTIVE.pending and LRState.PENDING_ACTIVE.active
    assert not LRState.INVALID.pending and not LRState.INVALID.active


def test_s1_lr_field_positions():
    """vINTID [31:0], pINTID [44:32], EOI bit 41, Priority [55:48], Group 60, HW 61."""
    v = encode_lr_v3(ListRegister(vintid=0x1234, priority=0xA8, group=1, hw=True, pintid=0x55))
    assert v & 0xFFFFFFFF == 0x1234
    assert (v >> 32) & 0x1FFF == 0x55
    assert (v >> 48) & 0xFF == 0xA8
    assert v >> 60 & 1 == 1 and v >> 61 & 1 == 1
    assert encode_lr_v3(ListRegister(vintid=1, eoi=True, group=0)) == (1 << 41) | 1


def test_s1_lr_eoi_bit_does_not_exist_with_hw():
    """EOI is bit 9 of the pINTID field: an HW=1 LR never carries it."""
    c = VirtualCpuInterface(CpuIfConfig(nr_lr=1))
    c.write_lr(0, ListRegister(vintid=27, hw=True, pintid=27, eoi=True))
    assert c.state.lrs[0].eoi is False
    assert decode_lr_v3(encode_lr_v3(ListRegister(vintid=1, hw=True, pintid=1 << 9))).eoi is False


def test_s1_lr_priority_res0_bits_forced_to_zero():
    """Priority bits below the implemented priority bits are RES0 (QEMU ich_lr_write)."""
    c = VirtualCpuInterface(CpuIfConfig(nr_lr=1, pri_bits=5, pre_bits=5))
    c.write_lr(0, ListRegister(vintid=40, priority=0xAF))
    assert c.state.lrs[0].priority == 0xA8
    c8 = VirtualCpuInterface(CpuIfConfig(nr_lr=1, pri_bits=8, pre_bits=7))
    c8.write_lr(0, ListRegister(vintid=40, priority=0xAF))
    assert c8.state.lrs[0].priority == 0xAF


def test_s1_hcr_field_positions():
    """ICH_HCR_EL2: En 0, UIE 1, LRENPIE 2, NPIE 3, ..., vSGIEOICount 8, TC 10, TALL0 11,
    TALL1 12, TSEI 13, TDIR 14, EOIcount [31:27]."""
    assert encode_hcr(IchHcr(en=True)) == 1
    assert encode_hcr(IchHcr(uie=True, lrenpie=True, npie=True)) == 0b1110
    assert encode_hcr(IchHcr(vsgieoicount=True)) == 1 << 8
    assert encode_hcr(IchHcr(tc=True, tall0=True, tall1=True, tdir=True)) == (
        1 << 10 | 1 << 11 | 1 << 12 | 1 << 14
    )
    assert encode_hcr(IchHcr(eoicount=31)) == 31 << 27
    assert decode_hcr(1 << 14 | 5 << 27) == IchHcr(tdir=True, eoicount=5)


def test_s1_hcr_eoicount_is_five_bits():
    """A hypervisor write keeps EOIcount modulo 32."""
    c = VirtualCpuInterface(CpuIfConfig(nr_lr=1))
    c.write_hcr(IchHcr(eoicount=33))
    assert c.state.hcr.eoicount == 1


def test_s1_hcr_tdir_is_res0_without_tds():
    """Without ICH_VTR_EL2.TDS the TDIR bit is RES0."""
    c = VirtualCpuInterface(CpuIfConfig(nr_lr=1, tds=False))
    c.write_hcr(IchHcr(en=True, tdir=True))
    assert c.state.hcr.tdir is False


def test_s1_vmcr_field_positions():
    """ICH_VMCR_EL2: VENG0 0, VENG1 1, VCBPR 4, VEOIM 9, VBPR1 [20:18], VBPR0 [23:21],
    VPMR [31:24]."""
    v = encode_vmcr(IchVmcr(veng0=True, veng1=True, vcbpr=True, veoim=True, vbpr1=3, vbpr0=2,
                            vpmr=0xF0))
    assert v == 1 | 2 | 1 << 4 | 1 << 9 | 3 << 18 | 2 << 21 | 0xF0 << 24
    assert decode_vmcr(v) == IchVmcr(veng0=True, veng1=True, vcbpr=True, veoim=True, vbpr1=3,
                                     vbpr0=2, vpmr=0xF0)


def test_s1_vmcr_write_clamps_bpr_and_forces_vfiqen():
    """VMCR write: BPR below its minimum stores the minimum; VFIQEn is RES1 (system registers)."""
    c = VirtualCpuInterface(CpuIfConfig(nr_lr=1, pre_bits=5))
    c.write_vmcr(IchVmcr(vbpr0=0, vbpr1=0, vackctl=True))
    assert (c.state.vmcr.vbpr0, c.state.vmcr.vbpr1) == (2, 3)
    assert c.state.vmcr.vfiqen is True and c.state.vmcr.vackctl is False


@pytest.mark.parametrize(("pre_bits", "nr_apr"), [(5, 1), (6, 2), (7, 4)])
def test_s1_vtr_number_of_aprs_is_2_pow_prebits_minus_5(pre_bits, nr_apr):
    """APR registers per group = 2^(PREbits - 5)."""
    cfg = CpuIfConfig(pre_bits=pre_bits, pri_bits=max(pre_bits, 5))
    assert cfg.nr_apr == nr_apr
    assert len(VirtualCpuInterface(cfg).state.ap1r) == nr_apr


@pytest.mark.parametrize("nr_lr", [0, 17])
def test_s1_vtr_list_regs_1_to_16(nr_lr):
    """ICH_VTR_EL2.ListRegs allows 1..16 List Registers on GICv3."""
    with pytest.raises(ArchUsageError, match=r"1\.\.16"):
        CpuIfConfig(nr_lr=nr_lr)


def test_s1_vtr_pre_bits_not_above_pri_bits():
    """PREbits never exceeds PRIbits, and both stay within 5..8."""
    with pytest.raises(ArchUsageError):
        CpuIfConfig(pri_bits=5, pre_bits=6)
    with pytest.raises(ArchUsageError):
        CpuIfConfig(pri_bits=4, pre_bits=4)


def test_s1_lr_write_rejects_out_of_range_fields():
    """LR index and vINTID must fit the implementation (16 ID bits by default)."""
    c = VirtualCpuInterface(CpuIfConfig(nr_lr=2))
    with pytest.raises(ArchUsageError, match=r"0\.\.1"):
        c.write_lr(2, ListRegister(vintid=32))
    with pytest.raises(ArchUsageError, match="vINTID"):
        c.write_lr(0, ListRegister(vintid=1 << 16))
    with pytest.raises(ArchUsageError, match="CPUID"):
        c.write_lr(0, ListRegister(vintid=1, source_cpu=1))


def test_s8_v2_config_is_five_bit_priority_without_tdir():
    """GICv2: 5 priority/preemption bits, no TDIR, vINTIDs of 10 bits."""
    cfg = v2_config(nr_lr=4)
    assert (cfg.version, cfg.pri_bits, cfg.pre_bits, cfg.tds, cfg.max_vintid) == (
        GicVersion.V2, 5, 5, False, 1023)
    with pytest.raises(ArchUsageError):
        CpuIfConfig(version=GicVersion.V2, pri_bits=8, pre_bits=7, tds=False)


def test_s1_reset_interface_equals_a_zero_vmcr_write():
    """KVM resets VMCR to 0: the BPRs read back at their minimum and VFIQEn (RES1) is set."""
    fresh = VirtualCpuInterface(CpuIfConfig(nr_lr=2))
    written = VirtualCpuInterface(CpuIfConfig(nr_lr=2))
    written.write_vmcr(IchVmcr())
    assert fresh.state == written.state
    assert (fresh.read_bpr(0), fresh.read_bpr(1)) == (2, 3)
