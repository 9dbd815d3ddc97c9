"""The entry-window table of docs/benchmarks.md: scenarios/entry_window.yaml, seeds
0..399 under ``window`` with realistic timing, per variant the runs that show its own
bug (`Variant.shows`) and the other findings.

Usage: ``.venv/bin/python docs/bench-scripts/entry_window_table.py``.
"""

from __future__ import annotations

from pathlib import Path

from vgic_actors.kvm.variants import VARIANTS
from vgic_actors.runtime.context import timing_model
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.runner import run_once


def main() -> None:
    """Print one line per variant."""
    scenario = load_scenario(Path("scenarios/entry_window.yaml"))
    timing = timing_model("realistic")
    for variant in ("mutant-stale-tdir", "mutant-no-request-recheck", "merged"):
        own = other = untrapped = 0
        for seed in range(400):
            sig = run_once(scenario, variant, seed, "window", timing=timing).signature
            if not sig.key:
                continue
            if variant != "merged" and sig.shows(VARIANTS[variant].shows):
                own += 1
            else:
                other += 1
                untrapped += "DIR-untrapped" in sig.key
        print(f"{variant}: own {own}, other {other} ({untrapped} of them DIR-untrapped)")


if __name__ == "__main__":
    main()
