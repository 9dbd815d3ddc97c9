"""The merged+fix-* variants: each removes its finding from its scenario on every seed and
strategy where merged shows it, and changes nothing while its switch is off."""

from dataclasses import fields

import pytest

from vgic_actors.kvm.variants import FIXES, HISTORY, VARIANTS, differences
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.runner import run_once, with_horizon

# finding -> (scenario, signature merged shows there)
CASES = {
    "F1": ("scenarios/pseudo_lr_window.yaml",
           "ordering/deactivation-lost/DIR-trapped:icactiver/on-ap-list"
           "/undo:vgic_v3_fold_lr<-vgic_v3_fold_lr_state,"
           "clear:vgic_mmio_change_active<-vgic_v3_deactivate"),
    "F2": ("scenarios/pseudo_lr_window.yaml",
           "ordering/deactivation-lost/DIR-trapped:pseudo-lr/on-ap-list"
           "/undo:vgic_v3_fold_lr<-vgic_v3_fold_lr_state,"
           "clear:vgic_v3_fold_lr<-vgic_v3_deactivate"),
    "F3": ("scenarios/irqfd_resample.yaml", "ordering/resample-lost/vgic_v3_fold_lr:no-notify"),
    "F4": ("scenarios/irqfd_broadcast_atomic.yaml", "ordering/smp-call-in-atomic"),
    "F5": ("scenarios/broadcast_after_publish.yaml",
           "ordering/deactivation-lost/DIR-untrapped:flushed-before-bcst/on-ap-list"
           "/undo:ICV_DIR_EL1"),
    "F6": ("scenarios/active_spis_wrap.yaml", "ordering/active-spis-undercount"),
}
SEEDS = {"F1": 80, "F2": 40, "F3": 4, "F4": 8, "F5": 80, "F6": 4}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fix_variant_is_clean_of_its_finding_where_merged_shows_it(name):
    """Same scenario, seeds and strategies: merged shows the finding at least once; the
    fix never does, and on its own scenario finds nothing else of its finding's kind."""
    path, wanted = CASES[name]
    scenario = load_scenario(path)
    merged_hits = 0
    for seed in range(SEEDS[name]):
        for strategy in ("random", "pct:2", "pct:3"):
            spec = with_horizon(strategy, scenario)
            base = run_once(scenario, "merged", seed, spec).signature.key
            fixed = run_once(scenario, FIXES[name], seed, spec).signature.key
            merged_hits += base == wanted
            assert fixed != wanted, (name, seed, strategy)
    assert merged_hits > 0, f"{name}: merged no longer shows {wanted} on {path}"


def test_each_fix_is_one_switch_on_merged_described_as_a_proposed_fix():
    """`variants -v` shows each fix as one switch flipped on merged; its story names the
    finding; no kernel version or mutant has a fix switch on."""
    fix_switches = {f.name for f in fields(VARIANTS["merged"].switches)
                    if f.name.startswith("fix_")}
    assert len(fix_switches) == len(FIXES)
    for name, variant in FIXES.items():
        diff = differences(VARIANTS[variant])
        assert list(diff) and set(diff) <= fix_switches and len(diff) == 1, variant
        assert VARIANTS[variant].is_fix and name in VARIANTS[variant].story
    for name, v in VARIANTS.items():
        if not v.is_fix:
            assert not any(getattr(v.switches, s) for s in fix_switches), name
    assert set(HISTORY) <= set(VARIANTS)
