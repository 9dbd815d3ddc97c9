"""gic-arch.md sections 6 and 7: HW=1 LRs, vLPIs and vSGIs."""

from vgic_actors.arch import IchHcr

from .helpers import PA, A, I, P, cpuif, lr


def test_s6_hw_eoir_deactivates_physical_intid():
    """EOIR (EOImode 0) of an HW=1 LR deactivates pINTID in the physical distributor."""
    phys: list[int] = []
    c = cpuif(lr(27, hw=True, pintid=27), deactivated=phys)
    c.read_iar(1)
    c.write_eoir(1, 27)
    assert phys == [27] and c.state.lrs[0].state is I


def test_s6_hw_dir_deactivates_physical_intid():
    """DIR (EOImode 1) of an HW=1 LR deactivates pINTID too."""
    phys: list[int] = []
    c = cpuif(lr(48, A, hw=True, pintid=100), eoimode=True, deactivated=phys)
    c.write_dir(48)
    assert phys == [100]


def test_s6_hw_pintid_special_is_not_deactivated():
    """pINTID >= 1020 has no physical deactivation."""
    phys: list[int] = []
    c = cpuif(lr(48, A, hw=True, pintid=1021), eoimode=True, deactivated=phys)
    c.write_dir(48)
    assert phys == [] and c.state.lrs[0].state is I


def test_s6_hw_lr_never_produces_eoi_maintenance():
    """HW LRs have no EOI bit: once Invalid they are free in ELRSR and never in EISR."""
    c = cpuif(lr(27, I, hw=True, pintid=27))
    assert c.eisr() == 0 and c.elrsr() & 1


def test_s6_sw_deactivation_never_touches_the_physical_gic():
    """HW=0 deactivations do not call the physical-deactivate callback."""
    phys: list[int] = []
    c = cpuif(lr(40), deactivated=phys)
    c.read_iar(1)
    c.write_eoir(1, 40)
    assert phys == []


def test_s6_sw_level_eoi_raises_eoi_maintenance():
    """A HW=0 LR with EOI=1 going Invalid sets EISR and MISR.EOI."""
    c = cpuif(lr(40, eoi=True))
    c.read_iar(1)
    c.write_eoir(1, 40)
    assert c.eisr() == 1 and c.misr().eoi and c.maintenance_level()


def test_s7_vlpi_has_an_active_state_after_iar():
    """A virtual LPI in an LR becomes Active on acknowledge."""
    c = cpuif(lr(8192))
    assert c.read_iar(1) == 8192 and c.state.lrs[0].state is A


def test_s7_vlpi_eoir_deactivates_whatever_eoimode():
    """EOIR of a vLPI in an LR deactivates it even with EOImode 1."""
    c = cpuif(lr(8192), eoimode=True)
    c.read_iar(1)
    c.write_eoir(1, 8192)
    assert c.state.lrs[0].state is I


def test_s7_vlpi_dir_is_ignored():
    """DIR does not apply to LPIs."""
    c = cpuif(lr(8192, A), eoimode=True)
    c.write_dir(8192)
    assert c.state.lrs[0].state is A


def test_s7_vsgi_deactivation_outside_lrs_with_vsgieoicount():
    """GICv4.1 vSGIs: with vSGIEOICount their deactivations never pollute EOIcount."""
    c = cpuif(eoimode=True, hcr=IchHcr(en=True, vsgieoicount=True))
    for sgi in range(16):
        c.write_dir(sgi)
    assert c.state.hcr.eoicount == 0


def test_s7_pending_active_lpi_is_not_a_candidate():
    """A P+A vLPI is not acknowledged again until deactivated."""
    c = cpuif(lr(8200, PA))
    assert c.hppvi() is None
    c.state.ap1r[0] = 1 << (0xA0 >> 3)
    c.write_eoir(1, 8200)
    assert c.state.lrs[0].state is P
