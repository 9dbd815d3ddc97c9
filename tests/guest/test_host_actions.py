"""Host actions end to end: a guest asks its VMM (Host), or a VMM/device actor
(HostProgram) injects; the guest acknowledges what it expects. Several PCT seeds."""

import errno

import pytest

from vgic_actors.guest import Ack, Eoir, GuestProgram, Mmio, SetGroupEnable, SetPmr, Store, WaitFor
from vgic_actors.guest.host import (
    Do,
    Host,
    HostProgram,
    HostWaitFor,
    InjectEdge,
    IrqfdAssign,
    IrqfdSignal,
    SetLevel,
    SetLevelInfo,
    WaitResample,
    WriteIspendr,
    perform,
)
from vgic_actors.kvm.irq import IrqConfig
from vgic_actors.kvm.machine import start_vm
from vgic_actors.kvm.vm import VmConfig
from vgic_actors.runtime import Outcome, make_strategy, run

SEEDS = [0, 1, 2, 3, 7, 11]
PRELUDE = [SetGroupEnable(), SetPmr(0xF8)]


def run_vm(config, guests, host=(), *, seed, level=(), max_steps=30_000):
    """Start the VM (SPIs in ``level`` made level-triggered) and run it under PCT."""
    box = {}

    def setup(sched):
        box["m"] = m = start_vm(sched, config, guests, host)
        for intid in level:
            m.kvm.dist.spis[intid - 32].config = IrqConfig.LEVEL

    result = run(setup, make_strategy("pct", seed, depth=3, k=400), seed=seed,
                 max_steps=max_steps)
    assert result.outcome is Outcome.QUIESCENT, (result.outcome, result.finding)
    return box["m"]


def failures(machine):
    return [f for g in machine.guests for f in g.failures] + [
        f for h in machine.host for f in h.failures]


@pytest.mark.parametrize("seed", SEEDS)
def test_guest_requested_edge_injection_is_acked_once(seed):
    """Host(InjectEdge(33)): the vCPU exits to userspace, KVM_IRQ_LINE 1 then 0 latches the
    edge, the guest acknowledges 33 exactly once and nothing else is pending."""
    guest = GuestProgram("vcpu0", [
        *PRELUDE, Mmio("ISENABLER", 33), Host(InjectEdge(33)), Ack(expect=33), Eoir(33),
        Mmio("ISPENDR", 33, write=False, expect=0),
        Mmio("ISACTIVER", 33, write=False, expect=0),
    ])
    m = run_vm(VmConfig(nr_vcpus=1), [guest], seed=seed)
    assert failures(m) == [] and guest.done and guest.acked == [33]


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_guest_requested_level_injection_via_line_and_level_info(seed):
    """Level SPIs: KVM_IRQ_LINE high and LEVEL_INFO high each make the interrupt pending; the
    guest acks, lowers the line (KVM_SET_IRQ_LINE 0), EOIs; then nothing is pending."""
    guest = GuestProgram("vcpu0", [
        *PRELUDE, Mmio("ISENABLER", 34), Mmio("ISENABLER", 35),
        Host(SetLevel(34, True)), Ack(expect=34), Host(SetLevel(34, False)), Eoir(34),
        Host(SetLevelInfo(35, True)), Ack(expect=35), Host(SetLevel(35, False)), Eoir(35),
        Mmio("ISPENDR", 34, write=False, expect=0),
        Mmio("ISPENDR", 35, write=False, expect=0),
    ])
    m = run_vm(VmConfig(nr_vcpus=1), [guest], seed=seed, level=(34, 35))
    assert failures(m) == [] and guest.acked == [34, 35]


def test_guest_requested_ispendr_write_and_errno_expectations():
    """KVM_WRITE_ISPENDR delivers; an out-of-range SPI is EINVAL, and an unexpected errno is
    recorded as a guest failure (the expectation can fail)."""
    guest = GuestProgram("vcpu0", [
        *PRELUDE, Mmio("ISENABLER", 40), Host(WriteIspendr(40)), Ack(expect=40), Eoir(40),
        Host(SetLevel(1020), expect_errno=errno.EINVAL),
        Host(InjectEdge(64)),  # nr_spis = 32: EINVAL, but 0 expected: a failure
    ])
    m = run_vm(VmConfig(nr_vcpus=1), [guest], seed=0)
    assert guest.acked == [40]
    assert len(failures(m)) == 1 and "errno 22, expected 0" in failures(m)[0]


def test_level_info_from_a_guest_is_ebusy_while_another_vcpu_runs():
    """The device attributes need every vCPU out of KVM_RUN: with vCPU1 still running (it
    waits in guest memory), vCPU0's request gets EBUSY; once vCPU1 is done it works."""
    vcpu0 = GuestProgram("vcpu0", [
        *PRELUDE, Mmio("ISENABLER", 35),
        Host(SetLevelInfo(35, True), expect_errno=errno.EBUSY),
        Store("go", 1), WaitFor("v1done", 1), Store("spin", 0),
    ])
    vcpu1 = GuestProgram("vcpu1", [WaitFor("go", 1), Store("v1done", 1)])
    m = run_vm(VmConfig(nr_vcpus=2), [vcpu0, vcpu1], seed=1, level=(35,))
    assert failures(m) == []


def test_perform_rejects_an_intid_the_ioctl_cannot_carry():
    """KVM_IRQ_LINE's INTID field is 16 bits: the script error is raised, not an errno."""
    import trio

    async def main():
        with pytest.raises(ValueError, match="KVM_ARM_IRQ_NUM_MASK"):
            await perform(None, SetLevel(0x10000))  # type: ignore[arg-type]

    trio.run(main)


def resample_vm(rounds=2, *, variant="merged", seed):
    """A level device on SPI 35 (GSI 3) behind a resampling irqfd: it asserts, waits for the
    guest's EOI to come back through the resamplefd, and asserts again ``rounds`` times.
    Run under PCT with ``seed``."""
    guest = GuestProgram("vcpu0", [
        *PRELUDE, Mmio("ISENABLER", 35), Store("enabled", 1),
        *[op for _ in range(rounds) for op in (Ack(expect=35), Eoir(35))],
        Mmio("ISPENDR", 35, write=False, expect=0),
    ])
    steps = [HostWaitFor("enabled", 1), IrqfdAssign(3, "dev", resample=True)]
    for _ in range(rounds):
        steps += [IrqfdSignal("dev"), WaitResample("dev.resample")]
    device = HostProgram("device", steps)
    m = run_vm(VmConfig(nr_vcpus=1, variant=variant), [guest], [device], seed=seed, level=(35,))
    return m, device


@pytest.mark.parametrize("seed", SEEDS)
def test_irqfd_resampler_reasserts_after_each_eoi(seed):
    """KVM_IRQFD_FLAG_RESAMPLE (pre-series fold: notify on every EOI-bit deactivation): each
    guest EOI of the level SPI runs kvm_notify_acked_irq -> irqfd_resampler_ack (line low,
    resamplefd signalled); the device sees every resample and re-asserts; the guest acks
    once per assertion; the line ends low."""
    m, device = resample_vm(variant="pre-series", seed=seed)
    guest = m.guests[0]
    assert failures(m) == []
    assert guest.acked == [35, 35] and device.done and device.resamples == [1, 1]
    assert m.kvm.acked_notifications == [35, 35]
    assert not m.kvm.dist.spis[3].line_level and not m.kvm.dist.spis[3].active


def test_merged_fold_loses_the_resample_of_an_irq_acked_and_eoied_in_one_run():
    """Merged GICv3 fold notifies only "deactivated && lr_signals_eoi_mi" (v2 30/45), and
    "deactivated" compares with KVM's copy of the active state. A level SPI acknowledged and
    EOIed within one guest run was never seen active by KVM: no kvm_notify_acked_irq, the
    resamplefd is never signalled, the line stays high and the guest takes the interrupt
    again without the device re-asserting (kernel behaviour as merged; docs: report)."""
    m, device = resample_vm(seed=0)
    guest = m.guests[0]
    assert guest.acked == [35, 35]  # the second ack is the stale line, not a re-assertion
    assert device.resamples == [] and not device.done
    assert m.kvm.acked_notifications == []
    assert m.kvm.dist.spis[3].line_level
    assert failures(m) == ["vcpu0 pc8: ISPENDR read of INTID 35: expected 0, got 1"]


def test_without_the_resample_notification_the_device_never_reasserts():
    """Negative control: with kvm_notify_acked_irq disconnected (no ack notifiers), the device
    waits for a resample that never comes and the line is never lowered."""
    guest = GuestProgram("vcpu0", [
        *PRELUDE, Mmio("ISENABLER", 35), Store("enabled", 1),
        Ack(expect=35), Eoir(35), Ack(expect=35), Eoir(35),
    ])
    device = HostProgram("device", [
        HostWaitFor("enabled", 1), IrqfdAssign(3, "dev", resample=True),
        IrqfdSignal("dev"), WaitResample("dev.resample"), IrqfdSignal("dev"),
    ])
    box = {}

    def setup(sched):
        box["m"] = m = start_vm(sched, VmConfig(nr_vcpus=1, variant="pre-series"), [guest],
                                [device])
        m.kvm.dist.spis[3].config = IrqConfig.LEVEL
        m.kvm.irq_routing.ack_notifiers = _Deaf()

    run(setup, make_strategy("pct", 0, depth=3, k=400), seed=0, max_steps=30_000)
    assert device.resamples == [] and not device.done
    assert box["m"].kvm.dist.spis[3].line_level  # nobody lowers it: the guest sees it again


class _Deaf(list):
    """An ack-notifier list that drops every registration."""

    def append(self, item):
        pass


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_vmm_thread_injections_go_through_the_distributor(seed):
    """A HostProgram's ioctls are requests to the distributor actor; its edge injection is
    acked by the guest; an unexpected errno is recorded on the program."""
    guest = GuestProgram("vcpu0", [
        *PRELUDE, Mmio("ISENABLER", 36), Store("ready", 1), Ack(expect=36), Eoir(36),
    ])
    vmm = HostProgram("vmm", [
        HostWaitFor("ready", 1), InjectEdge(36), Do(SetLevel(99), expect_errno=errno.EINVAL),
        SetLevel(98),
    ])
    run_vm(VmConfig(nr_vcpus=1), [guest], [vmm], seed=seed)
    assert guest.acked == [36] and vmm.done
    assert vmm.results == [0, errno.EINVAL, errno.EINVAL]
    assert len(vmm.failures) == 1 and "SetLevel(98)" in vmm.failures[0]
