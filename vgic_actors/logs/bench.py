"""``vgic-actors bench --inspector``: log inspector throughput in events/s (design.md s.7).

The log is synthesised from real runs: a few library scenarios are run once each
with logging on, and their event bodies are repeated with step and virtual time
shifted so the result reads as one long run (a valid log, header first) of at
least the requested number of events. Then ``filter`` (a kind criterion, and a
vCPU criterion that needs decoding) and ``stats`` each read the whole file once, beside
the baseline: a decode-only loop (every line through the events decoder, nothing else;
goal: ``stats`` and ``filter --vcpu`` at least half its rate). Wall-clock timing lives
here only.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

import msgspec

from vgic_actors import __version__
from vgic_actors.events import DECODER, ENCODER, RunStarted
from vgic_actors.logs.reader import LogReader
from vgic_actors.logs.select import Selector, write_filtered
from vgic_actors.logs.stats import collect

SOURCES = (("asym_dir.yaml", "merged"), ("asym_dir.yaml", "no-spi-tracking"),
           ("late_mi_overflow.yaml", "merged"), ("sgi_ipi.yaml", "merged"))
"""The scenario runs whose events make up the synthetic log."""


class InspectorBench(msgspec.Struct, frozen=True):
    """What ``bench --inspector`` prints, as JSON."""

    tool_version: str
    events: int
    log_bytes: int
    filter_kind_events_per_s: float
    filter_kind_kept: int
    filter_vcpu_events_per_s: float
    filter_vcpu_kept: int
    stats_events_per_s: float
    goal_events_per_s: int = 500_000
    decode_only_events_per_s: float = 0.0
    filter_vcpu_ratio: float = 0.0
    """``filter --vcpu`` over the decode-only loop (goal >= 0.5)."""
    stats_ratio: float = 0.0
    """``stats`` over the decode-only loop (goal >= 0.5)."""


def _bodies() -> list[list[bytes]]:
    from vgic_actors.scenario import load_scenario
    from vgic_actors.scenario.loader import scenario_library
    from vgic_actors.scenario.runner import run_once

    lib = scenario_library()
    out = []
    for name, variant in SOURCES:
        path = lib / name
        if not path.exists():
            continue
        scenario = load_scenario(path)
        buf = io.BytesIO()
        run_once(scenario, variant, 0, scenario.run.strategy or "pct:3", log=buf)
        lines = buf.getvalue().splitlines()[1:]  # without the header
        out.append([ln for ln in lines if not ln.startswith(b'{"ev":"RunEnded"')])
    if not out:
        raise FileNotFoundError(f"no scenario library at {lib}")
    return out


def synthesise(path: Path, events: int) -> int:
    """Write a log of at least ``events`` events to ``path``; return the count."""
    bodies = [[DECODER.decode(ln) for ln in body] for body in _bodies()]
    header = RunStarted(step=0, vt=0, actor="runner", tool_version=__version__, seed=0,
                        strategy="synthetic", scenario="bench", variant="mixed")
    n = 1
    offset = 0
    buf = bytearray()
    with path.open("wb") as fh:
        fh.write(ENCODER.encode(header) + b"\n")
        while n < events:
            for body in bodies:
                for ev in body:
                    buf += ENCODER.encode(msgspec.structs.replace(
                        ev, step=ev.step + offset, vt=ev.vt + offset))
                    buf += b"\n"
                offset += body[-1].step + 1 if body else 1
                n += len(body)
                if len(buf) > 1 << 20:
                    fh.write(buf)
                    buf.clear()
                if n >= events:
                    break
        fh.write(buf)
    return n


def _timed_filter(path: Path, selector: Selector) -> tuple[float, int]:
    sink = open(os.devnull, "wb")  # noqa: SIM115 - closed below
    try:
        t0 = time.perf_counter()
        kept = write_filtered(LogReader(path), selector, sink.write)
        return time.perf_counter() - t0, kept
    finally:
        sink.close()


def _timed_decode(path: Path) -> float:
    """Seconds of the baseline: every line of the file decoded, nothing else."""
    decode = DECODER.decode
    t0 = time.perf_counter()
    with path.open("rb") as fh:
        for line in fh:
            decode(line)
    return time.perf_counter() - t0


def bench_inspector(events: int = 1_000_000) -> InspectorBench:
    """Synthesise the log in a temporary directory and time the inspector on it."""
    with tempfile.TemporaryDirectory(prefix="vgic-bench-") as tmp:
        path = Path(tmp) / "bench.jsonl"
        n = synthesise(path, events)
        size = path.stat().st_size
        _timed_filter(path, Selector(kinds=frozenset({"IrqQueued"})))  # warm the page cache
        kind_s, kind_kept = _timed_filter(
            path, Selector(kinds=frozenset({"IrqQueued", "DirEmulated", "GuestDeactivated"})))
        vcpu_s, vcpu_kept = _timed_filter(path, Selector(vcpu=1))
        t0 = time.perf_counter()
        collect(LogReader(path))
        stats_s = time.perf_counter() - t0
        decode_s = _timed_decode(path)
    return InspectorBench(
        tool_version=__version__, events=n, log_bytes=size,
        filter_kind_events_per_s=round(n / kind_s, 1), filter_kind_kept=kind_kept,
        filter_vcpu_events_per_s=round(n / vcpu_s, 1), filter_vcpu_kept=vcpu_kept,
        stats_events_per_s=round(n / stats_s, 1),
        decode_only_events_per_s=round(n / decode_s, 1),
        filter_vcpu_ratio=round(decode_s / vcpu_s, 3), stats_ratio=round(decode_s / stats_s, 3))
