"""The acknowledge oracle: the guest takes the highest-priority interrupt it may see."""

from dataclasses import replace

import pytest

from vgic_actors.checks.ack_oracle import AckOracle
from vgic_actors.events import GuestAcked, GuestEoied, HcrConfigured, IrqQueued
from vgic_actors.kvm import variants
from vgic_actors.scenario.loader import load_scenario_text
from vgic_actors.scenario.runner import run_once

# One vCPU, one List Register, two SPIs made pending while it is masked: at its next entry
# the ap_list overflows, KVM sorts it, and the guest must take 0x80 before 0xa0.
TWO_PRIORITIES = """
name: two_priorities
vm: {vcpus: 1, lrs: 1}
guests:
  vcpu0:
    handler: [{iar: {eret_if_spurious: true}}, {eoir: last}]
    ops:
      - group_enable: true
      - pmr: 0xf8
      - write: {reg: IPRIORITYR, intid: 33, value: 0xa0}
      - write: {reg: ISENABLER, intid: 33}
      - write: {reg: IPRIORITYR, intid: 34, value: 0x80}
      - write: {reg: ISENABLER, intid: 34}
      - write: {reg: ISPENDR, intid: 33}
      - write: {reg: ISPENDR, intid: 34}
      - unmask:
      - wfi_until: 2
      - mask:
expect:
  counters: {acks: {33: 1, 34: 1}}
run: {seeds: 10, strategy: random}
"""


@pytest.fixture
def inverted(monkeypatch):
    """A variant with the planted wrong-priority sort (mutant_priority_inverted)."""
    merged = variants.VARIANTS["merged"]
    mutant = variants.Variant("mutant-priority-inverted", "vgic_irq_cmp sorts low first",
                              replace(merged.switches, mutant_priority_inverted=True),
                              bug="mutant")
    monkeypatch.setitem(variants.VARIANTS, mutant.name, mutant)
    return mutant.name


def test_merged_acknowledges_in_priority_order():
    """On merged the oracle judges the acknowledges and finds nothing."""
    scenario = load_scenario_text(TWO_PRIORITIES)
    for seed in range(10):
        report = run_once(scenario, "merged", seed, "random")
        assert not report.violations, (seed, report.violations)


def test_a_planted_wrong_priority_acknowledgement_is_caught(inverted):
    """With vgic_irq_cmp's priority key inverted, the guest takes 0xa0 while 0x80 waits
    outside the only LR: ack-priority, in every run."""
    scenario = load_scenario_text(TWO_PRIORITIES)
    for seed in range(5):
        report = run_once(scenario, inverted, seed, "random")
        found = [v for v in report.violations if v.invariant == "ack-priority"]
        assert found, seed
        assert "INTID 33 (priority 0xa0)" in found[0].message
        assert "INTID 34 (priority 0x80)" in found[0].message


def _oracle(**extra) -> AckOracle:
    scenario = load_scenario_text(TWO_PRIORITIES.replace("      - unmask:\n", "      - unmask:\n"
                                                         + extra.get("more", "")))
    return AckOracle([(g.ops, g.handler) for g in scenario.guests], scenario.irqs,
                     scenario.host)


def _feed(oracle: AckOracle, *events) -> None:
    for ev in events:
        oracle.event(ev)


def test_an_interrupt_made_pending_after_the_entry_is_not_judged():
    """The architecture gives no bound on when a new pending interrupt reaches the CPU
    interface: one queued after the vCPU's last entry may go unseen."""
    oracle = _oracle()
    _feed(oracle, IrqQueued(step=1, vt=0, actor="cpu0", intid=33, vcpu=0),
          HcrConfigured(step=2, vt=0, actor="cpu0", vcpu=0, used_lrs=1, lrs=[33], tdir=False),
          IrqQueued(step=3, vt=0, actor="cpu0", intid=34, vcpu=0),
          GuestAcked(step=4, vt=0, actor="cpu0", vcpu=0, intid=33))
    assert not oracle.violations() and oracle.acks_judged == 1


def test_one_pending_before_the_entry_is_judged_and_a_held_one_is_not():
    """Queued before the entry and not taken: caught; once taken (held), never again."""
    oracle = _oracle()
    _feed(oracle, IrqQueued(step=1, vt=0, actor="cpu0", intid=33, vcpu=0),
          IrqQueued(step=1, vt=0, actor="cpu0", intid=34, vcpu=0),
          HcrConfigured(step=2, vt=0, actor="cpu0", vcpu=0, used_lrs=1, lrs=[33], tdir=False),
          GuestAcked(step=3, vt=0, actor="cpu0", vcpu=0, intid=33))
    assert [v.invariant for v in oracle.violations()] == ["ack-priority"]
    held = _oracle()
    _feed(held, IrqQueued(step=1, vt=0, actor="cpu0", intid=34, vcpu=0),
          HcrConfigured(step=2, vt=0, actor="cpu0", vcpu=0, used_lrs=1, lrs=[34], tdir=False),
          GuestAcked(step=3, vt=0, actor="cpu0", vcpu=0, intid=34),
          IrqQueued(step=4, vt=0, actor="cpu0", intid=33, vcpu=0),
          HcrConfigured(step=5, vt=0, actor="cpu0", vcpu=0, used_lrs=1, lrs=[33], tdir=False),
          GuestAcked(step=6, vt=0, actor="cpu0", vcpu=0, intid=33),
          GuestEoied(step=7, vt=0, actor="cpu0", vcpu=0, intid=33, deactivates=True))
    assert not held.violations()


def test_interrupts_whose_pending_state_may_change_are_not_judged():
    """A guest GICD_ICPENDR write makes the interrupt volatile: no judgement, no alarm."""
    oracle = _oracle(more="      - write: {reg: ICPENDR, intid: 34}\n")
    _feed(oracle, IrqQueued(step=1, vt=0, actor="cpu0", intid=33, vcpu=0),
          IrqQueued(step=1, vt=0, actor="cpu0", intid=34, vcpu=0),
          HcrConfigured(step=2, vt=0, actor="cpu0", vcpu=0, used_lrs=1, lrs=[33], tdir=False),
          GuestAcked(step=3, vt=0, actor="cpu0", vcpu=0, intid=33))
    assert not oracle.violations()
