"""The VMM's ICACTIVER and ICPENDR writes (kvm/userspace.py, vgic_uaccess_write)."""

import errno

import pytest

from tests.kvm.test_userspace import drive, spi
from vgic_actors.arch.registers import GicVersion
from vgic_actors.kvm.phys_gic import kvm_vgic_map_phys_irq
from vgic_actors.kvm.userspace import irq_should_queue, vgic_uaccess_write
from vgic_actors.kvm.vm import VmConfig
from vgic_actors.scenario.loader import load_scenario_text
from vgic_actors.scenario.runner import run_once


def test_userspace_icactiver_clears_a_sw_irq_and_leaves_a_hw_one():
    """vgic_mmio_uaccess_write_cactive: a SW irq's active state is cleared, nothing queued,
    no halt; a HW-mapped one keeps its virtual and physical state."""
    async def body(kvm):
        assert await kvm_vgic_map_phys_irq(kvm, None, 99, 34) == 0
        spi(kvm, 33).active = True
        spi(kvm, 34).active = True
        kvm.phys.line(99).active = True
        assert await vgic_uaccess_write(kvm, 0, "ICACTIVER", 33) == 0
        assert await vgic_uaccess_write(kvm, 0, "ICACTIVER", 34) == 0

    kvm = drive(VmConfig(), body)
    assert not spi(kvm, 33).active and spi(kvm, 34).active and kvm.phys.line(99).active
    assert not any(v.pause for v in kvm.vcpus)
    assert kvm.coverage["uaccess.write"] == 2


def test_userspace_icpendr_clears_the_latch_and_a_gicv2_sgis_sources():
    """vgic_uaccess_write_cpending: the latch cleared, nothing queued; a GICv2-model SGI
    loses every source; EBUSY while a vCPU runs."""
    async def body(kvm):
        spi(kvm, 33).pending_latch = True
        sgi = kvm.vgic_get_irq(kvm.vcpus[1], 3)
        sgi.source, sgi.pending_latch = 0b11, True
        assert await vgic_uaccess_write(kvm, 0, "ICPENDR", 33) == 0
        assert await vgic_uaccess_write(kvm, 1, "ICPENDR", 3) == 0

    kvm = drive(VmConfig(gic_model=GicVersion.V2), body)
    assert not spi(kvm, 33).pending_latch and not kvm.vcpus[0].ap_list
    sgi = kvm.vgic_get_irq(kvm.vcpus[1], 3)
    assert not sgi.pending_latch and sgi.source == 0

    async def busy(kvm):
        assert await vgic_uaccess_write(kvm, 0, "ICPENDR", 33) == errno.EBUSY

    drive(VmConfig(), busy, in_userspace=False)


def test_only_a_set_write_or_a_still_active_irq_is_queued():
    assert irq_should_queue("ISPENDR", False) and not irq_should_queue("ICPENDR", True)
    assert irq_should_queue("ISACTIVER", True) and not irq_should_queue("ICACTIVER", False)
    assert irq_should_queue("ICACTIVER", True)  # a HW irq the write left active


HELD = """
name: uaccess_last
vm: {vcpus: 1, lrs: 2}
guests:
  vcpu0:
    handler:
      - iar: {eret_if_spurious: true}
      - host: {do: DO, intid: last}
      - eoir: last
      - dir: last
    ops:
      - group_enable: true
      - pmr: 0xf8
      - eoimode: 1
      - for: {var: i, in: [33, 34], do: [{write: {reg: ISENABLER, intid: $i}}]}
      - for: {var: i, in: [33, 34], do: [{write: {reg: ISPENDR, intid: $i}}]}
      - unmask:
      - wfi_until: 2
      - mask:
host:
  - {do: write_icpendr, intid: last, expect_errno: 22}
expect:
  final: [{intid: 33, active: false, pending: false}, {intid: 34, active: false, pending: false}]
  counters: {acks: {33: 1, 34: 1}}
"""


@pytest.mark.parametrize("do", ["write_isactiver", "write_icactiver", "write_icpendr"])
def test_the_vmms_write_of_the_interrupt_just_acknowledged_leaves_it_taken_once(do):
    """A one-vCPU guest's handler asks the VMM to write the INTID it acknowledged last
    (intid: last): each SPI is still taken once and ends inactive; on the VMM's own
    list ``last`` names nothing (EINVAL)."""
    scenario = load_scenario_text(HELD.replace("DO", do), "uaccess_last.yaml")
    for seed in range(3):
        report = run_once(scenario, "merged", seed, "random")
        assert not report.violations, report.violations
        assert report.coverage["uaccess.write"] == 2
