"""`vgic-actors bench`: model steps/s next to bare Trio hand-offs (design.md section 7).

Every figure is measured in the same process, one after the other, with logging off:

- handoff: the baseline, `tasks` bare Trio tasks handing control to a random other
  one through ``trio.lowlevel.reschedule`` / ``wait_task_rescheduled`` (one hop = one
  task switch, the least a model step that switches actors can cost);
- ring: the same tasks passing a token round a ring of memory channels (a second line:
  the channel machinery costs about twice a bare hop);
- model: `actors` empty actors taking interleaving points under the strategy (the
  runtime alone);
- scenario: the default scenario (config/) with the full kernel model and every check
  (`scenario.runner.run_once`, step monitor on), run over consecutive seeds.

Ratios are model (or scenario) steps/s over handoff hops/s (goals: runtime >= 0.5, a
real scenario >= 0.3). Wall-clock timing lives here only; the model never reads a clock.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

import msgspec
import trio
import trio.lowlevel
import trio.testing

from vgic_actors import __version__
from vgic_actors.runtime.runner import run
from vgic_actors.runtime.scheduler import Scheduler, point
from vgic_actors.runtime.strategies import PCT, RandomWalk, Strategy


class ScenarioSteps(msgspec.Struct, frozen=True):
    """Runs of one scenario (full kernel model and checks) over consecutive seeds."""

    scenario: str
    strategy: str
    runs: int
    steps_per_run: float
    us_per_step: float
    runs_per_s: float
    ratio: float
    """Steps/s over bare hand-off hops/s."""


class BenchResult(msgspec.Struct, frozen=True):
    """What `bench` prints, as JSON. ``trio_hops*`` are the bare hand-off baseline;
    ``ratio`` is the empty-actor model over it, ``ring_ratio`` over the channel ring."""

    tool_version: str
    actors: int
    strategy: str
    model_steps: int
    model_steps_per_s: float
    trio_hops: int
    trio_hops_per_s: float
    ratio: float
    ring_hops_per_s: float
    ring_ratio: float
    scenario: ScenarioSteps


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


def measure_handoff(tasks: int, hops: int, seed: int = 1) -> tuple[int, float]:
    """Hops and seconds for `tasks` bare Trio tasks, each waking a random other one
    (trio.lowlevel.reschedule) and then blocking (wait_task_rescheduled)."""
    rng = random.Random(seed)
    members: list[Any] = [None] * tasks
    count = [0]

    async def member(i: int) -> None:
        members[i] = trio.lowlevel.current_task()
        while True:
            await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.SUCCEEDED)
            if count[0] >= hops:
                return
            count[0] += 1
            if count[0] == hops:  # the last hop wakes everyone to leave
                for j, task in enumerate(members):
                    if j != i:
                        trio.lowlevel.reschedule(task)
                return
            other = rng.randrange(tasks - 1)
            trio.lowlevel.reschedule(members[other + (other >= i)])

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for i in range(tasks):
                nursery.start_soon(member, i)
            await trio.testing.wait_all_tasks_blocked()
            trio.lowlevel.reschedule(members[0])

    t0 = time.perf_counter()
    trio.run(main, clock=trio.testing.MockClock())
    return hops, time.perf_counter() - t0


def measure_ring(tasks: int, hops: int) -> tuple[int, float]:
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


def measure_scenario(steps: int, strategy: str = "random") -> tuple[str, int, int, float]:
    """(name, runs, steps, seconds): the default scenario run over seeds 0, 1, ... until
    ``steps`` steps, each with the kernel model, the step monitor and the final checks."""
    from vgic_actors.scenario.loader import config_dir, load_defaults, load_scenario
    from vgic_actors.scenario.runner import run_once

    scenario = load_scenario(config_dir() / load_defaults()[0].default_scenario)
    run_once(scenario, "merged", 0, strategy)  # warm-up
    runs = total = 0
    t0 = time.perf_counter()
    while total < steps or runs == 0:
        total += run_once(scenario, "merged", runs, strategy).steps
        runs += 1
    return scenario.name, runs, total, time.perf_counter() - t0


REPEATS = 3
"""Each figure of `bench` is the fastest of this many timings of the same work (a shared
machine only ever slows a timing down: one slow hand-off baseline moved a ratio by a
third between runs)."""


def bench(actors: int = 4, steps: int = 200_000, strategy: str = "random") -> BenchResult:
    """Measure every line in this process (each the fastest of `REPEATS`) and return the
    figures."""
    points = max(1, steps // actors)

    def fresh() -> Strategy:  # the same strategy, from its seed, for each timing
        return RandomWalk(1) if strategy == "random" else PCT(1, 3, actors * points)

    strat = fresh()
    measure_model(actors, min(points, 1000), RandomWalk(0))  # warm-up
    model_steps, model_s = min(
        (measure_model(actors, points, fresh()) for _ in range(REPEATS)), key=lambda m: m[1])
    measure_handoff(max(actors, 2), min(steps, 4000))  # warm-up
    hops, handoff_s = min((measure_handoff(max(actors, 2), steps) for _ in range(REPEATS)),
                          key=lambda m: m[1])
    measure_ring(actors, min(steps, 4000))
    ring_hops, ring_s = min((measure_ring(actors, steps) for _ in range(REPEATS)),
                            key=lambda m: m[1])
    name, runs, sc_steps, sc_s = min(
        (measure_scenario(min(steps, 50_000), "random" if strategy == "random" else "pct:3")
         for _ in range(REPEATS)), key=lambda m: m[3])
    model_rate, handoff_rate = model_steps / model_s, hops / handoff_s
    ring_rate, sc_rate = ring_hops / ring_s, sc_steps / sc_s
    return BenchResult(
        tool_version=__version__,
        actors=actors,
        strategy=strat.describe(),
        model_steps=model_steps,
        model_steps_per_s=round(model_rate, 1),
        trio_hops=hops,
        trio_hops_per_s=round(handoff_rate, 1),
        ratio=round(model_rate / handoff_rate, 3),
        ring_hops_per_s=round(ring_rate, 1),
        ring_ratio=round(model_rate / ring_rate, 3),
        scenario=ScenarioSteps(
            scenario=name, strategy="random" if strategy == "random" else "pct:3", runs=runs,
            steps_per_run=round(sc_steps / runs, 1), us_per_step=round(1e6 / sc_rate, 2),
            runs_per_s=round(runs / sc_s, 1), ratio=round(sc_rate / handoff_rate, 3)),
    )


class RaceRate(msgspec.Struct, frozen=True):
    """Share of seeds 0..runs-1 on which ``strategy`` finds ``variant``'s bug in one
    library scenario (the asymmetric-deactivation race: PCT's goal is >= 10x Trio-like;
    the late-MI overflow race, deeper for Trio's scheduler). ``1 / rate`` is the expected
    number of runs to the first finding, the measure design.md section 7 asks for."""

    scenario: str
    variant: str
    strategy: str
    runs: int
    found: int
    rate: float


RACE = ("asym_dir.yaml", "mutant-kick-only-target")
DEEP_RACE = ("late_mi_overflow.yaml", "v4-applied")
"""A race merged passes whose schedule Trio's scheduler does not produce every time: the
honest second comparison of PCT against Trio-like scheduling (docs/benchmarks.md)."""
RACES = (RACE, DEEP_RACE)
RACE_STRATEGIES = ("pct:3", "pct:3:est", "random", "trio", "trio-batch", "window")
"""``pct:3:est``: PCT with its horizon estimated from the scenario (the soak's choice);
``trio``: least recently run first (`TrioLike`); ``trio-batch``: Trio's own batches with
their random reversal (`TrioBatch`, trio/_core/_run.py)."""


def race_rates(runs: int, races: tuple[tuple[str, str], ...] = RACES) -> list[RaceRate]:
    """Each of `RACE_STRATEGIES` on the same seeds of each race (scenario, variant)."""
    from pathlib import Path

    from vgic_actors.scenario.loader import load_scenario
    from vgic_actors.scenario.runner import run_once, with_horizon

    out = []
    for name, variant in races:
        scenario = load_scenario(Path(__file__).resolve().parent.parent / "scenarios" / name)
        for strategy in RACE_STRATEGIES:
            spec = with_horizon("pct:3", scenario) if strategy == "pct:3:est" else strategy
            found = sum(bool(run_once(scenario, variant, seed, spec).violations)
                        for seed in range(runs))
            out.append(RaceRate(name, variant, strategy, runs, found, round(found / runs, 3)))
    return out


def _runs_per_find(r: RaceRate) -> str:
    return f"{r.runs / r.found:.1f}" if r.found else f"> {r.runs}"


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
    race: list[RaceRate]
    inspector: Any
    soak: Any


def this_machine() -> Machine:
    """The machine's description (no identifiers beyond the platform and CPU model)."""
    import os
    import platform

    return Machine(platform=platform.platform(), python=platform.python_version(),
                   cpus=os.cpu_count() or 0, processor=platform.processor() or "unknown")


def bench_all(*, campaigns: int = 5, cap: float = 60.0, events: int = 1_000_000,
              rate_runs: int = 100) -> AllBench:
    """Model and scenario steps (random and PCT), the asymmetric race, the inspector, soak
    cost, throughput, find rates and first findings."""
    from vgic_actors.logs.bench import bench_inspector
    from vgic_actors.soak.bench import bench_soak

    return AllBench(
        tool_version=__version__, machine=this_machine(),
        steps_random=bench(4, 200_000, "random"), steps_pct=bench(4, 200_000, "pct"),
        race=race_rates(rate_runs), inspector=bench_inspector(events),
        soak=bench_soak(campaigns=campaigns, cap=cap, rate_runs=rate_runs))


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
        "## Steps/s against bare Trio hand-offs (goals: runtime >= 0.5, real scenario >= 0.3)",
        "",
        "The baseline is 4 bare Trio tasks handing control to a random other one "
        "(`trio.lowlevel.reschedule` / `wait_task_rescheduled`); the memory-channel ring is a "
        "second line. *Runtime*: empty actors taking points. *Scenario*: the default scenario "
        "with the full kernel model, the step monitor and the final checks.",
        "",
        "| what | strategy | steps/s | us/step | hand-off hops/s | ratio | ring hops/s | "
        "ratio to ring |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in (b.steps_random, b.steps_pct):
        lines.append(f"| runtime, {r.actors} empty actors | {r.strategy} | "
                     f"{r.model_steps_per_s:,.0f} | {1e6 / r.model_steps_per_s:.1f} | "
                     f"{r.trio_hops_per_s:,.0f} | {r.ratio} | {r.ring_hops_per_s:,.0f} | "
                     f"{r.ring_ratio} |")
    for r in (b.steps_random, b.steps_pct):
        c = r.scenario
        lines.append(f"| scenario {c.scenario} ({c.steps_per_run:g} steps/run, "
                     f"{c.runs_per_s:g} runs/s) | {c.strategy} | {1e6 / c.us_per_step:,.0f} | "
                     f"{c.us_per_step} | {r.trio_hops_per_s:,.0f} | {c.ratio} | | |")
    lines += _section(
        "The asymmetric-deactivation race: PCT against Trio-like scheduling (goal >= 10x)",
        "Runs per find = runs / finds, the expected runs to the first finding. `trio` runs "
        "the least recently run item first; `trio-batch` is Trio's own run loop (whole "
        "run-queue batches, each reversed with probability 1/2).",
        ("scenario", "variant", "strategy", "found", "rate", "runs per find"))
    lines += [f"| {r.scenario} | {r.variant} | {r.strategy} | {r.found}/{r.runs} | {r.rate} "
              f"| {_runs_per_find(r)} |" for r in b.race]
    i = b.inspector
    lines += ["", f"## Log inspector on {i.events:,} events (goals: {i.goal_events_per_s:,}/s; "
              "`stats` and `filter --vcpu` >= 0.5x a decode-only loop over the same file)", "",
              "| command | events/s | over decode-only |", "|---|---|---|",
              f"| decode-only loop (the baseline) | {i.decode_only_events_per_s:,.0f} | 1 |",
              f"| `logs filter --kind` | {i.filter_kind_events_per_s:,.0f} | |",
              f"| `logs filter --vcpu` | {i.filter_vcpu_events_per_s:,.0f} | "
              f"{i.filter_vcpu_ratio} |",
              f"| `logs stats` | {i.stats_events_per_s:,.0f} | {i.stats_ratio} |"]
    s = b.soak
    lines += ["", "## Soak cost per profile (one process, portfolio on merged, every check)",
              "", "| profile | runs | steps/run | us/step | runs/s |", "|---|---|---|---|---|"]
    lines += [f"| {p.profile} | {p.runs} | {p.steps_per_run:g} | {p.us_per_step} | "
              f"{p.runs_per_s} |" for p in s.profiles]
    lines += _section(
        "Soak runs/s, default profile, 1 and 2 workers in alternating rounds (goal: 2 "
        "workers >= 1.9x one)",
        "CPU ms/run: CPU time per run in the processes running the runs; parent: in the "
        "soak's own process beside its workers (records, IPC); cores: all that CPU time "
        "over the wall time (below the worker count: the campaign did not get the cores).",
        ("workers", "runs", "seconds", "runs/s", "CPU ms/run", "parent ms/run", "cores"))
    lines += [f"| {t.workers} | {t.runs} | {t.seconds} | {t.runs_per_s} | {t.cpu_ms_per_run} | "
              f"{t.parent_ms_per_run} | {t.cores} |" for t in s.throughput]
    lines += ["", f"Scaling on 2 workers (median of the rounds' ratios): {s.scaling_2_workers}x.",
              "", "## Find rate per run (default profile, the same scenario seeds for every "
              "strategy; a finding merged also shows does not count)", "",
              "| variant | " + " | ".join(_strategies(s.find_rates)) + " |",
              "|---|" + "---|" * len(_strategies(s.find_rates))]
    for variant in dict.fromkeys(r.variant for r in s.find_rates):
        row = {r.strategy: r for r in s.find_rates if r.variant == variant}
        lines.append(f"| {variant} | " + " | ".join(
            f"{row[k].found}/{row[k].runs}" for k in _strategies(s.find_rates)) + " |")
    lines += ["", "## Time to the first finding (default profile, one core; median over "
              "campaigns; a finding merged also shows does not count: soak/bench.py "
              "MergedJudge)", "",
              "CPU s: this process's CPU time to the finding (the one-core figure on a shared "
              "machine; a campaign that finds nothing counts as the cap).", "",
              "| variant | strategy | found | median s | median CPU s | median runs | "
              "signature |", "|---|---|---|---|---|---|---|"]
    for f in s.first_findings:
        lines.append(f"| {f.variant} | {f.strategy} | {f.found}/{f.campaigns} | {f.median_s}"
                     f"{'' if f.found == f.campaigns else f' (cap {f.cap_s:g})'} | "
                     f"{f.median_cpu_s} | {f.median_runs:g} | "
                     f"{f.signature and f'`{f.signature}`'} |")
    return "\n".join(lines) + "\n"


def _section(title: str, intro: str, columns: tuple[str, ...]) -> list[str]:
    """A Markdown section's opening: its title, a paragraph, a table header."""
    return ["", f"## {title}", "", intro, "", "| " + " | ".join(columns) + " |",
            "|" + "---|" * len(columns)]


def _strategies(rates: list[Any]) -> list[str]:
    return list(dict.fromkeys(r.strategy for r in rates))
