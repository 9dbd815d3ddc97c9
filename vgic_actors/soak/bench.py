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

from vgic_actors.checks.signature import Signature
from vgic_actors.kvm.variants import VARIANTS
from vgic_actors.runtime import timing_model
from vgic_actors.scenario.loader import config_dir
from vgic_actors.scenario.runner import run_once, with_horizon
from vgic_actors.soak.campaign import Campaign, CampaignSpec
from vgic_actors.soak.pool import WorkerPool
from vgic_actors.soak.profile import load_profile
from vgic_actors.soak.worker import RunRecord, ScenarioSource, run_index

FINDING_STRATEGIES = ("portfolio", "random", "pct:3", "trio", "window")
ROUNDS = 3
THROUGHPUT_RUNS = 900
"""Runs per worker-count round: forking the workers and the last run's tail (one worker
idle while the other finishes) cost about a run each, under 0.5 % of a round this long
(at 300 runs the rounds' scaling moved between 1.87 and 2.0 on an idle machine)."""
"""Alternating 1-worker / 2-worker rounds behind the scaling figure."""
MERGED_SCHEDULES = tuple((s, k) for s in ("random", "pct:3", "trio") for k in range(4))
"""The schedules (strategy, seed offset) on which merged re-runs a candidate finding's
scenario before the bench calls the finding the variant's own (`MergedJudge`)."""
REFERENCE_RUNS = 300
"""Runs of merged's own campaign per campaign seed whose signatures are merged's
(`MergedJudge.learn`)."""


class MergedJudge:
    """Which findings are a variant's own bug and which are merged's (for find rates and
    first findings).

    The soak's differential check re-runs one schedule on merged: a merged bug (F2, F4
    of docs/findings.md) found on a schedule merged does not repeat passes as the
    variant's. Here a signature is merged's if merged showed it in its own reference
    campaigns (`learn`) or, re-running the candidate's scenario, under any of
    `MERGED_SCHEDULES`; the verdicts are cached by signature. Two findings are one bug
    when they have one root cause (`Signature.root`: how the deactivation was made and
    where it was lost), whatever else the runs broke: F1 beside F4 is still F1. And a
    variant whose catalogue entry says what its bug shows (`Variant.shows`) is found
    only by a signature that shows it. A merged bug too rare for all of these can still
    pass (the tables name the signature found)."""

    def __init__(self) -> None:
        self.merged: set[str] = set()
        self.roots: set[str] = set()  # merged's lost deactivations (`Signature.root`)
        self.checked: dict[tuple[int, str], bool] = {}

    def _merged(self, sig: Signature) -> None:
        self.merged.add(sig.key)
        if sig.root:
            self.roots.add(sig.root)

    def learn(self, source: ScenarioSource, seeds: range, runs: int) -> None:
        """Every signature of ``runs`` portfolio runs of merged per campaign seed."""
        for seed in seeds:
            for i in range(runs):
                sig = run_index(source, "merged", seed, "portfolio", i).signature
                if sig:
                    self._merged(Signature.from_key(sig))

    def own(self, source: ScenarioSource, rec: RunRecord) -> bool:
        """``rec`` found something merged does not show (see the class doc), and what
        its variant's own bug shows (`Variant.shows`), if the catalogue says."""
        sig = rec.signature
        found = Signature.from_key(sig)
        shows = VARIANTS[rec.variant].shows if rec.variant in VARIANTS else ""
        if (not sig or sig.endswith("@merged-too") or sig in self.merged
                or (found.root and found.root in self.roots)
                or (shows and not found.shows(shows))):
            return False
        key = (rec.scenario_seed, sig)
        if key not in self.checked:
            scenario = source.build(rec.scenario_seed)
            timing = timing_model(source.timing)
            self.checked[key] = not any(
                _same_bug(run_once(scenario, "merged", rec.scenario_seed + k,
                                   with_horizon(s, scenario), max_steps=source.max_steps,
                                   timing=timing).signature, found)
                for s, k in MERGED_SCHEDULES)
            if not self.checked[key]:
                self._merged(found)
        return self.checked[key]


def _same_bug(a: Signature, b: Signature) -> bool:
    """One bug: the same root cause of a lost deactivation, or else the same key."""
    return a.root == b.root if a.root and b.root else a.key == b.key


class ProfileCost(msgspec.Struct, frozen=True):
    """One profile's runs in this process (portfolio on merged, every check on)."""

    profile: str
    runs: int
    steps_per_run: float
    us_per_step: float
    runs_per_s: float


class FindRate(msgspec.Struct, frozen=True):
    """Share of ``runs`` runs (the same scenario seeds for every strategy) that find
    ``variant``'s own bug (a finding `MergedJudge` calls merged's does not count)."""

    variant: str
    strategy: str
    runs: int
    found: int
    rate: float
    signature: str = ""  # the own signature found most often


class Throughput(msgspec.Struct, frozen=True):
    """Soak runs per second of the default profile on ``workers`` processes, with the CPU
    time they took: ``cpu_ms_per_run`` in the processes running the runs (the campaign's
    own process with one worker, the worker processes with two), ``parent_ms_per_run``
    in the soak's own process beside them (records, IPC; 0 with one worker, where it is
    inside the first figure), and ``cores`` = all that CPU time over the wall time (how
    much of the machine the campaign got: below ``workers`` means contention)."""

    workers: int
    runs: int
    seconds: float
    runs_per_s: float
    cpu_ms_per_run: float = 0.0
    parent_ms_per_run: float = 0.0
    cores: float = 0.0


class FirstFinding(msgspec.Struct, frozen=True):
    """Time and runs to the first finding of ``variant``'s own bug (`MergedJudge`), median
    over ``campaigns`` campaigns (one that finds nothing within ``cap_s`` counts as cap).
    The time is the campaign's (runs, result file, saved findings) without the judge's
    re-runs on merged, which a soak does not make."""

    variant: str
    strategy: str
    campaigns: int
    found: int
    median_s: float
    median_runs: float
    cap_s: float
    signature: str = ""  # the own signature found first most often
    median_cpu_s: float = 0.0
    """CPU seconds this process spent to the finding (the cap's wall time if none): the
    one-core figure when the machine is shared."""


class SoakBench(msgspec.Struct, frozen=True):
    """What ``bench --soak`` / ``--findings`` print."""

    profiles: list[ProfileCost]
    throughput: list[Throughput]
    scaling_2_workers: float
    find_rates: list[FindRate]
    first_findings: list[FirstFinding]


def throughput(workers: int, runs: int) -> Throughput:
    """Runs/s and CPU cost of a merged campaign of ``runs`` runs on ``workers`` processes
    (one: in this process, as `run_local` does; more: a `WorkerPool`)."""
    spec = CampaignSpec(profile="default", variant="merged", seed=1, strategy="portfolio")
    with tempfile.TemporaryDirectory(prefix="vgic-bench-") as tmp:
        campaign = Campaign.open(Path(tmp) / "c", spec, resume=False)
        t0, c0 = time.perf_counter(), time.process_time()
        if workers == 1:
            for i in campaign.pending(runs):
                campaign.record(run_index(campaign.source, "merged", 1, "portfolio", i))
            work = time.process_time() - c0
        else:
            pool = WorkerPool(workers, campaign.source, "merged", 1, "portfolio")
            pool.run(campaign.pending(runs), campaign.record, lambda: False)
            work = pool.cpu_seconds
        campaign.close()
        seconds = time.perf_counter() - t0
        parent = time.process_time() - c0 if workers > 1 else 0.0
    return Throughput(workers, runs, round(seconds, 2), round(runs / seconds, 1),
                      round(work / runs * 1e3, 2), round(parent / runs * 1e3, 2),
                      round((work + parent) / seconds, 2))


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


def find_rate(variant: str, strategy: str, runs: int,
              judge: MergedJudge | None = None) -> FindRate:
    """How many of runs 0..runs-1 (campaign seed 1, default profile) find ``variant``'s
    own bug."""
    profile, _ = load_profile(None)
    source = ScenarioSource(profile=profile)
    judge = judge if judge is not None else MergedJudge()
    sigs = []
    for i in range(runs):
        rec = run_index(source, variant, 1, strategy, i)
        if judge.own(source, rec):
            sigs.append(rec.signature)
    return FindRate(variant, strategy, runs, len(sigs), round(len(sigs) / runs, 3),
                    _most_common(sigs))


def _most_common(sigs: list[str]) -> str:
    return max(sorted(set(sigs)), key=sigs.count) if sigs else ""


FIRST_SEEDS = 100
"""Campaign k of a first-finding measurement uses campaign seed FIRST_SEEDS + k."""


def first_finding(variant: str, strategy: str, campaigns: int, cap: float,
                  judge: MergedJudge | None = None) -> FirstFinding:
    """Median wall time and runs to the variant's own bug, one campaign at a time on one
    core, each recording its runs as a soak does."""
    profile, _ = load_profile(None)
    source = ScenarioSource(profile=profile)
    judge = judge if judge is not None else MergedJudge()
    times: list[float] = []
    cpus: list[float] = []
    runs: list[float] = []
    sigs: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vgic-bench-") as tmp:
        for k in range(campaigns):
            spec = CampaignSpec(profile="default", variant=variant, seed=FIRST_SEEDS + k,
                                strategy=strategy)
            campaign = Campaign.open(Path(tmp) / f"c{k}", spec, resume=False)
            t0, c0 = time.perf_counter(), time.process_time()
            judged = judged_cpu = 0.0
            index, found = 0, ""
            while time.perf_counter() - t0 - judged < cap:
                rec = run_index(source, variant, spec.seed, strategy, index)
                campaign.record(rec)
                index += 1
                if rec.signature:
                    j0, jc = time.perf_counter(), time.process_time()
                    own = judge.own(source, rec)
                    judged += time.perf_counter() - j0
                    judged_cpu += time.process_time() - jc
                    if own:
                        found = rec.signature
                        break
            campaign.close()
            times.append(min(time.perf_counter() - t0 - judged, cap) if found else cap)
            cpus.append(time.process_time() - c0 - judged_cpu if found else cap)
            runs.append(float(index))
            if found:
                sigs.append(found)
    return FirstFinding(variant, strategy, campaigns, len(sigs),
                        round(statistics.median(times), 2), statistics.median(runs), cap,
                        _most_common(sigs), round(statistics.median(cpus), 2))


def bench_soak(*, runs: int = 300, campaigns: int = 5, cap: float = 60.0,
               findings: bool = True, throughput_too: bool = True,
               rate_runs: int = 100, variants: list[str] | None = None) -> SoakBench:
    """Per-profile cost, 1- and 2-worker throughput, find rates per variant and strategy,
    then time to first finding (``variants``: only theirs, and no throughput)."""
    throughput_too = throughput_too and not variants
    costs = [profile_cost(name, runs) for name in profiles()] if throughput_too else []
    tput, scaling = (interleaved_throughput(THROUGHPUT_RUNS) if throughput_too
                     else ([], 0.0))
    # proposed fixes carry merged's bugs: not find-rate subjects
    mutants = (variants or [v for v, var in VARIANTS.items() if v != "merged"
                            and not var.is_fix]) if findings else []
    judge = MergedJudge()
    if mutants:
        profile, _ = load_profile(None)
        judge.learn(ScenarioSource(profile=profile),
                    range(FIRST_SEEDS, FIRST_SEEDS + campaigns), REFERENCE_RUNS)
    rates = [find_rate(v, s, rate_runs, judge) for v in mutants for s in FINDING_STRATEGIES]
    firsts = [first_finding(v, s, campaigns, cap, judge) for v in mutants
              for s in FINDING_STRATEGIES]
    return SoakBench(costs, tput, scaling, rates, firsts)
