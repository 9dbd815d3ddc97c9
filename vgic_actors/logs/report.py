"""``logs html``: one self-contained HTML page for a bug report or a mailing-list reply.

Inline CSS and SVG, no script, nothing fetched: first a timeline picture, then the
verdict (``logs check``), the run's figures (``logs stats``) and the interrupt table.
The picture is drawn from the same trace events the Perfetto export writes (each vCPU's
lane above its pCPU's, then the distributor; guest slices shaded when TDIR was set;
message arrows; a red line at the first violation; the guest's IAR/EOIR/DIR of the
interrupts that violation names labelled; a step axis), capped at ``max_shapes``
shapes so a huge log still gives a page a browser opens.
"""

from __future__ import annotations

import bisect
import html
import re
from collections.abc import Iterable
from typing import Any, BinaryIO

import msgspec

from vgic_actors.logs.check import CheckResult, OfflineChecker, check_log, irq_key, irq_label
from vgic_actors.logs.describe import describe
from vgic_actors.logs.irq import IrqSummary, _tally
from vgic_actors.logs.perfetto import TraceWriter
from vgic_actors.logs.reader import LogReader
from vgic_actors.logs.stats import Stats, collect

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
.verdict{padding:.6em 1em;border-radius:6px;font-weight:600}
.ok{background:#e3f6e5;border:1px solid #6c6}.bad{background:#fde8e8;border:1px solid #d55}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
th{background:#f3f3f3}pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:12px}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px}dt{font-weight:600}
svg text{font:11px monospace}svg text.mark{font-weight:bold;fill:#7b2cbf}
svg text.axis{font-size:10px;fill:#555}svg text.irq{font-size:9px;fill:#7b2cbf}
"""


_STUDIED = re.compile(r"\b(?:SPI|PPI|SGI|LPI|INTID) (\d+)")
"""The interrupts a violation message names: the ones the picture labels."""


class _Collector(TraceWriter):
    """A TraceWriter that keeps trace events in memory (up to ``cap``)."""

    def __init__(self, cap: int) -> None:
        super().__init__(out=None)  # type: ignore[arg-type]
        self.events: list[dict[str, Any]] = []
        self.cap = cap
        self.dropped = 0

    def emit(self, ev: dict[str, Any]) -> None:
        self.count += 1
        if len(self.events) < self.cap or ev["ph"] in ("E", "M"):
            self.events.append(ev)
        else:
            self.dropped += 1


def _lane_key(tid: int) -> tuple[int, int, int]:
    """Each vCPU right above the pCPU it runs on (tid 200+n over 100+n), then the
    distributor (300), then the other actors (400+)."""
    if tid < 300:
        return (0, tid % 100, 0 if tid >= 200 else 1)
    return (1, tid, 0)


_GUEST_MARK = re.compile(r"vcpu\d+ (IAR|EOIR|DIR)\b.*?INTID (\d+)")


def _mark_label(ev: dict[str, Any], study: set[int] | None) -> str:
    """``IAR 32`` for a guest acknowledge/EOI/DIR of an interrupt under study, else ""."""
    m = _GUEST_MARK.match(ev["name"])
    if m is None or (study is not None and int(m.group(2)) not in study):
        return ""
    return f"{m.group(1)} {m.group(2)}"


_IRQ_MARKS = {"IrqQueued": "queued", "LrFolded": "fold",
              "EoicountReplayed": "EOIcount", "DirEmulated": "DIR emulated",
              "ActiveChanged": "active", "IrqPruned": "pruned", "GuestAcked": "IAR",
              "GuestEoied": "EOIR", "GuestDeactivated": "deact"}
"""The events drawn on an interrupt's own lane, with their short labels."""

IrqLanes = dict[str, list[tuple[float, str, str]]]
"""Per interrupt under study: (trace timestamp, short label, full description)."""


def _svg(events: list[dict[str, Any]], tracks: dict[str, int], mark_vt: int | None,
         steps: list[tuple[int, int]], study: set[int] | None, irq_lanes: IrqLanes,
         width: int = 1300) -> str:
    """The timeline picture: one lane per track, then one per interrupt under study (its
    kernel and guest events), time left to right, a step axis below; the guest's
    IAR/EOIR/DIR of the interrupts under study (``study``; None: every one) labelled.
    ``steps``: (vt, step) of the first event of each tick, in order."""
    order = sorted(tracks.items(), key=lambda kv: _lane_key(kv[1]))
    lane_y = {tid: 24 + i * 34 for i, (_n, tid) in enumerate(order)}
    irq_y = {name: 24 + (len(order) + i) * 34 for i, name in enumerate(irq_lanes)}
    stamps = [e["ts"] for e in events if "ts" in e]
    t0, t1 = (min(stamps), max(stamps)) if stamps else (0.0, 1.0)
    left, span = 110, max(t1 - t0, 1e-9)

    def x(ts: float) -> float:
        return round(left + (ts - t0) / span * (width - left - 10), 2)

    out: list[str] = []
    axis_y = 24 + 34 * (len(order) + len(irq_lanes)) + 6
    out.append(f'<line x1="{left}" y1="{axis_y}" x2="{width - 10}" y2="{axis_y}" '
               'stroke="#999"/>'
               f'<text x="4" y="{axis_y + 14}">step (vt)</text>')
    vts = [vt for vt, _ in steps]
    for k in range(11):
        ts = t0 + k * span / 10
        i = bisect.bisect_right(vts, ts) - 1
        if i < 0:
            continue
        vt, step = steps[i]
        out.append(f'<line x1="{x(ts)}" y1="{axis_y}" x2="{x(ts)}" y2="{axis_y + 4}" '
                   f'stroke="#999"/><text x="{x(ts)}" y="{axis_y + 16}" '
                   f'text-anchor="middle" class="axis">{step} ({vt})</text>')
    for name, lane_tid in order:
        y = lane_y[lane_tid]
        out.append(f'<text x="4" y="{y + 14}">{html.escape(name)}</text>'
                   f'<line x1="{left}" y1="{y + 24}" x2="{width - 10}" y2="{y + 24}" '
                   'stroke="#ddd"/>')
    for name, marks in irq_lanes.items():
        y = irq_y[name]
        out.append(f'<text x="4" y="{y + 14}">{html.escape(name)}</text>'
                   f'<line x1="{left}" y1="{y + 24}" x2="{width - 10}" y2="{y + 24}" '
                   'stroke="#ddd"/>')
        for ts, label, title in marks:
            out.append(f'<line x1="{x(ts)}" y1="{y + 8}" x2="{x(ts)}" y2="{y + 24}" '
                       f'stroke="#7b2cbf"><title>{html.escape(title)}</title></line>'
                       f'<text x="{x(ts) + 2}" y="{y + 8}" class="irq">'
                       f"{html.escape(label)}</text>")
    height = axis_y + 30
    opened: dict[int, list[dict[str, Any]]] = {}
    flows: dict[int, tuple[float, int]] = {}
    for ev in events:
        ph, tid = ev["ph"], int(ev.get("tid", -1))
        if ph == "B" and tid in lane_y:
            opened.setdefault(tid, []).append(ev)
        elif ph == "E" and opened.get(tid):
            b = opened[tid].pop()
            tdir = b.get("args", {}).get("tdir", False)
            fill = "#f4a261" if tdir else "#8ecae6" if b["name"] == "guest" else "#cdb4db"
            title = html.escape(f"{b['name']} vt {b['ts']:.0f}-{ev['ts']:.0f}"
                                + (" TDIR" if tdir else ""))
            out.append(f'<rect x="{x(b["ts"])}" y="{lane_y[tid] + 4}" '
                       f'width="{max(x(ev["ts"]) - x(b["ts"]), 1)}" height="18" fill="{fill}">'
                       f"<title>{title}</title></rect>")
        elif ph == "i" and tid in lane_y:
            out.append(f'<line x1="{x(ev["ts"])}" y1="{lane_y[tid] + 2}" x2="{x(ev["ts"])}" '
                       f'y2="{lane_y[tid] + 24}" stroke="#333"><title>'
                       f'{html.escape(ev["name"])}</title></line>')
            label = _mark_label(ev, study)
            if label:
                out.append(f'<text x="{x(ev["ts"]) + 2}" y="{lane_y[tid] + 1}" '
                           f'class="mark">{html.escape(label)}</text>')
        elif ph == "s" and tid in lane_y:
            flows[ev["id"]] = (ev["ts"], tid)
        elif ph == "f" and ev["id"] in flows and tid in lane_y:
            ts, src = flows.pop(ev["id"])
            colour = "#d62828" if ev["name"].startswith(("kick", "broadcast")) else "#888"
            out.append(f'<line x1="{x(ts)}" y1="{lane_y[src] + 13}" x2="{x(ev["ts"])}" '
                       f'y2="{lane_y[tid] + 13}" stroke="{colour}" marker-end="url(#arr)">'
                       f'<title>{html.escape(ev["name"])} #{ev["id"]}</title></line>')
    if mark_vt is not None:
        out.append(f'<line x1="{x(mark_vt)}" y1="0" x2="{x(mark_vt)}" y2="{height}" '
                   'stroke="red" stroke-width="2"><title>first violation</title></line>')
    defs = ('<defs><marker id="arr" markerWidth="6" markerHeight="6" refX="5" refY="3" '
            'orient="auto"><path d="M0,0 L6,3 L0,6 z" fill="#555"/></marker></defs>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img" aria-label="timeline">{defs}{"".join(out)}</svg>')


def _table(head: Iterable[str], rows: Iterable[Iterable[object]], css: str = "") -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f'<table class="{css}"><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>'


def _fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} x{n}" for k, n in counts.items()) or "-"


def build(reader: LogReader, *, max_shapes: int = 20_000) -> str:
    """The page, as a string."""
    verdict: CheckResult = check_log(reader)
    stats: Stats = collect(reader)
    collector = _Collector(max_shapes)
    checker = OfflineChecker()
    tallies: dict[tuple[int | None, int], IrqSummary] = {}
    mark_vt: int | None = None
    first = verdict.violations[0] if verdict.violations else None
    steps: list[tuple[int, int]] = []
    study = {int(n) for n in _STUDIED.findall(first.message)} if first is not None else set()
    irq_lanes: IrqLanes = {}
    for number, _line, event in reader.events():
        if first is not None and number == first.line:
            mark_vt = event.vt
        if not steps or event.vt > steps[-1][0]:
            steps.append((event.vt, event.step))
        if event.actor not in ("runner", "scheduler", "timer"):
            collector.feed(event)
            label = _IRQ_MARKS.get(type(event).__name__)
            intid = getattr(event, "intid", None)
            if label is not None and intid in study:
                lane = irq_label(irq_key(getattr(event, "vcpu", 0), intid))
                irq_lanes.setdefault(lane, []).append((collector.ts, label, describe(event)))
        checker.feed(number, event)
        intid = getattr(event, "intid", None)
        if intid is not None:
            key = irq_key(getattr(event, "vcpu", 0), intid)
            _tally(tallies.setdefault(key, IrqSummary()), event)
        for i in getattr(event, "lrs", ()):
            key = irq_key(getattr(event, "vcpu", 0), i)
            _tally(tallies.setdefault(key, IrqSummary()), event)
    collector.finish()
    checker.finish()
    header = reader.header
    title = (f"{header.scenario or '?'} · {header.variant or '?'} · seed {header.seed}"
             if header else reader.file)
    facts = [("file", reader.file)]
    if header is not None:
        facts += [(k, str(v)) for k, v in msgspec.structs.asdict(header).items()
                  if k not in ("step", "vt", "actor")]
    facts += [("outcome", verdict.outcome), ("events", str(stats.events)),
              ("steps / vt", f"{stats.steps} / {stats.vt}")]
    if first is None:
        checked = html.escape(", ".join(verdict.checked))
        box = f'<p class="verdict ok">ok: no violation of {checked}</p>'
    else:
        box = (f'<p class="verdict bad">{html.escape(first.invariant)} ({html.escape(first.kind)})'
               f" at step {first.step}: {html.escape(first.message)}</p>"
               f"<pre>{html.escape(chr(10).join(verdict.context))}</pre>")
        if len(verdict.violations) > 1:
            box += _table(("invariant", "step", "message"),
                          ((v.invariant, v.step, v.message) for v in verdict.violations[1:]))
    irq_rows = []
    for key, sm in sorted(tallies.items(), key=lambda kv: (kv[0][1], kv[0][0] or -1)):
        state = checker.irqs.get(key)
        final = "-" if state is None else ("Active" if state.active else "inactive") + (
            f", on vcpu{state.on_list}'s ap_list" if state.on_list is not None else "")
        irq_rows.append((irq_label(key), _fmt(sm.queued), _fmt(sm.lr_placements), _fmt(sm.acks),
                         _fmt(sm.priority_drops), _fmt(sm.deactivations), _fmt(sm.dir_emulated),
                         final))
    vcpu_rows = [(v, t.entries, t.guest_vt, t.tdir_entries, t.tdir_vt)
                 for v, t in stats.vcpus.items()]
    note = (f"<p>Picture capped at {max_shapes} trace events; {collector.dropped} later ones "
            "not drawn (use <code>logs perfetto</code> for the whole run).</p>"
            if collector.dropped else "")
    tracks = dict(collector.tids)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>vgic-actors run: {html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>vgic-actors run: {html.escape(title)}</h1>",
        '<h2 id="timeline">Timeline</h2>',
        "<p>Lanes: each vCPU above the pCPU it runs on (blue: in the guest; orange: in the "
        "guest with ICH_HCR_EL2.TDIR set; violet: the pCPU handling an exit), the "
        "distributor (violet: serving a request). Arrows: messages (red: kicks and broadcast "
        "legs). Ticks: kernel steps and guest IAR/EOIR/DIR, labelled for "
        + (html.escape(", ".join(f"INTID {i}" for i in sorted(study))) if study
           else "every interrupt")
        + ". Red line: the first violation. Axis: scheduler step (virtual time). Hover for "
        "details.</p>",
        _svg(collector.events, tracks, mark_vt, steps, study or None, irq_lanes), note,
        '<h2 id="verdict">Verdict</h2>', box,
        '<h2 id="run">Run</h2><dl>' + "".join(
            f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in facts) + "</dl>",
        '<h2 id="interrupts">Interrupts</h2>',
        _table(("interrupt", "queued on", "LR placements", "acks", "priority drops",
                "deactivations", "DIR emulated", "at the end"), irq_rows, "irqs"),
        '<h2 id="vcpus">vCPUs</h2>',
        _table(("vCPU", "entries", "vt in guest", "entries with TDIR", "vt with TDIR"),
               vcpu_rows),
        '<h2 id="counts">Counts</h2>',
        _table(("what", "counts"), [("exits", _fmt(stats.exits)), ("kicks", _fmt(stats.kicks)),
                                    ("messages", _fmt(stats.messages)),
                                    ("broadcasts", str(stats.broadcasts)),
                                    ("maintenance IRQs", str(stats.maintenance_interrupts)),
                                    ("events by kind", _fmt(stats.by_kind))]),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write(reader: LogReader, out: BinaryIO) -> None:
    """Build the page and write it (UTF-8)."""
    out.write(build(reader).encode())
