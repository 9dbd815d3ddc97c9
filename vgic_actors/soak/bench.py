"""Soak benchmarks (design.md section 7): per-profile cost of a run (us/step, steps/run,
runs/s), runs/s on 1 and 2 workers measured in alternating rounds (so a change in the
machine's load hits both), the rate at which each catalogued variant and mutant is found
per run under PCT, random walk, the portfolio and Trio-like scheduling over the same
scenario seeds, and time to the first finding. Wall-clock timing lives here only; the
model never reads it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import msgspec

from vgic_actors.kvm.variants import VARIANTS
from vgic_actors.scenario.loader import config_dir
from vgic_actors.soak.campaign import Campaign, CampaignSpec, run_local
from vgic_actors.soak.profile import load_profile
from vgic_actors.soak.worker import ScenarioSource, run_index

FINDING_STRATEGIES = ("portfolio", "random", "pct:3", "trio")
ROUNDS = 3
"""Alternating 1-worker / 2-worker rounds behind the scaling figure."""


class ProfileCost(msgspec.Struct, frozen=True):
    """One profile's runs in this process (portfolio on merged, every check on)."""

    profile: str
    runs: int
    steps_per_run: float
    us_per_step: float
    runs_per_s: float


class FindRate(msgspec.Struct, frozen=True):
    """Share of ``runs`` runs (the same scenario seeds for every strategy) that find
    ``variant``'s own bug (a finding merged shares on that run does not count)."""

    variant: str
    strategy: str
    runs: int
    found: int
    rate: float


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

    profiles: list[ProfileCost]
    throughput: list[Throughput]
    scaling_2_workers: float
    find_rates: list[FindRate]
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


def interleaved_throughput(runs: int, rounds: int = ROUNDS) -> tuple[list[Throughput], float]:
    """1 and 2 workers in alternating rounds; each line is the round with the median rate,
    and the scaling is the median of the per-round ratios."""
    pairs = [(throughput(1, runs), throughput(2, runs)) for _ in range(rounds)]
    ratios = [two.runs_per_s / one.runs_per_s for one, two in pairs]
    median = sorted(range(rounds), key=lambda r: ratios[r])[rounds // 2]
    return list(pairs[median]), round(statistics.median(ratios), 2)


def profile_cost(name: str, runs: int) -> ProfileCost:
    """us/step, steps/run and runs/s of ``runs`` portfolio runs of profile ``name``."""
    profile, _ = load_profile(name)
    source = ScenarioSource(profile=profile)
    run_index(source, "merged", 1, "portfolio", 0)  # warm-up
    t0 = time.perf_counter()
    steps = sum(run_index(source, "merged", 1, "portfolio", i).steps for i in range(runs))
    seconds = time.perf_counter() - t0
    return ProfileCost(name, runs, round(steps / runs, 1), round(seconds / steps * 1e6, 2),
                       round(runs / seconds, 1))


def profiles() -> list[str]:
    """The profiles in config/ (soak-NAME.yaml), by name."""
    return sorted(p.stem.removeprefix("soak-") for p in config_dir().glob("soak-*.yaml"))


def find_rate(variant: str, strategy: str, runs: int) -> FindRate:
    """How many of runs 0..runs-1 (campaign seed 1, default profile) find ``variant``."""
    profile, _ = load_profile(None)
    source = ScenarioSource(profile=profile)
    found = 0
    for i in range(runs):
        sig = run_index(source, variant, 1, strategy, i).signature
        found += bool(sig) and not sig.endswith("@merged-too")
    return FindRate(variant, strategy, runs, found, round(found / runs, 3))


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
               findings: bool = True, throughput_too: bool = True,
               rate_runs: int = 100) -> SoakBench:
    """Per-profile cost, 1- and 2-worker throughput, find rates per variant and strategy,
    then time to first finding."""
    costs = [profile_cost(name, runs) for name in profiles()] if throughput_too else []
    tput, scaling = interleaved_throughput(runs) if throughput_too else ([], 0.0)
    mutants = [v for v, var in VARIANTS.items() if v != "merged" and not var.is_fix] \
        if findings else []  # proposed fixes carry merged's bugs: not find-rate subjects
    rates = [find_rate(v, s, rate_runs) for v in mutants for s in FINDING_STRATEGIES]
    firsts = [first_finding(v, s, campaigns, cap) for v in mutants for s in FINDING_STRATEGIES]
    return SoakBench(costs, tput, scaling, rates, firsts)
