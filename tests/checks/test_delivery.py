"""The delivery oracle: nothing is delivered that no one made pending."""

import pytest

from vgic_actors.kvm import lr, vgic
from vgic_actors.scenario.loader import load_scenario_text
from vgic_actors.scenario.runner import run_once

ONE_EDGE = """
name: one_edge
vm: {vcpus: 1, lrs: 2}
guests:
  vcpu0:
    handler: [{iar: {eret_if_spurious: true}}, {eoir: last}]
    ops:
      - group_enable: true
      - pmr: 0xf8
      - write: {reg: IPRIORITYR, intid: 33, value: 0xa0}
      - write: {reg: ISENABLER, intid: 33}
      - write: {reg: ISPENDR, intid: 33}
      - unmask:
      - wfi_until: 1
      - read: {reg: ISENABLER, intid: 33}
      - read: {reg: ISENABLER, intid: 33}
      - read: {reg: ISENABLER, intid: 33}
      - mask:
"""


@pytest.fixture
def latch_kept(monkeypatch):
    """A planted bug: populating a Pending LR does not consume the edge latch, so the
    interrupt comes back after the guest took it."""
    def populate_keeping_the_latch(irq, value, v2_model):
        latch = irq.pending_latch
        lr.populate_lr(irq, value, v2_model)
        irq.pending_latch = latch
    monkeypatch.setattr(vgic, "populate_lr", populate_keeping_the_latch)


def test_one_edge_is_taken_once_on_merged():
    """Merged: the edge is taken once, the oracle finds nothing."""
    scenario = load_scenario_text(ONE_EDGE)
    for seed in range(5):
        assert not run_once(scenario, "merged", seed, "random").violations, seed


@pytest.mark.usefixtures("latch_kept")
def test_an_interrupt_no_one_raised_again_is_a_phantom():
    """With the latch kept, the guest takes SPI 33 again after an exit: phantom-ack."""
    report = run_once(load_scenario_text(ONE_EDGE), "merged", 0, "random")
    found = [v for v in report.violations if v.invariant == "phantom-ack"]
    assert found and "made pending at most 1 times" in found[0].message
    assert report.violations and "INTID 33 was acknowledged 1 times" not in found[0].message


@pytest.mark.usefixtures("latch_kept")
def test_an_injection_inside_a_handler_is_not_bounded():
    """An ISPENDR in the IRQ handler runs once per interrupt: the oracle does not judge."""
    text = ONE_EDGE.replace("{eoir: last}]", "{eoir: last}, {write: {reg: ISPENDR, intid: 33}}]")
    report = run_once(load_scenario_text(text), "merged", 0, "random")
    assert "phantom-ack" not in {v.invariant for v in report.violations}
