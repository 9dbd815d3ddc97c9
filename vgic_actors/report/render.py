"""`vgic-actors report`: a finding as a bug report, in plain text (a mailing list: at most
80 columns), Markdown or HTML.

`build` gathers everything the report says (a replay of the finding with its event log,
the interleaving table, the bisection over the version history, the fix variant's
result, and the fix soak recorded beside the finding in ``fix-soak.json``, a copy of the
soak's summary.json); `render_text`, `render_markdown` and `render_html` lay it out.
Everything is computed from the model: the same finding gives the same report, byte for
byte. The HTML page is the ``logs html`` page of the replay (logs/report.py) with the
report above it.
"""

from __future__ import annotations

import html
import re
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from vgic_actors.checks.catalogue import INVARIANTS
from vgic_actors.checks.signature import MERGED_TOO, Signature
from vgic_actors.events import AnyEvent, IrqQueued
from vgic_actors.kvm.variants import VARIANTS
from vgic_actors.logs.reader import LogReader
from vgic_actors.report.bisect import Bisection, FixCheck, bisect, check_fix, fix_for
from vgic_actors.report.exposure import Exposure, Sweep, exposure
from vgic_actors.report.finding import Case
from vgic_actors.report.table import (
    Table,
    interleaving,
    lane_title,
    studied_intid,
)
from vgic_actors.report.table import (
    render_markdown as table_markdown,
)
from vgic_actors.report.table import (
    render_text as table_text,
)
from vgic_actors.report.variations import as_run
from vgic_actors.runtime import timing_model
from vgic_actors.scenario.runner import RunReport, run_once

WIDTH = 80
KERNEL = "the model follows torvalds/linux at 1c3b3cadcd69 (kernel-vgic.md)"


@dataclass(frozen=True)
class Options:
    """How much to compute: bisection sweep seeds, fix sweep seeds, explore's bound."""

    sweep: int = 12
    fix_sweep: int = 40
    bound: int = 1
    max_schedules: int = 5_000
    exposure: Sweep = field(default_factory=Sweep)


@dataclass(frozen=True)
class Report:
    """Everything a report says, computed."""

    case: Case
    title: str
    violations: list[str]
    table: Table
    steps: int
    config: str
    bisection: Bisection
    fix: FixCheck | None
    soak: dict[str, object] | None
    baseline: dict[str, object] | None
    exposed: list[Exposure]


def _title(case: Case, table: Table) -> str:
    sig, n = case.wanted, table.intid
    what = f"INTID {n}" if n < 32 else f"SPI {n}"
    if "smp-call-in-atomic" in sig.invariants:
        return (f"vgic_queue_irq_unlock: kvm_make_all_cpus_request with IRQs disabled "
                f"({what})")
    if "active-spis-undercount" in sig.invariants:
        return f"vgic_queue_irq_unlock: active_spis wraps to 0 with {what} queued, TDIR clear"
    if "deactivation-lost" in sig.invariants:
        if sig.outcome == "icactiver":
            return f"vgic_mmio_change_active: a vCPU's fold restores {what} Active"
        if sig.outcome == "pseudo-lr":
            return f"vgic_v3_deactivate: pseudo-LR fold races the flush, {what} stays Active"
        if sig.how == "DIR-untrapped":
            return f"ICV_DIR_EL1 not trapped (TDIR clear): {what} stays Active"
        return f"{sig.how or 'deactivation'} of {what} lost"
    if table.loss is not None and "notify" in table.loss.mark:
        return f"vgic_v3_fold_lr: no kvm_notify_acked_irq for {what} EOIed in one run"
    return f"{'+'.join(sig.invariants)} on {what}"


def _config(case: Case, events: Sequence[AnyEvent], sweep: Sweep) -> str:
    vm = case.scenario.vm
    lanes = sorted({lane_title(e.actor.split(".")[0]) for e in events
                    if isinstance(e, IrqQueued) and e.intid >= 0})
    return (f"as run: {as_run(case.scenario)}, {vm.nr_vcpus} vCPUs, {vm.nr_lr} LRs, "
            f"interrupts queued from {', '.join(lanes) or 'nowhere'}. The same scenario "
            f"on the {case.variant} variant with one of these changed ({sweep.describe()} "
            "each):")


_CONTROL = ("the configuration the finding ran in did not show it in this sweep either: "
            "too few runs to judge the others (a rare interleaving)")


def _control_missed(rep: Report) -> bool:
    """The sweep missed the finding in its own configuration."""
    return any(e.as_run and not e.error and not e.hits for e in rep.exposed)


def replay(case: Case, page: bool = False) -> tuple[RunReport, list[AnyEvent], str]:
    """Replay the finding with its event log: the run, its events and, with ``page``, the
    ``logs html`` page of the log (logs/report.py)."""
    from vgic_actors.logs.report import build as html_page

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "replay.jsonl"
        with log.open("wb") as out:
            first = run_once(case.scenario, case.variant, case.seed,
                             f"replay:{case.choices_file}", log=out,
                             timing=timing_model(case.recorded.timing))
        events = [e for _, _, e in LogReader(log).events()]
        return first, events, html_page(LogReader(log)) if page else ""


def build(case: Case, options: Options = Options()) -> Report:
    """Replay the finding, cut its trace, bisect it, check its fix."""
    first, events, _ = replay(case)
    messages = [v.message for v in first.violations]
    table = interleaving(events, studied_intid(messages, events), case.wanted.invariants)
    bis = bisect(case, sweep=options.sweep)
    fix_name = fix_for(case, bis)
    fix = check_fix(case, fix_name, sweep=options.fix_sweep, bound=options.bound,
                    max_schedules=options.max_schedules) if fix_name else None
    return Report(case, _title(case, table), [f"{v.invariant}: {v.message}"
                                              for v in first.violations],
                  table, first.steps, _config(case, events, options.exposure), bis, fix,
                  _json(case.folder / "fix-soak.json"),
                  _json(case.folder.parent / "merged-soak.json"),
                  exposure(case, options.exposure))


def _json(path: Path) -> dict[str, object] | None:
    """A soak summary kept beside the findings (None when absent)."""
    if not path.exists():
        return None
    value = msgspec.json.decode(path.read_bytes())
    return value if isinstance(value, dict) else None


def _wrap(text: str, indent: str = "  ", first: str | None = None) -> list[str]:
    lines = textwrap.wrap(text, WIDTH, initial_indent=first if first is not None else indent,
                          subsequent_indent=indent, break_long_words=False,
                          break_on_hyphens=False)
    return [part for line in lines for part in _fold(line, indent)]


def _fold(line: str, indent: str) -> list[str]:
    """A line longer than 80 columns (a signature key: a lost deactivation's root cause
    makes keys longer than a line, checks/loss.py) broken after its spaces, ``/`` and
    ``,`` too, each continuation starting with ``indent``."""
    if len(line) <= WIDTH:
        return [line]
    out, cur = [], ""
    for token in re.split(r"(?<=[ /,])", line):
        if cur.strip() and len(cur) + len(token.rstrip()) > WIDTH:
            out.append(cur.rstrip())
            cur = indent + token.lstrip()
        else:
            cur += token
    return [*out, cur.rstrip()]


def _key_lines(key: str) -> list[str]:
    """A long signature key on lines of its own, folded at 80 columns."""
    return _fold("  " + key, "    ")


def _command(cmd: str) -> list[str]:
    """A shell command folded at 80 columns with backslashes."""
    words, lines, line = cmd.split(), [], "  "
    for w in words:
        if len(line) + len(w) + 3 > WIDTH and line.strip():
            lines.append(line + " \\")
            line = "      "
        line += ("" if line.endswith(" ") else " ") + w
    lines.append(line)
    return lines


def _class_line(case: Case) -> str:
    if case.wanted.finding_class == "timing-window":
        return ("timing-window: it needs something stretched past the realistic bounds: "
                + (case.needs or "see the finding's timing"))
    return ("ordering (reachable under realistic timing: atomic regions and IPIs "
            "bounded, no stall event)")


def _signatures(summary: dict[str, object]) -> set[str]:
    found = summary.get("findings", {})
    assert isinstance(found, dict)
    return {k.removesuffix(MERGED_TOO) for k in found}


def _atoms(key: str) -> set[str]:
    """What a signature is made of: its class with each invariant, its loss (how, outcome,
    where) and, when the key names one, where it was lost (the site). A run that shows F1
    and F4 together has a signature of its own, but nothing merged lacks when merged shows
    each."""
    sig = Signature.from_key(key)
    atoms = {f"{sig.finding_class}/{name}" for name in sig.invariants}
    if sig.how:
        atoms.add(f"{sig.finding_class}/{sig.how}:{sig.outcome}/{sig.where}")
    if sig.site:
        atoms.add(f"{sig.finding_class}/{sig.site}")
    return atoms


def _same_loss(sig: Signature, wanted: Signature) -> bool:
    """The same finding, also when one side is a signature recorded before loss sites
    were part of the key (a soak summary kept from then has none)."""
    if not (sig.site and wanted.site):
        sig, wanted = (msgspec.structs.replace(x, site="") for x in (sig, wanted))
    return sig.same_finding(wanted)


def unexplained(fix_keys: set[str], merged_keys: set[str]) -> list[str]:
    """The ``ordering`` signatures of a fix soak with an invariant or a loss site that no
    signature of the merged soak has."""
    known = set().union(*(_atoms(k) for k in merged_keys)) if merged_keys else set()
    return sorted(k for k in fix_keys if k.startswith("ordering") and _atoms(k) - known)


def _around_lines(case: Case, fix: FixCheck) -> list[str]:
    """explore around the finding's own schedule (``explore --around``)."""
    fixed, merged = fix.around, fix.around_merged
    holds = ("it is the finding, so the bound covers the finding's neighbourhood"
             if merged.found == case.wanted.key else
             f"merged shows {merged.found or 'nothing'} there: the neighbourhood is not "
             "the finding's")
    return _wrap(f"explore --around {case.choices_file.name} --bound {fix.bound}: "
                 f"{fixed.verdict}" + (f" ({fixed.found})" if fixed.found else "")
                 + f" after {fixed.schedules} schedules (the fix's base run keeps "
                 f"{fixed.followed} of the finding's {fixed.decisions} decisions); merged "
                 f"at bound 0 (the finding's schedule): {merged.verdict}, {holds}",
                 "    ", "  ")


def _soak_lines(rep: Report) -> list[str]:
    """The fix soak (fix-soak.json) against the merged soak of the same profile and seed
    (../merged-soak.json): the ordering signatures only the fix shows."""
    fix = rep.fix
    assert fix is not None
    cmd = f"vgic-actors soak --variant {fix.variant} --time 10m --workers 2 --seed 2026"
    if rep.soak is None:
        return _wrap(f"soak: none recorded; the full check is: {cmd}", "    ", "  ")
    spec = rep.soak.get("spec", {})
    assert isinstance(spec, dict)
    ran = (f"soak ({rep.soak.get('command', 'profile ' + str(spec.get('profile')))}): "
           f"{rep.soak.get('runs')} runs, {len(_signatures(rep.soak))} signatures")
    lines = _wrap(ran, "    ", "  ")
    if rep.baseline is not None:
        new = unexplained(_signatures(rep.soak), _signatures(rep.baseline))
        lines += _wrap(f"against merged ({rep.baseline.get('command', '')}: "
                       f"{rep.baseline.get('runs')} runs): "
                       + ("no ordering invariant or loss site merged does not show" if not new
                          else "ordering signatures with an invariant or loss site merged "
                          "did not show: " + ", ".join(new)),
                       "    ", "  ")
        found = any(_same_loss(Signature.from_key(k), rep.case.wanted)
                    for k in _signatures(rep.soak))
        lines += _wrap(f"{rep.case.wanted.key}: " + ("still found" if found else "absent")
                       + " in the fix soak", "    ", "  ")
    lines += _wrap(f"full check: {cmd}", "    ", "  ")
    return lines


def render_text(rep: Report) -> str:
    """The plain-text report (at most 80 columns)."""
    case, sig = rep.case, rep.case.wanted
    out = [rep.title, "=" * min(len(rep.title), WIDTH), ""]
    out += _wrap(_class_line(case), " " * 13, "Class:       ")
    for name in sig.invariants:
        out += _wrap(f"{name}: {INVARIANTS[name].meaning}", " " * 13, "Invariant:   ")
    out += (_wrap(sig.key, " " * 13, "Signature:   ") if len(sig.key) <= WIDTH - 13
            else ["Signature:", *_key_lines(sig.key)])
    out += _wrap(f"{case.variant} ({VARIANTS[case.variant].story}); {KERNEL}", " " * 13,
                 "Kernel:      ")
    out += ["", "What the guest (or the kernel's own checks) observes:"]
    for text in rep.violations:
        out += _wrap(text, "    ", "  ")
    out += ["", "Configuration exposed:", *_wrap(rep.config)]
    for e in rep.exposed:
        out += _wrap(e.describe(), "      ", "    ")
    if _control_missed(rep):
        out += _wrap(_CONTROL, "      ", "    ")
    source = "shrunk finding" if case.shrunk else "finding"
    out += ["", f"Interleaving ({source}, seed {case.seed}, {len(rep.table.rows)} of "
            f"{rep.steps} steps):", ""]
    out += table_text(rep.table, WIDTH)
    out += ["", "Reproduce:", *_command(case.replay_command())]
    out += _wrap(f"scenario {case.scenario_file}, seed {case.seed}, timing "
                 f"{case.recorded.timing}; `vgic-actors replay {case.folder}` writes the "
                 "full event log")
    out += ["", "Introduced by:", *_wrap(rep.bisection.introduced_by, "    ", "  ")]
    width = max(len(v.variant) for v in rep.bisection.versions)
    out += ["", "  bisection (kernel history, oldest first):"]
    for v in rep.bisection.versions:
        out += _wrap(v.describe(), " " * (width + 6), f"    {v.variant:<{width}}  ")
    out += ["", "Fixed by:"]
    if rep.bisection.fixed_in:
        out += _wrap(f"fixed in {rep.bisection.fixed_in}: "
                     f"{VARIANTS[rep.bisection.fixed_in].story}", "    ", "  ")
    elif rep.fix is None:
        out += ["  no fix variant in the catalogue removes it"]
    if rep.fix is not None:
        fix = rep.fix
        out += _wrap(f"{fix.variant}: {VARIANTS[fix.variant].story}", "    ", "  ")
        same = ("the fix changes the interleaving points, so the recorded schedule "
                "diverges: judged by the sweep" if fix.same_schedule.how == "sweep"
                else fix.same_schedule.describe())
        out += _wrap(f"same schedule: {same}", "    ", "  ")
        out += _wrap(f"sweep ({fix.sweep_runs} runs: seeds 0-{fix.sweep_runs // 3 - 1} x "
                     f"random, pct:2, pct:3): merged shows the finding in "
                     f"{fix.merged_hits}, the fix in {fix.sweep_hits}; of merged's "
                     f"{fix.merged_hits} failing runs {fix.fixed} pass on the fix",
                     "    ", "  ")
        if fix.sweep_other:
            out += _wrap("other findings on the fix: " + ", ".join(
                f"{k} x{n}" for k, n in fix.sweep_other.items()), "    ", "  ")
        found = f" ({fix.explore.found})" if fix.explore.found else ""
        out += _wrap(f"explore --bound {fix.bound}: {fix.explore.verdict}{found} "
                     f"after {fix.explore.schedules} schedules", "    ", "  ")
        merged = fix.explore_merged
        reach = ("so the bound reaches it" if merged.found == case.wanted.key else
                 "another finding first (explore stops at the first)" if merged.found
                 else "so this bound does not reach the finding: the proof is weak")
        out += _wrap(f"merged at the same bound: {merged.verdict}"
                     + (f" ({merged.found})" if merged.found else "")
                     + f" after {merged.schedules} schedules, {reach}", "    ", "  ")
        if fix.explore_all is not None:
            every = fix.explore_all
            out += _wrap(f"that is another finding; explore --bound {fix.bound} "
                         f"--variant merged+fix-all: {every.verdict}"
                         + (f" ({every.found})" if every.found else "")
                         + f" after {every.schedules} schedules",
                         "    ", "  ")
        out += _around_lines(case, fix)
        out += _soak_lines(rep)
    out += ["", f"Regenerate: vgic-actors report {case.folder}"]
    return "\n".join(out) + "\n"


def render_markdown(rep: Report) -> str:
    """The report in Markdown (GitHub tables)."""
    case, sig = rep.case, rep.case.wanted
    out = [f"# {rep.title}", "",
           f"- **Class**: {_class_line(case)}",
           *[f"- **Invariant**: `{n}`: {INVARIANTS[n].meaning}" for n in sig.invariants],
           f"- **Signature**: `{sig.key}`",
           f"- **Kernel**: {case.variant} ({VARIANTS[case.variant].story}); {KERNEL}", "",
           "## What the guest (or the kernel's own checks) observes", "",
           *[f"- {v}" for v in rep.violations], "",
           "## Configuration exposed", "", rep.config, "",
           *[f"- {e.describe()}" for e in rep.exposed],
           *([f"- {_CONTROL}"] if _control_missed(rep) else []), "",
           f"## Interleaving ({'shrunk ' if case.shrunk else ''}finding, seed {case.seed})",
           "", *table_markdown(rep.table), ""]
    if rep.table.loss is not None:
        out += [f"Step {rep.table.loss.step} ({lane_title(rep.table.loss.lane)}): "
                f"{rep.table.loss.mark}.", ""]
    out += ["## Reproduce", "", "```sh", case.replay_command(), "```", "",
            "## Introduced by", "", rep.bisection.introduced_by, "",
            "| version | verdict |", "|---|---|",
            *[f"| {v.variant} | {v.describe()} |" for v in rep.bisection.versions], "",
            "## Fixed by", ""]
    text = "\n".join(render_text(rep).split("Fixed by:\n", 1)[1].split("\nRegenerate:")[0]
                     .splitlines())
    out += ["```", text.rstrip(), "```", "",
            f"Regenerate: `vgic-actors report {case.folder} --format markdown`"]
    return "\n".join(out) + "\n"


def render_html(rep: Report) -> str:
    """The ``logs html`` page of the replay, with the report above it."""
    body = replay(rep.case, page=True)[2]
    rows = "".join(
        "<tr><td>{}</td>{}</tr>".format(
            f"<b>{r.step}</b>" if r.mark else r.step,
            "".join(f"<td>{html.escape(r.text) if lane == r.lane else ''}"
                    f"{' <b>' + html.escape(r.mark) + '</b>' if r.mark and lane == r.lane else ''}"
                    "</td>" for lane in rep.table.lanes))
        for r in rep.table.rows)
    head = "".join(f"<th>{html.escape(lane_title(lane))}</th>" for lane in rep.table.lanes)
    section = (f"<h1>{html.escape(rep.title)}</h1><pre>{html.escape(render_text(rep))}</pre>"
               f"<h2>Interleaving</h2><table><tr><th>step</th>{head}</tr>{rows}</table>"
               "<h2>The replay</h2>")
    return body.replace("<body>", "<body>" + section, 1)


RENDERERS = {"text": render_text, "markdown": render_markdown, "html": render_html}
