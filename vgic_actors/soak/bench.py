"""Soak benchmarks (design.md section 7): runs/s on 1 and 2 workers, and time to the first
finding for every catalogued variant and mutant under the default portfolio, random walk,
PCT and Trio-like (uncontrolled) scheduling. Wall-clock timing lives here only; the model
never reads it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import msgspec

from vgic_actors.kvm.variants import VARIANTS
from vgic_actors.soak.campaign import Campaign, CampaignSpec, run_local

FINDING_STRATEGIES = ("portfolio", "random", "pct:3", "trio")


class Throughput(msgspec.Struct, frozen=True):
    """Soak runs per second of the default profile on ``workers`` processes."""

    workers: int
    runs: int
    seconds: float
    runs_per_s: float


class FirstFinding(msgspec.Struct, frozen=True):
    """Time and runs to the first finding of ``variant`` (not also on merged), median over
    ``campaigns`` campaigns (a campaign that finds nothing within ``cap_s`` counts as cap)."""

    variant: str
    strategy: str
    campaigns: int
    found: int
    median_s: float
    median_runs: float
    cap_s: float


class SoakBench(msgspec.Struct, frozen=True):
    """What ``bench --soak`` / ``--findings`` print."""

    throughput: list[Throughput]
    scaling_2_workers: float
    first_findings: list[FirstFinding]


def _campaign(folder: Path, variant: str, strategy: str, seed: int, *, runs: int | None,
              deadline: float | None, workers: int, stop: bool) -> Campaign:
    spec = CampaignSpec(profile="default", variant=variant, seed=seed, strategy=strategy)
    campaign = Campaign.open(folder, spec, resume=False)
    run_local(campaign, runs=runs, deadline=deadline, workers=workers,
              on_progress=lambda: None, stop_on_finding=stop)
    campaign.close()
    return campaign


def throughput(workers: int, runs: int) -> Throughput:
    """Runs/s of a merged campaign of ``runs`` runs on ``workers`` processes."""
    with tempfile.TemporaryDirectory(prefix="vgic-bench-") as tmp:
        t0 = time.perf_counter()
        _campaign(Path(tmp) / "c", "merged", "portfolio", 1, runs=runs, deadline=None,
                  workers=workers, stop=False)
        seconds = time.perf_counter() - t0
    return Throughput(workers, runs, round(seconds, 2), round(runs / seconds, 1))


def first_finding(variant: str, strategy: str, campaigns: int, cap: float) -> FirstFinding:
    """Median wall time and runs to a finding that merged does not share."""
    times: list[float] = []
    runs: list[float] = []
    found = 0
    with tempfile.TemporaryDirectory(prefix="vgic-bench-") as tmp:
        for k in range(campaigns):
            t0 = time.perf_counter()
            c = _campaign(Path(tmp) / f"c{k}", variant, strategy, 100 + k, runs=None,
                          deadline=time.monotonic() + cap, workers=1, stop=True)
            own = [s for s in c.progress.findings if not s.endswith("@merged-too")]
            if own:
                found += 1
                times.append(time.perf_counter() - t0)
                runs.append(float(c.progress.runs))
            else:
                times.append(cap)
                runs.append(float(c.progress.runs))
    return FirstFinding(variant, strategy, campaigns, found,
                        round(statistics.median(times), 2), statistics.median(runs), cap)


def bench_soak(*, runs: int = 300, campaigns: int = 5, cap: float = 60.0,
               findings: bool = True, throughput_too: bool = True) -> SoakBench:
    """Throughput on 1 and 2 workers, then time to first finding per variant and strategy."""
    tput = [throughput(w, runs) for w in (1, 2)] if throughput_too else []
    scaling = round(tput[1].runs_per_s / tput[0].runs_per_s, 2) if tput else 0.0
    firsts = [first_finding(v, s, campaigns, cap)
              for v in VARIANTS if v != "merged" and findings for s in FINDING_STRATEGIES]
    return SoakBench(tput, scaling, firsts)
