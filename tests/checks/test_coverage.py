"""Kernel-path coverage: the model counts the paths it takes (checks/coverage.py)."""

from vgic_actors.checks import coverage
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.runner import run_once


def counts(file, variant="merged", seeds=range(6), strategy="random"):
    scenario = load_scenario(file)
    return coverage.merge(run_once(scenario, variant, s, strategy).coverage for s in seeds)


def test_the_asymmetric_deactivation_takes_the_broadcast_and_a_dir_emulation():
    """asym_dir on merged: the 0 -> 1 broadcast, an emulated DIR, never the single kick of
    an SPI insertion; without SPI tracking, no broadcast and no count."""
    merged = counts("scenarios/asym_dir.yaml")
    assert merged["queue.broadcast"] == 6 and merged["active_spis.inc"] == 6
    assert merged["deactivate.pseudo-lr"] + merged["deactivate.icactiver"] >= 6
    untracked = counts("scenarios/asym_dir.yaml", "no-spi-tracking")
    assert untracked["queue.broadcast"] == 0 and untracked["active_spis.inc"] == 0
    assert untracked["queue.single-kick"] >= 6


def test_overflow_takes_the_sort_the_overflow_mis_and_the_eoicount_replay():
    """More actives than LRs: the flush sorts, sets LRENPIE/UIE and the fold replays
    EOIcount."""
    c = counts("scenarios/nested_overflow_eoi.yaml", seeds=range(3), strategy="pct:3")
    for path in ("flush.sort", "hcr.lrenpie", "hcr.uie", "eoicount.replay", "fold.pseudo-lr"):
        assert c[path] > 0, path


def test_the_table_flags_the_paths_never_taken():
    """render marks each path under the threshold and says how many there are."""
    table = coverage.render({"halt": 12, "prune.remove": 3}, runs=2, threshold=10)
    assert "     halt " in table and "  !! prune.remove " in table
    assert f"{len(coverage.PATHS) - 1} of {len(coverage.PATHS)} paths taken fewer than 10" in table
    assert coverage.unreached({"halt": 1})[0] == "queue.insert"
