"""gic-arch.md section 3: HPPVI, CanSignal, vIRQ/vFIQ, EISR, ELRSR, MISR, maintenance level."""

from vgic_actors.arch import IchHcr, IchVmcr

from .helpers import PA, A, I, P, cpuif, lr


def test_s3_hppvi_only_exactly_pending_lrs_are_candidates():
    """Pending+Active is not a candidate for the highest-priority pending interrupt."""
    assert cpuif(lr(40, PA, prio=0x10), lr(41, P, prio=0x80)).hppvi() == 1
    assert cpuif(lr(40, PA), lr(41, A)).hppvi() is None


def test_s3_hppvi_ties_keep_the_lowest_index():
    """Equal priorities: the lowest LR index wins."""
    assert cpuif(lr(40, prio=0x80), lr(41, prio=0x80)).hppvi() == 0


def test_s3_hppvi_skips_disabled_groups():
    """LRs of a disabled group are invisible to HPPVI."""
    c = cpuif(lr(40, prio=0x10, group=0), lr(41, prio=0x80, group=1),
              vmcr=IchVmcr(veng0=False, veng1=True, vpmr=0xFF))
    assert c.hppvi() == 1
    c.state.vmcr.veng1 = False
    assert c.hppvi() is None


def test_s3_priority_0xff_is_never_selected():
    """Priority 0xff can never be the highest-priority pending interrupt."""
    assert cpuif(lr(40, prio=0xF8), lr(41, prio=0xFF), pri_bits=8, pre_bits=7).hppvi() == 0
    assert cpuif(lr(41, prio=0xFF), pri_bits=8, pre_bits=7).hppvi() is None


def test_s3_can_signal_masks_priority_equal_to_pmr():
    """Strict mask: an LR with priority == VPMR is not signalled."""
    c = cpuif(lr(40, prio=0xA0), vmcr=IchVmcr(veng1=True, vpmr=0xA0))
    assert c.virq_vfiq() == (False, False)
    c.state.vmcr.vpmr = 0xA8
    assert c.virq_vfiq() == (True, False)


def test_s3_can_signal_needs_strictly_higher_group_priority_than_running():
    """With an active priority, only a strictly higher group priority can be signalled."""
    c = cpuif(lr(40, A, prio=0x80), lr(41, P, prio=0x80))
    c.state.ap1r[0] = 1 << (0x80 >> 3)
    assert c.virq_vfiq() == (False, False)
    c.write_lr(1, lr(41, P, prio=0x78))
    assert c.virq_vfiq() == (True, False)


def test_s3_en_clear_signals_nothing_and_no_maintenance():
    """ICH_HCR_EL2.En = 0: no vIRQ and no maintenance interrupt even when MISR bits hold."""
    c = cpuif(lr(40), hcr=IchHcr(en=False, npie=True, uie=True))
    assert c.virq_vfiq() == (False, False)
    assert c.misr().u and not c.maintenance_level()


def test_s3_group0_raises_vfiq_group1_raises_virq():
    """GICv3: Group 0 is signalled as vFIQ, Group 1 as vIRQ."""
    assert cpuif(lr(40, group=0)).virq_vfiq() == (False, True)
    assert cpuif(lr(40, group=1)).virq_vfiq() == (True, False)


def test_s3_eisr_invalid_sw_lr_with_eoi():
    """EISR bit n: LR n Invalid, HW=0, EOI=1."""
    c = cpuif(lr(40, I, eoi=True), lr(41, I), lr(42, A, eoi=True), lr(43, I, hw=True, pintid=43))
    assert c.eisr() == 0b0001


def test_s3_elrsr_invalid_and_owes_no_eoi():
    """ELRSR bit n: LR n Invalid and (HW=1 or EOI=0); an LR still owing an EOI MI is not free."""
    c = cpuif(lr(40, I, eoi=True), lr(41, I), lr(42, A), lr(43, I, hw=True, pintid=43))
    assert c.elrsr() == 0b1010


def test_s3_misr_eoi_follows_eisr():
    """MISR.EOI is set exactly when some EISR bit is set."""
    assert cpuif(lr(40, I, eoi=True)).misr().eoi
    assert not cpuif(lr(40, A, eoi=True)).misr().eoi


def test_s3_misr_u_when_at_most_one_lr_valid():
    """MISR.U = UIE and at most one LR valid."""
    h = IchHcr(en=True, uie=True)
    assert cpuif(lr(40), hcr=h).misr().u
    assert not cpuif(lr(40), lr(41, A), hcr=h).misr().u
    assert not cpuif(lr(40), hcr=IchHcr(en=True)).misr().u


def test_s3_misr_lrenp_while_eoicount_nonzero():
    """MISR.LRENP = LRENPIE and EOIcount != 0."""
    assert cpuif(hcr=IchHcr(en=True, lrenpie=True, eoicount=1)).misr().lrenp
    assert not cpuif(hcr=IchHcr(en=True, lrenpie=True)).misr().lrenp
    assert not cpuif(hcr=IchHcr(en=True, eoicount=3)).misr().lrenp


def test_s3_misr_np_when_no_lr_pending():
    """MISR.NP = NPIE and no LR in the Pending state (P+A is not Pending by default)."""
    h = IchHcr(en=True, npie=True)
    assert cpuif(lr(40, A), hcr=h).misr().np
    assert cpuif(lr(40, PA), hcr=h).misr().np
    assert not cpuif(lr(40, P), hcr=h).misr().np


def test_s3_misr_group_enable_bits():
    """VGrp0E/VGrp0D/VGrp1E/VGrp1D follow VENG0/VENG1 and their enables."""
    h = IchHcr(en=True, vgrp0eie=True, vgrp0die=True, vgrp1eie=True, vgrp1die=True)
    m = cpuif(hcr=h, vmcr=IchVmcr(veng0=True, veng1=False, vpmr=0xFF)).misr()
    assert (m.vgrp0e, m.vgrp0d, m.vgrp1e, m.vgrp1d) == (True, False, False, True)
    m = cpuif(hcr=h, vmcr=IchVmcr(veng0=False, veng1=True, vpmr=0xFF)).misr()
    assert (m.vgrp0e, m.vgrp0d, m.vgrp1e, m.vgrp1d) == (False, True, True, False)


def test_s3_misr_encoding_bit_order():
    """ICH_MISR_EL2: EOI 0, U 1, LRENP 2, NP 3, VGrp0E 4, VGrp0D 5, VGrp1E 6, VGrp1D 7."""
    m = cpuif(hcr=IchHcr(en=True, uie=True, npie=True)).misr()
    assert m.encode() == 0b1010


def test_s3_maintenance_is_a_level_that_stays_asserted():
    """The MI is a level: an NPIE with no pending LR stays asserted until the condition ends."""
    c = cpuif(lr(40, A), hcr=IchHcr(en=True, npie=True))
    assert c.maintenance_level() and c.maintenance_level()
    c.write_lr(1, lr(41, P))
    assert not c.maintenance_level()
