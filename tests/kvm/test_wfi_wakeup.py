"""WFI wake-up as the kernel decides it: kvm_vgic_vcpu_pending_irq, kvm_arch_vcpu_runnable and
kvm_vcpu_check_block (the condition the model's kvm_vcpu_block waits on)."""

import pytest

from vgic_actors.kvm.run_loop import VcpuRunLoop
from vgic_actors.kvm.vgic import kvm_arch_vcpu_runnable, kvm_vgic_vcpu_pending_irq
from vgic_actors.kvm.vm import KVM_REQ_IRQ_PENDING, KVM_REQ_VGIC_PROCESS_UPDATE, VmConfig

from .test_vgic_paths import drive


async def _nothing(_kvm):
    return None


@pytest.fixture
def kvm():
    kvm = drive(VmConfig(nr_vcpus=1), _nothing)
    vcpu = kvm.vcpus[0]
    vcpu.cpuif.state.vmcr.vpmr = 0xF8
    irq = kvm.dist.spis[0]
    irq.enabled, irq.pending_latch, irq.priority, irq.vcpu = True, True, 0xA0, 0
    vcpu.ap_list.append(irq)
    return kvm


def test_an_enabled_pending_unmasked_entry_is_pending(kvm):
    """The baseline: pending, enabled, not active, priority below PMR."""
    assert kvm_vgic_vcpu_pending_irq(kvm, kvm.vcpus[0])


def test_an_active_entry_does_not_count_even_if_pending(kvm):
    """Pending and active (an edge re-asserted while the guest handles it): not pending for
    the wake-up (vgic.c: "&& !irq->active")."""
    kvm.dist.spis[0].active = True
    assert not kvm_vgic_vcpu_pending_irq(kvm, kvm.vcpus[0])


def test_a_disabled_distributor_wakes_nobody(kvm):
    """vgic.c: "if (!vcpu->kvm->arch.vgic.enabled) return false"."""
    kvm.dist.enabled = False
    assert not kvm_vgic_vcpu_pending_irq(kvm, kvm.vcpus[0])


@pytest.mark.parametrize(("priority", "pending"), [(0xF0, True), (0xF8, False), (0xFF, False)])
def test_priority_must_be_strictly_below_pmr(kvm, priority, pending):
    """irq->priority < vmcr.pmr."""
    kvm.dist.spis[0].priority = priority
    assert kvm_vgic_vcpu_pending_irq(kvm, kvm.vcpus[0]) is pending


def test_a_paused_vcpu_is_not_runnable(kvm):
    """kvm_arch_vcpu_runnable: "&& !v->arch.pause" (kvm_arm_halt_guest)."""
    vcpu = kvm.vcpus[0]
    assert kvm_arch_vcpu_runnable(kvm, vcpu)
    vcpu.pause = True
    assert not kvm_arch_vcpu_runnable(kvm, vcpu)


@pytest.mark.parametrize("req", [KVM_REQ_IRQ_PENDING, KVM_REQ_VGIC_PROCESS_UPDATE])
def test_a_pending_request_alone_does_not_end_the_block(kvm, req):
    """kvm_vcpu_check_block looks at kvm_arch_vcpu_runnable, timers, signals and
    KVM_REQ_UNBLOCK only: with nothing to take, a request leaves the vCPU blocked."""
    vcpu = kvm.vcpus[0]
    vcpu.ap_list.clear()
    vcpu.core.requests.bits |= 1 << req
    loop = VcpuRunLoop(kvm, vcpu, None, None, None)
    assert not loop._runnable()
    vcpu.ap_list.append(kvm.dist.spis[0])
    assert loop._runnable()
