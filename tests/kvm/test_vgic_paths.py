"""Branches of the async kernel paths, each driven directly on a VM with no guest running.

The vCPUs are OUTSIDE_GUEST_MODE and not blocked, so kicks find nobody to IPI; the
tests read requests, counters and ap_lists.
"""

from vgic_actors.arch.registers import LRState
from vgic_actors.kvm.irq import IrqConfig
from vgic_actors.kvm.lr import compute_lr
from vgic_actors.kvm.vgic import (
    kvm_vgic_flush_hwstate,
    kvm_vgic_inject_irq,
    kvm_vgic_sync_hwstate,
    vgic_prune_ap_list,
    vgic_v3_deactivate,
)
from vgic_actors.kvm.vm import KVM_REQ_IRQ_PENDING, KVM_REQ_VGIC_PROCESS_UPDATE, VmConfig, build_kvm
from vgic_actors.runtime import Outcome, Replay, run


def drive(config, body):
    """Build the VM and run ``body(kvm)`` as the only actor; return the VM."""
    box = {}

    def setup(sched):
        box["kvm"] = kvm = build_kvm(sched, config)
        for vcpu in kvm.vcpus:
            vcpu.core.pcpu.irqs_disabled = False
        sched.spawn("test", lambda: body(kvm))

    result = run(setup, Replay([]))
    assert result.outcome is Outcome.QUIESCENT, result.finding
    return box["kvm"]


def pending_reqs(kvm):
    return [v.core.requests.peek() for v in kvm.vcpus]


def enable(kvm, *intids):
    for intid in intids:
        kvm.dist.spis[intid - 32].enabled = True


def test_queue_first_spi_counts_and_broadcasts_to_every_vcpu():
    """0 -> 1: active_spis incremented on insertion, IRQ_PENDING requested on every vCPU."""
    async def body(kvm):
        enable(kvm, 32)
        assert await kvm_vgic_inject_irq(kvm, None, 32, True)

    kvm = drive(VmConfig(nr_vcpus=3), body)
    assert kvm.dist.active_spis.peek() == 1
    assert pending_reqs(kvm) == [1 << KVM_REQ_IRQ_PENDING] * 3
    assert [i.intid for i in kvm.vcpus[0].ap_list] == [32]


def test_queue_second_spi_counts_and_kicks_only_its_target():
    """1 -> 2: no broadcast, only the target gets the request."""
    async def body(kvm):
        enable(kvm, 32, 33)
        kvm.dist.spis[1].target_vcpu = 1
        await kvm_vgic_inject_irq(kvm, None, 32, True)
        for vcpu in kvm.vcpus:
            vcpu.core.requests.bits = 0
        await kvm_vgic_inject_irq(kvm, None, 33, True)

    kvm = drive(VmConfig(nr_vcpus=3), body)
    assert kvm.dist.active_spis.peek() == 2
    assert pending_reqs(kvm) == [0, 1 << KVM_REQ_IRQ_PENDING, 0]


def test_queue_already_queued_irq_kicks_owner_without_counting():
    """Re-injecting a queued SPI only kicks its owner; the count does not move."""
    async def body(kvm):
        enable(kvm, 32)
        await kvm_vgic_inject_irq(kvm, None, 32, True)
        await kvm_vgic_inject_irq(kvm, None, 32, True)

    kvm = drive(VmConfig(), body)
    assert kvm.dist.active_spis.peek() == 1 and len(kvm.vcpus[0].ap_list) == 1


def test_queue_disabled_irq_goes_nowhere():
    """A pending but disabled SPI is latched and not queued."""
    async def body(kvm):
        await kvm_vgic_inject_irq(kvm, None, 32, True)

    kvm = drive(VmConfig(), body)
    assert kvm.dist.spis[0].pending_latch and kvm.vcpus[0].ap_list == []
    assert kvm.dist.active_spis.peek() == 0


def test_queue_without_bcst_kick_variants():
    """no-spi-tracking never counts; a GICv2 model and a host without TDIR never count."""
    async def body(kvm):
        enable(kvm, 32)
        await kvm_vgic_inject_irq(kvm, None, 32, True)

    for config in (VmConfig(variant="no-spi-tracking"), VmConfig(host_tdir_cap=False)):
        kvm = drive(config, body)
        assert kvm.dist.active_spis.peek() == 0
        assert pending_reqs(kvm) == [1 << KVM_REQ_IRQ_PENDING, 0]
    kvm = drive(VmConfig(variant="v2-posted", host_tdir_cap=False), body)
    assert kvm.dist.active_spis.peek() == 1 and pending_reqs(kvm) == [1 << KVM_REQ_IRQ_PENDING] * 2


def test_level_injection_counts_only_changes():
    """vgic_validate_injection: a level interrupt injected twice at the same level is filtered."""
    results = []

    async def body(kvm):
        kvm.dist.spis[0].config = IrqConfig.LEVEL
        enable(kvm, 32)
        results.append(await kvm_vgic_inject_irq(kvm, None, 32, True))
        results.append(await kvm_vgic_inject_irq(kvm, None, 32, True))
        results.append(await kvm_vgic_inject_irq(kvm, None, 32, False))

    drive(VmConfig(), body)
    assert results == [True, False, True]


def test_prune_removes_idle_entries_and_migrates_retargeted_ones():
    """Prune drops an entry that is neither active nor pending, and moves a pending one whose
    target changed to the new vCPU's ap_list with a request to it."""
    async def body(kvm):
        enable(kvm, 32, 33)
        await kvm_vgic_inject_irq(kvm, None, 32, True)
        await kvm_vgic_inject_irq(kvm, None, 33, True)
        for vcpu in kvm.vcpus:
            vcpu.core.requests.bits = 0
        kvm.dist.spis[0].pending_latch = False  # 32: nowhere to go
        kvm.dist.spis[1].target_vcpu = 1  # 33: retargeted
        await vgic_prune_ap_list(kvm, kvm.vcpus[0])

    kvm = drive(VmConfig(), body)
    assert kvm.vcpus[0].ap_list == [] and [i.intid for i in kvm.vcpus[1].ap_list] == [33]
    assert kvm.dist.spis[0].vcpu is None and kvm.dist.spis[1].vcpu == 1
    assert pending_reqs(kvm) == [0, 1 << KVM_REQ_IRQ_PENDING]


async def _active_outside_lrs(kvm):
    """SPI 32 queued on vCPU0, acknowledged in its LR, folded back: active, not on an LR."""
    enable(kvm, 32)
    kvm.vcpus[0].cpuif.state.vmcr.veoim = True
    await kvm_vgic_inject_irq(kvm, None, 32, True)
    vcpu = kvm.vcpus[0]
    await kvm_vgic_flush_hwstate(kvm, vcpu)
    vcpu.cpuif.state.lrs[0] = vcpu.cpuif.state.lrs[0].with_state(LRState.ACTIVE)
    await kvm_vgic_sync_hwstate(kvm, vcpu)


def test_deactivate_active_outside_lrs_folds_a_pseudo_lr_and_asks_owner_to_prune():
    """Outcome 3: KVM's copy is cleared on the owner's behalf; VGIC_PROCESS_UPDATE, no kick."""
    async def body(kvm):
        await _active_outside_lrs(kvm)
        assert kvm.dist.spis[0].active and not kvm.dist.spis[0].on_lr
        kvm.vcpus[1].cpuif.state.vmcr.veoim = True
        for vcpu in kvm.vcpus:
            vcpu.core.requests.bits = 0
        await vgic_v3_deactivate(kvm, kvm.vcpus[1], 32)

    kvm = drive(VmConfig(), body)
    assert not kvm.dist.spis[0].active
    assert pending_reqs(kvm) == [1 << KVM_REQ_VGIC_PROCESS_UPDATE, 0]


def test_deactivate_ignored_with_eoimode0_and_for_unqueued_irqs():
    """S10: with EOImode 0 the trapped DIR is ignored; an irq on no ap_list needs nothing."""
    async def body(kvm):
        await _active_outside_lrs(kvm)
        await vgic_v3_deactivate(kvm, kvm.vcpus[1], 32)  # vCPU1 has EOImode 0
        assert kvm.dist.spis[0].active
        kvm.vcpus[1].cpuif.state.vmcr.veoim = True
        for vcpu in kvm.vcpus:
            vcpu.core.requests.bits = 0
        await vgic_v3_deactivate(kvm, kvm.vcpus[1], 40)  # never queued

    kvm = drive(VmConfig(), body)
    assert kvm.dist.spis[0].active and pending_reqs(kvm) == [0, 0]


def test_deactivate_of_irq_in_an_lr_takes_the_icactiver_path():
    """Outcome 2: irq->on_lr -> halt every vCPU, clear the active state, resume."""
    async def body(kvm):
        enable(kvm, 32)
        await kvm_vgic_inject_irq(kvm, None, 32, True)
        await kvm_vgic_flush_hwstate(kvm, kvm.vcpus[0])  # 32 now on vCPU0's LR
        kvm.dist.spis[0].active = True  # as if acknowledged and folded earlier
        kvm.vcpus[1].cpuif.state.vmcr.veoim = True
        await vgic_v3_deactivate(kvm, kvm.vcpus[1], 32)

    kvm = drive(VmConfig(), body)
    assert not kvm.dist.spis[0].active
    assert all(not v.pause for v in kvm.vcpus)


def test_v1_deactivate_ignores_an_irq_kvm_thinks_inactive():
    """v1-posted (K3): KVM's copy not active -> nothing, even though the LR may say Active."""
    async def body(kvm):
        enable(kvm, 32)
        await kvm_vgic_inject_irq(kvm, None, 32, True)
        await kvm_vgic_flush_hwstate(kvm, kvm.vcpus[0])
        kvm.vcpus[1].cpuif.state.vmcr.veoim = True
        for vcpu in kvm.vcpus:
            vcpu.core.requests.bits = 0
        await vgic_v3_deactivate(kvm, kvm.vcpus[1], 32)

    kvm = drive(VmConfig(variant="v1-posted"), body)
    assert pending_reqs(kvm) == [0, 0] and kvm.dist.spis[0].on_lr


def test_flush_populates_pending_first_and_configures_tdir_from_the_count():
    """Flush on overflow: pending before active in the LRs; TDIR set since active_spis != 0."""
    async def body(kvm):
        enable(kvm, 32, 33, 34)
        for intid in (32, 33, 34):
            await kvm_vgic_inject_irq(kvm, None, intid, True)
        kvm.dist.spis[0].active = True
        kvm.dist.spis[0].pending_latch = False
        await kvm_vgic_flush_hwstate(kvm, kvm.vcpus[0])

    kvm = drive(VmConfig(nr_lr=2), body)
    vcpu = kvm.vcpus[0]
    assert [lr.vintid for lr in vcpu.lrs] == [33, 34] and vcpu.last_lr_irq.intid == 34
    hcr = vcpu.vgic_hcr
    assert hcr.tdir and hcr.uie and hcr.lrenpie and not hcr.npie
    assert vcpu.cpuif.state.hcr.tdir and vcpu.cpuif.state.lrs[0] == compute_lr(
        kvm.dist.spis[1], False).with_state(LRState.PENDING)
