"""The host GIC axis: it, not the guest model, picks the fold (vgic.c: vgic_fold_lr_state)."""

import pytest

from vgic_actors.arch.registers import GicVersion
from vgic_actors.errors import InputError
from vgic_actors.kvm.vm import VmConfig
from vgic_actors.scenario import load_scenario_text


def test_a_gicv3_guest_needs_a_gicv3_host():
    """KVM cannot emulate a GICv3 on a GICv2 host: the config and the loader refuse it."""
    with pytest.raises(ValueError, match="GICv3 host"):
        VmConfig(host_gic=GicVersion.V2)
    with pytest.raises(InputError) as info:
        load_scenario_text("vm: {gic: v3, host_gic: v2}\n", "s.yaml")
    assert "$.vm.host_gic" in str(info.value)


def test_the_host_defaults_to_gicv3_and_a_gicv2_guest_may_run_on_either():
    """config/defaults.yaml: host_gic v3; a GICv2 guest runs on a GICv2 or a GICv3 host."""
    assert not load_scenario_text("vm: {gic: v2}\n", "s.yaml").vm.host_v2
    assert load_scenario_text("vm: {gic: v2, host_gic: v2}\n", "s.yaml").vm.host_v2


@pytest.mark.parametrize(("host", "before_fold"), [(GicVersion.V2, True), (GicVersion.V3, False)])
def test_the_gicv2_fold_notifies_before_it_folds(monkeypatch, host, before_fold):
    """vgic_v2_fold_lr calls kvm_notify_acked_irq before the lookup and the irq_lock;
    vgic_v3_fold_lr after folding, once it knows KVM's copy was active."""
    from vgic_actors.arch.registers import LRState
    from vgic_actors.kvm import vgic
    from vgic_actors.kvm.irq import IrqConfig
    from vgic_actors.kvm.lr import compute_lr

    from .test_vgic_paths import drive

    seen = []

    async def notify(_routing, _irqchip, pin):
        seen.append((pin, kvm_box[0].dist.spis[3].on_lr))

    monkeypatch.setattr(vgic, "kvm_notify_acked_irq", notify)
    kvm_box = []

    async def body(kvm):
        kvm_box.append(kvm)
        irq = kvm.dist.spis[3]
        irq.config, irq.active, irq.on_lr, irq.vcpu = IrqConfig.LEVEL, True, True, 0
        lr = compute_lr(irq, True).with_state(LRState.INVALID)
        await vgic.vgic_fold_lr(kvm, kvm.vcpus[0], lr)

    drive(VmConfig(gic_model=GicVersion.V2, host_gic=host, nr_vcpus=1), body)
    assert seen == [(3, before_fold)]
