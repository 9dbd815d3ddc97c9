"""Where injections run (eventfd.c, vgic-irqfd.c) and what the context checks say of them."""

from dataclasses import replace

from vgic_actors.guest import (
    Ack,
    Eoir,
    GuestProgram,
    Mmio,
    SetGroupEnable,
    SetPmr,
    Store,
    WaitFor,
)
from vgic_actors.guest.host import HostProgram, HostWaitFor, IrqfdAssign, IrqfdSignal
from vgic_actors.kvm.machine import start_vm
from vgic_actors.kvm.vm import VmConfig
from vgic_actors.runtime import RandomWalk, run


def irqfd_run(seed, context, *, inatomic=True, variant="merged"):
    """vCPU1 spins in the guest while a device raises SPI 33 through an irqfd."""
    guests = [GuestProgram("vcpu0", [SetGroupEnable(), SetPmr(0xF8), Mmio("ISENABLER", 33),
                                     Store("enabled", 1), Ack(expect=33), Eoir(33),
                                     Store("done", 1)]),
              GuestProgram("vcpu1", [WaitFor("done", 1)])]
    device = HostProgram("dev", [HostWaitFor("enabled", 1), IrqfdAssign(1, "dev"),
                                 IrqfdSignal("dev", context)])
    box = {}

    def setup(sched):
        machine = start_vm(sched, VmConfig(nr_vcpus=2, variant=variant), guests, host=[device])
        machine.kvm.sw = replace(machine.kvm.sw, irqfd_spi_inatomic=inatomic)
        box["m"] = machine

    result = run(setup, RandomWalk(seed))
    assert all(g.done and not g.failures for g in box["m"].guests), seed
    return result, box["m"]


def test_a_write_to_an_irqfd_broadcasts_with_irqs_disabled_on_merged():
    """write(2) holds the eventfd's wqh lock with IRQs off: the 0 -> 1 broadcast's IPIs
    reach smp_call_function_many with IRQs disabled (lockdep_assert_irqs_enabled)."""
    seen = []
    for seed in range(30):
        result, _ = irqfd_run(seed, "task")
        for v in result.context_violations:
            seen.append(v)
    assert seen and all(v.invariant == "smp-call-in-atomic" for v in seen)
    assert "with IRQs disabled" in seen[0].message
    assert seen[0].chain[-4:] == ["irqfd_wakeup", "vgic_irqfd_set_irq",
                                  "kvm_vgic_inject_irq", "vgic_queue_irq_unlock",
                                  "kvm_make_all_cpus_request"][-4:]
    assert "raw_spin_lock_irqsave(eventfd.dev.wqh)" in seen[0].context


def test_no_violation_without_spi_tracking_or_through_the_kworker():
    """Before the series the queue kicks one vCPU (smp_send_reschedule is fine with IRQs
    off); with SPIs injected by the irqfd_inject work, the broadcast runs in a kworker."""
    for seed in range(30):
        assert not irqfd_run(seed, "hardirq", variant="pre-series")[0].context_violations
        result, machine = irqfd_run(seed, "hardirq", inatomic=False)
        assert not result.context_violations
        assert machine.kvm.system_wq.queued == 1  # the irqfd's inject work
