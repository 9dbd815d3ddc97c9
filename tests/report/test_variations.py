"""The configurations a report sweeps (report/variations.py): each changes one thing and
keeps every guest's program order."""

from pathlib import Path

from vgic_actors.guest.host import Host, InjectEdge, IrqfdAssign, IrqfdSignal
from vgic_actors.guest.program import Dir, Eoir, Mmio, SetEoiMode
from vgic_actors.report.variations import (
    as_run,
    eoimodes,
    injection_paths,
    variations,
    with_eoimode,
)
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.runner import run_once

ROOT = Path(__file__).resolve().parents[2]

HANDOFF = """
name: handoff
vm: {vcpus: 2}
guests:
  vcpu0:
  - group_enable: true
  - pmr: 248
  - eoimode: 1
  - write: {reg: ISENABLER, intid: 40}
  - write: {reg: ISPENDR, intid: 40}
  - ack: 40
  - eoir: 40
  - store: {var: word, value: 40}
  - wait: {var: word, value: 0}
  vcpu1:
  - eoimode: 1
  - wait: {var: word, value: 40}
  - dir: 40
  - store: {var: word, value: 0}
"""

EOI0 = """
name: eoi0
vm: {vcpus: 1}
guests:
  vcpu0:
  - group_enable: true
  - pmr: 248
  - write: {reg: ISENABLER, intid: 33}
  - ack: 33
  - eoir: 33
host:
- do: inject_edge
  intid: 33
"""


def _load(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_scenario(path), path


def _names(ops):
    return [type(op).__name__ for op in ops]


def test_eoimode_0_drops_the_dirs_and_keeps_everything_else_in_order(tmp_path):
    scenario, _ = _load(tmp_path, HANDOFF)
    assert eoimodes(scenario) == {1}
    zero = with_eoimode(scenario, 0)
    assert eoimodes(zero) == {0}
    assert not any(isinstance(op, Dir) for g in zero.guests for op in g.ops)
    assert _names(zero.guests[1].ops) == ["SetEoiMode", "WaitFor", "Store"]
    assert _names(zero.guests[0].ops) == _names(scenario.guests[0].ops)
    # EOImode 0: vCPU0's EOIR deactivates, so the hand-off still ends clean
    assert not run_once(zero, "merged", 0, "random").signature


def test_eoimode_1_adds_a_dir_after_each_eoir_on_the_same_vcpu(tmp_path):
    scenario, _ = _load(tmp_path, EOI0)
    assert eoimodes(scenario) == {0}
    one = with_eoimode(scenario, 1)
    ops = one.guests[0].ops
    assert isinstance(ops[0], SetEoiMode) and ops[0].eoimode
    i = next(i for i, op in enumerate(ops) if isinstance(op, Eoir))
    assert ops[i + 1] == Dir(intid=33)
    assert not run_once(one, "merged", 0, "random").signature


def test_a_guest_injection_moves_to_another_path_in_place(tmp_path):
    scenario, path = _load(tmp_path, HANDOFF)
    assert injection_paths(scenario) == {"ispendr"}
    by = {v.label: v for v in variations(scenario, path)}
    line = by["edge SPIs by KVM_IRQ_LINE"].scenario
    assert line is not None and injection_paths(line) == {"irq_line"}
    ops = line.guests[0].ops
    assert ops[4] == Host(InjectEdge(40)) and isinstance(ops[3], Mmio)
    fd = by["edge SPIs by an irqfd signalled from a device's hard IRQ"].scenario
    assert fd is not None
    assert [op.action for op in fd.guests[0].ops if isinstance(op, Host)] == [
        IrqfdAssign(8, "sweep.spi40"), IrqfdSignal("sweep.spi40", "hardirq")]
    for v in (line, fd):
        assert not run_once(v, "merged+fix-all", 0, "random").signature


def test_a_vmm_injection_cannot_become_a_guest_write(tmp_path):
    scenario, path = _load(tmp_path, EOI0)
    assert injection_paths(scenario) == {"irq_line"}
    by = {v.label: v for v in variations(scenario, path)}
    assert by["edge SPIs by a guest GICD_ISPENDR write"].scenario is None
    thread = by["edge SPIs by an irqfd written from a thread"].scenario
    assert thread is not None and thread.host == [IrqfdAssign(1, "sweep.spi33"),
                                                  IrqfdSignal("sweep.spi33", "task")]
    assert "KVM_IRQ_LINE" in as_run(scenario) and "EOImode 0" in as_run(scenario)


def test_the_as_run_configuration_comes_first_and_no_configuration_twice(tmp_path):
    scenario, path = _load(tmp_path, HANDOFF)
    got = variations(scenario, path)
    assert got[0].axis == "as run" and got[0].scenario is scenario
    labels = [v.label for v in got[1:]]
    assert len(labels) == len(set(labels)) == 2 + 1 + 3
    assert "GICv3 guest on a GICv3 host" not in labels and "EOImode 1" not in labels


def test_a_level_spi_keeps_its_path():
    """F3's level SPI behind a resampling irqfd is not swept over injection paths."""
    scenario = load_scenario(ROOT / "docs/reports/F3/shrunk.yaml")
    assert injection_paths(scenario) == set()
    assert {v.axis for v in variations(scenario, ROOT / "docs/reports/F3/shrunk.yaml")} == {
        "as run", "GIC", "EOImode"}


def test_an_irqfd_path_under_the_scenario_s_own_routing_is_not_expressible(tmp_path):
    """A moved injection assumes the default GSI n -> SPI 32+n routing; a scenario that
    replaces it (KVM_SET_GSI_ROUTING) gets no irqfd configuration rather than a wrong one."""
    text = EOI0.replace("host:\n", "host:\n- do: set_gsi_routing\n  entries:\n"
                        "  - {gsi: 1, type: irqchip, pin: 5}\n")
    scenario, path = _load(tmp_path, text)
    by = {v.label: v for v in variations(scenario, path)}
    for label in ("edge SPIs by an irqfd written from a thread",
                  "edge SPIs by an irqfd signalled from a device's hard IRQ"):
        assert by[label].scenario is None and "GSI routing" in by[label].error
    assert injection_paths(scenario) == {"irq_line"}  # the as-run path still applies
