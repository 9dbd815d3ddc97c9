"""EOImode 0 overflow and the EOIcount replay (kernel-vgic.md 6.3, bug K1, fix 6da5e537f5af)."""

from vgic_actors.kvm.vm import VmConfig
from vgic_actors.runtime import Outcome

from .scenarios import late_mi_overflow_guests, run_scenario

STUCK_32 = "vcpu0 pc14: ISACTIVER read of INTID 32: expected 0, got 1"


def config(variant: str) -> VmConfig:
    return VmConfig(variant=variant, nr_vcpus=1, nr_lr=2, ipi_latency=8)


def test_merged_replays_eoicount_onto_the_interrupt_outside_the_lrs():
    """merged: whenever the MI lands, SPI 32 (outside the LRs) is the one deactivated."""
    for seed in range(150):
        out = run_scenario(config("merged"), late_mi_overflow_guests(), seed=seed,
                           strategy="random")
        assert out.result.outcome is Outcome.QUIESCENT, seed
        assert out.failures == [], seed
        assert out.machine.guests[0].acked == [32, 33, 34]


def test_v4_applied_walk_from_the_head_is_found_to_deactivate_the_wrong_interrupt():
    """v4-applied (K1): when the MI lands after the guest acked SPI 33 from an LR, the walk
    from the ap_list head deactivates 33 instead of 32; the scheduler finds such seeds, and
    every failure is SPI 32 left Active."""
    failures = []
    for seed in range(60):
        out = run_scenario(config("v4-applied"), late_mi_overflow_guests(), seed=seed,
                           strategy="random")
        assert out.result.outcome is Outcome.QUIESCENT, seed
        failures.append(out.failures)
    assert any(failures), "random walk never found the late-MI interleaving"
    assert all(f in ([], [STUCK_32]) for f in failures)
