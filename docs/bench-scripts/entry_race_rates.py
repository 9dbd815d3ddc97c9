"""The entry-race rates of docs/benchmarks.md: the first N default-profile scenarios of
campaign seed 7 that the ``entry_race`` shape built (``run.strategy: window``), 5 seeds
each under ``window``: per variant the share of runs that show its own bug and the other
signatures found.

Usage: ``.venv/bin/python docs/bench-scripts/entry_race_rates.py N VARIANT...``.
"""

from __future__ import annotations

import sys
from collections import Counter

from vgic_actors.kvm.variants import VARIANTS
from vgic_actors.runtime.context import timing_model
from vgic_actors.scenario.loader import Scenario
from vgic_actors.scenario.runner import run_once
from vgic_actors.soak.profile import load_profile
from vgic_actors.soak.worker import ScenarioSource, scenario_seed


def main() -> None:
    """Print one line per variant."""
    wanted = int(sys.argv[1])
    profile, _ = load_profile(None)
    source = ScenarioSource(profile=profile)
    races: list[tuple[int, Scenario]] = []
    index = 0
    while len(races) < wanted:
        seed = scenario_seed(7, index)
        index += 1
        scenario = source.build(seed)
        if scenario.run.strategy == "window":
            races.append((seed, scenario))
    print(f"race scenarios: {len(races)} of {index}")
    timing = timing_model(source.timing)
    for variant in sys.argv[2:]:
        own, runs, other = 0, 0, Counter[str]()
        for seed, scenario in races:
            for k in range(5):
                sig = run_once(scenario, variant, seed + k, "window",
                               max_steps=source.max_steps, timing=timing).signature
                runs += 1
                if variant != "merged" and sig.shows(VARIANTS[variant].shows):
                    own += 1
                elif sig.key:
                    other[sig.key.split("/undo")[0]] += 1
        print(f"{variant}: {runs} runs, own {own} ({100 * own / runs:.2f}%), "
              f"other {dict(other.most_common(6))}")


if __name__ == "__main__":
    main()
