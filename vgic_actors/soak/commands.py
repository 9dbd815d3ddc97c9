"""``vgic-actors soak``, ``shrink``, ``explore``, ``replay`` and ``promote``: argparse and
dispatch.

Exit: soak 0 no finding, 1 findings; replay 0 the recorded finding came back (its full
signature), 1 it did not; shrink 0 a smaller counterexample written; promote 0 a
scenario written whose verdicts hold (2 when the finding does not come back); explore 0 clean
within the bound, 1 a counterexample or stopped at --max-runs (nothing proven); 2 bad
input everywhere (and a soak whose --out is locked by another, or cannot be written);
Ctrl-C exits 130 with one line saying what was kept (a soak's finished runs, flushed per
run and fsynced in batches; shrink's best pair so far) and the command that continues.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import TextIO

import msgspec

from vgic_actors.errors import EXIT_FINDINGS, EXIT_OK, InputError, Interrupted, UsageError
from vgic_actors.runtime.context import TIMING_MODES


def print_json(value: object, stdout: TextIO) -> None:
    """One JSON document on stdout (``--json``)."""
    print(msgspec.json.encode(value).decode(), file=stdout)

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
                      help="portfolio (random walk, pct:2, pct:3, pct:4 and window in turn) "
                      "| random | pct:D[:K] | trio | trio-batch | window (default portfolio)")
    budget = soak.add_mutually_exclusive_group()
    budget.add_argument("--runs", type=int, help="number of runs")
    budget.add_argument("--time", help="wall-clock budget: 90s, 10m, 1h")
    soak.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    soak.add_argument("--engine", choices=("local", "dask"), default="local",
                      help="local processes or Dask distributed (the 'cluster' extra)")
    soak.add_argument("--scheduler", metavar="ADDR",
                      help="Dask scheduler address (default: a local cluster of --workers)")
    soak.add_argument("--seed", type=int, help="campaign seed (default 0)")
    soak.add_argument("--timing", choices=TIMING_MODES,
                      help="realistic: atomic regions and IPIs bounded, no stall event "
                           "(default); adversarial: also host interrupts stretching "
                           "preemption-off regions and late IPIs; unbounded: any actor may "
                           "stall for ever")
    soak.add_argument("--out", help="output folder (default: a fresh soak-VARIANT-seedS[-N] "
                      "in the current folder, printed at the start)")
    soak.add_argument("--resume", action="store_true",
                      help="continue the campaign in --out (its campaign.json gives the "
                      "profile, variant, seed and strategy; flags may only repeat them)")
    soak.add_argument("--stop-on-finding", action="store_true",
                      help="stop at the first finding (time-to-first-finding)")
    soak.add_argument("--keep-scenarios", action="store_true",
                      help="write every generated scenario to --out/scenarios/ (findings "
                      "always keep theirs)")
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
    explore.add_argument("--progress", action="store_true",
                         help="progress line even when stderr is not a terminal")
    explore.add_argument("--around", metavar="CHOICES",
                         help="count deviations from this recorded schedule (a finding's "
                         "choices.json: its seed and timing too) instead of the canonical "
                         "order: the finding's neighbourhood, e.g. on a fix variant")

    replay = sub.add_parser(
        "replay", help="re-run one finding exactly, with its full event log",
        description="Replay FINDING's scenario and choice log (the shrunk pair when present, "
        "unless --original), write the JSON-lines event log, and say whether the recorded "
        "invariants failed again.")
    replay.add_argument("finding", metavar="FINDING")
    replay.add_argument("--original", action="store_true", help="ignore shrunk.yaml")
    replay.add_argument("--log", metavar="FILE", help="event log (default FINDING/replay.jsonl)")
    promote = sub.add_parser(
        "promote", help="turn a finding into a library scenario with its verdicts",
        description="Write FINDING's scenario (shrunk.yaml when present) as OUT/NAME.yaml "
        "with a verdict per variant: the seeds of the finding's strategy that bring it back, "
        "run on each variant; the file is re-run before it is kept (soak/promote.py).")
    promote.add_argument("finding", metavar="FINDING")
    promote.add_argument("--name", required=True, help="scenario name (and file name)")
    promote.add_argument("--variants", default="merged,pre-series",
                         help="comma-separated variants to give verdicts for, beside the "
                         "finding's own (default merged,pre-series)")
    promote.add_argument("--out", default="scenarios", help="folder (default scenarios)")
    promote.add_argument("--max-seeds", type=int, default=200,
                         help="seeds to try for the finding to come back (default 200)")
    for p in (soak, shrink, explore, replay, promote):
        p.add_argument("--json", action="store_true", help="print the result as JSON")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``1h`` -> seconds."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not m:
        raise UsageError(f"--time: expected a duration such as 90s, 10m or 1h, got {text!r}")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def _clock(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def fresh_folder(base: Path) -> Path:
    """``base``, else ``base-2``, ``base-3``, ...: the first that did not exist, created
    here (mkdir is atomic, so two soaks started together never share one)."""
    for n in range(1, 100_000):
        folder = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            continue
        return folder
    raise UsageError(f"no free output folder named {base}-N; give --out")


def run_soak(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """The soak subcommand."""
    from vgic_actors.checks.signature import Signature
    from vgic_actors.kvm.variants import get_variant
    from vgic_actors.scenario.loader import check_strategy
    from vgic_actors.soak.campaign import (
        Campaign,
        CampaignSpec,
        finding_key,
        print_summary,
        run_local,
    )

    given = frozenset(name for name in ("profile", "scenario", "variant", "seed", "strategy",
                                        "timing") if getattr(args, name) is not None)
    spec = CampaignSpec(profile=args.profile or "default", variant=args.variant or "merged",
                        seed=args.seed or 0, strategy=args.strategy or "portfolio",
                        scenario=args.scenario or "", timing=args.timing or "realistic")
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
    if args.out is None and args.resume:
        raise UsageError("--resume needs --out DIR, the campaign folder to continue")
    out = Path(args.out) if args.out is not None else fresh_folder(
        Path(f"soak-{spec.variant}-seed{spec.seed}"))
    campaign = Campaign.open(out, spec, resume=args.resume, given=given)
    campaign.keep_scenarios = args.keep_scenarios
    if args.out is None:
        print(f"soak: writing to {out}/", file=stderr)
    tty = stderr.isatty() or args.progress
    last = [0.0]
    started, done_before = time.monotonic(), campaign.progress.runs

    def line() -> str:
        p = campaign.progress
        elapsed = time.monotonic() - started
        rate = (p.runs - done_before) / max(elapsed, 1e-9)
        if args.runs is not None:
            left = (args.runs - p.runs) / rate if rate > 0 else None
        else:
            left = max(deadline - time.monotonic(), 0.0) if deadline is not None else None
        total = f"/{args.runs}" if args.runs is not None else ""
        return (f"runs {p.runs}{total} ({rate:.1f}/s), elapsed {_clock(elapsed)}, ETA "
                f"{_clock(left) if left is not None else '?'}, findings {len(p.findings)} "
                f"distinct ({sum(p.findings.values())} runs), interleavings "
                f"{len(p.interleavings)}")

    def on_progress() -> None:
        now = time.monotonic()
        if tty and now - last[0] >= 0.5:
            last[0] = now
            print("\r" + line(), end="", file=stderr, flush=True)

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
            print("\r" + line(), file=stderr)
    own = sorted((n, sig) for sig, n in summary.findings.items()
                 if not Signature.from_key(sig).merged_too)
    hint = f"vgic-actors shrink {out / 'findings' / finding_key(own[-1][1])}" \
        if own and not interrupted else None
    if args.json:
        print_json({"out": str(out), "interrupted": interrupted, "summary": summary,
                    "findings": {sig: str(out / "findings" / finding_key(sig))
                                 for sig in summary.findings}, "next": hint}, stdout)
    else:
        print_summary(summary, out, stdout)
        if hint:
            print(f"next: {hint}", file=stdout)
    if interrupted:
        from vgic_actors.cli import again

        extra = [] if args.resume else ["--resume"]
        extra += [] if any(a == "--out" or a.startswith("--out=") for a in args.argv) \
            else ["--out", str(out)]
        raise Interrupted(f"{summary.runs} finished runs kept in {out}/results.jsonl; "
                          f"continue: {again(args.argv, *extra)}")
    return EXIT_FINDINGS if summary.findings else EXIT_OK


def run_explore(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """The explore subcommand."""
    from vgic_actors.kvm.variants import get_variant
    from vgic_actors.runtime import timing_model
    from vgic_actors.scenario import load_scenario
    from vgic_actors.scenario.runner import RecordedRun, encode_recorded, load_recorded
    from vgic_actors.soak.explore import Exploration, explore, schedule_as_run

    get_variant(args.variant)
    if not 0 <= args.bound <= 8:
        raise UsageError(f"--bound: expected 0..8, got {args.bound}")
    if args.max_runs < 1:
        raise UsageError(f"--max-runs: expected at least 1, got {args.max_runs}")
    scenario = load_scenario(args.scenario)
    base = load_recorded(Path(args.around)) if args.around else None
    seed, timing = (base.seed, base.timing) if base is not None else (0, "realistic")
    around = schedule_as_run(scenario, base) if base is not None else None
    seen: list[Exploration] = []
    tty = stderr.isatty() or args.progress
    started, shown = time.monotonic(), [0.0]

    def on_run(r: Exploration) -> None:
        seen[:] = [r]
        now = time.monotonic()
        if tty and now - shown[0] >= 0.5:
            shown[0] = now
            rate = r.schedules / max(now - started, 1e-9)
            print(f"\rexplore: {r.schedules} schedules ({rate:.0f}/s, elapsed "
                  f"{now - started:.0f}s, at most {args.max_runs}), none failed",
                  end="", file=stderr, flush=True)

    try:
        result = explore(scenario, args.variant, args.bound, max_runs=args.max_runs,
                         on_run=on_run, seed=seed, timing=timing_model(timing),
                         around=around)
    except KeyboardInterrupt:
        if shown[0]:
            print(file=stderr)  # end the progress line
        from vgic_actors.cli import again

        done = seen[0].schedules if seen else 0
        raise Interrupted(f"{done} schedules explored, none failed, nothing proven "
                          f"(explore keeps no state); run it again: {again(args.argv)}"
                          ) from None
    if shown[0]:
        print(file=stderr)
    head = (f"{scenario.name} on {args.variant}: {result.schedules} schedules with at most "
            f"{args.bound} deviations"
            + (f" from {args.around} (the base keeps {result.followed} of its "
               f"{len(around)} decisions)" if around is not None else "")
            + f" over {result.decision_points} decision points")
    found = result.counterexample
    verdict = "counterexample" if found is not None else "clean" if result.exhausted \
        else "nothing-proven"
    replay = None
    if found is not None:
        out = Path(args.out)
        out.write_bytes(encode_recorded(RecordedRun(
            scenario=scenario.name, digest=scenario.digest, variant=args.variant, seed=seed,
            strategy="replay", choices=found.choices, timing=timing)))
        replay = (f"vgic-actors run {args.scenario} --variant {args.variant} --seed {seed} "
                  f"--runs 1 --strategy replay:{out}")
    if args.json:
        print_json({"scenario": scenario.name, "variant": args.variant, "bound": args.bound,
                    "schedules": result.schedules, "decision_points": result.decision_points,
                    "around": args.around, "followed": result.followed,
                    "verdict": verdict, "outcomes": result.outcomes,
                    "violations": found.violations if found is not None else [],
                    "replay": replay}, stdout)
    elif found is not None:
        print(f"{head}: counterexample after {result.schedules} schedules", file=stdout)
        for v in found.violations:
            print(f"  {v.invariant}: {v.message}", file=stdout)
        print(f"replay: {replay}", file=stdout)
    elif result.exhausted:
        print(f"{head}: clean within the bound", file=stdout)
    else:
        print(f"{head}: stopped at --max-runs before the space was exhausted "
              "(nothing proven)", file=stdout)
    return EXIT_OK if verdict == "clean" else EXIT_FINDINGS


def _finding_dir(path: str) -> Path:
    folder = Path(path)
    if not (folder / "finding.json").exists():
        raise InputError(str(folder), "finding.json", "a soak finding folder "
                         "(findings/<signature>/ with finding.json)", "no finding.json")
    return folder


def run_replay(args: argparse.Namespace, stdout: TextIO) -> int:
    """The replay subcommand."""
    from vgic_actors.checks.signature import Signature
    from vgic_actors.cli import writable
    from vgic_actors.scenario import load_scenario
    from vgic_actors.scenario.runner import load_recorded, record_run
    from vgic_actors.soak.campaign import Finding

    folder = _finding_dir(args.finding)
    if args.log:
        writable(args.log, "--log")
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
    wanted = Signature.from_key(finding.signature)
    again = first.signature.same_finding(wanted)
    if args.json:
        print_json({"scenario": str(scen_file), "variant": recorded.variant,
                    "seed": recorded.seed, "came_back": again, "recorded": wanted.key,
                    "found": first.signature.key, "violations": first.violations,
                    "log": str(log)}, stdout)
        return EXIT_OK if again else EXIT_FINDINGS
    print(f"replayed {scen_file} ({recorded.variant}, seed {recorded.seed}): "
          + (f"the finding came back ({wanted})" if again else
             f"the finding did NOT come back (recorded {wanted}, found {first.signature})"),
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
    if args.json:
        print_json({"finding": str(folder), "written": result.written,
                    "interrupted": result.interrupted, "message": result.message}, stdout)
    else:
        print(result.message, file=stdout)
    if result.interrupted:
        from vgic_actors.cli import again

        kept = "the smaller pair found so far is in shrunk.yaml and shrunk.choices.json" \
            if result.written else "nothing written"
        raise Interrupted(f"{kept}; shrink again from the original: {again(args.argv)}")
    return EXIT_OK


def run_promote(args: argparse.Namespace, stdout: TextIO) -> int:
    """The promote subcommand."""
    from vgic_actors.kvm.variants import get_variant
    from vgic_actors.soak.promote import promote_finding

    folder = _finding_dir(args.finding)
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", args.name):
        raise UsageError(f"--name: expected a file name (letters, digits, _ . -), "
                         f"got {args.name!r}")
    if args.max_seeds < 1:
        raise UsageError(f"--max-seeds: expected at least 1, got {args.max_seeds}")
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        get_variant(v)
    done = promote_finding(folder, name=args.name, variants=variants, out_dir=Path(args.out),
                           max_seeds=args.max_seeds,
                           log=lambda m: print(m, file=sys.stderr))
    if args.json:
        print_json({"scenario": str(done.path), "seeds": done.seeds,
                    "strategy": done.strategy, "verdicts": done.verdicts}, stdout)
        return EXIT_OK
    print(f"wrote {done.path} ({done.seeds} seeds of {done.strategy}): "
          + ", ".join(f"{v}: {'+'.join(x) if isinstance(x, list) else x}"
                      for v, x in done.verdicts.items()), file=stdout)
    print(f"check: vgic-actors run {done.path}", file=stdout)
    return EXIT_OK
