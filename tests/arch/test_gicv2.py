"""gic-arch.md section 8: the GICv2 virtual interface differences."""

import pytest

from vgic_actors.arch import (
    GicVersion,
    IchHcr,
    IchVmcr,
    ListRegister,
    Trap,
    TrapCause,
    VirtualCpuInterface,
    decode_lr_v2,
    decode_vmcr,
    encode_hcr,
    encode_lr_v2,
    encode_vmcr,
    v2_config,
)
from vgic_actors.errors import ArchUsageError

from .helpers import A, I, P

V2 = GicVersion.V2


def v2(*lrs, eoimode=False, dir_trapped=False, hcr=None, vfiqen=False):
    c = VirtualCpuInterface(v2_config(nr_lr=4))
    c.write_hcr(hcr or IchHcr(en=True))
    c.write_vmcr(IchVmcr(veng0=True, veng1=True, vpmr=0xFF, veoim=eoimode, vfiqen=vfiqen))
    c.state.v2_dir_page_trapped = dir_trapped
    for n, lr in enumerate(lrs):
        c.write_lr(n, lr)
    return c


def test_s8_v2_lr_layout():
    """GICH_LR: VirtualID [9:0], CPUID [12:10], EOI 19, Priority [27:23], State [29:28],
    Grp1 30, HW 31."""
    v = encode_lr_v2(
        ListRegister(vintid=5, source_cpu=3, eoi=True, priority=0xA0, state=P, group=1)
    )
    assert v == 5 | 3 << 10 | 1 << 19 | (0xA0 >> 3) << 23 | 1 << 28 | 1 << 30
    hw = encode_lr_v2(ListRegister(vintid=40, hw=True, pintid=70, group=0))
    assert hw == 40 | 70 << 10 | 1 << 31
    assert decode_lr_v2(v) == ListRegister(vintid=5, source_cpu=3, eoi=True, priority=0xA0,
                                           state=P, group=1)


def test_s8_v2_hcr_has_no_trap_bits():
    """GICH_HCR has no TC/TALL0/TALL1/TDIR/vSGIEOICount: writes of them are dropped."""
    c = v2(hcr=IchHcr(en=True, tdir=True, tc=True, tall0=True, tall1=True, vsgieoicount=True))
    assert c.state.hcr == IchHcr(en=True)
    assert encode_hcr(IchHcr(en=True, tdir=True, eoicount=2), V2) == 1 | 2 << 27


def test_s8_v2_vmcr_layout_five_bit_pmr():
    """GICH_VMCR: VMPriMask [31:27] (5 bits), VEM 9, VMBP [23:21], VMABP [20:18]."""
    v = encode_vmcr(IchVmcr(veng1=True, veoim=True, vpmr=0xF8, vbpr0=2, vbpr1=3), V2)
    assert v == 2 | 1 << 9 | 0x1F << 27 | 2 << 21 | 3 << 18
    assert decode_vmcr(v, V2).vpmr == 0xF8


def test_s8_v2_never_traps_on_hcr_bits():
    """No HCR bit can trap a GICv2 guest's DIR: it runs in hardware unless the page is unmapped."""
    c = v2(ListRegister(vintid=40, state=A, priority=0xA0), eoimode=True)
    assert c.write_dir(40) is None and c.state.lrs[0].state is I


def test_s8_v2_dir_page_unmapped_traps_every_dir():
    """KVM leaves the GICV_DIR page unmapped: every DIR is a stage-2 trap, whatever EOImode."""
    for eoimode in (False, True):
        c = v2(ListRegister(vintid=40, state=A, priority=0xA0), eoimode=eoimode, dir_trapped=True)
        out = c.write_dir(40)
        assert isinstance(out, Trap) and out.cause is TrapCause.V2_DIR_PAGE
        assert c.state.lrs[0].state is A


def test_s8_v2_sgi_iar_carries_source_cpuid():
    """GICV_IAR of an SGI returns the source CPUID in [12:10]."""
    c = v2(ListRegister(vintid=2, source_cpu=5, state=P, priority=0xA0))
    assert c.read_iar(1) == 2 | 5 << 10
    assert c.read_hppir(1) == 1023


def test_s8_v2_eoir_matches_sgi_source():
    """EOIR of an SGI deactivates only the LR of the same source CPU."""
    c = v2(ListRegister(vintid=2, source_cpu=5, state=P, priority=0xA0))
    c.read_iar(1)
    c.write_eoir(1, 2 | 4 << 10)  # wrong source: priority drop, EOIcount +1, LR untouched
    assert c.state.lrs[0].state is A and c.state.hcr.eoicount == 1
    c.state.ap0r[0] = 1 << (0xA0 >> 3)
    c.write_eoir(1, 2 | 5 << 10)
    assert c.state.lrs[0].state is I


def test_s8_v2_single_apr_bank():
    """GICv2 has one GICH_APR: both groups' active priorities live in it."""
    c = v2(ListRegister(vintid=40, state=P, priority=0xA0, group=0),
           ListRegister(vintid=41, state=P, priority=0x80, group=1))
    assert c.read_iar(1) == 41
    assert c.state.ap0r[0] == 1 << 16 and c.state.ap1r[0] == 0
    assert c.read_apr(0, 0) == 1 << 16
    with pytest.raises(ArchUsageError):
        c.read_apr(1, 0)


def test_s8_v2_group0_is_virq_unless_fiqen():
    """GICv2 Group 0 raises vIRQ unless GICH_VMCR.VMFIQEn is set."""
    assert v2(ListRegister(vintid=40, state=P, priority=0xA0, group=0)).virq_vfiq() == (True, False)
    c = v2(ListRegister(vintid=40, state=P, priority=0xA0, group=0), vfiqen=True)
    assert c.virq_vfiq() == (False, True)


def test_s8_v2_ctlr_holds_group_enables_and_no_igrpen():
    """GICV_CTLR carries EnableGrp0/1 and EOImode; ICV_IGRPEN does not exist."""
    c = v2()
    c.write_ctlr(1 << 1 | 1 << 9)
    assert (c.state.vmcr.veng0, c.state.vmcr.veng1, c.state.vmcr.veoim) == (False, True, True)
    with pytest.raises(ArchUsageError):
        c.write_igrpen(1, 1)


def test_s8_v2_eoicount_overflow_logic_exists():
    """GICv2 keeps EOIcount: an EOImode 0 EOIR with no LR counts."""
    c = v2()
    c.state.ap0r[0] = 1 << 20
    c.write_eoir(1, 40)
    assert c.state.hcr.eoicount == 1
