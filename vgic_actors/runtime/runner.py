"""One run, end to end: set up actors, run them under control, return a `RunResult`.

Seed + scenario + variant + code version (+ the strategy, itself seeded) determine a
run. The event stream opens with a `RunStarted` header line. `run` is the synchronous
entry (its own ``trio.run`` with Trio's deterministic mode); `arun` runs inside an
existing Trio run (pytest-trio tests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import BinaryIO

import trio
import trio.testing

from vgic_actors import __version__
from vgic_actors.events import RunStarted
from vgic_actors.runtime._trio_determinism import deterministic_trio
from vgic_actors.runtime.context import TimingModel
from vgic_actors.runtime.eventlog import Emitter, EventSink
from vgic_actors.runtime.findings import RunResult
from vgic_actors.runtime.interrupt import runs_shielded
from vgic_actors.runtime.scheduler import Scheduler
from vgic_actors.runtime.strategies import Replay, Strategy

Setup = Callable[[Scheduler], None]
"""Builds a run: spawns actors, creates cells, locks, mailboxes and timers."""


async def arun(
    setup: Setup,
    strategy: Strategy,
    *,
    seed: int = 0,
    max_steps: int = 100_000,
    log: BinaryIO | None = None,
    sinks: Iterable[EventSink] = (),
    keep_events: int = 32,
    scenario: str = "",
    variant: str = "",
    digest: str = "",
    choices: str = "",
    kernel_sinks: Iterable[EventSink] = (),
    timing: TimingModel | None = None,
) -> RunResult:
    """Run `setup`'s actors under `strategy` inside the current Trio run.

    `digest` and `choices` (the scenario's digest, the choice-log file written beside
    the log) only go into the `RunStarted` header. `kernel_sinks` receive the kernel
    model's events only (see `Emitter`)."""
    emitter = Emitter(log=log, sinks=sinks, keep=keep_events, kernel_sinks=kernel_sinks)
    sched = Scheduler(strategy, max_steps=max_steps, emitter=emitter, timing=timing)
    if emitter.on:
        emitter.emit(
            RunStarted(
                step=0, vt=0, actor="runner", tool_version=__version__, seed=seed,
                strategy=strategy.describe(), scenario=scenario, variant=variant,
                digest=digest, choices=choices,
            )
        )
    try:
        setup(sched)
        outcome = await sched.run()
    finally:
        emitter.close()
    return RunResult(
        seed=seed,
        strategy=strategy.describe(),
        scenario=scenario,
        variant=variant,
        code_version=__version__,
        outcome=outcome,
        steps=sched.step,
        vt=sched.vt,
        choices=sched.choice_log(),
        stats=sched.statistics(),
        finding=sched.finding,
        replay=strategy.report() if isinstance(strategy, Replay) else None,
        timing=sched.timing_record(),
        context_violations=list(sched.context_violations),
    )


def run(
    setup: Setup,
    strategy: Strategy,
    *,
    seed: int = 0,
    max_steps: int = 100_000,
    log: BinaryIO | None = None,
    sinks: Iterable[EventSink] = (),
    keep_events: int = 32,
    scenario: str = "",
    variant: str = "",
    digest: str = "",
    choices: str = "",
    kernel_sinks: Iterable[EventSink] = (),
    timing: TimingModel | None = None,
) -> RunResult:
    """`arun` in its own deterministic ``trio.run`` (virtual clock, seeded Trio)."""

    async def main() -> RunResult:
        return await arun(
            setup, strategy, seed=seed, max_steps=max_steps, log=log, sinks=sinks,
            keep_events=keep_events, scenario=scenario, variant=variant,
            digest=digest, choices=choices, kernel_sinks=kernel_sinks, timing=timing,
        )

    with runs_shielded(), deterministic_trio(seed):
        # Ctrl-C waits for the run to end (runtime/interrupt.py). autojump: if every
        # task blocks on something the scheduler does not control,
        # virtual time jumps to the scheduler's guard deadline instead of hanging.
        return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
