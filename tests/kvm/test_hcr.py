"""kernel-vgic.md 4.5: vgic_v3_configure_hcr, every TDIR condition, and the GICv2 flavour."""

import pytest

from vgic_actors.arch import IchVmcr
from vgic_actors.kvm.ap_list import ApListSummary
from vgic_actors.kvm.hcr import hardware_hcr, vgic_configure_hcr
from vgic_actors.kvm.variants import VARIANTS, KernelSwitches

MERGED = KernelSwitches()
VMCR = IchVmcr(veng0=False, veng1=True)


def hcr(pend=0, act=0, sgi=0, nr_lr=4, sw=MERGED, v3=True, cap=True, spis=0, vmcr=VMCR):
    return vgic_configure_hcr(ApListSummary(pend, act, sgi), vmcr, nr_lr, sw, v3=v3,
                              host_tdir_cap=cap, active_spis=spis)


def test_en_always_and_eoicount_zeroed():
    """The HCR is rebuilt from scratch: En set, EOIcount 0."""
    h = hcr()
    assert h.en and h.eoicount == 0 and not (h.npie or h.lrenpie or h.uie or h.tdir)


def test_npie_when_pending_overflows():
    """NPIE when more pending than LRs."""
    assert hcr(pend=5).npie and not hcr(pend=4).npie


def test_lrenpie_when_actives_may_be_outside():
    """LRENPIE when some active exists and the total overflows."""
    assert hcr(pend=4, act=1).lrenpie and not hcr(pend=5).lrenpie and not hcr(act=4).lrenpie


def test_uie_on_any_overflow():
    """UIE when pending + active > nr_lr."""
    assert hcr(pend=3, act=2).uie and not hcr(pend=2, act=2).uie


def test_vsgieoicount_only_without_sgis():
    """vSGIEOICount when no SGI is on the ap_list."""
    assert hcr().vsgieoicount and not hcr(pend=1, sgi=1).vsgieoicount


def test_group_mis_exit_on_any_enable_change():
    """VGrpNDIE when group N is enabled, VGrpNEIE when disabled."""
    h = hcr(vmcr=IchVmcr(veng0=False, veng1=True))
    assert (h.vgrp0eie, h.vgrp0die, h.vgrp1eie, h.vgrp1die) == (True, False, False, True)


@pytest.mark.parametrize(("kw", "tdir"), [
    ({}, False),
    ({"spis": 1}, True),
    ({"pend": 4, "act": 1}, True),
    ({"cap": False}, True),
])
def test_tdir_conditions_merged(kw, tdir):
    """TDIR: no host capability (forced), actives outside the LRs, or active_spis != 0."""
    assert hcr(**kw).tdir is tdir


def test_tdir_v2_posted_not_forced_without_cap():
    """v2-posted: without the capability, TDIR follows the count and the overflow only."""
    sw = VARIANTS["v2-posted"].switches
    assert not hcr(cap=False, sw=sw).tdir and hcr(cap=False, sw=sw, spis=1).tdir


def test_tdir_no_spi_tracking_ignores_count():
    """no-spi-tracking never sees a non-zero count; overflow still sets TDIR."""
    sw = VARIANTS["no-spi-tracking"].switches
    assert hcr(sw=sw).tdir is False and hcr(sw=sw, pend=4, act=1).tdir


def test_pre_series_uie_only_no_tdir_no_group_mis():
    """pre-series: UIE on overflow only; no NPIE/LRENPIE, no group MIs, no TDIR."""
    h = hcr(pend=5, act=2, spis=3, cap=False, sw=VARIANTS["pre-series"].switches)
    assert h.uie and not (h.npie or h.lrenpie or h.tdir or h.vgrp1die or h.vgrp0eie)


def test_gicv2_flavour_has_no_tdir():
    """GICv2: the same MI bits, never TDIR or vSGIEOICount."""
    h = hcr(pend=5, act=1, spis=2, v3=False)
    assert h.npie and h.lrenpie and h.uie and not h.tdir and not h.vsgieoicount


def test_hardware_hcr_adds_tc_without_tdir_cap():
    """At entry, hosts without TDIR trap the common group (TC) so DIR traps anyway."""
    shadow = hcr(cap=False)
    assert hardware_hcr(shadow, MERGED, v3=True, host_tdir_cap=False).tc
    assert not hardware_hcr(hcr(), MERGED, v3=True, host_tdir_cap=True).tc
