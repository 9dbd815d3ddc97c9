"""gic-arch.md section 5: the EOIcount table, one test per row, and the 5-bit wrap."""

import pytest

from vgic_actors.arch import ArchSwitches, IchHcr

from .helpers import A, cpuif, lr


def acked(*lrs, eoimode=False, **kw):
    """An interface whose guest has one priority active (so EOIR has something to drop)."""
    c = cpuif(*lrs, eoimode=eoimode, **kw)
    c.state.ap1r[0] = 1 << (0xA0 >> 3)
    return c


@pytest.mark.parametrize("intid", [5, 27, 32, 1019])
def test_s5_row_eoir_eoimode0_no_lr_counts(intid):
    """EOIR, EOImode 0, no LR with that active vINTID, SGI/PPI/SPI: +1."""
    c = acked()
    c.write_eoir(1, intid)
    assert c.state.hcr.eoicount == 1


def test_s5_row_eoir_eoimode0_lr_found_unchanged():
    """EOIR, EOImode 0, LR found: EOIcount unchanged (the LR is deactivated)."""
    c = acked(lr(40, A))
    c.write_eoir(1, 40)
    assert c.state.hcr.eoicount == 0 and not c.state.lrs[0].state.active


def test_s5_row_eoir_eoimode1_no_lr_arm_unchanged():
    """EOIR, EOImode 1, no LR: the Arm text leaves EOIcount unchanged."""
    c = acked(eoimode=True)
    c.write_eoir(1, 40)
    assert c.state.hcr.eoicount == 0


def test_s5_row_eoir_lpi_no_lr_unchanged():
    """EOIR of an LPI that is not in an LR: priority drop only, EOIcount unchanged."""
    c = acked()
    c.write_eoir(1, 8192)
    assert c.state.hcr.eoicount == 0 and c.read_rpr() == 0xFF


def test_s5_row_eoir_without_apr_unchanged_by_default():
    """EOIR with no active priority (CONSTRAINED UNPREDICTABLE): unchanged (QEMU reading)."""
    c = cpuif()
    c.write_eoir(1, 40)
    assert c.state.hcr.eoicount == 0


@pytest.mark.parametrize("intid", [3, 20, 40])
def test_s5_row_dir_eoimode1_no_lr_counts(intid):
    """DIR, EOImode 1, no LR, SGI/PPI/SPI: +1."""
    c = cpuif(eoimode=True)
    c.write_dir(intid)
    assert c.state.hcr.eoicount == 1


def test_s5_row_dir_eoimode1_lr_found_unchanged():
    """DIR, EOImode 1, LR found: unchanged, LR deactivated."""
    c = cpuif(lr(40, A), eoimode=True)
    c.write_dir(40)
    assert c.state.hcr.eoicount == 0 and not c.state.lrs[0].state.active


def test_s5_row_dir_eoimode0_unchanged():
    """DIR with EOImode 0: ignored, unchanged."""
    c = cpuif()
    c.write_dir(40)
    assert c.state.hcr.eoicount == 0


@pytest.mark.parametrize("intid", [8192, 1020, 1023])
def test_s5_row_dir_lpi_or_special_unchanged(intid):
    """DIR of an LPI or a special INTID: unchanged."""
    c = cpuif(eoimode=True)
    c.write_dir(intid)
    assert c.state.hcr.eoicount == 0


def test_s5_row_vsgieoicount_suppresses_vsgi_increments():
    """With vSGIEOICount, SGI deactivations outside the LRs do not count; PPIs/SPIs still do."""
    h = IchHcr(en=True, vsgieoicount=True)
    c = cpuif(eoimode=True, hcr=h)
    c.write_dir(3)
    assert c.state.hcr.eoicount == 0
    c.write_dir(16)
    assert c.state.hcr.eoicount == 1
    c = acked(hcr=h)
    c.write_eoir(1, 15)
    assert c.state.hcr.eoicount == 0


def test_s5_eoicount_wraps_at_32():
    """EOIcount is 5 bits: the 32nd increment wraps it to 0."""
    c = cpuif(eoimode=True, hcr=IchHcr(en=True, eoicount=31))
    c.write_dir(40)
    assert c.state.hcr.eoicount == 0


def test_s11_4_switch_eoir_eoimode1_counts():
    """Switch 11.4 (QEMU/KVM emulation): an EOImode 1 EOIR with no LR counts."""
    c = acked(eoimode=True, switches=ArchSwitches(eoir_eoimode1_counts=True))
    c.write_eoir(1, 40)
    assert c.state.hcr.eoicount == 1


def test_s11_5_switch_eoir_without_apr_lookup():
    """Switch 11.5 "lookup" (KVM emulation): an EOIR with no active priority still counts a miss."""
    c = cpuif(switches=ArchSwitches(eoir_without_apr="lookup"))
    c.write_eoir(1, 40)
    assert c.state.hcr.eoicount == 1
    c = cpuif(lr(40, A), switches=ArchSwitches(eoir_without_apr="lookup"))
    c.write_eoir(1, 40)
    assert c.state.lrs[0].state is A, "nothing was dropped, so the LR cannot match"


def test_s5_intid_above_id_bits_does_not_alias_to_an_sgi():
    """An EOIR value beyond 16 ID bits is read as 24 bits (QEMU): no LR, an LPI, no count."""
    c = acked()
    c.write_eoir(1, 65536)
    assert c.state.hcr.eoicount == 0
