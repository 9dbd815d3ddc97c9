"""HW-mapped interrupts (kvm/phys_gic.py, kvm/host_irq.py): the physical GIC's state, and a
forwarded level PPI/SPI whose guest deactivation deactivates the physical interrupt
exactly once per firing, under several PCT seeds."""

import pytest

from vgic_actors.guest import Ack, Eoir, GuestProgram, Mmio, SetGroupEnable, SetPmr, Store, WaitFor
from vgic_actors.guest.host import (
    Host,
    HostProgram,
    HostStore,
    HostWaitFor,
    MapPhys,
    PhysAssert,
    PhysDeassert,
    SetLevel,
)
from vgic_actors.kvm.irq import IrqConfig
from vgic_actors.kvm.machine import start_vm
from vgic_actors.kvm.phys_gic import HwMapping, PhysGic
from vgic_actors.kvm.vm import VmConfig
from vgic_actors.runtime import Outcome, make_strategy, run

SEEDS = [0, 1, 2, 5, 9]
PRELUDE = [SetGroupEnable(), SetPmr(0xF8)]


class _Box:
    def __init__(self):
        self.posted = []
        self.started = 0

    def post(self, payload, **_):
        self.posted.append(payload)


def test_phys_gic_signals_once_and_records_spurious_deactivations():
    """A mapped line that rises is signalled once until acked; deactivating an inactive
    interrupt is recorded as spurious; an unmapped line is never signalled."""
    gic, box = PhysGic(), _Box()
    gic.attach(box, lambda: None)  # type: ignore[arg-type]
    gic.mappings[30] = HwMapping(0, 27, None)
    gic.drive(31, True)  # unmapped
    gic.drive(30, True)
    gic.drive(30, True)
    assert box.posted == [30]
    assert gic.host_ack(30) and gic.line(30).active
    gic.deactivate(30)  # line still high: signalled again
    assert box.posted == [30, 30] and gic.deactivated == [30]
    gic.drive(30, False)
    assert not gic.host_ack(30)  # dropped before the ack: nothing to handle
    gic.deactivate(30)
    assert gic.spurious_deactivations == [30]


def run_hw(seed, guest_ops, host_steps, *, vintid, level_spi=False):
    box = {}
    guest = GuestProgram("vcpu0", [*PRELUDE, Mmio("ISENABLER", vintid), Store("enabled", 1),
                                   *guest_ops])
    device = HostProgram("device", host_steps)

    def setup(sched):
        box["m"] = m = start_vm(sched, VmConfig(nr_vcpus=1), [guest], [device])
        if level_spi:
            m.kvm.dist.spis[vintid - 32].config = IrqConfig.LEVEL

    result = run(setup, make_strategy("pct", seed, depth=3, k=400), seed=seed,
                 max_steps=30_000)
    assert result.outcome is Outcome.QUIESCENT, (result.outcome, result.finding)
    m = box["m"]
    assert guest.failures == [] and device.failures == [] and guest.done and device.done
    return m, guest


def one_firing(vintid, hwintid):
    """The guest acks, the device lowers its line (the guest's handler masked it), the guest
    EOIs: its HW-bit deactivation reaches the physical GIC."""
    guest = [Ack(expect=vintid), Store("acked", 1), WaitFor("low", 1), Eoir(vintid)]
    host = [HostWaitFor("enabled", 1), MapPhys(vintid, hwintid), PhysAssert(hwintid),
            HostWaitFor("acked", 1), PhysDeassert(hwintid), HostStore("low", 1)]
    return guest, host


@pytest.mark.parametrize("seed", SEEDS)
def test_hw_level_ppi_eoi_deactivates_the_physical_interrupt_once(seed):
    """vPPI 27 <- pINTID 30 (like the vtimer): one physical firing, one host ack, one
    injection, one physical deactivation (by the guest's EOIR through the HW bit), none
    spurious; the virtual interrupt ends inactive with its line low."""
    m, guest = run_hw(seed, *one_firing(27, 30), vintid=27)
    phys = m.kvm.phys
    assert guest.acked == [27]
    assert phys.acks == [30] and phys.deactivated == [30] and phys.spurious_deactivations == []
    assert m.kvm.phys_deactivated == [30]  # the same record
    irq = m.kvm.vcpus[0].private_irqs[27]
    assert irq.hw and not irq.active and not irq.line_level and not phys.line(30).active


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_hw_level_spi_line_still_high_fires_again(seed):
    """vSPI 40 <- pINTID 70, level: the guest EOIs while the line is still high, so the
    physical interrupt fires again, is injected again and acked again; two firings, two
    deactivations, never a spurious one."""
    guest = [Ack(expect=40), Eoir(40), Ack(expect=40), Store("acked2", 1), WaitFor("low", 1),
             Eoir(40)]
    host = [HostWaitFor("enabled", 1), MapPhys(40, 70), PhysAssert(70),
            HostWaitFor("acked2", 1), PhysDeassert(70), HostStore("low", 1)]
    m, g = run_hw(seed, guest, host, vintid=40, level_spi=True)
    phys = m.kvm.phys
    assert g.acked == [40, 40]
    assert phys.acks == [70, 70] and phys.deactivated == [70, 70]
    assert phys.spurious_deactivations == []


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_sw_resampled_mapping_is_deactivated_by_kvm_at_fold(seed):
    """VGIC_IRQ_SW_RESAMPLE: no HW bit in the LR (the guest's EOI cannot reach the physical
    GIC); KVM deactivates the physical interrupt when it folds the inactive LR, once."""
    guest = [Ack(expect=27), Store("acked", 1), WaitFor("low", 1), Eoir(27),
             Mmio("ISACTIVER", 27, write=False, expect=0)]
    host = [HostWaitFor("enabled", 1), MapPhys(27, 30, sw_resample=True), PhysAssert(30),
            HostWaitFor("acked", 1), PhysDeassert(30), HostStore("low", 1)]
    m, g = run_hw(seed, guest, host, vintid=27)
    phys = m.kvm.phys
    assert g.acked == [27] and phys.acks == [30]
    assert phys.deactivated == [30] and phys.spurious_deactivations == []


def test_userspace_cannot_inject_an_owned_hw_line():
    """MapPhys(owner="device") makes KVM_IRQ_LINE on that PPI a silent no-op (errno 0)."""
    guest = [Host(SetLevel(27, True)), Mmio("ISPENDR", 27, write=False, expect=0)]
    host = [HostWaitFor("enabled", 1), MapPhys(27, 30)]
    box = {}
    g = GuestProgram("vcpu0", [*PRELUDE, Mmio("ISENABLER", 27), Store("enabled", 1),
                               WaitFor("mapped", 1), *guest])
    device = HostProgram("device", [*host, HostStore("mapped", 1)])

    def setup(sched):
        box["m"] = start_vm(sched, VmConfig(nr_vcpus=1), [g], [device])

    result = run(setup, make_strategy("pct", 0, depth=3, k=400), seed=0, max_steps=30_000)
    assert result.outcome is Outcome.QUIESCENT
    assert g.failures == [] and g.done
    assert not box["m"].kvm.vcpus[0].private_irqs[27].line_level
