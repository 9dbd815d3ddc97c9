"""The `vgic-actors` command line. The only place that prints errors or picks exit codes.

Exit codes: 0 every expectation held, 1 a finding or a failed expectation,
2 bad input or usage, 130 interrupted (Ctrl-C). Known errors print one line,
``error: ...``, with no traceback (``--debug`` shows it); Ctrl-C prints one line,
``interrupted: ...``, saying what was kept and the command that continues.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import traceback
from collections.abc import Sequence
from typing import TextIO

from vgic_actors import __version__
from vgic_actors.errors import (
    EXIT_BAD_INPUT,
    EXIT_FINDINGS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    InputError,
    Interrupted,
    UsageError,
    VgicActorsError,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="vgic-actors",
        description="An executable, concurrent model of the Linux KVM/arm64 virtual GIC, "
        "built to hunt races in it.",
    )
    parser.add_argument("--version", action="version", version=f"vgic-actors {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser(
        "selfcheck",
        help="check the architectural model on the asymmetric SPI deactivation",
        description="Play the asymmetric SPI deactivation (an SPI acknowledged on vCPU0 and "
        "deactivated by vCPU1) on two GICv3 virtual CPU interfaces, with and without "
        "ICH_HCR_EL2.TDIR, and report what the hardware does.",
    )
    variants = sub.add_parser(
        "variants",
        help="list the kernel variants and planted mutants, one line each",
        description="List every kernel variant (versions of the LR-overflow and SPI-tracking "
        "series) and every synthetic mutant, with the story of what it shows. With -v, also "
        "the switches where each differs from merged.",
    )
    variants.add_argument("-v", "--verbose", action="store_true", help="show differing switches")
    variants.add_argument("--json", action="store_true",
                          help="print the catalogue as JSON (with each variant's switches "
                          "that differ from merged)")
    run = sub.add_parser(
        "run",
        help="run a scenario per variant and seed and judge its verdicts",
        description="Run SCENARIO (default: the built-in asymmetric SPI deactivation on merged "
        "and no-spi-tracking side by side) under each variant it lists, over --runs seeds, "
        "and check every invariant and expectation. Exit 0 when every verdict holds, 1 when "
        "one does not, 2 on bad input.",
    )
    run.add_argument("scenario", nargs="?", help="scenario YAML file (default: config/)")
    run.add_argument("--variant", action="append", metavar="V",
                     help="variant to run (repeatable; default: those the scenario lists)")
    run.add_argument("--seed", type=int, help="first seed (default 0; a replay: the recorded one)")
    run.add_argument("--runs", type=int, help="seeds per variant (default: the scenario's)")
    run.add_argument("--strategy", metavar="S",
                     help="random | pct:D[:K] | trio | trio-batch | window | "
                     "replay:FILE.choices.json (default: the scenario's)")
    run.add_argument("--max-steps", type=int, help="step budget per run")
    run.add_argument("--timing", choices=("realistic", "adversarial", "unbounded"),
                     help="timing model: realistic (default: atomic regions and IPIs "
                     "bounded), adversarial (plus stall events), unbounded (any actor may "
                     "stall for ever); a replay keeps the recorded one")
    run.add_argument("--force-replay", action="store_true",
                     help="replay a choices file even if it was changed after it was written, "
                     "or recorded for another scenario, variant or seed")
    run.add_argument("--log", metavar="FILE",
                     help="write the JSON-lines events of the first failing run (else the first "
                     "run) to FILE and its choice log to FILE.choices.json")
    run.add_argument("--log-seed", metavar="N", type=int,
                     help="with --log: log the run of seed N (of the first variant run)")
    run.add_argument("--log-dir", metavar="DIR",
                     help="write every run's events and choice log into DIR, one "
                     "VARIANT-seedN.jsonl per run")
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    run.add_argument("--coverage", action="store_true",
                     help="also print which kernel paths the runs took, and how often")
    validate = sub.add_parser(
        "validate",
        help="check scenario files without running them",
        description="Parse and validate each FILE (schema, INTIDs, vCPU, variant and invariant "
        "names). Prints one line per file; exit 2 if any is malformed.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument("--json", action="store_true",
                          help="print one JSON object: every file's result")
    bench = sub.add_parser(
        "bench",
        help="measure model steps/s against bare Trio hand-offs",
        description="Print JSON: model steps/s (logging off; empty actors, then the default "
        "scenario with the full kernel model and checks) next to bare Trio tasks handing "
        "control to each other (trio.lowlevel.reschedule) and to a memory-channel ring, in "
        "the same process, with the ratios (goals >= 0.5 and >= 0.3).",
    )
    bench.add_argument("--actors", type=int, default=4, help="actors / ring tasks (default 4)")
    bench.add_argument("--steps", type=int, default=200_000, help="steps to time (default 200000)")
    bench.add_argument(
        "--strategy", choices=("random", "pct"), default="random", help="model strategy"
    )
    bench.add_argument("--inspector", action="store_true",
                       help="instead: log inspector events/s for `logs filter` and `logs stats` "
                       "on a synthesised log of real scenario events (goal >= 500k/s)")
    bench.add_argument("--events", type=int, default=1_000_000,
                       help="--inspector: events in the log (default 1000000)")
    bench.add_argument("--soak", action="store_true",
                       help="instead: per-profile us/step and runs/s, runs/s on 1 and 2 "
                       "workers, and the find rate and time to the first finding of every "
                       "variant and mutant under portfolio, random, pct:3 and trio")
    bench.add_argument("--campaigns", type=int, default=5,
                       help="--soak: campaigns per median (default 5)")
    bench.add_argument("--cap", type=float, default=60.0,
                       help="--soak: seconds a campaign may search (default 60)")
    bench.add_argument("--rate-runs", type=int, default=100,
                       help="with --soak/--all: runs per variant and strategy behind the find "
                       "rates (default 100)")
    bench.add_argument("--variant", action="append", metavar="V", dest="variants",
                       help="--soak: only this variant's find rate and first finding "
                       "(repeatable), with no throughput figures")
    bench.add_argument("--all", action="store_true",
                       help="every figure of design.md section 7 in one JSON object")
    bench.add_argument("--markdown", metavar="FILE",
                       help="with --all: also write the figures as a Markdown report")
    from vgic_actors.logs.commands import add_parser as add_logs_parser
    from vgic_actors.report.commands import add_parser as add_report_parser
    from vgic_actors.soak.commands import add_parsers as add_soak_parsers

    add_logs_parser(sub)
    add_soak_parsers(sub)
    add_report_parser(sub)
    _with_exit_codes(parser)
    return parser


EXIT_CODES = ("exit status: 0 ok (every verdict held, nothing found); 1 a finding, a verdict "
              "that did not hold, or nothing proven; 2 bad input or usage; 130 interrupted "
              "(Ctrl-C)")


def _with_exit_codes(parser: argparse.ArgumentParser) -> None:
    """Every command's --help ends with the exit statuses."""
    parser.epilog = parser.epilog or EXIT_CODES
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _with_exit_codes(child)


def _bench(args: argparse.Namespace, stdout: TextIO) -> int:
    import msgspec

    from vgic_actors.bench import bench

    if args.inspector:
        from vgic_actors.logs.bench import bench_inspector

        if args.events < 1000:
            raise UsageError(f"--events: expected at least 1000, got {args.events}")
        print(msgspec.json.encode(bench_inspector(args.events)).decode(), file=stdout)
        return EXIT_OK
    if (args.soak or args.all) and (args.campaigns < 1 or args.cap <= 0 or args.rate_runs < 1):
        raise UsageError("bench needs --campaigns >= 1, --cap > 0 and --rate-runs >= 1")
    if args.variants and not args.soak:
        raise UsageError("--variant: only with --soak")
    if args.soak:
        from vgic_actors.kvm.variants import get_variant
        from vgic_actors.soak.bench import bench_soak

        for name in args.variants or ():
            if get_variant(name).is_fix or name == "merged":
                raise UsageError(f"--variant: expected a version or mutant with a bug of "
                                 f"its own, got {name!r}")
        soak = bench_soak(campaigns=args.campaigns, cap=args.cap, rate_runs=args.rate_runs,
                          variants=args.variants)
        print(msgspec.json.encode(soak).decode(), file=stdout)
        return EXIT_OK
    if args.all:
        from pathlib import Path

        from vgic_actors.bench import bench_all, to_markdown

        everything = bench_all(campaigns=args.campaigns, cap=args.cap, events=args.events,
                               rate_runs=args.rate_runs)
        print(msgspec.json.encode(everything).decode(), file=stdout)
        if args.markdown:
            Path(args.markdown).write_text(to_markdown(everything), encoding="utf-8")
        return EXIT_OK
    if args.actors < 1 or args.steps < 1:
        raise UsageError("bench needs --actors >= 1 and --steps >= 1")
    result = bench(args.actors, args.steps, args.strategy)
    print(msgspec.json.encode(result).decode(), file=stdout)
    return EXIT_OK


def _run(args: argparse.Namespace, stdout: TextIO) -> int:
    from pathlib import Path

    import msgspec

    from vgic_actors.kvm.variants import get_variant
    from vgic_actors.scenario import load_scenario, run_scenario
    from vgic_actors.scenario.loader import check_strategy, config_dir, load_defaults
    from vgic_actors.scenario.report import render
    from vgic_actors.scenario.runner import (
        check_log_options,
        check_log_target,
        pick_logged_run,
        record_all,
        record_run,
    )
    from vgic_actors.scenario.schema import MAX_STEPS

    if args.runs is not None and not 1 <= args.runs <= 100_000:
        raise UsageError(f"--runs: expected 1..100000, got {args.runs}")
    if args.max_steps is not None and not 100 <= args.max_steps <= MAX_STEPS:
        raise UsageError(f"--max-steps: expected 100..{MAX_STEPS}, got {args.max_steps}")
    if args.seed is not None and not 0 <= args.seed < 1 << 64:
        raise UsageError(f"--seed: expected 0..2^64-1, got {args.seed}")
    variants = [v for spec in args.variant or () for v in spec.split(",") if v]
    if args.log:
        writable(args.log, "--log")
    check_log_options(args.log, args.log_seed, args.log_dir)
    if args.strategy and not args.strategy.startswith("replay:"):
        check_strategy(args.strategy,
                       lambda exp, got: UsageError(f"--strategy: expected {exp}, got {got}"))
    if args.scenario:
        path = Path(args.scenario)
    else:
        path = config_dir() / load_defaults()[0].default_scenario
    scenario = load_scenario(path)
    for v in variants:  # a variant, or a control the scenario names in its verdicts
        if v not in scenario.judgements:
            get_variant(v)
    for target in (args.log, args.log_dir):
        if target:
            check_log_target(Path(target), args.strategy)
    from vgic_actors.runtime import timing_model

    timing = timing_model(args.timing) if args.timing else None
    report = run_scenario(scenario, variants=variants or None, seed=args.seed, runs=args.runs,
                          strategy=args.strategy, max_steps=args.max_steps,
                          force_replay=args.force_replay, timing=timing)
    if args.log:
        chosen = pick_logged_run(report, args.log_seed)
        record_run(scenario, chosen, Path(args.log), max_steps=args.max_steps)
    if args.log_dir:
        record_all(scenario, report, Path(args.log_dir), max_steps=args.max_steps)
    if args.json:
        print(msgspec.json.encode({"ok": report.ok, "report": report}).decode(), file=stdout)
    else:
        print(render(scenario, report), file=stdout)
        if args.coverage:
            from vgic_actors.checks import coverage

            runs = [r for v in report.variants for r in v.runs]
            print(coverage.render(coverage.merge(r.coverage for r in runs), runs=len(runs)),
                  file=stdout)
        if args.log:
            print(f"log: {args.log} (variant {chosen.variant}, seed {chosen.seed}); "
                  f"choices: {args.log}.choices.json", file=stdout)
        if args.log_dir:
            print(f"logs: {args.log_dir}/VARIANT-seedN.jsonl, one per run "
                  f"({sum(len(v.runs) for v in report.variants)})", file=stdout)
    return EXIT_OK if report.ok else EXIT_FINDINGS


def _validate(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from vgic_actors.scenario import load_scenario

    status = EXIT_OK
    results: list[dict[str, object]] = []
    for file in args.files:
        try:
            scenario = load_scenario(file)
        except VgicActorsError as exc:
            results.append({"file": file, "ok": False, "error": exc.format_message()})
            if not args.json:
                print(f"error: {exc.format_message()}", file=stderr)
            status = exc.exit_code
            continue
        results.append({"file": file, "ok": True, "scenario": scenario.name,
                        "variants": scenario.variants()})
        if not args.json:
            print(f"ok: {file}: {scenario.name} ({', '.join(scenario.variants())})",
                  file=stdout)
    if args.json:
        from vgic_actors.soak.commands import print_json

        print_json({"ok": status == EXIT_OK, "files": results}, stdout)
    return status


def _variants(args: argparse.Namespace, stdout: TextIO) -> int:
    from vgic_actors.kvm.variants import VARIANTS, differences

    if args.json:
        from vgic_actors.soak.commands import print_json

        print_json({"variants": [
            {"name": name, "bug": v.bug, "story": v.story,
             "differs": {k: {"merged": a, "variant": b}
                         for k, (a, b) in differences(v).items()}}
            for name, v in VARIANTS.items()]}, stdout)
        return EXIT_OK
    width = max(len(name) for name in VARIANTS)
    for name, variant in VARIANTS.items():
        tag = f"[{variant.bug}] " if variant.bug else ""
        print(f"{name:<{width}}  {tag}{variant.story}", file=stdout)
        if args.verbose:
            for switch, (base, value) in differences(variant).items():
                print(f"{'':<{width}}    {switch}: {base!r} -> {value!r}", file=stdout)
    return EXIT_OK


def _selfcheck(stdout: TextIO) -> int:
    from vgic_actors.selfcheck import render, run_checks

    checks = run_checks()
    print(render(checks), file=stdout)
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FINDINGS


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run the CLI; returns the exit status instead of exiting (tests call it in-process)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code or 0)
    except KeyboardInterrupt:
        print("interrupted: nothing started", file=err)
        return EXIT_INTERRUPTED
    args.argv = argv
    try:
        if args.command == "selfcheck":
            return _selfcheck(out)
        if args.command == "variants":
            return _variants(args, out)
        if args.command == "run":
            return _run(args, out)
        if args.command == "validate":
            return _validate(args, out, err)
        if args.command == "bench":
            return _bench(args, out)
        if args.command == "logs":
            from vgic_actors.logs.commands import run as run_logs

            return run_logs(args, out, err)
        if args.command == "report":
            from vgic_actors.report.commands import run as run_report

            return run_report(args, out)
        if args.command in ("soak", "shrink", "explore", "replay", "promote"):
            from vgic_actors.soak import commands

            if args.command == "promote":
                return commands.run_promote(args, out)

            if args.command == "soak":
                return commands.run_soak(args, out, err)
            if args.command == "shrink":
                return commands.run_shrink(args, out)
            if args.command == "explore":
                return commands.run_explore(args, out, err)
            return commands.run_replay(args, out)
        parser.print_help(out)
        return EXIT_BAD_INPUT
    except Interrupted as exc:
        print(f"interrupted: {exc.format_message()}", file=err)
        return exc.exit_code
    except VgicActorsError as exc:
        if args.debug:  # the traceback too, but the same exit status
            traceback.print_exc(file=err)
        print(f"error: {exc.format_message()}", file=err)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"interrupted: stopped before the end; run it again: {again(argv)}", file=err)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


def writable(path: str, option: str) -> None:
    """Fail up front (exit 2), before any work, when ``path`` cannot be written."""
    from pathlib import Path

    folder = Path(path).resolve().parent
    if Path(path).is_dir():
        raise InputError(path, "$", f"a file path for {option}", "a directory")
    if not folder.is_dir():
        raise InputError(path, "$", f"a file path for {option} in an existing folder",
                         f"no folder {folder}")
    if not os.access(folder, os.W_OK):
        raise InputError(path, "$", f"a file path for {option} in a writable folder",
                         f"{folder} is not writable")


def again(argv: Sequence[str], *extra: str) -> str:
    """The command line that repeats (or, with ``extra``, continues) this one."""
    return shlex.join(["vgic-actors", *argv, *extra])


def entry() -> None:
    """Console-script entry point."""
    try:
        status = main()
    except KeyboardInterrupt:  # a second Ctrl-C while the first was being reported
        status = EXIT_INTERRUPTED
    sys.exit(status)


if __name__ == "__main__":
    entry()
