"""Hypothesis properties of the architectural layer (vgic_actors.arch).

Every expectation here is derived from /work/shared/spec/gic-arch.md (sections
1-8 and 11); the ``ref_*`` helpers are that document's pseudocode, written
again from the text, not taken from the implementation.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from vgic_actors.arch import (
    EMPTY_LR,
    ArchSwitches,
    CpuIfConfig,
    GicVersion,
    IchHcr,
    IchVmcr,
    IcvReg,
    ListRegister,
    LRState,
    Trap,
    TrapCause,
    VirtualCpuInterface,
    decode_hcr,
    decode_lr_v2,
    decode_lr_v3,
    decode_vmcr,
    encode_hcr,
    encode_lr_v2,
    encode_lr_v3,
    encode_vmcr,
    v2_config,
)

I, P, A, PA = LRState.INVALID, LRState.PENDING, LRState.ACTIVE, LRState.PENDING_ACTIVE
SPURIOUS = 1023
IDLE = 0xFF

# --- reference pseudocode (gic-arch.md sections 2, 3, 4, 5) ----------------------------------


def ref_gprio_mask(vmcr: IchVmcr, group: int) -> int:
    """Section 2 gprio_mask: G1 uses the BPR0 rule while VCBPR is set."""
    if group == 1 and vmcr.vcbpr:
        group = 0
    if group == 0:
        return 0xFF & (~0 << (vmcr.vbpr0 + 1))
    return 0xFF & (~0 << vmcr.vbpr1)


def ref_apr_index(pre_bits: int, vmcr: IchVmcr, prio: int, group: int) -> int:
    """Section 2 apr_slot, as one index across the APR words."""
    return (prio & ref_gprio_mask(vmcr, group)) >> (8 - pre_bits)


def words_to_int(words: list[int] | tuple[int, ...]) -> int:
    """APR words (32 bits each, word 0 lowest) as one bitmap."""
    return sum((w & 0xFFFFFFFF) << (32 * i) for i, w in enumerate(words))


def int_to_words(bits: int, n: int) -> list[int]:
    """One bitmap as ``n`` 32-bit APR words."""
    return [(bits >> (32 * i)) & 0xFFFFFFFF for i in range(n)]


def lowest_bit(bits: int) -> int:
    """Index of the least significant set bit of a non-zero value."""
    return (bits & -bits).bit_length() - 1


def ref_rpr(pre_bits: int, ap0r: list[int], ap1r: list[int]) -> int:
    """Section 2 running_priority: the lowest set bit of AP0R|AP1R, or 0xff when idle."""
    bits = words_to_int(ap0r) | words_to_int(ap1r)
    if not bits:
        return IDLE
    return lowest_bit(bits) << (8 - pre_bits)


def ref_hppvi(lrs: list[ListRegister], vmcr: IchVmcr) -> int | None:
    """Section 3 hppvi: exactly-Pending, group-enabled, lowest priority value, lowest index."""
    if not (vmcr.veng0 or vmcr.veng1):
        return None
    best, best_prio = None, 0xFF
    for n, lr in enumerate(lrs):
        if lr.state != P:
            continue
        if lr.group == 1 and not vmcr.veng1:
            continue
        if lr.group == 0 and not vmcr.veng0:
            continue
        if lr.priority < best_prio:
            best, best_prio = n, lr.priority
    return best


def ref_can_signal(pre_bits: int, st_: Any, lr: ListRegister) -> bool:
    """Section 3 can_signal: En, strict PMR, strictly higher group priority than RPR."""
    if not st_.hcr.en:
        return False
    if lr.priority >= st_.vmcr.vpmr:
        return False
    rp = ref_rpr(pre_bits, st_.ap0r, st_.ap1r)
    if rp == IDLE:
        return True
    m = ref_gprio_mask(st_.vmcr, lr.group)
    return (lr.priority & m) < (rp & m)


def ref_eoir_deactivates(pre_bits: int, st_: Any, group: int, intid: int) -> int | None:
    """Section 4.3 with the Arm switches: the LR an EOIR deactivates, or None."""
    if 1020 <= intid <= 1023:
        return None
    bits = words_to_int(st_.ap0r) | words_to_int(st_.ap1r)
    if not bits:
        return None
    dropped = lowest_bit(bits) << (8 - pre_bits)
    n = ref_find_active(st_.lrs, intid)
    if n is None:
        return None
    lr = st_.lrs[n]
    same = lr.group == group and (lr.priority & ref_gprio_mask(st_.vmcr, group)) == dropped
    if same and (not st_.vmcr.veoim or intid >= 8192):
        return n
    return None


def ref_aprs_after(st_: Any, kind: str, intid: int) -> tuple[list, list]:
    """Sections 4.3/4.4 with the Arm switches: EOIR clears the lowest set APR bit (Group 0's
    on a tie, 11.6) unless the INTID is special; DIR never touches the APRs."""
    ap0, ap1 = words_to_int(st_.ap0r), words_to_int(st_.ap1r)
    if kind == "eoir" and not 1020 <= intid <= 1023 and ap0 | ap1:
        bit = 1 << lowest_bit(ap0 | ap1)
        if ap0 & bit:
            ap0 &= ~bit
        else:
            ap1 &= ~bit
    n = len(st_.ap0r)
    return int_to_words(ap0, n), int_to_words(ap1, n)


def ref_dir_deactivates(st_: Any, intid: int) -> int | None:
    """Section 4.4: the LR a DIR deactivates, or None."""
    if intid >= 1020 or not st_.vmcr.veoim:
        return None
    return ref_find_active(st_.lrs, intid)


def ref_find_active(lrs: list[ListRegister], intid: int) -> int | None:
    """First LR with the active bit set (Active or Pending+Active) holding ``intid``."""
    for n, lr in enumerate(lrs):
        if lr.state in (A, PA) and lr.vintid == intid:
            return n
    return None


def ref_eoicount_delta(sw: ArchSwitches, st_: Any, op: tuple) -> int:
    """Section 5 table (with switches 11.4 and 11.5): 1 when EOIcount moves, else 0."""
    kind, intid = op[0], op[-1]
    veoim = st_.vmcr.veoim
    if kind == "eoir":
        if 1020 <= intid <= 1023:
            return 0
        has_apr = bool(words_to_int(st_.ap0r) | words_to_int(st_.ap1r))
        if not has_apr and sw.eoir_without_apr == "ignore":
            return 0
        if ref_find_active(st_.lrs, intid) is not None or intid >= 8192:
            return 0
        counts = (not veoim) or sw.eoir_eoimode1_counts
    else:
        if intid >= 1020 or not veoim:
            return 0
        if ref_find_active(st_.lrs, intid) is not None:
            return 0
        counts = True
    if counts and st_.hcr.vsgieoicount and intid < 16:
        counts = False
    return int(counts)


# --- building interfaces --------------------------------------------------------------------


@dataclass
class Case:
    """One virtual interface's configuration and register file, as the hypervisor loads it."""

    lrs: list[ListRegister]
    hcr: IchHcr = field(default_factory=lambda: IchHcr(en=True))
    vmcr: IchVmcr = field(
        default_factory=lambda: IchVmcr(veng0=True, veng1=True, vpmr=0xFF))
    ap0r: list[int] | None = None
    ap1r: list[int] | None = None
    pre_bits: int = 5
    pri_bits: int = 5
    tds: bool = True
    switches: ArchSwitches = field(default_factory=ArchSwitches)
    version: GicVersion = GicVersion.V3

    def config(self) -> CpuIfConfig:
        """The CpuIfConfig this case describes."""
        if self.version is GicVersion.V2:
            return v2_config(nr_lr=len(self.lrs), switches=self.switches)
        return CpuIfConfig(nr_lr=len(self.lrs), pre_bits=self.pre_bits, pri_bits=self.pri_bits,
                           tds=self.tds, switches=self.switches)

    def build(self, calls: list[int] | None = None) -> VirtualCpuInterface:
        """A VirtualCpuInterface loaded through the hypervisor writes; APRs restored directly."""
        cfg = self.config()
        c = VirtualCpuInterface(cfg, on_physical_deactivate=calls.append if calls is not None
                                else None)
        c.write_hcr(self.hcr)
        c.write_vmcr(self.vmcr)
        for n, lr in enumerate(self.lrs):
            c.write_lr(n, lr)
        if self.ap0r is not None:
            c.state.ap0r = list(self.ap0r)
        if self.ap1r is not None:
            c.state.ap1r = list(self.ap1r)
        return c


def apr_words(pre_bits: int, bits: list[int]) -> list[int]:
    """APR words with the given priority-level bits set."""
    return int_to_words(sum(1 << b for b in set(bits)), 1 << (pre_bits - 5))


# --- strategies -----------------------------------------------------------------------------

EDGE_INTIDS = [0, 15, 16, 31, 32, 1019, 1024, 8191, 8192, 65535]
prio_st = st.one_of(st.sampled_from([0, 0xFF, 0x80, 0xA0, 0xF8]), st.integers(0, 0xFF))
lr_vintid_st = st.one_of(
    st.sampled_from(EDGE_INTIDS), st.integers(0, 1019), st.integers(1024, 65535))
# mostly DIR-able INTIDs (< 1020), with an LPI edge
low_vintid_st = st.one_of(st.sampled_from([0, 15, 16, 31, 32, 1019, 8192]),
                          st.integers(0, 1019))
eoi_intid_st = st.one_of(
    st.sampled_from([*EDGE_INTIDS, 1020, 1021, 1022, 1023]), st.integers(0, 1019),
    st.integers(0, (1 << 16) - 1))
pintid_st = st.one_of(st.sampled_from([0, 32, 1019, 1020, 1023, 8191, 0x1FFF]),
                      st.integers(16, 1019), st.integers(0, 0x1FFF))


@st.composite
def lr_st(draw: st.DrawFn, vintid: int, hw_allowed: bool = True,
          states: tuple[LRState, ...] = (I, P, A, PA)) -> ListRegister:
    """An LR the hypervisor may legitimately write (no P+A for HW=1, no EOI bit with HW=1)."""
    hw = hw_allowed and draw(st.booleans())
    state = draw(st.sampled_from([s for s in states if not (hw and s == PA)] or [P]))
    return ListRegister(
        vintid=vintid, state=state, priority=draw(prio_st), group=draw(st.integers(0, 1)),
        hw=hw, pintid=draw(pintid_st) if hw else 0, eoi=False if hw else draw(st.booleans()),
    )


@st.composite
def lrs_st(draw: st.DrawFn, hw_allowed: bool = True,
           states: tuple[LRState, ...] = (I, P, A, PA),
           vintids: st.SearchStrategy[int] = lr_vintid_st,
           min_lr: int = 1) -> list[ListRegister]:
    """1..16 LRs with pairwise distinct vINTIDs, never 1020..1023 (UNPREDICTABLE)."""
    nr_lr = draw(st.one_of(st.sampled_from([min_lr, 16]), st.integers(min_lr, 16)))
    ids = draw(st.lists(vintids, min_size=nr_lr, max_size=nr_lr, unique=True))
    return [draw(lr_st(v, hw_allowed, states)) for v in ids]


hcr_st = st.builds(
    IchHcr, en=st.booleans(), uie=st.booleans(), lrenpie=st.booleans(), npie=st.booleans(),
    vgrp0eie=st.booleans(), vgrp0die=st.booleans(), vgrp1eie=st.booleans(),
    vgrp1die=st.booleans(), vsgieoicount=st.booleans(), tc=st.booleans(),
    tall0=st.booleans(), tall1=st.booleans(), tsei=st.booleans(), tdir=st.booleans(),
    dvim=st.booleans(), eoicount=st.one_of(st.sampled_from([0, 31]), st.integers(0, 31)),
)
vmcr_st = st.builds(
    IchVmcr, veng0=st.booleans(), veng1=st.booleans(), vackctl=st.booleans(),
    vfiqen=st.booleans(), vcbpr=st.booleans(), veoim=st.booleans(),
    vbpr0=st.integers(0, 7), vbpr1=st.integers(0, 7),
    vpmr=st.one_of(st.sampled_from([0, 0xFF]), st.integers(0, 0xFF)),
)
switches_st = st.builds(
    ArchSwitches,
    vgrp0d_condition=st.sampled_from(["veng0", "veng1"]),
    np_counts_pending_active=st.booleans(),
    underflow_count=st.sampled_from(["valid", "not_elrsr"]),
    eoir_eoimode1_counts=st.booleans(),
    eoir_without_apr=st.sampled_from(["ignore", "lookup"]),
    apr_drop_tie=st.sampled_from(["group0", "group1"]),
)


@st.composite
def bits_st(draw: st.DrawFn) -> tuple[int, int]:
    """(pre_bits, pri_bits) with 5 <= pre <= pri <= 8, edges 5 and 7 preferred."""
    pre = draw(st.one_of(st.sampled_from([5, 7]), st.integers(5, 7)))
    return pre, draw(st.integers(pre, 8))


@st.composite
def apr_bits_st(draw: st.DrawFn, pre_bits: int) -> list[int]:
    """APR words with a few active-priority levels set (often none)."""
    levels = 1 << pre_bits
    return apr_words(pre_bits, draw(st.lists(st.integers(0, levels - 1), max_size=3)))


mostly_true = st.sampled_from([True, True, True, False])


@st.composite
def case_st(draw: st.DrawFn, hw_allowed: bool = True,
            states: tuple[LRState, ...] = (I, P, A, PA), live: bool | None = None,
            vintids: st.SearchStrategy[int] = lr_vintid_st, min_lr: int = 1) -> Case:
    """A GICv3 interface with arbitrary LRs, HCR, VMCR, APRs and switches.

    A "live" interface (half of them unless ``live`` says) is biased towards En=1, enabled
    groups, an open PMR and few active priorities, so that guest operations do something.
    """
    pre, pri = draw(bits_st())
    hcr, vmcr = draw(hcr_st), draw(vmcr_st)
    ap_st = apr_bits_st(pre)
    if live if live is not None else draw(st.booleans()):
        states = (*states, P, P) if P in states else states
        hcr = replace(hcr, en=draw(mostly_true))
        vmcr = replace(vmcr, veng0=draw(mostly_true), veng1=draw(mostly_true),
                       vpmr=draw(st.one_of(st.just(0xFF), st.integers(0x80, 0xFF))))
        ap_st = st.one_of(st.just([0] * (1 << (pre - 5))), ap_st)
    return Case(
        lrs=draw(lrs_st(hw_allowed, states, vintids, min_lr)), hcr=hcr, vmcr=vmcr,
        ap0r=draw(ap_st), ap1r=draw(ap_st), pre_bits=pre, pri_bits=pri,
        tds=draw(st.booleans()), switches=draw(switches_st),
    )


@st.composite
def v2_case_st(draw: st.DrawFn) -> Case:
    """A GICv2 interface: 10-bit IDs, 5 priority bits, one APR, no trap bits in GICH_HCR."""
    nr_lr = draw(st.integers(1, 16))
    ids = draw(st.lists(st.integers(0, 1019), min_size=nr_lr, max_size=nr_lr, unique=True))
    lrs = []
    for v in ids:
        lr = draw(lr_st(v))
        lrs.append(replace(lr, pintid=lr.pintid & 0x3FF))
    return Case(lrs=lrs, hcr=draw(hcr_st), vmcr=draw(vmcr_st), ap0r=draw(apr_bits_st(5)),
                switches=draw(switches_st), version=GicVersion.V2, tds=False)


def lr_at(vintid: int, state: LRState = P, prio: int = 0xA0, group: int = 1,
          **kw: Any) -> ListRegister:
    """An LR spelled short for @example cases."""
    return ListRegister(vintid=vintid, state=state, priority=prio, group=group, **kw)


def snapshot(c: VirtualCpuInterface) -> Any:
    """A deep copy of the register file."""
    return copy.deepcopy(c.state)


# --- 1. IAR masking -------------------------------------------------------------------------


@given(case=case_st(), group=st.integers(0, 1))
@example(case=Case(lrs=[lr_at(32, prio=0x80)], vmcr=IchVmcr(veng1=True, vpmr=0x80)), group=1)
@example(case=Case(lrs=[lr_at(32, prio=0x00)], hcr=IchHcr(en=False)), group=1)
@example(case=Case(lrs=[lr_at(31, prio=0x40, group=0)],
                   vmcr=IchVmcr(veng0=False, veng1=True, vpmr=0xFF)), group=0)
@example(case=Case(lrs=[lr_at(1019, prio=0x40)], ap1r=apr_words(5, [8])), group=1)
@example(case=Case(lrs=[lr_at(8192, prio=0x38)], ap0r=apr_words(7, [28]), pre_bits=7,
                   pri_bits=8), group=1)
@example(case=Case(lrs=[lr_at(16, prio=0xFF)] * 1 + [lr_at(v, I) for v in range(100, 115)]),
         group=1)
def test_iar_never_acknowledges_masked_interrupt_and_sets_one_apr_bit(case: Case,
                                                                     group: int) -> None:
    """IAR returns only an unmasked (PMR, group enable, running priority, En) Pending LR of
    its group, turns it Active and sets exactly the APR bit of its group priority."""
    c = case.build()
    before = snapshot(c)
    got = c.read_iar(group, trap_check=False)
    assert not isinstance(got, Trap)
    event("spurious" if got == SPURIOUS else "acknowledged")
    if got == SPURIOUS:
        assert c.state == before
        return
    [n] = [i for i, lr in enumerate(before.lrs) if lr.vintid == got]
    lr = before.lrs[n]
    vmcr = before.vmcr
    assert before.hcr.en
    assert lr.state == P
    assert lr.group == group
    assert (vmcr.veng0, vmcr.veng1)[group]
    assert lr.priority < vmcr.vpmr
    rp = ref_rpr(case.pre_bits, before.ap0r, before.ap1r)
    m = ref_gprio_mask(vmcr, group)
    assert rp == IDLE or (lr.priority & m) < (rp & m)
    assert c.state.lrs[n] == lr.with_state(A)
    assert [x for i, x in enumerate(c.state.lrs) if i != n] == \
        [x for i, x in enumerate(before.lrs) if i != n]
    banks_before = (words_to_int(before.ap0r), words_to_int(before.ap1r))
    banks_after = (words_to_int(c.state.ap0r), words_to_int(c.state.ap1r))
    k = ref_apr_index(case.pre_bits, vmcr, lr.priority, group)
    assert banks_after[group] ^ banks_before[group] == 1 << k
    assert banks_after[group] & (1 << k)
    assert banks_after[1 - group] == banks_before[1 - group]


@given(case=case_st(), group=st.integers(0, 1))
@example(case=Case(lrs=[lr_at(40, prio=0x60), lr_at(41, prio=0x60)]), group=1)
@example(case=Case(lrs=[lr_at(40, PA, prio=0x10), lr_at(41, prio=0x60)]), group=1)
@example(case=Case(lrs=[lr_at(40, prio=0x10, group=0), lr_at(41, prio=0x60)]), group=1)
def test_iar_acknowledges_exactly_the_signallable_hppvi(case: Case, group: int) -> None:
    """IAR returns the HPPVI's vINTID iff it is in the read group and can be signalled (4.2),
    else 1023."""
    c = case.build()
    before = snapshot(c)
    n = ref_hppvi(before.lrs, before.vmcr)
    if n is None or before.lrs[n].group != group or \
            not ref_can_signal(case.pre_bits, before, before.lrs[n]):
        expected = SPURIOUS
    else:
        expected = before.lrs[n].vintid
    assert c.read_iar(group, trap_check=False) == expected


# --- 2. well-behaved guests -----------------------------------------------------------------

_ack_st = st.tuples(st.just("ack"), st.integers(0, 1))
# the hypervisor fills an Invalid LR with a new Pending interrupt (which may preempt)
_inject_st = st.tuples(st.just("inject"), st.sampled_from(range(0, 0x100, 4)),
                       st.integers(0, 1), st.integers(0, 999))
guest_action_st = st.lists(
    st.one_of(_ack_st, _inject_st, st.just(("ack_signalled",)), _inject_st,
              st.just(("ack_signalled",)), st.just(("eoi",))),
    min_size=6, max_size=40,
)


@given(case=case_st(states=(I, I, I, I, P), live=True, min_lr=3), actions=guest_action_st,
       min_bpr=st.booleans())
@example(case=Case(lrs=[lr_at(32, prio=0x80), lr_at(33, prio=0x40), lr_at(34, prio=0x00)]),
         actions=[("ack", 1)] * 3, min_bpr=True)
@example(case=Case(lrs=[lr_at(32, prio=0x00)]),
         actions=[("ack", 1), ("inject", 0x00, 1, 0), ("eoi",), ("inject", 0, 0, 0),
                  ("ack_signalled",)], min_bpr=False)
@example(case=Case(lrs=[lr_at(15, prio=0x80, group=0), lr_at(16, prio=0x80)],
                   pre_bits=7, pri_bits=7),
         actions=[("ack", 0), ("ack", 1), ("eoi",), ("ack", 1)], min_bpr=False)
@example(case=Case(lrs=[lr_at(32, prio=0xF0), lr_at(33, I), lr_at(34, I)], pre_bits=7,
                   pri_bits=8),
         actions=[("ack", 1), ("inject", 0x80, 0, 0), ("ack", 0), ("inject", 0x00, 1, 5),
                  ("ack", 1), ("eoi",), ("eoi",)], min_bpr=False)
def test_nested_ack_eoi_apr_count_equals_acks_minus_drops_and_returns_idle(
        case: Case, actions: list[tuple], min_bpr: bool) -> None:
    """With acknowledge then EOIR in reverse order (EOImode 0), set APR bits = acks - drops,
    RPR is the latest ack's group priority, and all EOIs bring RPR back to 0xff."""
    case.hcr = IchHcr(en=True)
    case.vmcr = replace(case.vmcr, veoim=False)
    if min_bpr:  # finest preemption (write_vmcr clamps 0 to the minimum), open PMR: nesting
        case.vmcr = replace(case.vmcr, vbpr0=0, vbpr1=0, vpmr=0xFF)
    case.ap0r = case.ap1r = None
    c = case.build()
    stack: list[tuple[int, int, int]] = []  # (group, intid, group priority)
    acked: set[int] = set()
    depth = 0

    def check() -> None:
        assert bin(words_to_int(c.state.ap0r)).count("1") + \
            bin(words_to_int(c.state.ap1r)).count("1") == len(stack)
        assert c.read_rpr(trap_check=False) == (stack[-1][2] if stack else IDLE)

    for action in actions:
        if action[0] in ("ack", "ack_signalled"):
            virq, vfiq = c.virq_vfiq()
            g = action[1] if action[0] == "ack" else 1 if virq else 0 if vfiq else None
            got = SPURIOUS if g is None else c.read_iar(g, trap_check=False)
            if got != SPURIOUS:
                [lr] = [x for x in c.state.lrs if x.vintid == got and x.state == A]
                stack.append((g, got, lr.priority & ref_gprio_mask(c.state.vmcr, g)))
                acked.add(got)
        elif action[0] == "eoi":
            if stack:
                g, intid, _ = stack.pop()
                assert c.write_eoir(g, intid, trap_check=False) is None
        else:
            _, prio, g, pick = action
            free = [n for n, x in enumerate(c.state.lrs) if x.state == I]
            used = {x.vintid for x in c.state.lrs if x.state != I} | acked
            ids = [v for v in range(32, 1020) if v not in used]
            if free and ids:
                c.write_lr(free[0], ListRegister(vintid=ids[pick % len(ids)], state=P,
                                                 priority=prio, group=g))
        check()
        depth = max(depth, len(stack))
    event(f"max nesting depth: {min(depth, 3)}")
    while stack:
        g, intid, _ = stack.pop()
        c.write_eoir(g, intid, trap_check=False)
        check()
    assert c.read_rpr(trap_check=False) == IDLE
    assert not any(lr.state.active for lr in c.state.lrs)
    assert all(lr.state == I for lr in c.state.lrs if lr.vintid in acked)
    assert c.state.hcr.eoicount == 0


# --- 3. EOIcount ----------------------------------------------------------------------------


@st.composite
def eoicount_case_st(draw: st.DrawFn) -> tuple[Case, tuple]:
    """An interface plus one EOIR/DIR write, whose INTID is often one of the LRs'."""
    case = draw(case_st())
    intid = draw(st.one_of(eoi_intid_st, st.sampled_from([lr.vintid for lr in case.lrs])))
    op = draw(st.sampled_from([("eoir", 0, intid), ("eoir", 1, intid), ("dir", intid)]))
    return case, op


def _eoi_case(lrs: list[ListRegister], eoim: bool, count: int = 0, aprs: bool = True,
              vsgi: bool = False, sw: ArchSwitches | None = None) -> Case:
    return Case(lrs=lrs, hcr=IchHcr(en=True, eoicount=count, vsgieoicount=vsgi),
                vmcr=IchVmcr(veng0=True, veng1=True, vpmr=0xFF, veoim=eoim),
                ap1r=apr_words(5, [20]) if aprs else None, switches=sw or ArchSwitches())


@given(case_op=eoicount_case_st())
@example(case_op=(_eoi_case([lr_at(40, A)], False, count=31), ("eoir", 1, 8191)))
@example(case_op=(_eoi_case([lr_at(40, A)], False), ("eoir", 1, 8192)))
@example(case_op=(_eoi_case([lr_at(40, A)], False), ("eoir", 1, 1019)))
@example(case_op=(_eoi_case([lr_at(40, A)], False), ("eoir", 1, 1020)))
@example(case_op=(_eoi_case([lr_at(40, A)], True), ("eoir", 1, 41)))
@example(case_op=(_eoi_case([lr_at(40, A)], True,
                            sw=ArchSwitches(eoir_eoimode1_counts=True)), ("eoir", 1, 41)))
@example(case_op=(_eoi_case([lr_at(40, A)], True, count=31), ("dir", 1019)))
@example(case_op=(_eoi_case([lr_at(40, A)], True), ("dir", 1020)))
@example(case_op=(_eoi_case([lr_at(40, A)], True), ("dir", 8192)))
@example(case_op=(_eoi_case([lr_at(40, A)], True, vsgi=True), ("dir", 15)))
@example(case_op=(_eoi_case([lr_at(40, A)], True, vsgi=True), ("dir", 16)))
@example(case_op=(_eoi_case([lr_at(40, A)], False, vsgi=True), ("eoir", 0, 15)))
@example(case_op=(_eoi_case([lr_at(40, A)], False, aprs=False), ("eoir", 1, 41)))
@example(case_op=(_eoi_case([lr_at(40, A)], False, aprs=False,
                            sw=ArchSwitches(eoir_without_apr="lookup")), ("eoir", 1, 41)))
@example(case_op=(_eoi_case([lr_at(40, A)], False), ("eoir", 0, 40)))
@example(case_op=(_eoi_case([lr_at(40, PA)], True), ("dir", 40)))
def test_eoicount_moves_only_on_the_plus_one_rows_and_wraps_at_32(case_op: tuple) -> None:
    """EOIcount gains 1 (mod 32) exactly on section 5's +1 rows (EOImode-1 EOIR per 11.4,
    no-APR EOIR per 11.5, vSGIEOICount, never for LPIs or specials) and stays put otherwise."""
    case, op = case_op
    c = case.build()
    before = snapshot(c)
    if op[0] == "eoir":
        got = c.write_eoir(op[1], op[2], trap_check=False)
    else:
        got = c.write_dir(op[1], trap_check=False)
    assert got is None
    delta = ref_eoicount_delta(case.switches, before, op)
    event(f"{op[0]} eoicount +{delta}")
    assert c.state.hcr.eoicount == (before.hcr.eoicount + delta) % 32
    assert replace(c.state.hcr, eoicount=0) == replace(before.hcr, eoicount=0)


# --- 4. derived state -----------------------------------------------------------------------


def ref_misr_bits(case: Case, st_: Any) -> dict[str, bool]:
    """Section 3 MISR with the section 11.1-11.3 switches."""
    sw, hcr, vmcr, lrs = case.switches, st_.hcr, st_.vmcr, st_.lrs
    eisr = [lr.state == I and not lr.hw and lr.eoi for lr in lrs]
    elrsr = [lr.state == I and (lr.hw or not lr.eoi) for lr in lrs]
    if sw.underflow_count == "valid":
        used = sum(lr.state != I for lr in lrs)
    else:
        used = sum(not e for e in elrsr)
    if sw.np_counts_pending_active:
        any_pending = any(lr.state in (P, PA) for lr in lrs)
    else:
        any_pending = any(lr.state == P for lr in lrs)
    g0d_off = not (vmcr.veng0 if sw.vgrp0d_condition == "veng0" else vmcr.veng1)
    return {
        "eoi": any(eisr), "u": hcr.uie and used <= 1,
        "lrenp": hcr.lrenpie and hcr.eoicount != 0, "np": hcr.npie and not any_pending,
        "vgrp0e": hcr.vgrp0eie and vmcr.veng0, "vgrp0d": hcr.vgrp0die and g0d_off,
        "vgrp1e": hcr.vgrp1eie and vmcr.veng1, "vgrp1d": hcr.vgrp1die and not vmcr.veng1,
    }


def _derived(c: VirtualCpuInterface) -> tuple:
    return c.misr(), c.eisr(), c.elrsr(), c.maintenance_level()


@given(case=st.one_of(case_st(), v2_case_st()), other_ap0r=st.lists(st.integers(0, 127),
                                                                     max_size=3),
       other_ap1r=st.lists(st.integers(0, 127), max_size=3))
@example(case=Case(lrs=[lr_at(32, I, eoi=True)] + [lr_at(v, I) for v in range(33, 48)],
                   hcr=IchHcr(en=True, uie=True)), other_ap0r=[0], other_ap1r=[])
@example(case=Case(lrs=[lr_at(32, I, hw=True, pintid=1020, eoi=False)],
                   hcr=IchHcr(en=True, npie=True, vgrp0die=True)),
         other_ap0r=[], other_ap1r=[31])
def test_misr_eisr_elrsr_and_mi_level_are_pure_functions_of_lr_hcr_vmcr(
        case: Case, other_ap0r: list[int], other_ap1r: list[int]) -> None:
    """MISR/EISR/ELRSR/MI level follow section 3 from LR/HCR/VMCR alone (APRs irrelevant);
    EISR and ELRSR are disjoint and never flag a valid LR."""
    c1 = case.build()
    levels = 32 if case.version is GicVersion.V2 else 1 << case.pre_bits
    pre = 5 if case.version is GicVersion.V2 else case.pre_bits
    c2 = replace(case, ap0r=apr_words(pre, [b % levels for b in other_ap0r]),
                 ap1r=None if case.version is GicVersion.V2
                 else apr_words(pre, [b % levels for b in other_ap1r])).build()
    before = snapshot(c1)
    d1 = _derived(c1)
    assert c1.state == before
    assert d1 == _derived(c2)
    misr, eisr, elrsr, level = d1
    st_ = c1.state
    assert eisr & elrsr == 0
    assert (eisr | elrsr) >> len(st_.lrs) == 0
    for n, lr in enumerate(st_.lrs):
        assert bool(eisr >> n & 1) == (lr.state == I and not lr.hw and lr.eoi)
        assert bool(elrsr >> n & 1) == (lr.state == I and (lr.hw or not lr.eoi))
        if lr.state != I:
            assert not (eisr | elrsr) >> n & 1
    expected = ref_misr_bits(case, st_)
    assert {k: getattr(misr, k) for k in expected} == expected
    assert level == (st_.hcr.en and any(expected.values()))


@given(case=case_st())
@example(case=Case(lrs=[lr_at(32, prio=0x80)], vmcr=IchVmcr(veng1=True, vpmr=0x80)))
@example(case=Case(lrs=[lr_at(32, prio=0x78, group=0)], vmcr=IchVmcr(veng0=True, vpmr=0x80)))
def test_virq_vfiq_is_hppvi_that_can_signal_by_group(case: Case) -> None:
    """vIRQ/vFIQ is raised for the HPPVI iff it can be signalled, by its group (section 3)."""
    c = case.build()
    n = ref_hppvi(c.state.lrs, c.state.vmcr)
    virq = vfiq = False
    if n is not None and ref_can_signal(case.pre_bits, c.state, c.state.lrs[n]):
        virq, vfiq = c.state.lrs[n].group == 1, c.state.lrs[n].group == 0
    assert c.virq_vfiq() == (virq, vfiq)


# --- 5. traps -------------------------------------------------------------------------------

G0_REGS = {IcvReg.IAR0, IcvReg.EOIR0, IcvReg.HPPIR0, IcvReg.BPR0, IcvReg.AP0R, IcvReg.IGRPEN0}
G1_REGS = {IcvReg.IAR1, IcvReg.EOIR1, IcvReg.HPPIR1, IcvReg.BPR1, IcvReg.AP1R, IcvReg.IGRPEN1}

# (register, is_write, call(c, value))
GUEST_OPS: list[tuple[IcvReg, bool, Any]] = [
    (IcvReg.IAR0, False, lambda c, _: c.read_iar(0)),
    (IcvReg.IAR1, False, lambda c, _: c.read_iar(1)),
    (IcvReg.EOIR0, True, lambda c, v: c.write_eoir(0, v)),
    (IcvReg.EOIR1, True, lambda c, v: c.write_eoir(1, v)),
    (IcvReg.HPPIR0, False, lambda c, _: c.read_hppir(0)),
    (IcvReg.HPPIR1, False, lambda c, _: c.read_hppir(1)),
    (IcvReg.BPR0, False, lambda c, _: c.read_bpr(0)),
    (IcvReg.BPR0, True, lambda c, v: c.write_bpr(0, v & 7)),
    (IcvReg.BPR1, False, lambda c, _: c.read_bpr(1)),
    (IcvReg.BPR1, True, lambda c, v: c.write_bpr(1, v & 7)),
    (IcvReg.AP0R, False, lambda c, _: c.read_apr(0, 0)),
    (IcvReg.AP0R, True, lambda c, v: c.write_apr(0, 0, v)),
    (IcvReg.AP1R, False, lambda c, _: c.read_apr(1, 0)),
    (IcvReg.AP1R, True, lambda c, v: c.write_apr(1, 0, v)),
    (IcvReg.IGRPEN0, False, lambda c, _: c.read_igrpen(0)),
    (IcvReg.IGRPEN0, True, lambda c, v: c.write_igrpen(0, v & 1)),
    (IcvReg.IGRPEN1, False, lambda c, _: c.read_igrpen(1)),
    (IcvReg.IGRPEN1, True, lambda c, v: c.write_igrpen(1, v & 1)),
    (IcvReg.CTLR, False, lambda c, _: c.read_ctlr()),
    (IcvReg.CTLR, True, lambda c, v: c.write_ctlr(v)),
    (IcvReg.DIR, True, lambda c, v: c.write_dir(v)),
    (IcvReg.PMR, False, lambda c, _: c.read_pmr()),
    (IcvReg.PMR, True, lambda c, v: c.write_pmr(v & 0xFF)),
    (IcvReg.RPR, False, lambda c, _: c.read_rpr()),
]
DIR_OP = next(op for op in GUEST_OPS if op[0] is IcvReg.DIR)
IAR1_OP = next(op for op in GUEST_OPS if op[0] is IcvReg.IAR1)
COMMON_OPS = [op for op in GUEST_OPS
              if op[0] in (IcvReg.CTLR, IcvReg.DIR, IcvReg.PMR, IcvReg.RPR)]
V2_OPS = [op for op in GUEST_OPS
          if op[0] not in (IcvReg.IGRPEN0, IcvReg.IGRPEN1, IcvReg.AP1R)]


def ref_trap_cause(case: Case, hcr: IchHcr, reg: IcvReg) -> TrapCause | None:
    """Section 4.1: TALL0/TALL1 by group, TDIR (only with TDS) before TC for DIR, TC for
    CTLR/PMR/RPR."""
    if reg in G0_REGS:
        return TrapCause.TALL0 if hcr.tall0 else None
    if reg in G1_REGS:
        return TrapCause.TALL1 if hcr.tall1 else None
    if reg is IcvReg.DIR and hcr.tdir and case.tds:
        return TrapCause.TDIR
    return TrapCause.TC if hcr.tc else None


def _written(reg: IcvReg, value: int) -> int:
    if reg in (IcvReg.BPR0, IcvReg.BPR1):
        return value & 7
    if reg in (IcvReg.IGRPEN0, IcvReg.IGRPEN1):
        return value & 1
    if reg is IcvReg.PMR:
        return value & 0xFF
    return value


@given(case=case_st(), op=st.one_of(st.sampled_from(GUEST_OPS), st.sampled_from(COMMON_OPS)),
       value=st.one_of(eoi_intid_st, st.integers(0, 0xFFFFFFFF)))
@example(case=Case(lrs=[lr_at(32, A)], hcr=IchHcr(en=True, tdir=True, tc=True)),
         op=DIR_OP, value=32)
@example(case=Case(lrs=[lr_at(32, A)], hcr=IchHcr(en=True, tdir=True), tds=False),
         op=DIR_OP, value=32)
@example(case=Case(lrs=[lr_at(32, A)], hcr=IchHcr(en=True, tdir=True, tc=True), tds=False),
         op=DIR_OP, value=32)
@example(case=Case(lrs=[lr_at(32)], hcr=IchHcr(en=True, tc=True)), op=IAR1_OP, value=0)
def test_trapped_access_changes_nothing_and_names_its_cause(case: Case, op: tuple,
                                                           value: int) -> None:
    """A GICv3 guest access traps exactly per 4.1 (TALL0/TALL1 by group, TDIR then TC for DIR,
    TC for CTLR/PMR/RPR), and a trapped access leaves every register and the GIC untouched."""
    reg, is_write, call = op
    calls: list[int] = []
    c = case.build(calls)
    before = snapshot(c)
    got = call(c, value)
    expected = ref_trap_cause(case, before.hcr, reg)
    event(f"trap cause {expected}")
    if expected is None:
        assert not isinstance(got, Trap)
        return
    assert isinstance(got, Trap)
    assert (got.register, got.write, got.cause) == (reg, is_write, expected)
    if is_write:
        assert got.value == _written(reg, value)
    assert c.state == before
    assert calls == []


@given(case=v2_case_st(), op=st.sampled_from(V2_OPS), dir_trapped=st.booleans(),
       value=st.one_of(eoi_intid_st, st.integers(0, 0xFFFFFFFF)),
       hcr_bits=st.integers(0, 0xFFFF))
@example(case=Case(lrs=[lr_at(32, A)], version=GicVersion.V2, tds=False,
                   vmcr=IchVmcr(veng1=True, veoim=True, vpmr=0xFF)),
         op=DIR_OP, dir_trapped=True, value=32, hcr_bits=0xFFFF)
@example(case=Case(lrs=[lr_at(32, A)], version=GicVersion.V2, tds=False),
         op=DIR_OP, dir_trapped=False, value=32, hcr_bits=0xFFFF)
def test_gicv2_traps_only_dir_and_only_when_its_page_is_unmapped(
        case: Case, op: tuple, dir_trapped: bool, value: int, hcr_bits: int) -> None:
    """GICv2 has no HCR trap bits: only GICV_DIR traps, when its page is left unmapped (8)."""
    reg, _is_write, call = op
    calls: list[int] = []
    c = case.build(calls)
    c.state.v2_dir_page_trapped = dir_trapped
    # Trap bits a GICv3 HCR would have: GICv2 has none, whatever the value says.
    c.state.hcr = replace(c.state.hcr, tc=bool(hcr_bits & 1 << 10),
                          tall0=bool(hcr_bits & 1 << 11), tall1=bool(hcr_bits & 1 << 12),
                          tdir=bool(hcr_bits & 1 << 14))
    before = snapshot(c)
    got = call(c, value)
    if reg is IcvReg.DIR and dir_trapped:
        assert isinstance(got, Trap)
        assert (got.register, got.write, got.cause) == (reg, True, TrapCause.V2_DIR_PAGE)
        assert c.state == before
        assert calls == []
    else:
        assert not isinstance(got, Trap)


# --- 6. HW=1 deactivation -------------------------------------------------------------------

hw_op_st = st.one_of(
    st.tuples(st.just("iar"), st.integers(0, 1)),
    st.tuples(st.just("eoir"), st.integers(0, 1), st.integers(0, 15)),
    st.tuples(st.just("dir"), st.integers(0, 15)),
    st.tuples(st.just("eoimode"), st.booleans()),
    # a guest completing one interrupt: IAR, then EOIR and DIR of the returned INTID
    st.tuples(st.just("cycle"), st.integers(0, 1)),
)


def _hw_step(c: VirtualCpuInterface, calls: list[int], pre_bits: int, op: tuple) -> int | None:
    """Run one guest operation, check its deactivation and physical-deactivate calls (4.3,
    4.4, 6); return what an IAR returned."""
    before = snapshot(c)
    del calls[:]
    target, got = None, None
    nr = len(before.lrs)
    if op[0] == "iar":
        got = c.read_iar(op[1])
    elif op[0] == "eoimode":
        c.write_ctlr(int(op[1]) << 1)
        assert c.state.vmcr.veoim == op[1]
    elif op[0] == "eoir":
        intid = op[2] if op[-1] == "id" else before.lrs[op[2] % nr].vintid
        target = ref_eoir_deactivates(pre_bits, before, op[1], intid)
        c.write_eoir(op[1], intid)
    else:
        intid = op[1] if op[-1] == "id" else before.lrs[op[1] % nr].vintid
        target = ref_dir_deactivates(before, intid)
        c.write_dir(intid)
    if op[0] in ("eoir", "dir"):
        assert (c.state.ap0r, c.state.ap1r) == ref_aprs_after(before, op[0], intid)
        expected_lrs = list(before.lrs)
        if target is not None:
            lr = before.lrs[target]
            expected_lrs[target] = lr.with_state(LRState(lr.state & ~A))
        assert c.state.lrs == expected_lrs
    expected_calls = []
    if target is not None and before.lrs[target].hw and before.lrs[target].pintid < 1020:
        expected_calls = [before.lrs[target].pintid]
    assert calls == expected_calls
    if target is not None:
        event("HW deactivation with pINTID call" if expected_calls else
              "deactivation without call")
    return got if isinstance(got, int) else None


@given(case=case_st(states=(I, P, A), live=True, vintids=low_vintid_st),
       ops=st.lists(hw_op_st, min_size=4, max_size=30))
@example(case=Case(lrs=[lr_at(32, hw=True, pintid=1019)]),
         ops=[("iar", 1), ("eoir", 1, 0)])
@example(case=Case(lrs=[lr_at(32, hw=True, pintid=1020)]),
         ops=[("iar", 1), ("eoir", 1, 0)])
@example(case=Case(lrs=[lr_at(16, hw=True, pintid=48), lr_at(17, eoi=True)]),
         ops=[("eoimode", True), ("iar", 1), ("eoir", 1, 0), ("dir", 0), ("dir", 0),
              ("iar", 1), ("eoir", 1, 1), ("dir", 1)])
@example(case=Case(lrs=[lr_at(8192, hw=True, pintid=8191)]),
         ops=[("eoimode", True), ("iar", 1), ("eoir", 1, 0)])
@example(case=Case(lrs=[lr_at(31, hw=True, pintid=31), lr_at(32, A, hw=True, pintid=0)]),
         ops=[("eoimode", True), ("cycle", 1), ("dir", 1)])
def test_hw_lr_deactivation_deactivates_pintid_exactly_once(case: Case,
                                                           ops: list[tuple]) -> None:
    """Each EOIR (EOImode 0) or DIR (EOImode 1) deactivation of an HW=1 LR calls the physical
    deactivate once with its pINTID (< 1020); HW=0 LRs and other operations never call it."""
    case.hcr = IchHcr(en=True)
    case.switches = ArchSwitches()
    calls: list[int] = []
    c = case.build(calls)
    for op in ops:
        if op[0] != "cycle":
            _hw_step(c, calls, case.pre_bits, op)
            continue
        got = _hw_step(c, calls, case.pre_bits, ("iar", op[1]))
        if got is not None and got != SPURIOUS:
            _hw_step(c, calls, case.pre_bits, ("eoir", op[1], got, "id"))
            _hw_step(c, calls, case.pre_bits, ("dir", got, "id"))


# --- 7. register encodings ------------------------------------------------------------------


@st.composite
def lr_v3_value_st(draw: st.DrawFn) -> ListRegister:
    """Any ICH_LR<n>_EL2 field combination within the v3 field widths."""
    hw = draw(st.booleans())
    return ListRegister(
        vintid=draw(st.one_of(st.sampled_from([0, 1023, 8192, 0xFFFFFFFF]),
                              st.integers(0, 0xFFFFFFFF))),
        state=draw(st.sampled_from(list(LRState))), priority=draw(prio_st),
        group=draw(st.integers(0, 1)), hw=hw, pintid=draw(pintid_st) if hw else 0,
        eoi=False if hw else draw(st.booleans()),
    )


@st.composite
def lr_v2_value_st(draw: st.DrawFn) -> ListRegister:
    """Any GICH_LR<n> field combination within the v2 field widths."""
    hw = draw(st.booleans())
    return ListRegister(
        vintid=draw(st.integers(0, 0x3FF)), state=draw(st.sampled_from(list(LRState))),
        priority=draw(st.integers(0, 31)) << 3, group=draw(st.integers(0, 1)), hw=hw,
        pintid=draw(st.integers(0, 0x3FF)) if hw else 0,
        eoi=False if hw else draw(st.booleans()),
        source_cpu=0 if hw else draw(st.integers(0, 7)),
    )


@given(lr=lr_v3_value_st())
@example(lr=ListRegister(vintid=0xFFFFFFFF, state=PA, priority=0xFF, group=1, eoi=True))
@example(lr=ListRegister(vintid=1019, state=A, priority=0, group=0, hw=True, pintid=0x1FFF))
def test_ich_lr_v3_decode_inverts_encode(lr: ListRegister) -> None:
    """decode_lr_v3(encode_lr_v3(lr)) == lr for every 64-bit ICH_LR field value (section 1)."""
    val = encode_lr_v3(lr)
    assert 0 <= val < 1 << 64
    assert decode_lr_v3(val) == lr


@given(lr=lr_v2_value_st())
@example(lr=ListRegister(vintid=0x3FF, state=PA, priority=0xF8, group=1, eoi=True,
                         source_cpu=7))
@example(lr=ListRegister(vintid=15, state=A, priority=0, group=0, hw=True, pintid=0x3FF))
def test_gich_lr_v2_decode_inverts_encode(lr: ListRegister) -> None:
    """decode_lr_v2(encode_lr_v2(lr)) == lr for every 32-bit GICH_LR field value (section 8)."""
    val = encode_lr_v2(lr)
    assert 0 <= val < 1 << 32
    assert decode_lr_v2(val) == lr


V2_HCR_FIELDS = ("en", "uie", "lrenpie", "npie", "vgrp0eie", "vgrp0die", "vgrp1eie",
                 "vgrp1die")


@given(hcr=hcr_st, version=st.sampled_from(list(GicVersion)))
@example(hcr=IchHcr(eoicount=31, tdir=True, dvim=True), version=GicVersion.V3)
@example(hcr=IchHcr(eoicount=31, en=True, vgrp1die=True), version=GicVersion.V2)
def test_ich_hcr_decode_inverts_encode_on_the_versions_bits(hcr: IchHcr,
                                                            version: GicVersion) -> None:
    """ICH_HCR_EL2 (all of section 1's fields) and GICH_HCR (section 8's fields) round-trip;
    bits GICv2 lacks decode as 0."""
    if version is GicVersion.V2:
        hcr = IchHcr(eoicount=hcr.eoicount, **{f: getattr(hcr, f) for f in V2_HCR_FIELDS})
    val = encode_hcr(hcr, version)
    assert 0 <= val < 1 << 32
    assert decode_hcr(val, version) == hcr
    assert val >> 27 == hcr.eoicount


@given(vmcr=vmcr_st, version=st.sampled_from(list(GicVersion)))
@example(vmcr=IchVmcr(vpmr=0xFF, vbpr0=7, vbpr1=7, veoim=True), version=GicVersion.V2)
@example(vmcr=IchVmcr(vpmr=0x07, vbpr0=0, vbpr1=0), version=GicVersion.V2)
@example(vmcr=IchVmcr(vpmr=0xFF, vbpr0=7, vbpr1=7, veoim=True), version=GicVersion.V3)
def test_ich_vmcr_decode_inverts_encode_with_v2_vpmr_keeping_5_bits(
        vmcr: IchVmcr, version: GicVersion) -> None:
    """ICH_VMCR_EL2 round-trips exactly; GICH_VMCR round-trips with VPMR cut to its top 5 bits
    (VMPriMask [31:27])."""
    val = encode_vmcr(vmcr, version)
    assert 0 <= val < 1 << 32
    expected = vmcr if version is GicVersion.V3 else replace(vmcr, vpmr=vmcr.vpmr & 0xF8)
    assert decode_vmcr(val, version) == expected


# --- 8. RES0 priority bits and BPR minimum --------------------------------------------------


@given(bits=bits_st(), lrs=lrs_st(), n=st.integers(0, 15))
@example(bits=(5, 5), lrs=[lr_at(32, prio=0xFF)], n=0)
@example(bits=(7, 8), lrs=[lr_at(32, prio=0xFF)], n=0)
@example(bits=(7, 7), lrs=[lr_at(32, prio=0x01)] * 16, n=15)
def test_write_lr_forces_unimplemented_priority_bits_to_zero(
        bits: tuple[int, int], lrs: list[ListRegister], n: int) -> None:
    """write_lr stores the LR with the priority bits below PRIbits cleared, all else intact."""
    pre, pri = bits
    c = VirtualCpuInterface(CpuIfConfig(nr_lr=len(lrs), pre_bits=pre, pri_bits=pri))
    lr = lrs[n % len(lrs)]
    c.write_lr(n % len(lrs), lr)
    stored = c.state.lrs[n % len(lrs)]
    assert stored == replace(lr, priority=lr.priority & (0xFF << (8 - pri)) & 0xFF)
    assert [x for i, x in enumerate(c.state.lrs) if i != n % len(lrs)] == \
        [EMPTY_LR] * (len(lrs) - 1)


@given(bits=bits_st(), vmcr=vmcr_st, version=st.sampled_from(list(GicVersion)))
@example(bits=(5, 5), vmcr=IchVmcr(vbpr0=0, vbpr1=0), version=GicVersion.V3)
@example(bits=(7, 7), vmcr=IchVmcr(vbpr0=0, vbpr1=0), version=GicVersion.V3)
@example(bits=(5, 5), vmcr=IchVmcr(vbpr0=1, vbpr1=2), version=GicVersion.V2)
@example(bits=(7, 8), vmcr=IchVmcr(vbpr0=7, vbpr1=7), version=GicVersion.V3)
def test_write_vmcr_clamps_binary_points_to_their_minimum(
        bits: tuple[int, int], vmcr: IchVmcr, version: GicVersion) -> None:
    """write_vmcr stores max(BPR0, 7 - PREbits) and max(BPR1, 8 - PREbits) (sections 1, 4.7)."""
    pre, pri = bits
    if version is GicVersion.V2:
        pre, cfg = 5, v2_config()
    else:
        cfg = CpuIfConfig(pre_bits=pre, pri_bits=pri)
    c = VirtualCpuInterface(cfg)
    c.write_vmcr(vmcr)
    assert c.state.vmcr.vbpr0 == max(vmcr.vbpr0, 7 - pre)
    assert c.state.vmcr.vbpr1 == max(vmcr.vbpr1, 7 - pre + 1)
    assert (c.state.vmcr.veng0, c.state.vmcr.veng1, c.state.vmcr.vcbpr, c.state.vmcr.veoim) == \
        (vmcr.veng0, vmcr.veng1, vmcr.vcbpr, vmcr.veoim)


@pytest.mark.parametrize("pre", [5, 6, 7])
def test_bpr_minimums_make_group_priority_cover_exactly_the_preemption_bits(pre: int) -> None:
    """At the minimum BPRs, the group-priority mask of both groups is the PREbits top bits."""
    c = VirtualCpuInterface(CpuIfConfig(pre_bits=pre, pri_bits=8))
    c.write_vmcr(IchVmcr())
    want = (0xFF << (8 - pre)) & 0xFF
    assert ref_gprio_mask(c.state.vmcr, 0) == want
    assert ref_gprio_mask(c.state.vmcr, 1) == want


# --- extra: HPPIR, special vINTIDs, guest PMR/BPR writes (sections 4.2, 4.5, 4.7) ------------


@given(case=case_st(), group=st.integers(0, 1))
@example(case=Case(lrs=[lr_at(32, prio=0xF0)], vmcr=IchVmcr(veng1=True, vpmr=0x10),
                   hcr=IchHcr(en=False)), group=1)
def test_hppir_is_unmasked_hppvi_of_its_group_and_changes_nothing(case: Case,
                                                                 group: int) -> None:
    """HPPIR returns the HPPVI's vINTID if it is in the group (no PMR/RPR/En check), else
    1023, and changes no state (4.5)."""
    c = case.build()
    before = snapshot(c)
    n = ref_hppvi(before.lrs, before.vmcr)
    expected = before.lrs[n].vintid if n is not None and before.lrs[n].group == group \
        else SPURIOUS
    assert c.read_hppir(group, trap_check=False) == expected
    assert c.state == before


@given(vintid=st.integers(1020, 1023), group=st.integers(0, 1), nr_lr=st.sampled_from([1, 16]))
def test_iar_of_special_vintid_lr_invalidates_it_without_active_priority(
        vintid: int, group: int, nr_lr: int) -> None:
    """An acknowledged LR holding vINTID 1020..1023 returns that ID, goes Invalid, sets no APR
    bit (4.2)."""
    lrs = [lr_at(vintid, prio=0x40, group=group)] + [EMPTY_LR] * (nr_lr - 1)
    c = Case(lrs=lrs).build()
    assert c.read_iar(group, trap_check=False) == vintid
    assert c.state.lrs[0].state == I
    assert c.running_priority() == IDLE


@given(bits=bits_st(), value=st.integers(0, 0xFF), bpr0=st.integers(0, 7),
       bpr1=st.integers(0, 7), cbpr=st.booleans())
@example(bits=(7, 7), value=0xFF, bpr0=0, bpr1=0, cbpr=True)
@example(bits=(5, 5), value=0x07, bpr0=7, bpr1=0, cbpr=True)
def test_guest_pmr_and_bpr_writes_mask_clamp_and_honour_cbpr(
        bits: tuple[int, int], value: int, bpr0: int, bpr1: int, cbpr: bool) -> None:
    """PMR keeps the implemented priority bits; BPRs clamp to their minimum; with CBPR a BPR1
    write is ignored and BPR1 reads as BPR0 + 1 saturated at 7 (4.7)."""
    pre, pri = bits
    c = Case(lrs=[EMPTY_LR], pre_bits=pre, pri_bits=pri,
             vmcr=IchVmcr(veng0=True, veng1=True, vcbpr=cbpr, vbpr1=7)).build()
    c.write_pmr(value, trap_check=False)
    assert c.read_pmr(trap_check=False) == value & (0xFF << (8 - pri)) & 0xFF
    c.write_bpr(0, bpr0, trap_check=False)
    c.write_bpr(1, bpr1, trap_check=False)
    got0 = max(bpr0, 7 - pre)
    assert c.read_bpr(0, trap_check=False) == got0
    if cbpr:
        assert c.state.vmcr.vbpr1 == 7
        assert c.read_bpr(1, trap_check=False) == min(got0 + 1, 7)
    else:
        assert c.read_bpr(1, trap_check=False) == max(bpr1, 8 - pre)
