"""Issue 16's soak pipeline A/B on one model: runs/s of a one-process merged campaign
(default profile, portfolio) with the per-run pipeline as the issue found it against
today's, alternating rounds in one process.

As filed: every generated scenario dumped to YAML by PyYAML's Python emitter and parsed
back through the positioned loader, every program walked for ``$`` values and ``for``
loops, and an fsync after every run. Today: generated scenarios built as data
(`ScenarioSource.build`), plain programs decoded without those walks, records fsynced
per finding or in batches (soak/campaign.py).

Usage: ``.venv/bin/python docs/bench-scripts/soak_pipeline_ab.py RUNS ROUNDS``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

from vgic_actors.scenario import ops
from vgic_actors.scenario.loader import Scenario, parse_scenario
from vgic_actors.scenario.source import load_source
from vgic_actors.soak import worker
from vgic_actors.soak.campaign import Campaign, CampaignSpec
from vgic_actors.soak.generate import generate


def _filed_build(self: worker.ScenarioSource, seed: int) -> Scenario:
    assert self.profile is not None
    text = yaml.safe_dump(generate(self.profile, seed), sort_keys=False, width=100)
    return parse_scenario(load_source(text, f"gen-{seed}.yaml"))


def _never_plain(items: object) -> bool:
    del items
    return False


def rate(filed: bool, runs: int) -> tuple[float, float]:
    """(runs per wall second, runs per CPU second) of one campaign."""
    spec = CampaignSpec(profile="default", variant="merged", seed=1, strategy="portfolio")
    build, plain = worker.ScenarioSource.build, ops._plain
    with tempfile.TemporaryDirectory() as tmp:
        campaign = Campaign.open(Path(tmp) / "c", spec, resume=False)
        if filed:
            worker.ScenarioSource.build = _filed_build  # type: ignore[method-assign]
            ops._plain = _never_plain
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            for i in campaign.pending(runs):
                campaign.record(worker.run_index(campaign.source, "merged", 1, "portfolio", i))
                if filed and campaign._stream is not None:
                    os.fsync(campaign._stream.fileno())
        finally:
            worker.ScenarioSource.build, ops._plain = build, plain  # type: ignore[method-assign]
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        campaign.close()
    return runs / wall, runs / cpu


def main() -> None:
    """Print each round's two figures."""
    runs, rounds = int(sys.argv[1]), int(sys.argv[2])
    for r in range(rounds):
        filed_wall, filed_cpu = rate(True, runs)
        today_wall, today_cpu = rate(False, runs)
        print(f"round {r}: as filed {filed_wall:.1f} runs/s ({filed_cpu:.1f} per CPU-second), "
              f"today {today_wall:.1f} ({today_cpu:.1f}): {today_wall / filed_wall:.2f}x",
              flush=True)


if __name__ == "__main__":
    main()
