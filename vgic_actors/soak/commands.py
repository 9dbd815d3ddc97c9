"""``vgic-actors soak``, ``shrink``, ``explore`` and ``replay``: argparse and dispatch.

Exit: soak 0 no finding, 1 findings; replay 0 the recorded finding came back, 1 it did
not; shrink 0 a smaller counterexample written; 2 bad input everywhere (and a soak whose
--out is locked by another, or cannot be written); Ctrl-C keeps every finished run
(results.jsonl is flushed per run, fsynced in batches and at the end) and exits 130.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import TextIO

import msgspec

from vgic_actors.errors import EXIT_FINDINGS, EXIT_OK, InputError, UsageError

MAX_WORKERS = 256
"""Worker processes a soak may start (each is a forked Python process)."""


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``soak``, ``shrink``, ``explore`` and ``replay`` to the top-level subparsers."""
    soak = sub.add_parser(
        "soak", help="race-hunting campaign over generated scenarios or one scenario's seeds",
        description="Generate scenarios from a profile (config/soak-PROFILE.yaml), run each "
        "under the variant with a fresh interleaving, judge every invariant, and keep each "
        "distinct finding with a replayable scenario and choice log under --out. Results are "
        "appended atomically: a kill loses no finished run, --resume continues.")
    what = soak.add_mutually_exclusive_group()
    what.add_argument("--profile",
                      help="profile name in config/ (soak-NAME.yaml) or a path (default: "
                      "default)")
    what.add_argument("--scenario", metavar="FILE", help="soak one scenario over many seeds")
    soak.add_argument("--variant", help="kernel variant (default merged)")
    soak.add_argument("--strategy",
                      help="portfolio (random walk alternating with pct:2, pct:3, pct:4) | "
                      "random | pct:D[:K] | trio (default portfolio)")
    budget = soak.add_mutually_exclusive_group()
    budget.add_argument("--runs", type=int, help="number of runs")
    budget.add_argument("--time", help="wall-clock budget: 90s, 10m, 1h")
    soak.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    soak.add_argument("--engine", choices=("local", "dask"), default="local",
                      help="local processes or Dask distributed (the 'cluster' extra)")
    soak.add_argument("--scheduler", metavar="ADDR",
                      help="Dask scheduler address (default: a local cluster of --workers)")
    soak.add_argument("--seed", type=int, help="campaign seed (default 0)")
    soak.add_argument("--out", default="soak-out", help="output folder (default soak-out)")
    soak.add_argument("--resume", action="store_true",
                      help="continue the campaign in --out (its campaign.json gives the "
                      "profile, variant, seed and strategy; flags may only repeat them)")
    soak.add_argument("--stop-on-finding", action="store_true",
                      help="stop at the first finding (time-to-first-finding)")
    soak.add_argument("--progress", action="store_true",
                      help="progress line even when stderr is not a terminal")

    shrink = sub.add_parser(
        "shrink", help="reduce a finding to a minimal scenario and choice log",
        description="Shrink FINDING (a soak findings/ folder): fewer guest steps, host steps "
        "and vCPUs, fewer scheduling deviations, while the same invariants still fail. Writes "
        "FINDING/shrunk.yaml and FINDING/shrunk.choices.json, which `vgic-actors run "
        "shrunk.yaml --variant V --seed S --runs 1 --strategy replay:shrunk.choices.json` "
        "replays.")
    shrink.add_argument("finding", metavar="FINDING")
    shrink.add_argument("--budget", type=float, default=60.0,
                        help="wall-clock seconds to spend (default 60)")

    explore = sub.add_parser(
        "explore", help="every schedule of a small scenario within a deviation bound",
        description="Bounded exhaustive exploration: run every schedule of SCENARIO that "
        "deviates at most B times from the canonical order. Either proves the scenario clean "
        "within the bound or stops at the first counterexample, written as a choice log that "
        "`vgic-actors run --strategy replay:FILE` replays.")
    explore.add_argument("scenario", metavar="SCENARIO")
    explore.add_argument("--bound", type=int, default=1, help="deviations per schedule (1)")
    explore.add_argument("--variant", default="merged", help="kernel variant (merged)")
    explore.add_argument("--max-runs", type=int, default=100_000,
                         help="stop after this many schedules (default 100000)")
    explore.add_argument("--out", metavar="FILE", default="explore.choices.json",
                         help="where a counterexample's choice log goes")

    replay = sub.add_parser(
        "replay", help="re-run one finding exactly, with its full event log",
        description="Replay FINDING's scenario and choice log (the shrunk pair when present, "
        "unless --original), write the JSON-lines event log, and say whether the recorded "
        "invariants failed again.")
    replay.add_argument("finding", metavar="FINDING")
    replay.add_argument("--original", action="store_true", help="ignore shrunk.yaml")
    replay.add_argument("--log", metavar="FILE", help="event log (default FINDING/replay.jsonl)")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``1h`` -> seconds."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not m:
        raise UsageError(f"--time: expected a duration such as 90s, 10m or 1h, got {text!r}")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def run_soak(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """The soak subcommand."""
    from vgic_actors.kvm.variants import get_variant
    from vgic_actors.scenario.loader import check_strategy
    from vgic_actors.soak.campaign import Campaign, CampaignSpec, print_summary, run_local

    given = frozenset(name for name in ("profile", "scenario", "variant", "seed", "strategy")
                      if getattr(args, name) is not None)
    spec = CampaignSpec(profile=args.profile or "default", variant=args.variant or "merged",
                        seed=args.seed or 0, strategy=args.strategy or "portfolio",
                        scenario=args.scenario or "")
    get_variant(spec.variant)
    if spec.seed < 0:
        raise UsageError(f"--seed: expected a non-negative integer, got {spec.seed}")
    if spec.strategy != "portfolio":
        check_strategy(spec.strategy,
                       lambda exp, got: UsageError(f"--strategy: expected portfolio or {exp}, "
                                                   f"got {got}"))
    if not 1 <= args.workers <= MAX_WORKERS:
        raise UsageError(f"--workers: expected 1..{MAX_WORKERS}, got {args.workers}")
    if args.runs is not None and args.runs < 1:
        raise UsageError(f"--runs: expected at least 1, got {args.runs}")
    if args.runs is None and args.time is None:
        raise UsageError("soak needs a budget: --runs N or --time 10m")
    deadline = time.monotonic() + parse_duration(args.time) if args.time else None
    out = Path(args.out)
    campaign = Campaign.open(out, spec, resume=args.resume, given=given)
    tty = stderr.isatty() or args.progress
    last = [0.0]

    def on_progress() -> None:
        now = time.monotonic()
        if tty and now - last[0] >= 0.5:
            last[0] = now
            print("\r" + campaign.progress.line(), end="", file=stderr, flush=True)

    interrupted = False
    try:
        if args.engine == "dask":
            from vgic_actors.soak.dask_engine import run_dask

            run_dask(campaign, runs=args.runs, deadline=deadline, address=args.scheduler,
                     workers=args.workers, on_progress=on_progress)
        else:
            run_local(campaign, runs=args.runs, deadline=deadline, workers=args.workers,
                      on_progress=on_progress, stop_on_finding=args.stop_on_finding)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        summary = campaign.close()
        if tty:
            print("\r" + campaign.progress.line(), file=stderr)
    print_summary(summary, out, stdout)
    if interrupted:
        print(f"interrupted: {summary.runs} finished runs kept in {out}/results.jsonl; "
              "--resume continues", file=stderr)
        return 130
    return EXIT_FINDINGS if summary.findings else EXIT_OK


def run_explore(args: argparse.Namespace, stdout: TextIO) -> int:
    """The explore subcommand."""
    from vgic_actors.kvm.variants import get_variant
    from vgic_actors.scenario import load_scenario
    from vgic_actors.scenario.runner import RecordedRun, encode_recorded
    from vgic_actors.soak.explore import explore

    get_variant(args.variant)
    if not 0 <= args.bound <= 8:
        raise UsageError(f"--bound: expected 0..8, got {args.bound}")
    if args.max_runs < 1:
        raise UsageError(f"--max-runs: expected at least 1, got {args.max_runs}")
    scenario = load_scenario(args.scenario)
    result = explore(scenario, args.variant, args.bound, max_runs=args.max_runs)
    head = (f"{scenario.name} on {args.variant}: {result.schedules} schedules with at most "
            f"{args.bound} deviations over {result.decision_points} decision points")
    found = result.counterexample
    if found is not None:
        out = Path(args.out)
        out.write_bytes(encode_recorded(RecordedRun(
            scenario=scenario.name, digest=scenario.digest, variant=args.variant, seed=0,
            strategy="replay", choices=found.choices)))
        print(f"{head}: counterexample after {result.schedules} schedules", file=stdout)
        for v in found.violations:
            print(f"  {v.invariant}: {v.message}", file=stdout)
        print(f"replay: vgic-actors run {args.scenario} --variant {args.variant} --seed 0 "
              f"--runs 1 --strategy replay:{out}", file=stdout)
        return EXIT_FINDINGS
    if result.exhausted:
        print(f"{head}: clean within the bound", file=stdout)
    else:
        print(f"{head}: stopped at --max-runs before the space was exhausted "
              "(nothing proven)", file=stdout)
    return EXIT_OK


def _finding_dir(path: str) -> Path:
    folder = Path(path)
    if not (folder / "finding.json").exists():
        raise InputError(str(folder), "finding.json", "a soak finding folder "
                         "(findings/<signature>/ with finding.json)", "no finding.json")
    return folder


def run_replay(args: argparse.Namespace, stdout: TextIO) -> int:
    """The replay subcommand."""
    from vgic_actors.scenario import load_scenario
    from vgic_actors.scenario.runner import load_recorded, record_run
    from vgic_actors.soak.campaign import Finding
    from vgic_actors.soak.worker import core_invariants

    folder = _finding_dir(args.finding)
    finding = msgspec.json.decode((folder / "finding.json").read_bytes(), type=Finding)
    shrunk = (folder / "shrunk.yaml").exists() and not args.original
    scen_file = folder / ("shrunk.yaml" if shrunk else "scenario.yaml")
    choices = folder / ("shrunk.choices.json" if shrunk else "choices.json")
    if not scen_file.exists():
        raise InputError(str(folder), "scenario.yaml", "a replayable finding",
                         f"a {finding.signature} finding without a scenario")
    scenario = load_scenario(scen_file)
    recorded = load_recorded(choices)
    from vgic_actors.scenario.runner import run_once

    first = run_once(scenario, recorded.variant, recorded.seed, f"replay:{choices}")
    log = Path(args.log) if args.log else folder / "replay.jsonl"
    record_run(scenario, first, log)
    wanted = core_invariants(finding.violations)
    got = {v.invariant for v in first.violations}
    again = wanted <= got
    print(f"replayed {scen_file} ({recorded.variant}, seed {recorded.seed}): "
          f"{'the finding came back' if again else 'the finding did NOT come back'}",
          file=stdout)
    for v in first.violations:
        print(f"  {v.invariant}: {v.message}", file=stdout)
    print(f"log: {log}", file=stdout)
    return EXIT_OK if again else EXIT_FINDINGS


def run_shrink(args: argparse.Namespace, stdout: TextIO) -> int:
    """The shrink subcommand."""
    from vgic_actors.soak.shrink import shrink_finding

    folder = _finding_dir(args.finding)
    result = shrink_finding(folder, budget=args.budget, log=lambda m: print(m, file=sys.stderr))
    print(result, file=stdout)
    return EXIT_OK
