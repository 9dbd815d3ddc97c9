"""`vgic-actors bench`: model steps/s next to bare Trio token passing (design.md section 7).

Both are measured in the same process, one after the other, with logging off:

- model: `actors` actors, each taking `points` interleaving points, under the random
  walk (every decision is a real choice, most of them switch actors);
- trio: the same number of tasks passing one token round a ring of memory channels
  (a hop = one send + one receive, the same one task switch a model step costs).

The ratio model/trio is the figure of merit (goal >= 0.5). Wall-clock timing lives
here only; the model itself never reads a clock.
"""

from __future__ import annotations

import math
import time
from typing import Any

import msgspec
import trio
import trio.testing

from vgic_actors import __version__
from vgic_actors.runtime.runner import run
from vgic_actors.runtime.scheduler import Scheduler, point
from vgic_actors.runtime.strategies import PCT, RandomWalk, Strategy


class BenchResult(msgspec.Struct, frozen=True):
    """What `bench` prints, as JSON."""

    tool_version: str
    actors: int
    strategy: str
    model_steps: int
    model_steps_per_s: float
    trio_hops: int
    trio_hops_per_s: float
    ratio: float


def _model_setup(actors: int, points: int) -> object:
    def setup(sched: Scheduler) -> None:
        async def body() -> None:
            for _ in range(points):
                await point("bench")

        for i in range(actors):
            sched.spawn(f"a{i}", body)

    return setup


def measure_model(actors: int, points: int, strategy: Strategy) -> tuple[int, float]:
    """Model steps and seconds for one run of the point-taking program."""
    setup = _model_setup(actors, points)
    t0 = time.perf_counter()
    result = run(setup, strategy, max_steps=actors * points * 2 + 100)  # type: ignore[arg-type]
    return result.steps, time.perf_counter() - t0


def measure_trio(tasks: int, hops: int) -> tuple[int, float]:
    """Token hops and seconds for a ring of `tasks` Trio tasks on memory channels."""

    async def main() -> None:
        chans = [trio.open_memory_channel[int](math.inf) for _ in range(tasks)]

        async def member(i: int) -> None:
            rx = chans[i][1]
            tx = chans[(i + 1) % tasks][0]
            async for token in rx:
                if token >= hops:
                    for send, _ in chans:
                        send.close()
                    return
                await tx.send(token + 1)

        async with trio.open_nursery() as nursery:
            for i in range(tasks):
                nursery.start_soon(member, i)
            await chans[0][0].send(0)

    t0 = time.perf_counter()
    trio.run(main, clock=trio.testing.MockClock())
    return hops, time.perf_counter() - t0


def bench(actors: int = 4, steps: int = 200_000, strategy: str = "random") -> BenchResult:
    """Measure both sides in this process and return the figures."""
    points = max(1, steps // actors)
    strat: Strategy = RandomWalk(1) if strategy == "random" else PCT(1, 3, actors * points)
    measure_model(actors, min(points, 1000), RandomWalk(0))  # warm-up
    model_steps, model_s = measure_model(actors, points, strat)
    measure_trio(actors, min(steps, 4000))  # warm-up
    hops, trio_s = measure_trio(actors, steps)
    model_rate = model_steps / model_s
    trio_rate = hops / trio_s
    return BenchResult(
        tool_version=__version__,
        actors=actors,
        strategy=strat.describe(),
        model_steps=model_steps,
        model_steps_per_s=round(model_rate, 1),
        trio_hops=hops,
        trio_hops_per_s=round(trio_rate, 1),
        ratio=round(model_rate / trio_rate, 3),
    )


class Machine(msgspec.Struct, frozen=True):
    """Where the figures were measured."""

    platform: str
    python: str
    cpus: int
    processor: str


class AllBench(msgspec.Struct, frozen=True):
    """Every figure of design.md section 7, measured in one invocation."""

    tool_version: str
    machine: Machine
    steps_random: BenchResult
    steps_pct: BenchResult
    inspector: Any
    soak: Any


def this_machine() -> Machine:
    """The machine's description (no identifiers beyond the platform and CPU model)."""
    import os
    import platform

    return Machine(platform=platform.platform(), python=platform.python_version(),
                   cpus=os.cpu_count() or 0, processor=platform.processor() or "unknown")


def bench_all(*, campaigns: int = 5, cap: float = 60.0, events: int = 1_000_000) -> AllBench:
    """Model steps (random and PCT), the inspector, soak throughput and first findings."""
    from vgic_actors.logs.bench import bench_inspector
    from vgic_actors.soak.bench import bench_soak

    return AllBench(
        tool_version=__version__, machine=this_machine(),
        steps_random=bench(4, 200_000, "random"), steps_pct=bench(4, 200_000, "pct"),
        inspector=bench_inspector(events), soak=bench_soak(campaigns=campaigns, cap=cap))


def to_markdown(b: AllBench) -> str:
    """The figures as docs/benchmarks.md: the machine, then one table per figure."""
    m = b.machine
    lines = [
        "# Benchmarks",
        "",
        f"Written by `vgic-actors bench --all --markdown docs/benchmarks.md` (vgic-actors "
        f"{b.tool_version}). Machine: {m.platform}, {m.cpus} CPUs ({m.processor}), Python "
        f"{m.python}. Every figure is measured against its baseline in the same run.",
        "",
        "## Model steps/s against bare Trio token passing (goal >= 0.5)",
        "",
        "| strategy | model steps/s | Trio hops/s | ratio |",
        "|---|---|---|---|",
    ]
    for r in (b.steps_random, b.steps_pct):
        lines.append(f"| {r.strategy} | {r.model_steps_per_s:,.0f} | {r.trio_hops_per_s:,.0f} "
                     f"| {r.ratio} |")
    i = b.inspector
    lines += ["", f"## Log inspector on {i.events:,} events (goal {i.goal_events_per_s:,}/s)", "",
              "| command | events/s |", "|---|---|",
              f"| `logs filter --kind` | {i.filter_kind_events_per_s:,.0f} |",
              f"| `logs filter --vcpu` | {i.filter_vcpu_events_per_s:,.0f} |",
              f"| `logs stats` | {i.stats_events_per_s:,.0f} |"]
    s = b.soak
    lines += ["", "## Soak runs/s, default profile (goal: 2 workers >= 1.8x one)", "",
              "| workers | runs | seconds | runs/s |", "|---|---|---|---|"]
    lines += [f"| {t.workers} | {t.runs} | {t.seconds} | {t.runs_per_s} |" for t in s.throughput]
    lines += ["", f"Scaling on 2 workers: {s.scaling_2_workers}x.", "",
              "## Time to the first finding (default profile, one core; median over "
              "campaigns; a finding merged shares on the same seed does not count)", "",
              "| variant | strategy | found | median s | median runs |", "|---|---|---|---|---|"]
    for f in s.first_findings:
        lines.append(f"| {f.variant} | {f.strategy} | {f.found}/{f.campaigns} | {f.median_s}"
                     f"{'' if f.found == f.campaigns else f' (cap {f.cap_s:g})'} | "
                     f"{f.median_runs:g} |")
    return "\n".join(lines) + "\n"
