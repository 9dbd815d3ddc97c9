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
