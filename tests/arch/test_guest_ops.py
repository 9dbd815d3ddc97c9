"""gic-arch.md section 4: trap checks and the guest ICV operations."""

import pytest

from vgic_actors.arch import SPURIOUS, IchHcr, IchVmcr, IcvReg, Trap, TrapCause

from .helpers import PA, A, I, P, cpuif, lr

G0_ACCESSES = {
    IcvReg.IAR0: lambda c: c.read_iar(0), IcvReg.EOIR0: lambda c: c.write_eoir(0, 40),
    IcvReg.HPPIR0: lambda c: c.read_hppir(0), IcvReg.BPR0: lambda c: c.write_bpr(0, 3),
    IcvReg.AP0R: lambda c: c.read_apr(0, 0), IcvReg.IGRPEN0: lambda c: c.write_igrpen(0, 0),
}
G1_ACCESSES = {
    IcvReg.IAR1: lambda c: c.read_iar(1), IcvReg.EOIR1: lambda c: c.write_eoir(1, 40),
    IcvReg.HPPIR1: lambda c: c.read_hppir(1), IcvReg.BPR1: lambda c: c.write_bpr(1, 3),
    IcvReg.AP1R: lambda c: c.write_apr(1, 0, 5), IcvReg.IGRPEN1: lambda c: c.read_igrpen(1),
}
COMMON_ACCESSES = {
    IcvReg.CTLR: lambda c: c.write_ctlr(2), IcvReg.PMR: lambda c: c.write_pmr(0x10),
    IcvReg.RPR: lambda c: c.read_rpr(), IcvReg.DIR: lambda c: c.write_dir(40),
}


@pytest.mark.parametrize("reg", list(G0_ACCESSES))
def test_s41_tall0_traps_group0_registers(reg):
    """TALL0 traps every Group-0 register access; TALL1 and TC do not."""
    other_traps = cpuif(lr(40), hcr=IchHcr(en=True, tall1=True, tc=True))
    assert not isinstance(G0_ACCESSES[reg](other_traps), Trap)
    out = G0_ACCESSES[reg](cpuif(lr(40), hcr=IchHcr(en=True, tall0=True)))
    assert isinstance(out, Trap) and out.register is reg and out.cause is TrapCause.TALL0


@pytest.mark.parametrize("reg", list(G1_ACCESSES))
def test_s41_tall1_traps_group1_registers(reg):
    """TALL1 traps every Group-1 register access."""
    out = G1_ACCESSES[reg](cpuif(lr(40), hcr=IchHcr(en=True, tall1=True)))
    assert isinstance(out, Trap) and out.register is reg and out.cause is TrapCause.TALL1


@pytest.mark.parametrize("reg", list(COMMON_ACCESSES))
def test_s41_tc_traps_common_registers(reg):
    """TC traps CTLR, DIR, PMR and RPR."""
    out = COMMON_ACCESSES[reg](cpuif(lr(40), hcr=IchHcr(en=True, tc=True)))
    assert isinstance(out, Trap) and out.register is reg and out.cause is TrapCause.TC


def test_s41_tdir_is_checked_before_tc():
    """DIR with TDIR and TC both set reports TDIR."""
    out = cpuif(hcr=IchHcr(en=True, tdir=True, tc=True)).write_dir(40)
    assert isinstance(out, Trap) and out.cause is TrapCause.TDIR


def test_s41_tdir_traps_only_dir_and_regardless_of_eoimode():
    """TDIR traps DIR with EOImode 0 or 1, and no other register."""
    for eoimode in (False, True):
        c = cpuif(lr(40), hcr=IchHcr(en=True, tdir=True), eoimode=eoimode)
        assert isinstance(c.write_dir(40), Trap)
        assert c.read_iar(1) == 40


def test_s41_without_tds_only_tc_catches_dir():
    """With no TDIR implemented (TDS=0), only TC traps DIR."""
    c = cpuif(lr(40, A), tds=False, hcr=IchHcr(en=True, tdir=True), eoimode=True)
    assert c.write_dir(40) is None and c.state.lrs[0].state is I
    c = cpuif(tds=False, hcr=IchHcr(en=True, tdir=True, tc=True))
    out = c.write_dir(40)
    assert isinstance(out, Trap) and out.cause is TrapCause.TC


def test_s41_trapped_access_has_no_effect():
    """A trapped IAR leaves the LR Pending and the APRs clear."""
    c = cpuif(lr(40), hcr=IchHcr(en=True, tall1=True))
    before = c.state.copy()
    assert isinstance(c.read_iar(1), Trap)
    assert c.state == before


def test_s41_trap_carries_the_written_value():
    """The trap outcome tells the hypervisor what the guest wrote."""
    out = cpuif(hcr=IchHcr(en=True, tdir=True)).write_dir(33)
    assert isinstance(out, Trap) and out.write and out.value == 33


def test_s42_iar_acknowledges_pending_to_active_and_sets_apr():
    """IAR: the highest-priority LR goes Pending -> Active and its APR bit is set."""
    c = cpuif(lr(40, prio=0xA0), lr(41, prio=0x90))
    assert c.read_iar(1) == 41
    assert c.state.lrs[1].state is A and c.state.lrs[0].state is P
    assert c.state.ap1r[0] == 1 << (0x90 >> 3)
    assert c.read_rpr() == 0x90


def test_s42_iar_never_acks_the_other_group():
    """IAR1 does not acknowledge a Group-0 LR and vice versa: 1023."""
    c = cpuif(lr(40, group=0))
    assert c.read_iar(1) == SPURIOUS and c.state.lrs[0].state is P
    assert c.read_iar(0) == 40


def test_s42_iar_masked_by_pmr_and_running_priority():
    """IAR returns 1023 when PMR or the running priority masks the candidate."""
    c = cpuif(lr(40, prio=0xA0), vmcr=IchVmcr(veng1=True, vpmr=0xA0))
    assert c.read_iar(1) == SPURIOUS
    c = cpuif(lr(40, prio=0xA0), lr(41, prio=0xA0))
    assert c.read_iar(1) == 40
    assert c.read_iar(1) == SPURIOUS


def test_s42_iar_of_level_interrupt_gives_active_not_pending_active():
    """The LR does not know the trigger: acknowledge always yields Active."""
    c = cpuif(lr(40, eoi=True))
    c.read_iar(1)
    assert c.state.lrs[0].state is A


def test_s42_iar_special_intid_in_lr_goes_invalid():
    """A special vINTID (1020..1023) in an LR is returned and the LR becomes Invalid."""
    c = cpuif(lr(1021))
    assert c.read_iar(1) == 1021
    assert c.state.lrs[0].state is I and c.state.ap1r[0] == 0


def test_s43_eoir_drops_priority_and_deactivates_with_eoimode0():
    """EOIR, EOImode 0: priority drop and LR Active -> Invalid."""
    c = cpuif(lr(40))
    c.read_iar(1)
    assert c.write_eoir(1, 40) is None
    assert c.state.lrs[0].state is I and c.read_rpr() == 0xFF


def test_s43_eoir_with_eoimode1_only_drops_priority():
    """EOIR, EOImode 1: priority drop only; the LR stays Active until DIR."""
    c = cpuif(lr(40), eoimode=True)
    c.read_iar(1)
    c.write_eoir(1, 40)
    assert c.state.lrs[0].state is A and c.read_rpr() == 0xFF


def test_s43_eoir_pending_active_goes_pending():
    """Deactivating a Pending+Active LR leaves it Pending."""
    c = cpuif(lr(40, PA))
    c.state.ap1r[0] = 1 << (0xA0 >> 3)
    c.write_eoir(1, 40)
    assert c.state.lrs[0].state is P


def test_s43_eoir_group_or_priority_mismatch_leaves_lr():
    """EOIR whose group or group priority does not match the drop leaves the LR Active."""
    c = cpuif(lr(40, prio=0xA0), lr(41, prio=0x90))
    assert c.read_iar(1) == 41
    c.write_eoir(1, 40)  # wrong order: drops 0x90's bit, 40 is not active
    assert c.state.lrs[1].state is A and c.read_rpr() == 0xFF
    c = cpuif(lr(40, prio=0xA0))
    c.read_iar(1)
    c.write_eoir(0, 40)  # wrong group register
    assert c.state.lrs[0].state is A and c.read_rpr() == 0xFF


def test_s43_eoir_special_intid_is_ignored():
    """EOIR of 1020..1023 does nothing, not even a priority drop."""
    c = cpuif(lr(40))
    c.read_iar(1)
    c.write_eoir(1, 1023)
    assert c.read_rpr() == 0xA0 and c.state.hcr.eoicount == 0


def test_s44_dir_ignored_with_eoimode0():
    """DIR with EOImode 0 is ignored: no deactivation, no EOIcount."""
    c = cpuif(lr(40, A))
    c.write_dir(40)
    assert c.state.lrs[0].state is A and c.state.hcr.eoicount == 0


def test_s44_dir_deactivates_own_lr_without_priority_change():
    """DIR with EOImode 1 deactivates the LR and leaves the active priority as it was."""
    c = cpuif(lr(40), eoimode=True)
    c.read_iar(1)
    c.write_dir(40)
    assert c.state.lrs[0].state is I and c.read_rpr() == 0xA0


def test_s44_dir_only_searches_own_lrs():
    """An SPI active in another vCPU's LR is not found: only this vCPU's EOIcount moves."""
    vcpu0, vcpu1 = cpuif(lr(32), eoimode=True), cpuif(eoimode=True)
    vcpu0.read_iar(1)
    vcpu0.write_eoir(1, 32)
    vcpu1.write_dir(32)
    assert vcpu0.state.lrs[0].state is A
    assert (vcpu0.state.hcr.eoicount, vcpu1.state.hcr.eoicount) == (0, 1)


def test_s44_dir_ignores_specials_and_lpis():
    """DIR of 1020+ (specials, LPIs) does nothing."""
    c = cpuif(lr(8192, A), eoimode=True)
    c.write_dir(8192)
    c.write_dir(1023)
    assert c.state.lrs[0].state is A and c.state.hcr.eoicount == 0


def test_s45_hppir_reports_without_masking_or_state_change():
    """HPPIR returns the highest pending of its group regardless of PMR, and changes nothing."""
    c = cpuif(lr(40, prio=0xA0), vmcr=IchVmcr(veng1=True, vpmr=0x00))
    assert c.read_hppir(1) == 40 and c.read_hppir(0) == SPURIOUS
    assert c.state.lrs[0].state is P


def test_s46_rpr_idle_is_0xff():
    """ICV_RPR reads 0xff with no active priority."""
    assert cpuif().read_rpr() == 0xFF


def test_s47_pmr_keeps_implemented_bits():
    """PMR write keeps the implemented priority bits only."""
    c = cpuif()
    c.write_pmr(0xAF)
    assert c.read_pmr() == 0xA8


def test_s47_bpr_clamps_and_cbpr_aliases_bpr1():
    """BPR writes clamp to the minimum; with CBPR, BPR1 reads BPR0+1 and ignores writes."""
    c = cpuif()
    c.write_bpr(0, 0)
    c.write_bpr(1, 0)
    assert (c.read_bpr(0), c.read_bpr(1)) == (2, 3)
    c.write_ctlr(1)  # CBPR
    c.write_bpr(0, 6)
    c.write_bpr(1, 4)
    assert (c.read_bpr(0), c.read_bpr(1), c.state.vmcr.vbpr1) == (6, 7, 3)


def test_s47_ctlr_writes_only_cbpr_and_eoimode():
    """ICV_CTLR: only CBPR (bit 0) and EOImode (bit 1) are writable; PRIbits reads back."""
    c = cpuif()
    c.write_ctlr(0xFFFF_FFFF)
    assert c.state.vmcr.vcbpr and c.state.vmcr.veoim
    assert c.state.vmcr.veng0 and c.state.vmcr.vpmr == 0xF8  # untouched
    ctlr = c.read_ctlr()
    assert isinstance(ctlr, int) and (ctlr >> 8) & 7 == 4 and ctlr & 3 == 3


def test_s47_igrpen_disable_hides_lrs_but_keeps_them():
    """Disabling a group hides its LRs from IAR (1023) but they stay in the LRs."""
    c = cpuif(lr(40))
    c.write_igrpen(1, 0)
    assert c.read_iar(1) == SPURIOUS and c.state.lrs[0].state is P
    assert c.read_igrpen(1) == 0


def test_s47_apr_write_restores_running_priority():
    """The guest may write ICV_AP1R0 directly to restore its running priority."""
    c = cpuif(lr(40, prio=0xA0))
    c.write_apr(1, 0, 1 << (0x80 >> 3))
    assert c.read_rpr() == 0x80 and c.read_apr(1, 0) == 1 << 16
    assert c.read_iar(1) == SPURIOUS


@pytest.mark.parametrize("reg", [*G0_ACCESSES, *G1_ACCESSES, *COMMON_ACCESSES])
def test_s41_emulating_a_trap_equals_the_untrapped_access(reg):
    """emulate(trap) has exactly the effect the access has on an interface that does not trap."""
    table = {**G0_ACCESSES, **G1_ACCESSES, **COMMON_ACCESSES}
    traps = IchHcr(en=True, tall0=True, tall1=True, tc=True, tdir=True)
    trapped = cpuif(lr(40, P, prio=0xA0), lr(41, A, prio=0x90), hcr=traps, eoimode=True)
    plain = cpuif(lr(40, P, prio=0xA0), lr(41, A, prio=0x90), eoimode=True)
    trapped.state.ap1r[0] = plain.state.ap1r[0] = 1 << (0x90 >> 3)
    trap = table[reg](trapped)
    assert isinstance(trap, Trap)
    got = trapped.emulate(trap)
    want = table[reg](plain)
    trapped.state.hcr = plain.state.hcr
    assert trapped.state == plain.state
    assert got == (want if isinstance(want, int) else None)
