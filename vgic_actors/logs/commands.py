"""The ``vgic-actors logs ...`` subcommands: argparse wiring and dispatch to the views.

cli.py adds the ``logs`` parser with `add_parser` and calls `run`; each
subcommand reads through one `LogReader` whose problems (bad lines) are printed
as ``warning: FILE:LINE:COL: ...`` on stderr, or raise with ``--strict``.
Exit: 0 clean (``check`` no violation, ``diff`` same events), 1 a violation or
a divergence, 2 bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import BinaryIO, TextIO

import msgspec

from vgic_actors.errors import EXIT_FINDINGS, EXIT_OK, InputError, UsageError
from vgic_actors.logs.reader import LogReader, Problem

MAX_WARNINGS = 20
"""Bad lines reported one by one; after that, one summary line."""

MAX_WIDTH = 1000
MAX_CONTEXT = 10_000


def _bounded(option: str, value: int, low: int, high: int) -> int:
    """``value`` if ``low <= value <= high``, else a one-line usage error naming ``option``."""
    if not low <= value <= high:
        raise UsageError(f"{option}: expected {low}..{high}, got {value}")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``logs`` and its subcommands to the top-level subparsers."""
    logs = sub.add_parser(
        "logs", help="inspect a run log (--log FILE): filter, timeline, irq, stats, check, "
        "diff, perfetto, html",
        description="Inspect JSON-lines run logs written by `vgic-actors run --log FILE`. "
        "Every subcommand streams the file (bounded memory); a corrupt or truncated line is "
        "reported with its line number and skipped (--strict: exit 2 on the first).")
    lsub = logs.add_subparsers(dest="logs_command", metavar="SUBCOMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--strict", action="store_true",
                        help="a corrupt or truncated line is fatal (exit 2), not skipped")

    f = lsub.add_parser("filter", parents=[common], help="keep matching events (JSON lines)",
                        description="Print the events matching every criterion given, as "
                        "JSON lines (the RunStarted header first, so the output is a log "
                        "again) or a table with --pretty.")
    f.add_argument("file", metavar="FILE")
    f.add_argument("--vcpu", type=int, help="events about vCPU N (their vcpu field)")
    f.add_argument("--pcpu", type=int, help="events on pCPU N (its actor and mailboxes)")
    f.add_argument("--intid", type=int, help="events naming INTID N (and LR lists holding it)")
    f.add_argument("--kind", action="append", default=[], metavar="K[,K]",
                   help="event kinds (repeatable), e.g. IrqQueued,DirEmulated")
    f.add_argument("--steps", metavar="A:B", help="step range, inclusive (A:, :B, N)")
    f.add_argument("--vt", metavar="A:B", help="virtual-time range, inclusive")
    f.add_argument("--where", action="append", default=[], metavar="FIELD=VALUE",
                   help="field predicate (=, !=, >=, <=, >, <), repeatable: how=ipi")
    f.add_argument("--pretty", action="store_true", help="a readable table, not JSON")
    f.add_argument("--no-header", action="store_true", help="leave out the RunStarted line")

    t = lsub.add_parser("timeline", parents=[common], help="text timeline, one column per CPU",
                        description="One column per pCPU, the distributor and the VMM; "
                        "messages in flight at the right. Scheduling steps, lock traffic "
                        "and plain reads are left out unless --all.")
    t.add_argument("file", metavar="FILE")
    t.add_argument("--all", action="store_true", help="every event, not only the telling ones")
    t.add_argument("--steps", metavar="A:B", help="only this step range")
    t.add_argument("--width", type=int, default=34, help="column width (default 34)")

    i = lsub.add_parser("irq", parents=[common], help="one interrupt's life across CPUs",
                        description="Every event naming INTID (queueing, LR placements, "
                        "folds, acks, priority drops, deactivations with vCPU and trap, "
                        "DIR emulation, active changes, prunes) and what it caused "
                        "(active_spis changes, kicks), then a summary.")
    i.add_argument("intid", type=int, metavar="INTID")
    i.add_argument("file", metavar="FILE")
    i.add_argument("--vcpu", type=int, help="for an SGI/PPI: that vCPU's copy")
    i.add_argument("--json", action="store_true", help="the rows as JSON lines")

    s = lsub.add_parser("stats", parents=[common], help="counts by kind, CPU, exit reason, ...",
                        description="Counts by event kind and CPU, exits by reason, traps, "
                        "maintenance interrupts, kicks and broadcasts, messages, and the "
                        "virtual time each vCPU ran with TDIR set.")
    s.add_argument("file", metavar="FILE")
    s.add_argument("--json", action="store_true", help="print JSON")

    c = lsub.add_parser("check", parents=[common], help="re-judge invariants offline",
                        description="Re-evaluate deadlock, livelock, deactivation-lost, "
                        "ap-list-consistency and active-spis-undercount from the events "
                        "alone; report the first violation with the events around it. "
                        "Exit 1 on a violation.")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--context", type=int, default=6, help="events either side (default 6)")
    c.add_argument("--json", action="store_true", help="print JSON")

    d = lsub.add_parser("diff", parents=[common], help="first divergence of two runs",
                        description="Align two logs event by event (after their headers) and "
                        "report the first divergence with the events around it. Exit 1 "
                        "when they diverge.")
    d.add_argument("a", metavar="A")
    d.add_argument("b", metavar="B")
    d.add_argument("--context", type=int, default=5, help="events to show (default 5)")
    d.add_argument("--ignore-kind", action="append", default=[], metavar="K[,K]",
                   help="leave these kinds out of the alignment (e.g. ActorStepped)")
    d.add_argument("--ignore-field", action="append", default=[], metavar="F[,F]",
                   help="compare events without these fields (e.g. step,vt)")
    d.add_argument("--json", action="store_true", help="print JSON")

    p = lsub.add_parser("perfetto", parents=[common], help="Chrome trace JSON for Perfetto",
                        description="Write Chrome trace-event JSON (open it in "
                        "ui.perfetto.dev): tracks per pCPU, vCPU and the distributor; guest "
                        "runs, exit handling and requests as slices; messages, kicks and "
                        "broadcast legs as flows; active_spis and TDIR as counters.")
    p.add_argument("file", metavar="FILE")
    p.add_argument("-o", "--output", required=True, metavar="TRACE.json")

    h = lsub.add_parser("html", parents=[common], help="self-contained HTML report",
                        description="Write one HTML page with no external resources: the "
                        "verdict, a timeline picture and the interrupt table.")
    h.add_argument("file", metavar="FILE")
    h.add_argument("-o", "--output", required=True, metavar="REPORT.html")


def _reader(path: str, args: argparse.Namespace, stderr: TextIO) -> LogReader:
    shown = [0]

    def warn(problem: Problem) -> None:
        shown[0] += 1
        if shown[0] <= MAX_WARNINGS:
            print(f"warning: {problem.message()} (line skipped)", file=stderr)
        elif shown[0] == MAX_WARNINGS + 1:
            print(f"warning: {path}: more bad lines; not shown one by one", file=stderr)

    reader = LogReader(path, strict=args.strict, on_problem=warn)
    reader.require_header()  # a file that is not a run log is bad input, never "ok"
    return reader


def _binary(stdout: TextIO) -> BinaryIO | None:
    buf = getattr(stdout, "buffer", None)
    return buf if buf is not None else None


def _open_output(path: str) -> BinaryIO:
    try:
        return Path(path).open("wb")
    except OSError as exc:
        raise InputError(path, "$", "a writable output file",
                         exc.strerror or type(exc).__name__) from None


def _summary(reader: LogReader, stderr: TextIO) -> None:
    if reader.problems > MAX_WARNINGS:
        print(f"warning: {reader.file}: {reader.problems} bad lines skipped", file=stderr)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Dispatch ``vgic-actors logs SUBCOMMAND``."""
    cmd = args.logs_command
    if cmd is None:
        raise UsageError("logs needs a subcommand: filter, timeline, irq, stats, check, diff, "
                         "perfetto, html (see vgic-actors logs --help)")
    if cmd == "diff":
        return _diff(args, stdout, stderr)
    reader = _reader(args.file, args, stderr)
    status = EXIT_OK
    if cmd == "filter":
        from vgic_actors.logs.select import (
            Selector,
            parse_kinds,
            parse_predicate,
            parse_range,
            write_filtered,
        )

        selector = Selector(
            vcpu=args.vcpu, pcpu=args.pcpu, intid=args.intid, kinds=parse_kinds(args.kind),
            steps=parse_range(args.steps, "steps") if args.steps else (None, None),
            vts=parse_range(args.vt, "vt") if args.vt else (None, None),
            where=tuple(parse_predicate(w) for w in args.where))
        buf = _binary(stdout)
        write = buf.write if buf is not None else (lambda b: stdout.write(b.decode()))
        write_filtered(reader, selector, write, pretty=args.pretty, header=not args.no_header)
        if buf is not None:
            buf.flush()
    elif cmd == "timeline":
        from vgic_actors.logs.select import parse_range
        from vgic_actors.logs.timeline import rows

        _bounded("--width", args.width, 8, MAX_WIDTH)
        steps = parse_range(args.steps, "steps") if args.steps else (None, None)
        for line in rows(reader, everything=args.all, width=args.width, steps=steps):
            print(line, file=stdout)
    elif cmd == "irq":
        from vgic_actors.logs.irq import life, render

        if args.json:
            for entry in life(reader, args.intid, vcpu=args.vcpu):
                print(msgspec.json.encode(entry).decode(), file=stdout)
        else:
            print(render(reader, args.intid, vcpu=args.vcpu), file=stdout)
    elif cmd == "stats":
        from vgic_actors.logs.stats import collect
        from vgic_actors.logs.stats import render as render_stats

        st = collect(reader)
        print(msgspec.json.encode(st).decode() if args.json else render_stats(st), file=stdout)
    elif cmd == "check":
        from vgic_actors.logs.check import check_log
        from vgic_actors.logs.check import render as render_check

        result = check_log(reader, context=_bounded("--context", args.context, 0, MAX_CONTEXT))
        print(msgspec.json.encode(result).decode() if args.json else render_check(result),
              file=stdout)
        status = EXIT_OK if result.ok else EXIT_FINDINGS
    elif cmd == "perfetto":
        from vgic_actors.logs.perfetto import export

        with _open_output(args.output) as out:
            n = export(reader, out)
        print(f"wrote {args.output}: {n} trace events (open it in ui.perfetto.dev)",
              file=stdout)
    elif cmd == "html":
        from vgic_actors.logs.report import build

        page = build(reader)
        with _open_output(args.output) as out:
            out.write(page.encode())
        print(f"wrote {args.output}", file=stdout)
    _summary(reader, stderr)
    return status


def _diff(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from vgic_actors.logs.diff import diff, render
    from vgic_actors.logs.select import FIELDS, parse_kinds

    fields = frozenset(f.strip() for s in args.ignore_field for f in s.split(",") if f.strip())
    unknown = sorted(fields - FIELDS)
    if unknown:
        raise UsageError(f"--ignore-field: no event has a field {', '.join(unknown)}")
    a, b = _reader(args.a, args, stderr), _reader(args.b, args, stderr)
    context = _bounded("--context", args.context, 1, MAX_CONTEXT)
    result = diff(a, b, context=context, ignore_kinds=parse_kinds(args.ignore_kind),
                  ignore_fields=fields)
    print(msgspec.json.encode(result).decode() if args.json else render(result), file=stdout)
    _summary(a, stderr)
    _summary(b, stderr)
    return EXIT_OK if result.same else EXIT_FINDINGS
