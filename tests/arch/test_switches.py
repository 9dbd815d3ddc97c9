"""gic-arch.md section 11: each disagreement is a named switch, the Arm reading by default."""

from vgic_actors.arch import PRESETS, ArchSwitches, IchHcr, IchVmcr

from .helpers import PA, A, I, cpuif, lr


def test_s11_defaults_are_the_arm_reading():
    """The default switches are the "arm" preset."""
    assert ArchSwitches() == PRESETS["arm"]
    assert set(PRESETS) == {"arm", "qemu", "kvm-emulation"}


def test_s11_1_vgrp0d_condition():
    """11.1: VGrp0D tests VENG0 (Arm); QEMU's reading tests VENG1."""
    h = IchHcr(en=True, vgrp0die=True)
    vmcr = IchVmcr(veng0=False, veng1=True, vpmr=0xFF)
    assert cpuif(hcr=h, vmcr=vmcr).misr().vgrp0d
    assert not cpuif(hcr=h, vmcr=vmcr, switches=PRESETS["qemu"]).misr().vgrp0d


def test_s11_2_np_and_pending_active():
    """11.2: with the KVM NV reading, a P+A LR counts as pending and NP stays low."""
    h = IchHcr(en=True, npie=True)
    assert cpuif(lr(40, PA), hcr=h).misr().np
    kvm_nv = ArchSwitches(np_counts_pending_active=True)
    assert not cpuif(lr(40, PA), hcr=h, switches=kvm_nv).misr().np


def test_s11_3_underflow_counting():
    """11.3: an Invalid LR owing an EOI counts as used only under the "not_elrsr" reading."""
    h = IchHcr(en=True, uie=True)
    lrs = (lr(40, A), lr(41, I, eoi=True))
    assert cpuif(*lrs, hcr=h).misr().u
    assert not cpuif(*lrs, hcr=h, switches=ArchSwitches(underflow_count="not_elrsr")).misr().u


def test_s11_6_priority_drop_tie_between_groups():
    """11.6: same APR index in both groups: QEMU (default) drops Group 0, KVM-SR Group 1."""
    for tie, expect in (("group0", (0, 1)), ("group1", (1, 0))):
        c = cpuif(switches=ArchSwitches(apr_drop_tie=tie))
        c.state.ap0r[0] = c.state.ap1r[0] = 1 << 20
        c.write_eoir(1, 40)
        assert (c.state.ap0r[0] >> 20, c.state.ap1r[0] >> 20) == expect
