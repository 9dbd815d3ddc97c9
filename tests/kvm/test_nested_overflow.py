"""peer-tests.md S1 and S3: four nested actives through two List Registers."""

import pytest

from vgic_actors.kvm.vm import VmConfig
from vgic_actors.runtime import Outcome

from .scenarios import NESTED, nested_overflow_guests, run_scenario


def config(variant: str) -> VmConfig:
    return VmConfig(variant=variant, nr_vcpus=1, nr_lr=2, ipi_latency=8)


@pytest.mark.parametrize("eoimode", [False, True], ids=["S1-eoimode0", "S3-eoimode1"])
def test_merged_deactivates_every_nested_active(eoimode):
    """merged: every interrupt is acknowledged in nesting order and ends inactive, with the
    EOIcount replay (S1) or trapped DIRs (S3) covering the ones outside the LRs."""
    for seed in range(40):
        out = run_scenario(config("merged"), nested_overflow_guests(eoimode), seed=seed,
                           strategy="random")
        assert out.result.outcome is Outcome.QUIESCENT, seed
        assert out.failures == [], seed
        guest = out.machine.guests[0]
        assert guest.acked == [intid for intid, _ in NESTED]
        cpuif = out.machine.kvm.vcpus[0].cpuif
        assert cpuif.state.ap1r == [0] and cpuif.running_priority() == 0xFF
        assert not any(irq.active for irq in out.machine.kvm.dist.spis)


@pytest.mark.parametrize("eoimode", [False, True], ids=["S1-eoimode0", "S3-eoimode1"])
def test_pre_series_cannot_present_a_pending_interrupt_behind_two_actives(eoimode):
    """pre-series (negative control): actives sort first, so once both LRs hold actives the
    next pending interrupt never reaches an LR; the guest's WFI returns at once forever and
    the run is a livelock."""
    out = run_scenario(config("pre-series"), nested_overflow_guests(eoimode), seed=0,
                       strategy="random", max_steps=5000)
    assert out.result.outcome is Outcome.LIVELOCK
    assert out.machine.guests[0].acked == [32, 33]
