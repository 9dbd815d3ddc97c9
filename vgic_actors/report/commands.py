"""``vgic-actors report``: argparse and dispatch (the work is in render.py).

Exit: 0 the report was written; 2 bad input (not a finding folder or log, a log
without --scenario, an unwritable -o); 130 interrupted.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from vgic_actors.errors import EXIT_OK, UsageError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report`` to the top-level subparsers."""
    p = sub.add_parser(
        "report", help="a finding as a bug report (text for a mailing list, Markdown, HTML)",
        description="Report FINDING (a soak findings folder, shrunk or not, or a run log "
        "with --scenario): title in kernel terms, class, invariant, signature, what the "
        "guest observes, the interleaving as a table with one column per CPU and the step "
        "where the deactivation is lost marked, the replay command, the version that "
        "introduced it (bisected over the catalogue's history) and the fix variant's "
        "result (same schedule, a sweep, explore). With --examples DIR, rewrite "
        "report.txt and report.md in every findings folder under DIR (a report is "
        "written: exit 0).")
    p.add_argument("finding", metavar="FINDING", nargs="?")
    p.add_argument("--format", choices=("text", "markdown", "html"), default="text",
                   help="text (80 columns, default), markdown or html")
    p.add_argument("--scenario", metavar="FILE", help="the scenario a run log ran")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.add_argument("--sweep", type=int,
                   help="seeds per strategy (random, pct:2, pct:3) of the bisection's "
                   "sweep where a version's schedule diverged (12) and of the fix check "
                   "(40); random-walk seeds of the configuration sweep (40, and a quarter "
                   "as many of pct:2 and pct:3)")
    p.add_argument("--bound", type=int, default=1, help="explore's deviation bound (1)")
    p.add_argument("--examples", metavar="DIR",
                   help="regenerate report.txt and report.md under DIR (docs/reports)")


def run(args: argparse.Namespace, stdout: TextIO) -> int:
    """The report subcommand."""
    from vgic_actors.report.examples import example_texts, regenerate
    from vgic_actors.report.exposure import Sweep
    from vgic_actors.report.finding import load_case
    from vgic_actors.report.render import RENDERERS, Options, build

    if args.sweep is not None and not 0 <= args.sweep <= 1000:
        raise UsageError(f"--sweep: expected 0..1000, got {args.sweep}")
    if not 0 <= args.bound <= 3:
        raise UsageError(f"--bound: expected 0..3, got {args.bound}")
    options = Options(bound=args.bound) if args.sweep is None else Options(
        sweep=args.sweep, fix_sweep=args.sweep, bound=args.bound, exposure=Sweep(args.sweep))

    def render(folder: Path | str, fmt: str) -> str:
        return RENDERERS[fmt](build(load_case(str(folder), args.scenario), options))

    if args.examples:
        for path in regenerate(Path(args.examples), example_texts):
            print(f"wrote {path}", file=stdout)
        return EXIT_OK
    if args.finding is None:
        raise UsageError("report needs FINDING (a findings folder or a run log) or "
                         "--examples DIR")
    if args.output:
        from vgic_actors.cli import writable

        writable(args.output, "--output")
    text = render(args.finding, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        stdout.write(text)
    return EXIT_OK
