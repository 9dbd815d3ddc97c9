"""Trio's private deterministic-scheduling switch and its seeded generator, in one place.

Trio reorders each batch of runnable tasks with the module-level ``random.Random``
``trio._core._run._r``; with ``_ALLOW_DETERMINISTIC_SCHEDULING`` set it sorts the
batch by task creation order and shuffles it with ``_r``. Both are private (Trio
declines a public ``seed=``, python-trio/trio#2675), so Trio is pinned to 0.35.x and
this module is the only code that touches them. `self_test` proves the recipe still
works on the installed Trio. The controlled scheduler lets at most one model task be
runnable at a time, so this only fixes the order of the runtime's own bookkeeping
tasks; it is set anyway so nothing Trio decides depends on the process.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio
import trio._core._run as _trio_run
import trio.testing


@contextmanager
def deterministic_trio(seed: int) -> Iterator[None]:
    """Within the block, Trio schedules deterministically from `seed`; restored afterwards.

    pytest-trio 0.8 sets the flag for the whole process when Hypothesis is installed;
    the previous flag value and generator state come back on exit either way.
    """
    mod: Any = _trio_run
    old_flag = mod._ALLOW_DETERMINISTIC_SCHEDULING
    old_state = mod._r.getstate()
    mod._ALLOW_DETERMINISTIC_SCHEDULING = True
    mod._r.seed(seed)
    try:
        yield
    finally:
        mod._ALLOW_DETERMINISTIC_SCHEDULING = old_flag
        mod._r.setstate(old_state)


def _uncontrolled_order(seed: int) -> list[int]:
    """Run six tasks that each yield to Trio four times; return the order they ran in."""
    order: list[int] = []

    async def worker(i: int) -> None:
        for _ in range(4):
            order.append(i)
            await trio.lowlevel.checkpoint()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(worker, i)

    with deterministic_trio(seed):
        trio.run(main, clock=trio.testing.MockClock())
    return order


def self_test(seeds: int = 20) -> bool:
    """True when same-seed Trio runs repeat exactly and different seeds do differ."""
    orders = [_uncontrolled_order(s) for s in range(seeds)]
    repeat = all(_uncontrolled_order(s) == orders[s] for s in range(seeds))
    varied = len({tuple(o) for o in orders}) > 1
    return repeat and varied
